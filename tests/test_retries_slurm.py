"""Retries on the real Slurm: failure classes, escalation, array regrouping, dependencies.

Each test is a handful of short real jobs. Run with ``-s`` to see, for every attempt, what
sacct recorded (id, state, exit code, requested memory and time).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from toolz import pipe

from paracore import (
    CommandFailedError,
    DependencyError,
    JobFailedError,
    JobSpec,
    gather,
    map_func,
    run_cmd,
    submit,
    with_name,
    with_resources,
    with_retries,
)
from paracore.core.failures import FailureClass
from tests.slurm_helpers import QUICK, job_row, wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def report(text: str) -> None:
    """Print (visible with -s without xdist) and append to $PARACORE_TEST_REPORT if set."""
    print(text)
    path = os.environ.get("PARACORE_TEST_REPORT")
    if path:
        with open(path, "a") as handle:
            handle.write(text + "\n")


def show_attempts(title: str, job_ids: list[str]) -> list:
    """Report and return sacct's job rows (state, exit, ReqMem, Timelimit) for the attempts."""
    rows = []
    lines = [f"== {title}"]
    for job_id in job_ids:
        row = job_row(wait_for_job(job_id, timeout=180), job_id)
        rows.append(row)
        lines.append(
            f"   {row.job_id:>10} {row.job_name:<22} {row.state_raw:<18} exit {row.exit_code:<6}"
            f" ReqMem {row.req_mem:<7} Timelimit {row.timelimit:<9} elapsed {row.elapsed}"
        )
    report("\n".join(lines))
    return rows


def flaky(marker: str) -> str:
    """Fail the first time (the marker file does not exist yet), succeed afterwards."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError(f"flaky failure for {path.name}")
    return f"ok {path.name}"


def element(args: tuple[int, str]) -> int:
    """Square ``i``; elements whose marker file is named fail on their first run."""
    i, marker = args
    if marker:
        flaky(marker)
    return i * i


def test_out_of_memory_escalates_and_succeeds() -> None:
    """A task over 256M ends out of memory, is retried with 1.5x memory, and succeeds."""
    cmd = "python3 -c \"b = bytearray(300 * 1024 * 1024); print('allocated', len(b))\""
    job = run_cmd(
        cmd, job_name="retry-oom", mem_gb="256M", time_min=5, retries=2, retry_backoff_s=0
    )
    result = job.result(timeout=600)
    assert "allocated" in result.stdout
    attempts = job.attempts
    assert [a.failure_class for a in attempts] == [FailureClass.OUT_OF_MEMORY, None]
    assert [a.resources.mem_mb for a in attempts] == [256, 384]
    rows = show_attempts("out of memory -> escalated", [a.job_id for a in attempts])
    assert rows[0].state in ("OUT_OF_MEMORY", "FAILED")
    assert rows[1].state == "COMPLETED"
    assert rows[1].req_mem_mb == pytest.approx(384)


def test_timeout_escalates_walltime_and_succeeds() -> None:
    """A 100 s task with a 1 min limit times out, gets 2 min on the retry, and succeeds.

    Slurm enforces limits on a ~30 s sweep plus KillWait, so a 1 min job dies 60 to ~95 s in:
    100 s of work always outlives the first limit and always fits the second.
    """
    job = run_cmd(
        "sleep 100; echo finished",
        job_name="retry-timeout",
        time_min=1,
        mem_gb=0.25,
        retries=1,
        retry_backoff_s=0,
    )
    result = job.result(timeout=900)
    assert result.stdout.strip() == "finished"
    attempts = job.attempts
    assert [a.failure_class for a in attempts] == [FailureClass.TIMEOUT, None]
    assert [a.resources.time_min for a in attempts] == [1, 2]
    rows = show_attempts("timeout -> more walltime", [a.job_id for a in attempts])
    assert [r.state for r in rows] == ["TIMEOUT", "COMPLETED"]
    assert [r.timelimit for r in rows] == ["00:01:00", "00:02:00"]


def test_flaky_call_succeeds_on_retry(tmp_path: Path) -> None:
    """A call that fails only on its first attempt succeeds on the retry (retries=1)."""
    marker = tmp_path / "flaky-single"
    (job,) = map_func(
        flaky, [str(marker)], job_name="retry-flaky", retries=1, retry_backoff_s=0, **QUICK
    )
    assert job.result(timeout=300) == "ok flaky-single"
    assert [a.failure_class for a in job.attempts] == [FailureClass.USER_ERROR, None]
    rows = show_attempts("flaky user error -> retried", [a.job_id for a in job.attempts])
    assert [r.state for r in rows] == ["FAILED", "COMPLETED"]


def test_array_resubmits_only_failed_elements_as_one_array(tmp_path: Path) -> None:
    """Of 10 elements, 2 fail once: only they are resubmitted, together, and all 10 come back."""
    items = [(i, str(tmp_path / f"m{i}") if i in (3, 7) else "") for i in range(10)]
    jobs = map_func(
        element,
        items,
        job_name="retry-array",
        retries=1,
        retry_backoff_s=15,  # elements failing within the backoff are resubmitted together
        **QUICK,
    )
    assert gather(jobs, timeout=900) == [i * i for i in range(10)]
    group = jobs[0].group
    assert group is not None and all(j.group is group for j in jobs)
    assert group.rounds == [(3, 7)]
    first_array = {a.job_id.split("_")[0] for j in jobs for a in j.attempts[:1]}
    assert len(first_array) == 1
    retried = [j for j in jobs if len(j.attempts) == 2]
    assert [jobs.index(j) for j in retried] == [3, 7]
    second = {j.attempts[1].job_id.split("_")[0] for j in retried}
    assert len(second) == 1 and second != first_array  # one new array of 2
    assert sorted(j.attempts[1].job_id for j in retried) == [f"{min(second)}_0", f"{min(second)}_1"]
    show_attempts(
        "array of 10, elements 3 and 7 failed once",
        [a.job_id for j in retried for a in j.attempts],
    )


def test_permanent_user_error_not_retried_or_retried_exactly_n() -> None:
    """With user_errors=False a failing command runs once; with retries=2 exactly 3 times."""
    spec = pipe(
        JobSpec.command("echo doomed >&2; exit 3"),
        with_resources(**QUICK),
        with_name("retry-permanent"),
        with_retries(2, backoff_s=0, user_errors=False),
    )
    once = submit(spec)
    thrice = run_cmd(
        "echo doomed >&2; exit 3", job_name="retry-3x", retries=2, retry_backoff_s=0, **QUICK
    )
    with pytest.raises(CommandFailedError) as info:
        once.result(timeout=300)
    assert len(info.value.attempts) == 1
    assert "user_error is not retried" in str(info.value)
    with pytest.raises(CommandFailedError) as info3:
        thrice.result(timeout=600)
    error = info3.value
    assert len(error.attempts) == 3
    assert all(a.failure_class is FailureClass.USER_ERROR for a in error.attempts)
    message = str(error)
    assert "after 3 attempts" in message and "doomed" in message
    for attempt in error.attempts:
        assert attempt.job_id in message and attempt.stderr_path in message
    show_attempts("permanent user error, not retried", [once.job_id])
    show_attempts("permanent user error, retries=2", [a.job_id for a in error.attempts])


def test_scancel_is_never_retried() -> None:
    """A job cancelled with scancel by a person ends CANCELLED and is not resubmitted."""
    job = run_cmd("sleep 300", job_name="retry-scancel", retries=3, retry_backoff_s=0, **QUICK)
    deadline = time.monotonic() + 240
    while job.state != "RUNNING" and time.monotonic() < deadline:
        job.done()
        time.sleep(1)
    subprocess.run(["scancel", job.job_id], check=True)
    with pytest.raises(JobFailedError) as info:
        job.result(timeout=240)
    assert info.value.failure_class == "cancelled"
    assert len(info.value.attempts) == 1
    rows = show_attempts("scancel by a person", [job.job_id])
    assert rows[0].state == "CANCELLED" and rows[0].state_raw.startswith("CANCELLED by")


def test_child_of_failed_parent_raises_dependency_error_promptly() -> None:
    """Waiting on a child whose after_ok parent failed raises DependencyError, no hang."""
    parent = run_cmd("sleep 2; exit 1", job_name="chain-parent", **QUICK)
    child_spec = pipe(
        JobSpec.command("echo child ran"), with_resources(**QUICK), with_name("chain-child")
    )
    child = submit(child_spec, after_ok=[parent])
    start = time.monotonic()
    with pytest.raises(DependencyError) as info:
        child.result(timeout=600)
    waited = time.monotonic() - start
    assert parent.job_id in str(info.value)
    with pytest.raises(CommandFailedError):
        parent.result(timeout=0)
    rows = show_attempts("chain: parent fails", [parent.job_id, child.job_id])
    report(f"   child raised DependencyError {waited:.1f} s after waiting began")
    assert rows[0].state == "FAILED"
    assert rows[1].state == "CANCELLED"  # by the controller (--kill-on-invalid-dep=yes)
    assert waited < 120


def test_polling_an_array_of_100_is_batched() -> None:
    """Waiting on 100 tasks makes one sacct per interval for all, not one per task."""
    spec = pipe(JobSpec.call(abs, 0), with_resources(**QUICK), with_name("poll-100"))
    from paracore.core.spec import Call
    from paracore.shell.session import Session, use_session
    from paracore.shell.submit import submit_map

    with use_session(Session()) as session:
        poller = session.backend("slurm").poller
        start = time.monotonic()
        jobs = submit_map(spec, [Call(abs, (-i,)) for i in range(100)])
        results = gather(jobs, timeout=1200)
        elapsed = time.monotonic() - start
    assert results == list(range(100))
    bound = elapsed / poller.min_interval_s + 3
    report(
        f"== polling 100 tasks: {poller.calls} sacct calls in {elapsed:.0f} s "
        f"(bound {bound:.0f}; one per task per poll would be >= 100)"
    )
    assert poller.calls <= bound
    assert poller.calls < 100


def test_sbatch_that_times_out_after_submitting_creates_no_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch creates the job but reports a timeout: paracore adopts it, submits nothing more."""
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "sbatch-calls"
    (fake_bin / "sbatch").write_text(
        f'#!/bin/bash\necho call >> {calls}\n{real} "$@" > /dev/null\n'
        "echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv' >&2\n"
        "exit 1\n"
    )
    (fake_bin / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    name = f"sbatch-dup-{os.getpid()}-{time.time_ns()}"
    job = run_cmd("echo once", job_name=name, retry_backoff_s=0, **QUICK)
    assert job.result(timeout=300).stdout.strip() == "once"
    assert calls.read_text().count("call") == 1
    wait_for_job(job.job_id, timeout=120)  # sacct has the finished record before we search
    comment = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "Comment", "-j", job.job_id],
        capture_output=True,
        text=True,
    ).stdout.strip()
    named = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-S", "now-1hours", "-o", "JobID", "--name", job.job_name],
        capture_output=True,
        text=True,
    ).stdout.split()
    show_attempts("sbatch timed out after creating the job", [job.job_id])
    report(f"   jobs named {job.job_name}: {named}; comment {comment!r}")
    assert named == [job.job_id]
