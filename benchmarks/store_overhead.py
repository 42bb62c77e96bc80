"""How much time the run store adds to submitting a map of N items (target: under 5%).

Submits N tiny Python calls as one held array on Slurm (``--hold``, then cancelled: nothing
runs), timing the whole ``submit_map`` and, inside it, every call into the run store and the
content key. Prints both and their ratio.

    python benchmarks/store_overhead.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from toolz import pipe

import paracore
from paracore.shell import runs, store, submit


def tiny(x: int) -> int:
    """A task that would do almost nothing."""
    return x + 1


def timed(owner: Any, name: str, spent: dict[str, float]) -> None:
    """Wrap ``owner.name`` so the time spent in it is added to ``spent[name]``."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    setattr(owner, name, wrapper)


def main(n: int) -> None:
    os.environ.setdefault("PARACORE_BACKEND", "slurm")
    spent: dict[str, float] = {}
    for name in ("claim", "insert_run", "submitted", "versions", "new_run_id"):
        timed(store.RunStore, name, spent)
    timed(submit, "content_key", spent)
    timed(submit, "save_run_files", spent)
    timed(runs, "RunLedger", spent)
    with tempfile.TemporaryDirectory(prefix="paracore-store-") as folder:
        os.environ["PARACORE_STORE"] = f"{folder}/store"
        spec = pipe(
            paracore.JobSpec.call(tiny, 0),
            paracore.with_resources(time_min=5, mem_gb=0.25, extra={"hold": True}),
            paracore.with_log_dir(f"{folder}/logs"),
            paracore.with_name("store-bench"),
        )
        payloads = [paracore.Call(tiny, (i,)) for i in range(n)]
        start = time.perf_counter()
        handles = paracore.submit_map(spec, payloads, resume="never")
        total = time.perf_counter() - start
        arrays = sorted({h.job_id.split("_")[0] for h in handles})
        subprocess.run(["scancel", *arrays], check=False)
    in_store = sum(spent.values())
    print(f"items: {n}")
    print(f"submit_map: {total:.3f} s (arrays {', '.join(arrays)}, held, then cancelled)")
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(spent.items()))
    print(f"run store and content key: {in_store:.3f} s ({parts})")
    print(f"ratio: {in_store / total:.1%} of the submission time")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
