"""The job side: CPU time per array task on the node, paracore against submitit.

Runs N tiny calls one task per item (``chunk_size=1``) through paracore and the same N
through submitit's ``map_array``, then reads each task's CPU time from ``sacct`` (TotalCPU of
the job, all steps) and prints the mean per task and the ratio. Also prints how long the
node-side imports take: submitit's entry point alone, and with paracore's runtime.

    python benchmarks/job_side_cpu.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import submitit
from common import machine, table

import paracore


def tiny(x: int) -> int:
    """A task that does almost nothing, so the job side's own cost shows."""
    return x + 1


def cpu_seconds(text: str) -> float:
    """sacct's TotalCPU (``[D-]HH:MM:SS`` or ``MM:SS.mmm``) in seconds."""
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds + (int(days) * 86400 if days else 0)


def per_task_cpu(array_id: str, count: int) -> list[float]:
    """TotalCPU of each task of an array (waiting until sacct has them all)."""
    for _ in range(60):
        out = subprocess.run(
            ["sacct", "-n", "-P", "-j", array_id, "--format=JobID,State,TotalCPU"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = [line.split("|") for line in out.splitlines() if line]
        rows = [r for r in rows if "." not in r[0]]  # a task's own row sums its steps
        done = [r for r in rows if r[1] == "COMPLETED"]
        if len(done) == count:
            return [cpu_seconds(r[2]) for r in done]
        time.sleep(2)
    raise RuntimeError(f"sacct did not report the {count} tasks of {array_id}")


def import_seconds(modules: str) -> float:
    """Wall seconds to import ``modules`` in a fresh interpreter (best of 5)."""
    code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
    runs = []
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        runs.append(float(proc.stdout))
    return min(runs)


def main(n: int) -> None:
    print(machine())
    items = list(range(n))
    with tempfile.TemporaryDirectory(dir=".", prefix="bench-cpu-") as tmp:
        folder = Path(tmp).absolute()
        handles = paracore.map_func(
            tiny, items, chunk_size=1, time_min=5, mem_gb=0.25, job_name="cpu-paracore",
            config={"log_dir": str(folder / "paracore")}, resume="never",
        )  # fmt: skip
        assert paracore.gather(handles, timeout=3600, progress=False) == [x + 1 for x in items]
        ours = per_task_cpu(handles[0].job_id.split("_")[0], n)
        executor = submitit.AutoExecutor(folder=folder / "submitit")
        executor.update_parameters(timeout_min=5, mem_gb=0.25, name="cpu-submitit")
        jobs = executor.map_array(tiny, items)
        assert [j.result() for j in jobs] == [x + 1 for x in items]
        theirs = per_task_cpu(jobs[0].job_id.split("_")[0], n)
    rows = [
        (name, f"{statistics.mean(cpu):.3f}", f"{statistics.median(cpu):.3f}")
        for name, cpu in (("paracore (chunk_size=1)", ours), ("submitit map_array", theirs))
    ]
    print(f"{n} tasks each; CPU seconds per task (sacct TotalCPU)")
    print(table(rows, ["system", "mean", "median"]))
    print(f"ratio paracore/submitit (mean): {statistics.mean(ours) / statistics.mean(theirs):.2f}")
    base = import_seconds("submitit.core._submit")
    with_ours = import_seconds(
        "submitit.core._submit, paracore.runtime.tasks, paracore.runtime.chunks"
    )
    print(
        f"node-side imports: submitit entry {base:.3f} s; with paracore.runtime {with_ours:.3f} s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
