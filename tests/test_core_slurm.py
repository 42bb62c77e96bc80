"""The core API against the real Slurm: jobs, arrays, throttling, results, failures, env, names."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from toolz import pipe

import paracore
from paracore import (
    CommandFailedError,
    JobSpec,
    JobTimeoutError,
    RemoteError,
    gather,
    map_cmds,
    map_func,
    run_cmd,
    submit,
    with_backend,
    with_log_dir,
    with_name,
    with_resources,
)
from tests.slurm_helpers import QUICK, job_row, wait_for_array, wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def square(x: int) -> int:
    """A tiny pure function for arrays."""
    return x * x


def explode(message: str) -> None:
    """Fail with a recognisable exception type and message."""
    raise ValueError(message)


def read_env(names: list[str]) -> dict[str, str | None]:
    """Report the given variables as the job sees them."""
    return {n: os.environ.get(n) for n in names}


def test_single_command_runs_and_is_accounted() -> None:
    """A command runs as one Slurm job; its output, id and name agree with sacct."""
    job = run_cmd('echo "job=$SLURM_JOB_ID"', job_name="single-cmd", **QUICK)
    result = job.result(timeout=300)
    assert result.returncode == 0
    assert result.stdout.strip() == f"job={job.job_id}"
    row = job_row(wait_for_job(job.job_id, timeout=120), job.job_id)
    assert row.state == "COMPLETED"
    assert row.job_name == "single-cmd" == job.job_name


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_array_is_one_job_and_throttled() -> None:
    """Six commands become ONE array and sacct never shows more than 2 running at once."""
    jobs = map_cmds(
        [f"sleep 3; echo {i}" for i in range(6)], array_parallelism=2, job_name="throttle", **QUICK
    )
    array_ids = {j.job_id.split("_")[0] for j in jobs}
    assert len(array_ids) == 1
    assert [j.array_index for j in jobs] == list(range(6))
    assert [r.stdout.strip() for r in gather(jobs, timeout=600)] == [str(i) for i in range(6)]
    (array_id,) = array_ids
    rows = wait_for_array(array_id, 6)
    spans = [(_timestamp(r.start), _timestamp(r.end)) for r in rows]
    assert len(spans) == 6
    most_at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert 1 <= most_at_once <= 2


def test_map_func_returns_results_in_input_order() -> None:
    """map_func over items returns each function value at its item's position."""
    items = [7, 3, 11, 0, 5]
    jobs = map_func(square, items, **QUICK)
    assert gather(jobs, timeout=300) == [x * x for x in items]
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1


def test_failing_call_keeps_type_message_and_logs() -> None:
    """A Python exception in the job surfaces with its type, message and log paths."""
    (job,) = map_func(explode, ["the reactor is on fire"], **QUICK)
    with pytest.raises(RemoteError) as caught:
        job.result(timeout=300)
    error = caught.value
    assert error.exc_type == "builtins.ValueError"
    assert error.exc_message == "the reactor is on fire"
    assert "ValueError" in str(error) and str(job.stderr_path) in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert Path(job.stderr_path).exists()
    assert job_row(wait_for_job(job.job_id, timeout=120), job.job_id).state == "FAILED"


def test_failing_command_carries_returncode_and_stderr() -> None:
    """A non-zero exit raises CommandFailedError with the code and the tail of stderr."""
    job = run_cmd("echo starting; echo 'disk quota exceeded' >&2; exit 3", **QUICK)
    with pytest.raises(CommandFailedError) as caught:
        job.result(timeout=300)
    assert caught.value.returncode == 3
    assert "disk quota exceeded" in caught.value.stderr_tail
    assert job_row(wait_for_job(job.job_id, timeout=120), job.job_id).state == "FAILED"


def test_environment_policies_inside_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inherit, overlay, replace and env_setup behave as documented, keeping SLURM_* vars."""
    monkeypatch.setenv("PARACORE_FROM_SUBMITTER", "yes")
    names = ["PARACORE_FROM_SUBMITTER", "APP_MODE", "SETUP_DONE", "SLURM_JOB_ID", "HOME"]
    inherit = map_func(read_env, [names], **QUICK)[0]
    overlay = map_func(read_env, [names], env={"APP_MODE": "prod"}, **QUICK)[0]
    replace = map_func(read_env, [names], env={"APP_MODE": "x"}, env_merge="replace", **QUICK)[0]
    setup = map_func(read_env, [names], env_setup="export SETUP_DONE=1", **QUICK)[0]
    got = dict(
        zip(
            ["inherit", "overlay", "replace", "setup"],
            gather([inherit, overlay, replace, setup], timeout=300),
            strict=True,
        )
    )
    assert got["inherit"]["PARACORE_FROM_SUBMITTER"] == "yes"
    assert got["inherit"]["APP_MODE"] is None
    assert got["overlay"]["APP_MODE"] == "prod"
    assert got["overlay"]["PARACORE_FROM_SUBMITTER"] == "yes"
    assert got["replace"]["APP_MODE"] == "x"
    assert got["replace"]["PARACORE_FROM_SUBMITTER"] is None
    assert got["replace"]["HOME"] is None
    assert got["setup"]["SETUP_DONE"] == "1"
    for name, handle in zip(
        ("inherit", "overlay", "replace", "setup"), (inherit, overlay, replace, setup), strict=True
    ):
        assert got[name]["SLURM_JOB_ID"] == handle.job_id.split("_")[0], name


def test_command_env_setup_runs_before_the_command() -> None:
    """env_setup's exports are visible to the command; a failing setup fails the task."""
    ok = run_cmd("echo $GREETING", env_setup="export GREETING=hello", **QUICK)
    bad = run_cmd("echo never", env_setup="false", **QUICK)
    assert ok.result(timeout=300).stdout.strip() == "hello"
    with pytest.raises(RemoteError, match="env_setup"):
        bad.result(timeout=300)


def test_slurm_sees_the_name_and_log_paths() -> None:
    """scontrol shows the sanitised job name and the %A_%a log paths of an array task."""
    jobs = map_cmds(
        ["true", "true"], job_name="my analysis/v2", array_parallelism=1, time_min=5, mem_gb=0.25
    )
    assert jobs[0].job_name == "my-analysis-v2"
    shown = subprocess.run(
        ["scontrol", "show", "job", jobs[1].job_id], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(
        word.split("=", 1) for line in shown.splitlines() for word in line.split() if "=" in word
    )
    assert fields["JobName"] == "my-analysis-v2"
    array_id = jobs[1].job_id.split("_")[0]
    assert fields["StdOut"] == jobs[1].stdout_path
    assert Path(jobs[1].stdout_path).name == f"{array_id}_1_0_log.out"
    gather(jobs, timeout=300)
    assert Path(jobs[1].stdout_path).exists()


def test_result_timeout_is_bounded_and_cancel_works() -> None:
    """result(timeout) raises promptly for a long job; cancel() ends it as CANCELLED."""
    job = run_cmd("sleep 300", **QUICK)
    with pytest.raises(JobTimeoutError) as caught:
        job.result(timeout=3)
    assert isinstance(caught.value, TimeoutError)
    job.cancel()
    row = job_row(wait_for_job(job.job_id, timeout=120), job.job_id)
    assert row.state == "CANCELLED"


def test_spec_resources_reach_slurm() -> None:
    """Partition, time, memory and cpus from transforms are what Slurm records."""
    spec = pipe(
        JobSpec.command("true"),
        with_resources(partition="short", time="3m", mem="300M", cpus_per_task=2),
        with_name("resource-check"),
        with_log_dir("logs"),
        with_backend("slurm"),
    )
    handle = submit(spec)
    handle.result(timeout=300)
    row = job_row(wait_for_job(handle.job_id, timeout=120), handle.job_id)
    assert row.partition == "short"
    assert row.timelimit in ("00:03:00", "3:00")
    assert row.req_mem_mb == 300
    shown = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", handle.job_id, "-o", "AllocCPUS"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == ["2"]
    assert Path(handle.stdout_path).is_relative_to(Path("logs").absolute())


def test_failure_of_one_task_keeps_the_others() -> None:
    """In an array where one item fails, gather(return_exceptions=True) keeps every result."""
    jobs = map_cmds(["echo a", "exit 4", "echo c"], **QUICK)
    results = gather(jobs, timeout=300, return_exceptions=True)
    assert results[0].stdout.strip() == "a"
    assert isinstance(results[1], CommandFailedError) and results[1].returncode == 4
    assert results[2].stdout.strip() == "c"


def test_unpicklable_argument_fails_before_submission(tmp_path: Path) -> None:
    """An argument that cannot be pickled is refused before any job or log exists."""
    import threading

    with pytest.raises(paracore.SpecError, match="args"):
        map_func(square, [threading.Lock()], **QUICK)
    assert not (tmp_path / "paracore_logs").exists()
