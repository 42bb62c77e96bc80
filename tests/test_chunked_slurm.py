"""Chunked maps on the real Slurm: per-item errors, retries that re-pack only the failed
items, and a chunk that runs out of memory retried with more, keeping what it finished.

Each test is a few array tasks; run with ``-s`` to see what sacct recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import paracore as pc
from paracore.core.failures import FailureClass
from paracore.shell.chunked_map import ItemHandles
from tests.slurm_helpers import job_row, wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def square_or_raise(x: int) -> int:
    if x in (2, 9):
        raise KeyError(f"no square for {x}")
    return x * x


def runs_logged(args: tuple[str, int]) -> int:
    """Append the item to its log (how often it ran); item 4 needs ~280 MB, item 5 is flaky."""
    folder, x = args
    log = Path(folder) / f"ran-{x}"
    with log.open("a") as out:
        out.write("ran\n")
    if x == 4:
        block = bytearray(280 * 1024 * 1024)
        return len(block) // 2**20
    if x == 5 and log.read_text().count("ran") == 1:
        raise ConnectionError("flaky on its first run")
    return x


def times_run(folder: Path, x: int) -> int:
    return (folder / f"ran-{x}").read_text().count("ran")


def test_failing_items_fail_alone_in_chunks_of_one_array() -> None:
    handles = pc.map_func(square_or_raise, range(12), chunk_size=4, time_min=2)
    assert isinstance(handles, ItemHandles)
    out = pc.gather(handles, timeout=300, return_exceptions=True)
    for x, value in enumerate(out):
        if x in (2, 9):
            assert isinstance(value, pc.RemoteError) and value.exc_type == "builtins.KeyError"
            assert isinstance(value.__cause__, KeyError)
        else:
            assert value == x * x
    jobs = {h.job_id for h in handles}
    assert len(jobs) == 3 and len({j.split("_")[0] for j in jobs}) == 1  # one array, 3 tasks
    for job_id in jobs:
        assert job_row(wait_for_job(job_id, timeout=120), job_id).state == "COMPLETED"


def test_retries_re_pack_the_failed_items_and_an_out_of_memory_chunk_gets_more(
    tmp_path: Path,
) -> None:
    """Item 5 raises once: only it runs again, in a new wave. Item 4 exhausts 256M: its chunk
    is retried with 384M and skips item 3, which its first attempt finished."""
    folder = tmp_path / "runs"
    folder.mkdir()
    handles = pc.map_func(
        runs_logged, [(str(folder), x) for x in range(9)], chunk_size=3, mem_gb="256M",
        time_min=3, retries=1, retry_backoff_s=0,
    )  # fmt: skip
    assert pc.gather(handles, timeout=600) == [0, 1, 2, 3, 280, 5, 6, 7, 8]
    oom_chunk = handles[4].chunk
    assert [a.failure_class for a in oom_chunk.attempts] == [FailureClass.OUT_OF_MEMORY, None]
    assert [a.resources.mem_mb for a in oom_chunk.attempts] == [256, 384]
    first = job_row(wait_for_job(oom_chunk.attempts[0].job_id, 120), oom_chunk.attempts[0].job_id)
    assert first.state in ("OUT_OF_MEMORY", "FAILED")
    assert times_run(folder, 3) == 1  # finished before the kill: kept, not run again
    assert times_run(folder, 4) == 2
    assert times_run(folder, 5) == 2  # re-packed into a retry wave
    assert handles[5].chunk.job_id not in {h.job_id for h in handles.map.chunks[:3]}
    assert [times_run(folder, x) for x in (0, 1, 2, 6, 7, 8)] == [1] * 6
    assert handles.map.waves == 2
