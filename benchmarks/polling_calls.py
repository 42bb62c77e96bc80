"""P3: scheduler commands run while submitting and waiting on N tasks (default 100).

Every scheduler command the process (and submitit inside it) runs is counted through a PATH
shim: paracore's ``submit_map`` of N one-item tasks waited on with ``gather``, then submitit's
``map_array`` of the same N tasks waited on with ``result()``. Polling one job at a time would
cost N ``sacct`` calls per round; both batch them.

    python benchmarks/polling_calls.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import submitit
from common import SCHEDULER_COMMANDS, counted_scheduler_calls, machine, table
from toolz import pipe

import paracore
from paracore.core.spec import Call


def tiny(x: int) -> int:
    """A task that does almost nothing, so waiting dominates."""
    return x + 1


def run_paracore(n: int, folder: Path) -> float:
    spec = pipe(
        paracore.JobSpec.call(tiny, 0),
        paracore.with_resources(time_min=5, mem_gb=0.25),
        paracore.with_log_dir(str(folder)),
        paracore.with_name("p3-paracore"),
    )
    start = time.monotonic()
    with paracore.use_session(paracore.Session()):  # a poller of its own
        jobs = paracore.submit_map(spec, [Call(tiny, (i,)) for i in range(n)], resume="never")
        assert paracore.gather(jobs, timeout=3600, progress=False) == [i + 1 for i in range(n)]
    return time.monotonic() - start


def run_submitit(n: int, folder: Path) -> float:
    start = time.monotonic()
    executor = submitit.AutoExecutor(folder=folder)
    executor.update_parameters(timeout_min=5, mem_gb=0.25, name="p3-submitit")
    jobs = executor.map_array(tiny, range(n))
    assert [j.result() for j in jobs] == [i + 1 for i in range(n)]
    return time.monotonic() - start


def main(n: int) -> None:
    os.environ["PARACORE_BACKEND"] = "slurm"
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory(dir=".", prefix="bench-p3-") as tmp:
        folder = Path(tmp).absolute()
        os.environ["PARACORE_STORE"] = str(folder / "store")
        for name, run in (("paracore", run_paracore), ("submitit", run_submitit)):
            with counted_scheduler_calls(folder / name) as counts:
                elapsed = run(n, folder / name / "logs")
            rows.append((name, *(counts[c] for c in SCHEDULER_COMMANDS), f"{elapsed:.0f}"))
    print(f"{n} tasks, one array")
    print(table(rows, ["system", *SCHEDULER_COMMANDS, "elapsed (s)"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
