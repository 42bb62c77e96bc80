"""P4: what preparing work costs in the submitting process, in microseconds.

- per spec: one spec through a 3-transform team preset, then ``to_submitit_params`` (the
  pure pipeline every submission runs);
- per item, one task per item: building the payloads of a ``map_func`` over N items and
  preparing their tasks (what happens before ``sbatch``), without submitting anything;
- per item, chunked (the default for large maps): a whole ``map_func`` over 100 x N items on
  Slurm, submitted held (``--hold``) and then cancelled, so nothing runs; its time over the
  number of items (every fixed cost, ``sbatch`` included, spread over them: an upper bound).

    python benchmarks/submit_side.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import paracore
from paracore.backends.slurm.params import to_submitit_params
from paracore.shell.checks import prepare_task


def tiny(x: int) -> int:
    """A task that would do almost nothing."""
    return x + 1


def per_spec(repeat: int = 3000) -> float:
    """Microseconds for one spec through a 3-transform preset and to_submitit_params
    (the best of five rounds, after a warm-up round)."""
    lab = paracore.preset(
        paracore.with_resources(partition="compute", time="2h", mem="16G", cpus_per_task=4),
        paracore.with_env({"OMP_NUM_THREADS": "4"}),
        paracore.with_retries(2, backoff_s=60),
    )
    spec = paracore.JobSpec.command("python train.py")
    rounds = []
    for _ in range(6):
        start = time.perf_counter()
        for _ in range(repeat):
            to_submitit_params(lab(spec), "slurm")
        rounds.append((time.perf_counter() - start) / repeat * 1e6)
    return min(rounds[1:])


def per_item(n: int) -> float:
    """Microseconds per item to make a map's payloads and tasks (one task per item)."""
    spec = paracore.JobSpec.call(tiny, 0)
    start = time.perf_counter()
    for i in range(n):
        prepare_task(spec.with_payload(paracore.Call(tiny, (i,))), lambda _name: None)
    return (time.perf_counter() - start) / n * 1e6


def chunked_map_seconds(n: int, folder: str) -> float:
    """Seconds for ``map_func`` over ``n`` items to return, submitted held and cancelled."""
    items = list(range(n))
    start = time.perf_counter()
    handles = paracore.map_func(
        tiny, items, time_min=5, mem_gb=0.25, extra={"hold": True}, resume="never",
        job_name="p4-chunked", config={"log_dir": folder},
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    subprocess.run(["scancel", *{h.job_id.split("_")[0] for h in handles[:1]}], check=False)
    return elapsed


def per_item_chunked(n: int) -> float:
    """Microseconds per item of a chunked map of ``n`` items, everything included."""
    os.environ.setdefault("PARACORE_BACKEND", "slurm")
    with tempfile.TemporaryDirectory(prefix="paracore-p4-") as folder:
        os.environ["PARACORE_STORE"] = f"{folder}/store"
        chunked_map_seconds(1000, folder)  # warm-up: imports, cluster queries
        return chunked_map_seconds(n, folder) / n * 1e6


def main(n: int) -> None:
    print(f"per spec (3-transform preset + to_submitit_params): {per_spec():.1f} us (target 100)")
    print(f"per item of a map of {n}, one task per item: {per_item(n):.1f} us")
    whole = per_item_chunked(100 * n)
    print(f"per item of a chunked map of {100 * n}, sbatch included: {whole:.2f} us (target 10)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
