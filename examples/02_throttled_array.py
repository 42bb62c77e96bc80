"""Seed example 2: an array over configs, at most `array_parallelism` tasks at once."""

import sys
from pathlib import Path

from myjobs import make_inputs

from paracore import gather
from paracore.api import map_cmds

HERE = Path(__file__).resolve().parent


def main() -> None:
    configs = make_inputs(".", 6)
    cmds = [
        f"{sys.executable} {HERE / 'process_data.py'} {cfg} results/output_{i:03d}.json"
        for i, cfg in enumerate(configs)
    ]
    jobs = map_cmds(
        cmds,
        partition="compute",
        array_parallelism=2,
        job_name="batch-process",
        time_min=10,
        mem_gb=1,
        retries=1,
    )
    print(f"one array: {sorted({j.job_id.split('_')[0] for j in jobs})}, tasks {len(jobs)}")
    for job, result in zip(jobs, gather(jobs, timeout=900), strict=True):
        print(f"{job.job_id}: exit {result.returncode}, {result.stdout.strip()}")


if __name__ == "__main__":
    main()
