"""Integration tests against a real Slurm cluster (scripts/local-slurm; docs/testing.md).

They check the behaviour paracore relies on: sacct records state, exit code, elapsed time
and peak memory per job, and tells a memory kill and a time-limit kill apart from an
ordinary failure. Each test only waits on its own job, so they run fine under xdist.
"""

from __future__ import annotations

import pytest

from tests.slurm_helpers import job_row, read_text, sacct_rows, sbatch, step_row, wait_for_job

pytestmark = pytest.mark.slurm

ALLOC_100M_AND_HOLD = (
    'python3 -c "b=bytearray(100*1024*1024); import time; '
    '[b.__setitem__(i,1) for i in range(0,len(b),4096)]; time.sleep(3)"\n'
)


def test_cluster_info(slurm_cluster):
    info = slurm_cluster
    assert info.cpus >= 1
    assert info.memory_mb > 0
    assert info.default_partition in info.partitions
    assert info.enforcement in {"cgroup", "overmemorykill"}, (
        f"{info.enforcement}: --mem is not enforced on this cluster"
    )


def test_completed_job_reports_elapsed_and_maxrss(tmp_path):
    out = tmp_path / "out.txt"
    job = sbatch(
        ALLOC_100M_AND_HOLD + "echo done\n",
        ["--mem=500M", "--time=5", "--job-name=alloc100", f"--output={out}"],
        directory=tmp_path,
    )
    rows = wait_for_job(job, timeout=300)
    main, batch = job_row(rows, job), step_row(rows, job, "batch")
    assert main.state == "COMPLETED", rows
    assert main.exit_code == "0:0"
    assert main.job_name == "alloc100"
    assert main.req_mem_mb == pytest.approx(500)
    assert main.elapsed_s is not None and main.elapsed_s >= 3, main.elapsed
    assert main.start not in {"", "Unknown"} and main.end not in {"", "Unknown"}
    assert main.node_list and main.partition
    # peak memory is sampled (JobAcctGatherFrequency=1) on the step rows
    assert batch.max_rss_mb is not None and batch.max_rss_mb >= 80, batch.max_rss
    assert read_text(out).strip().endswith("done")


def test_job_over_mem_is_killed_and_reported_as_such(tmp_path, slurm_cluster, record_property):
    err = tmp_path / "err.txt"
    job = sbatch(
        # touch every page of 300 MB, then linger so a polling (overmemorykill) gather sees it
        'python3 -c "\n'
        "b = bytearray(300 * 1024 * 1024)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        "import time; time.sleep(15)\n"
        '"\n',
        ["--mem=50M", "--time=5", "--job-name=oom", f"--error={err}", "--output=/dev/null"],
        directory=tmp_path,
    )
    rows = wait_for_job(job, timeout=300)
    main = job_row(rows, job)
    stderr = read_text(err)
    record_property("oom_state", f"{main.state} {main.exit_code}")
    print(
        f"{slurm_cluster.version}, {slurm_cluster.enforcement}: job over --mem ended "
        f"{main.state} {main.exit_code}"
    )
    if slurm_cluster.enforcement == "cgroup":
        assert main.state == "OUT_OF_MEMORY", (rows, stderr)
        assert main.exit_code == "0:125", rows
        assert "oom-kill" in stderr or "out-of-memory" in stderr, stderr
    else:
        assert main.state == "FAILED", (rows, stderr)
        assert main.exit_code == "0:9", rows
        assert "Exceeded job memory limit" in stderr, stderr
    assert main.state != "COMPLETED"


def test_job_over_time_limit_ends_timeout(tmp_path):
    job = sbatch(
        "sleep 600\n",
        ["--time=1", "--mem=50M", "--job-name=sleeper", "--output=/dev/null"],
        directory=tmp_path,
    )
    # limit 60 s, checked about every 30 s, then KillWait=5
    rows = wait_for_job(job, timeout=400, poll=2.0)
    main = job_row(rows, job)
    assert main.state == "TIMEOUT", rows
    assert main.timelimit == "00:01:00"
    assert main.elapsed_s is not None and 60 <= main.elapsed_s < 300, main.elapsed


def test_ordinary_failure_is_failed_with_exit_code(tmp_path):
    job = sbatch(
        "echo about to fail >&2\nexit 3\n",
        ["--mem=50M", "--time=5", "--job-name=fails", f"--error={tmp_path / 'err.txt'}"],
        directory=tmp_path,
    )
    rows = wait_for_job(job, timeout=300)
    main = job_row(rows, job)
    assert main.state == "FAILED", rows
    assert main.exit_code == "3:0", rows
    assert "about to fail" in read_text(tmp_path / "err.txt")


def test_sacct_rows_of_unknown_job_is_empty():
    # a job id that does not exist (yet): no rows, not an error
    assert sacct_rows("999999999") == []
