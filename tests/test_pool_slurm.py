"""paracore.Pool on the real Slurm: map (chunked), starmap, imap_unordered, and a function
the worker cannot import, which raises the node's error at once instead of hanging."""

from __future__ import annotations

import operator
import time
from pathlib import Path

import pytest

import paracore as pc
from tests.test_pool import square, unimportable_module

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def test_map_starmap_and_imap_unordered_on_slurm() -> None:
    with pc.Pool(2, time_min=2, progress=False) as pool:
        assert pool.map(abs, range(-30, 0), chunksize=10) == list(range(30, 0, -1))
        assert pool.starmap(operator.mul, [(2, 3), (4, 5)]) == [6, 20]
        assert sorted(pool.imap_unordered(abs, range(-6, 0), chunksize=2)) == list(range(1, 7))
        with pytest.raises(ZeroDivisionError, match="no square for 7"):
            pool.map(square, range(12), chunksize=4)


@pytest.mark.timeout(240)
def test_an_unimportable_function_raises_the_nodes_error_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = unimportable_module(tmp_path, monkeypatch)
    started = time.monotonic()
    with (
        pc.Pool(time_min=2, progress=False) as pool,
        pytest.raises(ModuleNotFoundError, match="vanishing_module") as caught,
    ):
        pool.map(module.triple, range(200), chunksize=50)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "logs:" in notes or not hasattr(caught.value, "add_note")
    print(f"unimportable function: raised after {time.monotonic() - started:.1f} s")
