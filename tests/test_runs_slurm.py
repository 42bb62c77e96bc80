"""Durable runs on the real Slurm: a killed submitter, carried-on retries, two submitters at
once, and the runs commands against real jobs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paracore.cli import main
from tests.slurm_helpers import jobs_named, latest_job_id, wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, signal, sys, time
from pathlib import Path
import paracore as pc

MARKERS = sys.argv[3]  # pickled with flaky: the job has its own argv

def square(x):
    time.sleep(2)
    return x * x

def flaky(x):
    marker = Path(MARKERS) / f"tried-{x}"
    if x == 1 and not marker.exists():
        marker.touch()
        raise RuntimeError("first try fails")
    return x * 10

fn = {"square": square, "flaky": flaky}[sys.argv[1]]
handles = pc.map_func(fn, range(3), time_min=5, mem_gb=0.25, retries=2, retry_backoff_s=1,
                      job_name=f"durable-{sys.argv[1]}-{sys.argv[4]}")
print("jobs", " ".join(h.job_id for h in handles), flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
print("results", pc.gather(handles, timeout=600), flush=True)
print("attempts", [len(h.attempts) for h in handles], flush=True)
"""


def _tag() -> str:
    """A name part no other test (nor an earlier run of this one) uses."""
    return f"{os.getpid()}-{time.time_ns() % 10**9}"


def _run(kind: str, mode: str, cwd: Path, tag: str) -> subprocess.CompletedProcess[str]:
    script = cwd / "durable.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.run(
        [sys.executable, str(script), kind, mode, str(cwd), tag],
        capture_output=True, text=True, cwd=cwd, timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def _jobs_named(name: str, since: int, tasks: int) -> list[str]:
    """The job (array) ids named ``name`` above ``since``, once sacct knows ``tasks`` finished
    tasks of them (slurmdbd records a job a little after it ended)."""
    rows = jobs_named(name, since, count=tasks)
    return sorted({row.job_id.split("_")[0] for row in rows})


def _cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_a_killed_submitter_is_re_attached_with_no_new_jobs(slurm_workdir: Path) -> None:
    """SIGKILL right after submitting; the identical script returns the results in order,
    and sacct shows no job beyond the first array."""
    tag, since = _tag(), latest_job_id()
    first = _run("square", "die", slurm_workdir, tag)
    assert first.returncode == -9, first.stderr
    jobs = _lines(first)["jobs"].split()
    second = _run("square", "wait", slurm_workdir, tag)
    assert second.returncode == 0, second.stderr
    out = _lines(second)
    assert out["jobs"].split() == jobs
    assert out["results"] == "[0, 1, 4]"
    assert _jobs_named(f"durable-square-{tag}", since, 3) == [jobs[0].split("_")[0]]


def test_retries_carry_on_in_the_next_process(slurm_workdir: Path) -> None:
    """A task failing after its submitter died is retried by the rerun: attempts continue."""
    tag, since = _tag(), latest_job_id()
    first = _run("flaky", "die", slurm_workdir, tag)
    assert first.returncode == -9, first.stderr
    array = _lines(first)["jobs"].split()[0].split("_")[0]
    second = _run("flaky", "wait", slurm_workdir, tag)
    assert second.returncode == 0, second.stderr
    out = _lines(second)
    assert out["results"] == "[0, 10, 20]"
    assert out["attempts"] == "[1, 2, 1]"
    (run,) = json.loads(_cli("ls", "--json"))
    status = json.loads(_cli("status", run["id"], "--json"))
    task = [a for a in status["attempts"] if a["task"] == 1]
    assert [(a["attempt"], a["state"]) for a in task] == [(1, "FAILED"), (2, "COMPLETED")]
    assert task[0]["job_id"] == f"{array}_1" and task[1]["job_id"].split("_")[0] != array
    assert len(_jobs_named(f"durable-flaky-{tag}", since, 4)) == 2  # the array, one retry


def test_two_submitters_at_the_same_moment_make_one_submission(slurm_workdir: Path) -> None:
    """Two processes calling the identical map at once: one array; both get the results."""
    script = slurm_workdir / "durable.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    since = latest_job_id()
    command = [sys.executable, str(script), "square", "wait", str(slurm_workdir), _tag()]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=slurm_workdir, env=env)
        for _ in range(2)
    ]
    outs = [dict(line.split(" ", 1) for line in p.communicate(timeout=600)[0].splitlines())
            for p in procs]  # fmt: skip
    assert all(p.returncode == 0 for p in procs)
    assert outs[0]["jobs"] == outs[1]["jobs"]
    assert outs[0]["results"] == outs[1]["results"] == "[0, 1, 4]"
    assert len(_jobs_named(f"durable-square-{command[-1]}", since, 3)) == 1


def test_the_runs_commands_on_real_jobs(slurm_workdir: Path) -> None:
    """ls, status, logs, manifest (with sacct's figures), cancel and rm against real runs."""
    done = _run("square", "wait", slurm_workdir, _tag())
    assert done.returncode == 0, done.stderr
    jobs = _lines(done)["jobs"].split()
    for job in jobs:
        wait_for_job(job, timeout=120)
    (run,) = json.loads(_cli("ls", "--json"))
    assert (run["done"], run["tasks"], run["collected"]) == (3, 3, True)
    manifest = [json.loads(line) for line in _cli("manifest", run["id"]).splitlines()]
    assert [m["job_id"] for m in manifest] == jobs
    assert all(m["state"] == "COMPLETED" and m["elapsed_s"] >= 2 for m in manifest)
    assert all(m["max_rss_kb"] and m["nodes"] and m["start"] and m["end"] for m in manifest)
    assert "Job completed successfully" in _cli("logs", run["id"], "2")

    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import paracore as pc; "
         "pc.run_cmd('sleep 300', job_name='to-cancel', time_min=10, mem_gb=0.25); "
         "print('submitted', flush=True)"],
        stdout=subprocess.PIPE, text=True, cwd=slurm_workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert sleeper.communicate(timeout=120)[0].strip() == "submitted"
    listed = {r["name"]: r for r in json.loads(_cli("ls", "--json"))}
    target = listed["to-cancel"]["id"]
    out = io.StringIO()
    assert main(["rm", target], out=out) == 1 and "still in flight" in out.getvalue()
    assert "cancelled 1 job(s)" in _cli("cancel", target)
    status = json.loads(_cli("status", target, "--json"))
    job = status["tasks"][0]["job_id"]
    deadline = time.monotonic() + 120
    while (
        "CANCELLED"
        not in subprocess.run(
            ["sacct", "-n", "-X", "-o", "State", "-j", job], capture_output=True, text=True
        ).stdout
    ):
        assert time.monotonic() < deadline
        time.sleep(1)
    assert "removed its record" in _cli("rm", target)
    assert [r["id"] for r in json.loads(_cli("ls", "--json"))] == [run["id"]]
