"""What an identical submission re-uses: an interrupted run is re-attached, a collected one runs
again (a chunked map with a folder of its own), ``resume="cache"`` re-uses successes only and
notices that a function's code changed, and a re-attach is announced."""

from __future__ import annotations

import importlib
import io
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import paracore as pc
from paracore.cli import main
from paracore.shell.handle import SubmitHandle
from paracore.shell.session import current_session
from paracore.shell.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def offset_plus(pair: tuple[str, int]) -> int:
    """The item plus the number in ``<folder>/offset`` at the moment it runs."""
    folder, x = pair
    return x + int((Path(folder) / "offset").read_text())


def fails_until_marked(pair: tuple[str, int]) -> int:
    """Raise for item 1 until ``<folder>/fixed`` exists (a bug fixed between two runs)."""
    folder, x = pair
    if x == 1 and not (Path(folder) / "fixed").exists():
        raise ValueError("item 1 is not fixed yet")
    return x


def first_chunk_fails_once(pair: tuple[str, int]) -> int:
    """Items 0 and 1 (all of the first chunk of two) raise once each, then succeed."""
    folder, x = pair
    marker = Path(folder) / f"tried-{x}"
    if x < 2 and not marker.exists():
        marker.touch()
        raise OSError(f"transient failure of {x}")
    return x


def options(tmp_path: Path, **extra: object) -> dict[str, Any]:
    return {"backend": "local", "config": {"log_dir": str(tmp_path / "logs")}, **extra}


def _items(tmp_path: Path, count: int = 8) -> list[tuple[str, int]]:
    return [(str(tmp_path), x) for x in range(count)]


def _finished(handles: Sequence[SubmitHandle]) -> None:
    """Wait until every handle's job ended, without handing an outcome to anyone."""
    wait_until(lambda: all(h.done() for h in handles), timeout=120, clock=time.monotonic,
               sleep=time.sleep, poll_s=0.1, max_poll_s=1.0, next_due=lambda: None,
               timed_out=lambda: AssertionError("the chunks did not finish"))  # fmt: skip


def _cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0, out.getvalue()
    return out.getvalue()


# ---------------------------------------------------------------- a collected run runs again


def test_a_collected_chunked_map_runs_again_with_its_own_folder(tmp_path: Path) -> None:
    """auto: once collected, the identical map is run again and its items are computed anew
    (before: new jobs skipped every item and the old results came back)."""
    (tmp_path / "offset").write_text("0")
    first = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    assert pc.gather(first, timeout=120) == list(range(8))
    (tmp_path / "offset").write_text("100")
    second = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    assert second[0].job_id != first[0].job_id
    assert second.map.folder != first.map.folder
    assert pc.gather(second, timeout=120) == [100 + x for x in range(8)]


def test_a_removed_chunked_map_runs_again(tmp_path: Path) -> None:
    """`paracore rm` of a collected map, then the identical map: its items run again."""
    (tmp_path / "offset").write_text("0")
    first = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    pc.gather(first, timeout=120)
    for run in current_session().store().runs():
        _cli("rm", run.id)
    (tmp_path / "offset").write_text("7")
    second = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    assert pc.gather(second, timeout=120) == [7 + x for x in range(8)]


def test_an_uncollected_chunked_map_is_re_attached_and_reads_its_own_results(
    tmp_path: Path,
) -> None:
    """auto: a map nobody collected (its submitter died) is re-attached: same chunks, the
    results its jobs computed, nothing run twice."""
    (tmp_path / "offset").write_text("0")
    first = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    _finished(first.map.chunks)  # but no item's outcome reached the caller
    (tmp_path / "offset").write_text("100")
    again = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    assert [c.job_id for c in again.map.chunks] == [c.job_id for c in first.map.chunks]
    assert again.map.folder == first.map.folder
    assert pc.gather(again, timeout=120) == list(range(8))


def test_a_map_whose_whole_chunk_was_retried_counts_as_collected(tmp_path: Path) -> None:
    """Every item of chunk 0 raised once and succeeded in a retry wave; once gathered, the
    map is collected, so the identical map runs again instead of re-attaching for ever."""
    items = _items(tmp_path, 4)
    first = pc.map_func(first_chunk_fails_once, items, chunk_size=2, retries=1,
                        retry_backoff_s=0, **options(tmp_path))  # fmt: skip
    assert pc.gather(first, timeout=120) == [0, 1, 2, 3]
    assert first.map.waves == 2
    assert all(run.collected is not None for run in current_session().store().runs())
    second = pc.map_func(first_chunk_fails_once, items, chunk_size=2, retries=1,
                         retry_backoff_s=0, **options(tmp_path))  # fmt: skip
    assert second.map.chunks[0].job_id != first.map.chunks[0].job_id


def test_never_gives_a_map_a_folder_and_jobs_of_its_own(tmp_path: Path) -> None:
    """never: new jobs, a new folder, every item computed anew, even while one is in flight."""
    (tmp_path / "offset").write_text("0")
    first = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    fresh = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, resume="never",
                        **options(tmp_path))  # fmt: skip
    assert fresh.map.folder != first.map.folder
    assert {c.job_id for c in fresh.map.chunks}.isdisjoint(c.job_id for c in first.map.chunks)
    assert pc.gather(fresh, timeout=120) == pc.gather(first, timeout=120) == list(range(8))


# ---------------------------------------------------------------- resume="cache"


def test_cache_re_uses_a_collected_chunked_map_that_succeeded(tmp_path: Path) -> None:
    """cache: a collected map whose items all succeeded comes back with no new job."""
    (tmp_path / "offset").write_text("0")
    first = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, **options(tmp_path))
    pc.gather(first, timeout=120)
    (tmp_path / "offset").write_text("100")
    cached = pc.map_func(offset_plus, _items(tmp_path), chunk_size=4, resume="cache",
                         **options(tmp_path))  # fmt: skip
    assert [c.job_id for c in cached.map.chunks] == [c.job_id for c in first.map.chunks]
    assert pc.gather(cached, timeout=120) == list(range(8))


def test_cache_never_re_uses_a_chunked_map_with_a_failed_item(tmp_path: Path) -> None:
    """cache: a collected map in which an item failed is run again (before: the failure came
    back from the cache for ever)."""
    items = _items(tmp_path, 4)
    first = pc.map_func(fails_until_marked, items, chunk_size=2, **options(tmp_path))
    assert isinstance(pc.gather(first, timeout=120, return_exceptions=True)[1], pc.RemoteError)
    (tmp_path / "fixed").touch()
    again = pc.map_func(fails_until_marked, items, chunk_size=2, resume="cache",
                        **options(tmp_path))  # fmt: skip
    assert pc.gather(again, timeout=120) == [0, 1, 2, 3]


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


# ---------------------------------------------------------------- announcing a re-attach


def test_a_re_attach_is_announced_once_with_the_run_and_how_to_submit_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One WARNING on the paracore logger: the run id, its age, its progress, resume='never'."""
    first = pc.map_cmds(["true"] * 3, **options(tmp_path))
    (run,) = current_session().store().runs()
    with caplog.at_level(logging.WARNING, logger="paracore"):
        pc.map_cmds(["true"] * 3, **options(tmp_path))
    (record,) = [r for r in caplog.records if r.name == "paracore"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert run.id in message and "ago" in message and "of 3 tasks" in message
    assert "resume='never'" in message
    pc.gather(first, timeout=60)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paracore"):
        pc.map_cmds(["true"] * 3, **options(tmp_path))  # collected: submitted anew, silently
    assert not [r for r in caplog.records if r.name == "paracore"]


ANNOUNCED = """
import sys
import paracore as pc
handles = pc.map_cmds(["true", "true"], backend="local", config={"log_dir": sys.argv[1]})
if sys.argv[2] == "collect":
    pc.gather(handles, timeout=60)
"""


def test_a_script_in_a_terminal_sees_the_re_attach_on_stderr(tmp_path: Path) -> None:
    """Without any logging set up, the one line reaches stderr (a terminal, a notebook)."""
    script = tmp_path / "announced.py"
    script.write_text(textwrap.dedent(ANNOUNCED))

    def run(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path / "logs"), mode],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip

    assert run("leave").stderr == ""  # a first submission says nothing
    second = run("collect")
    (line,) = second.stderr.splitlines()
    (run_row,) = current_session().store().runs()
    assert run_row.id in line and "resume='never'" in line
    assert run("collect").stderr == ""  # collected: submitted anew, nothing to announce
