"""P1: N tiny items end to end (300 and 1000 by default): paracore vs submitit vs bare sbatch.

- paracore: ``map_func(double, items)`` (``chunk_size="auto"`` packs them into a few tasks
  per core), then ``gather``;
- submitit: ``AutoExecutor.map_array`` (one array task per item), then ``result()`` of each;
- bare: one ``sbatch --wait --array`` task per item running ``python3`` on its item.

All three ask for the same resources on the same cluster, one after the other in one run.

    python benchmarks/tiny_items.py [N ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import submitit
from common import bare_array, machine, table

import paracore


def double(x: int) -> int:
    """The work: tiny, so scheduling shows."""
    return 2 * x


def run_paracore(items: list[int], folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    handles = paracore.map_func(
        double, items, time_min=5, mem_gb=0.25, job_name="p1-paracore",
        config={"log_dir": str(folder)}, resume="never",
    )  # fmt: skip
    assert paracore.gather(handles, timeout=3600, progress=False) == [2 * x for x in items]
    elapsed = time.perf_counter() - start
    tasks = len({h.job_id for h in handles})
    return elapsed, tasks


def run_submitit(items: list[int], folder: Path) -> float:
    start = time.perf_counter()
    executor = submitit.AutoExecutor(folder=folder)
    executor.update_parameters(
        timeout_min=5, mem_gb=0.25, cpus_per_task=1, slurm_array_parallelism=len(items),
        name="p1-submitit",
    )  # fmt: skip
    jobs = executor.map_array(double, items)
    assert [j.result() for j in jobs] == [2 * x for x in items]
    return time.perf_counter() - start


def run_bare(items: list[int], folder: Path) -> float:
    start = time.perf_counter()
    body = "print(2 * TASK)\n"  # item i is i here
    bare_array(folder, len(items), body, name="p1-bare")
    job_outputs = sorted(folder.glob("*.out"), key=lambda p: int(p.stem.split("_")[1]))
    assert [int(p.read_text()) for p in job_outputs] == [2 * x for x in items]
    return time.perf_counter() - start


def main(counts: list[int]) -> None:
    print(machine())
    rows = []
    for n in counts:
        items = list(range(n))
        with tempfile.TemporaryDirectory(dir=".", prefix="bench-p1-") as tmp:
            folder = Path(tmp).absolute()
            ours, tasks = run_paracore(items, folder / "paracore")
            theirs = run_submitit(items, folder / "submitit")
            bare = run_bare(items, folder / "bare")
        rows += [
            (n, "paracore map_func", tasks, f"{ours:.1f}", "1.00"),
            (n, "submitit map_array", n, f"{theirs:.1f}", f"{theirs / ours:.2f}"),
            (n, "bare sbatch --array", n, f"{bare:.1f}", f"{bare / ours:.2f}"),
        ]
        print(table(rows, ["items", "system", "array tasks", "end to end (s)", "time / paracore"]))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [300, 1000])
