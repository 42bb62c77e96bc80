"""Seed example 3: `map_func` over 100 config paths, results back as Python values."""

import sys

import myjobs
from myjobs import make_inputs

from paracore.api import map_func


def main(count: int = 100) -> None:
    cfgs = make_inputs(".", count, width=4)
    jobs = map_func(
        fn=myjobs.process_path,
        items=cfgs,
        partition="compute",
        cpus_per_task=1,
        mem_gb=1,
        time_min=60,
        env_setup="export MYJOBS_READY=1",
        retries=1,
    )
    results = [j.result(timeout=1800) for j in jobs]  # list of dicts, in input order
    print(f"{len(results)} results from array {jobs[0].job_id.split('_')[0]}")
    print(f"first: {results[0]}, last: {results[-1]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
