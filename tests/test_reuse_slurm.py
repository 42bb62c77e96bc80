"""What an identical submission re-uses, on the real Slurm: a collected chunked map runs again
with new jobs, a killed submitter's rerun says it re-attached, and two processes following
one run resubmit a failed task once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import paracore as pc
from paracore.shell.session import current_session
from tests.slurm_helpers import jobs_named, latest_job_id

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

REPO = Path(__file__).resolve().parents[1]


def offset_plus(pair: tuple[str, int]) -> int:
    """The item plus the number in ``<folder>/offset`` at the moment it runs."""
    folder, x = pair
    return x + int((Path(folder) / "offset").read_text())


def test_a_collected_chunked_map_runs_again_with_new_jobs(tmp_path: Path) -> None:
    """Once its items were gathered, the identical map is run again: new array, new values
    (before: the new array skipped every item and the old values came back)."""
    (tmp_path / "offset").write_text("0")
    items = [(str(tmp_path), x) for x in range(6)]
    first = pc.map_func(offset_plus, items, chunk_size=3, time_min=2, mem_gb=0.25)
    assert pc.gather(first, timeout=300) == list(range(6))
    (tmp_path / "offset").write_text("100")
    second = pc.map_func(offset_plus, items, chunk_size=3, time_min=2, mem_gb=0.25)
    assert {c.job_id for c in second.map.chunks}.isdisjoint(c.job_id for c in first.map.chunks)
    assert pc.gather(second, timeout=300) == [100 + x for x in range(6)]


SCRIPT = """
import os, signal, sys
from pathlib import Path
import paracore as pc

MARKERS = sys.argv[2]  # pickled with flaky: the job has its own argv

def flaky(x):
    marker = Path(MARKERS) / f"tried-{x}"
    if x == 1 and not marker.exists():
        marker.touch()
        raise RuntimeError("first try fails")
    return x * 10

handles = pc.map_func(flaky, range(3), chunk_size=1, time_min=2, mem_gb=0.25, retries=2,
                      retry_backoff_s=1, job_name=f"follow-{sys.argv[3]}")
print("jobs", " ".join(h.job_id for h in handles), flush=True)
if sys.argv[1] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
print("results", pc.gather(handles, timeout=600), flush=True)
print("attempts", [len(h.attempts) for h in handles], flush=True)
"""


def _start(mode: str, cwd: Path, tag: str) -> subprocess.Popen[str]:
    script = cwd / "follow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(cwd), tag],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_a_killed_submitters_rerun_and_a_second_follower_retry_each_failed_task_once(
    slurm_workdir: Path,
) -> None:
    """The submitter dies; two reruns at once re-attach (each says so in one line on stderr,
    naming the run), both get the results, and the failed task was resubmitted once."""
    tag, since = f"{os.getpid()}-{time.time_ns() % 10**9}", latest_job_id()
    first = _start("die", slurm_workdir, tag)
    out, err = first.communicate(timeout=300)
    assert first.returncode == -9, err
    (run,) = current_session().store().runs()
    followers = [_start("wait", slurm_workdir, tag) for _ in range(2)]
    done = [p.communicate(timeout=600) for p in followers]
    for proc, (stdout, stderr) in zip(followers, done, strict=True):
        assert proc.returncode == 0, stderr
        lines = dict(line.split(" ", 1) for line in stdout.splitlines())
        assert lines["jobs"] == out.split(" ", 1)[1].strip()
        assert lines["results"] == "[0, 10, 20]"
        (announced,) = stderr.splitlines()
        assert run.id in announced and "resume='never'" in announced
    attempts = current_session().store().attempts(run.id)
    assert [(a.idx, a.n) for a in attempts] == [(0, 1), (1, 1), (1, 2), (2, 1)]
    arrays = {row.job_id.split("_")[0] for row in jobs_named(f"follow-{tag}", since, count=4)}
    assert len(arrays) == 2  # the first array and ONE resubmission of the failed task
