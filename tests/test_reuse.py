"""What an identical submission re-uses: ``resume="cache"`` re-uses successes only, and
notices that a function's code changed."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import paracore as pc

REPO = Path(__file__).resolve().parents[1]


def options(tmp_path: Path, **extra: object) -> dict[str, Any]:
    return {"backend": "local", "config": {"log_dir": str(tmp_path / "logs")}, **extra}


# ---------------------------------------------------------------- resume="cache"


def test_cache_never_re_uses_a_failed_job(tmp_path: Path) -> None:
    """cache: a collected failure is not replayed; the job runs again."""
    marker = tmp_path / "tried"
    cmd = f"test -e {marker} || {{ touch {marker}; exit 3; }}"
    first = pc.run_cmd(cmd, resume="cache", **options(tmp_path))
    assert first.exception(timeout=60) is not None
    again = pc.run_cmd(cmd, resume="cache", **options(tmp_path))
    assert again.job_id != first.job_id
    assert again.result(timeout=60).returncode == 0


def _module(folder: Path, body: str) -> ModuleType:
    """The module ``h19_changing`` in ``folder`` with ``body`` as its source (re)loaded."""
    path = folder / "h19_changing.py"
    path.write_text(textwrap.dedent(body))
    os.utime(path, ns=(1, len(body)))  # a new size and mtime: no stale bytecode is used
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    module = sys.modules.get("h19_changing")
    return importlib.reload(module) if module else importlib.import_module("h19_changing")


@pytest.fixture
def changing(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "mod"
    folder.mkdir()
    yield folder
    sys.modules.pop("h19_changing", None)
    sys.path.remove(str(folder))


@pytest.mark.parametrize("how", ["job", "map", "chunked"])
def test_cache_runs_again_once_the_functions_code_changed(
    tmp_path: Path, changing: Path, how: str
) -> None:
    """A module-level function is pickled by name: its changed source still changes the key
    (before: cache returned the old function's results)."""

    def run(module: ModuleType) -> list[Any]:
        fn = module.value
        if how == "job":
            spec = pc.with_log_dir(str(tmp_path / "logs"), pc.JobSpec.call(fn, 1))
            return [pc.submit(pc.with_backend("local", spec), resume="cache").result(timeout=60)]
        size = 1 if how == "map" else 2
        handles = pc.map_func(fn, [1, 2], chunk_size=size, resume="cache", **options(tmp_path))
        return pc.gather(handles, timeout=60)

    old = run(_module(changing, "def value(x):\n    return x\n"))
    assert run(_module(changing, "def value(x):\n    return x * 1000\n")) != old
    assert run(_module(changing, "def value(x):\n    return x * 1000\n")) == [
        1000 * x for x in ([1] if how == "job" else [1, 2])
    ]
