"""Configuration against the real Slurm: bad input refused before sbatch, profiles applied."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

import paracore as pc
from paracore.core.resolved import resolve_spec
from tests.slurm_helpers import job_row, wait_for_job

pytestmark = pytest.mark.slurm


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory as cwd, with an empty HOME and no config environment variables."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("PARACORE_CONFIG", "PARACORE_CLUSTER", "PARACORE_VALIDATE", "PARACORE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _nothing_submitted(name: str) -> bool:
    """No job with this name reached the scheduler (squeue and sacct both empty)."""
    queued = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True, check=True
    )
    accounted = subprocess.run(
        ["sacct", "-n", "-X", "--name", name, "-S", "now-30minutes", "-o", "jobid"],
        capture_output=True,
        text=True,
        check=True,
    )
    return not queued.stdout.strip() and not accounted.stdout.strip()


def test_unknown_partition_from_the_project_file_is_refused(project: Path) -> None:
    """A partition that does not exist fails before sbatch, naming file:line and the real ones."""
    path = project / "paracore.yaml"
    path.write_text("active_cluster: hpc\nclusters:\n  hpc:\n    slurm:\n      partition: gpu\n")
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(pc.SpecError) as info:
        pc.map_cmds(["true", "true"], job_name=name)
    assert str(info.value) == (
        f"partition='gpu' (from project file {path}:5): no such partition on this cluster; "
        "partitions are: debug (default), short, long, compute"
    )
    assert _nothing_submitted(name)


def test_walltime_above_max_time_is_refused(project: Path) -> None:
    """time_min above the partition's MaxTime fails with the limit quoted."""
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(pc.SpecError) as info:
        pc.run_cmd("true", partition="short", time_min=10, job_name=name)
    assert str(info.value).startswith(
        "time_min=10 (from call): partition 'short' allows at most 5 minutes (MaxTime=00:05:00)"
    )
    assert _nothing_submitted(name)


def test_too_much_memory_and_too_many_cpus_are_refused(project: Path, slurm_cluster) -> None:
    """Memory above the largest node and cpus above its CPUs fail before sbatch."""
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(pc.SpecError) as info:
        pc.run_cmd("true", partition="short", time_min=2, mem_gb=1024, job_name=name)
    assert str(info.value).startswith(
        f"mem_gb=1024 (from call): the largest node in partition 'short' has "
        f"{slurm_cluster.memory_mb} MB of memory"
    )
    with pytest.raises(pc.SpecError) as info:
        pc.run_cmd("true", partition="short", time_min=2, cpus_per_task=64, job_name=name)
    assert str(info.value) == (
        f"cpus_per_task=64 (from call): the largest node in partition 'short' has "
        f"{slurm_cluster.cpus} CPUs; ask for at most {slurm_cluster.cpus}"
    )
    assert _nothing_submitted(name)


def test_validation_can_be_turned_off(project: Path, monkeypatch) -> None:
    """With PARACORE_VALIDATE=0 the same bad partition reaches sbatch, which refuses it."""
    monkeypatch.setenv("PARACORE_VALIDATE", "0")
    with pytest.raises(pc.SubmissionError, match="invalid partition"):
        pc.run_cmd("true", partition="gpu", time_min=1)


PROFILE = """\
active_cluster: testcluster
clusters:
  testcluster:
    slurm:
      partition: short
      account: paracore
      cpus_per_task: 2
      mem_gb: 0.5
      time_min: 3
      max_array_parallelism: 1
"""


def _scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def test_a_profile_from_paracore_yaml_reaches_the_scheduler(project: Path) -> None:
    """partition, account, cpus, memory and time from the file are what Slurm records."""
    (project / "paracore.yaml").write_text(PROFILE)
    handle = pc.run_cmd("echo ok", job_name=f"cfg-{uuid.uuid4().hex[:8]}")
    record = _scontrol_job(handle.job_id)
    assert record["Partition"] == "short"
    assert record["Account"] == "paracore"
    assert record["NumCPUs"] == "2"
    assert record["MinMemoryNode"] == "512M"
    assert record["TimeLimit"] == "00:03:00"
    assert handle.result(timeout=300).stdout.strip() == "ok"
    row = job_row(wait_for_job(handle.job_id, timeout=120), handle.job_id)
    assert (row.partition, row.state) == ("short", "COMPLETED")


def test_auto_parallelism_takes_idle_cores_and_respects_the_cap(
    project: Path, slurm_cluster
) -> None:
    """array_parallelism='auto' throttles to the idle cores (sinfo) and never above the cap."""
    (project / "paracore.yaml").write_text(
        PROFILE.replace("cpus_per_task: 2", "cpus_per_task: 1").replace(
            "max_array_parallelism: 1", "max_array_parallelism: 200"
        )
    )
    handles = pc.map_cmds(["true"] * 3, array_parallelism="auto", job_name="cfg-auto")
    throttle = int(_scontrol_job(handles[0].job_id.split("_")[0])["ArrayTaskThrottle"])
    assert 1 <= throttle <= slurm_cluster.cpus  # idle cores of 'short' at submit time
    pc.gather(handles, timeout=300)
    capped = pc.with_resources(
        pc.JobSpec.command("true"),
        partition="short",
        time=2,
        array_parallelism="auto",
        max_array_parallelism=1,
    )
    spec = pc.Session().backend("slurm").check(resolve_spec(capped), origins=None, validate=None)
    assert spec.resources.array_parallelism == 1
