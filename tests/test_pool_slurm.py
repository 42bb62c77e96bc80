"""paracore.Pool on the real Slurm: map (chunked), starmap, imap_unordered, and a function
the worker cannot import, which raises the node's error at once instead of hanging."""

from __future__ import annotations

import operator
import time
from pathlib import Path

import pytest

import paracore as pc
from tests.slurm_helpers import job_row, wait_for_job
from tests.test_pool import block_until, square, unimportable_module, wait_for

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


def test_leaving_the_pool_cancels_its_array_tasks_on_slurm(tmp_path: Path) -> None:
    """Leaving ``with Pool()`` while imap's tasks run cancels them in Slurm (sacct: CANCELLED)."""
    paths = [(str(tmp_path / f"started{i}"), str(tmp_path / "go")) for i in range(2)]
    with pc.Pool(2, time_min=5, progress=False) as pool:
        pool.imap(block_until, paths, chunksize=1)
        wait_for(lambda: all(Path(started).exists() for started, _go in paths), timeout=180)
    for started, _go in paths:
        job_id = Path(started).read_text().split()[1]
        assert job_row(wait_for_job(job_id, timeout=120), job_id).state.startswith("CANCELLED")
    assert not (tmp_path / "go").exists()
