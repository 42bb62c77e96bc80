"""Seed example 1: one Python data-processing script as one job."""

import sys
from pathlib import Path

from myjobs import make_inputs

from paracore.api import run_cmd

HERE = Path(__file__).resolve().parent


def main() -> None:
    make_inputs(".", 2)
    program = f"{sys.executable} {HERE / 'process_data.py'}"
    job = run_cmd(
        f"{program} inputs/config_001.json results/output_001.json",
        partition="compute",
        job_name="data-process",
        time_min=60,
        cpus_per_task=1,
        mem_gb=1,
        env={"APP_MODE": "production"},
        retries=1,
        retry_backoff_s=60,
    )
    result = job.result(timeout=600)
    print(f"job {job.job_id} exited {result.returncode}: {result.stdout.strip()}")
    print(Path("results/output_001.json").read_text())


if __name__ == "__main__":
    main()
