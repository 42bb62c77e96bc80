"""Commands that start job steps (``srun``, as MPI launchers do) run as they would in a plain
sbatch script: paracore runs the payload in the batch step, so no wrapper step holds the
allocation's CPUs and memory (submitit's ``srun`` wrapper made them wait until the time limit).
"""

from __future__ import annotations

import subprocess

import pytest

import paracore as pc

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

SMALL = {"time_min": 2, "mem_gb": 0.25, "resume": "never"}


def step_hostname(_item: int) -> str:
    """A Python item that starts a job step of its own."""
    done = subprocess.run(["srun", "hostname"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_srun_inside_a_command_starts_a_step() -> None:
    """`srun hostname` in a command runs a step on the job's node and the job completes."""
    result = pc.run_cmd("srun hostname && srun -n 1 -c 1 echo second", **SMALL).result(timeout=100)
    lines = result.stdout.split()
    assert lines[-1] == "second" and len(lines) == 2


def test_a_two_task_srun_runs_two_tasks() -> None:
    """With two tasks allocated (extra ntasks=2), `srun -n 2` runs one copy per task."""
    command = "srun -n 2 bash -c 'echo task $SLURM_PROCID'"
    result = pc.run_cmd(command, extra={"ntasks": 2}, **SMALL).result(timeout=100)
    assert sorted(result.stdout.split("\n")[:2]) == ["task 0", "task 1"]


def test_map_items_start_steps_of_their_own() -> None:
    """Items of a chunked map, commands and Python calls alike, start nested steps."""
    commands = pc.map_cmds([f"srun echo item{i}" for i in range(4)], chunk_size=2, **SMALL)
    assert [h.result(timeout=100).stdout.strip() for h in commands] == [
        f"item{i}" for i in range(4)
    ]
    calls = pc.map_func(step_hostname, range(2), chunk_size=2, **SMALL)
    assert len({h.result(timeout=100) for h in calls}) == 1
