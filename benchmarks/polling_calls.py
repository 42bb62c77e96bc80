"""How many status queries paracore makes while waiting on an array of N tasks.

Submits one array of N tiny Python calls in its own :class:`paracore.Session` (so with its
own poller), waits with ``gather`` and prints the number of ``sacct`` calls (paracore makes no
``squeue`` calls while waiting), the elapsed time, and the bound
``elapsed / min_interval + 3``. Polling one job at a time would cost at least N calls per
round.

    python benchmarks/polling_calls.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from toolz import pipe

import paracore
from paracore.core.spec import Call


def tiny(x: int) -> int:
    """A task that does almost nothing, so waiting dominates."""
    return x + 1


def main(n: int) -> None:
    os.environ.setdefault("PARACORE_BACKEND", "slurm")
    with tempfile.TemporaryDirectory(prefix="paracore-poll-") as folder:
        spec = pipe(
            paracore.JobSpec.call(tiny, 0),
            paracore.with_resources(time_min=5, mem_gb=0.25),
            paracore.with_log_dir(folder),
            paracore.with_name("poll-bench"),
        )
        with paracore.use_session(paracore.Session()) as session:
            poller = session.backend("slurm").poller
            start = time.monotonic()
            jobs = paracore.submit_map(spec, [Call(tiny, (i,)) for i in range(n)])
            results = paracore.gather(jobs, timeout=3600)
            elapsed = time.monotonic() - start
    assert results == [i + 1 for i in range(n)]
    bound = elapsed / poller.min_interval_s + 3
    print(f"tasks: {n}")
    print(f"elapsed: {elapsed:.1f} s")
    print(f"sacct calls: {poller.calls} (failed: {poller.failures}); squeue calls: 0")
    print(f"bound elapsed/min_interval + 3: {bound:.0f}; per-job polling: >= {n} per round")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
