"""End-to-end time of `map_func` over N tiny items against plain submitit `map_array`.

Both submit one array of N tasks with the same resources to the same cluster in the same
run and wait for every result; the ratio paracore/submitit is what matters (the test
cluster starts roughly two array tasks per second, which dominates both).

    python benchmarks/map_func_vs_submitit.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import submitit

import paracore


def tiny(x: int) -> int:
    """A task that does almost nothing, so scheduling dominates."""
    return x + 1


def run_paracore(items: list[int], folder: Path) -> float:
    start = time.perf_counter()
    jobs = paracore.map_func(
        tiny,
        items,
        time_min=5,
        mem_gb=0.25,
        cpus_per_task=1,
        array_parallelism=len(items),
        job_name="bench-paracore",
        config={"log_dir": str(folder)},
    )
    assert paracore.gather(jobs, timeout=3600) == [x + 1 for x in items]
    return time.perf_counter() - start


def run_submitit(items: list[int], folder: Path) -> float:
    start = time.perf_counter()
    executor = submitit.AutoExecutor(folder=folder / "bench-submitit")
    executor.update_parameters(
        timeout_min=5,
        mem_gb=0.25,
        cpus_per_task=1,
        slurm_array_parallelism=len(items),
        name="bench-submitit",
    )
    jobs = executor.map_array(tiny, items)
    assert [j.result() for j in jobs] == [x + 1 for x in items]
    return time.perf_counter() - start


def main(count: int) -> None:
    items = list(range(count))
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        folder = Path(tmp)
        ours = run_paracore(items, folder)
        theirs = run_submitit(items, folder)
    print(f"items: {count}")
    print(f"paracore map_func : {ours:7.1f} s")
    print(f"submitit map_array: {theirs:7.1f} s")
    print(f"ratio paracore/submitit: {ours / theirs:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
