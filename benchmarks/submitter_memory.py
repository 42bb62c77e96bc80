"""P5: peak memory (RSS) of the submitting process for ``map_func`` over 1 000 000 items.

Runs the whole map for real (submit, wait, collect every result into a list) and prints the
process's peak RSS, next to the peak of a process that only imports paracore and builds the
same input and output lists (what any Python program holding them pays). Target: 500 MB.

    python benchmarks/submitter_memory.py [N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from common import machine

CODE = """
import resource, sys
import paracore
n = int(sys.argv[1])
items = list(range(n))
if sys.argv[2] == "map":
    handles = paracore.map_func(
        abs, items, time_min=10, mem_gb=1, job_name="p5-memory", resume="never",
        config={"log_dir": sys.argv[3]},
    )
    results = [h.result() for h in handles]
    assert results == items
    chunks = len(handles.map.chunks)
else:
    results = [abs(x) for x in items]
    chunks = 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, chunks)
"""


def peak_mb(n: int, mode: str, folder: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(n), mode, folder],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return int(out[0]), int(out[1])


def main(n: int) -> None:
    print(machine())
    with tempfile.TemporaryDirectory(dir=".", prefix="bench-p5-") as folder:
        base, _ = peak_mb(n, "lists", folder)
        peak, chunks = peak_mb(n, "map", folder)
    print(f"map_func over {n} items ({chunks} array tasks), results collected with "
          f"[h.result() for h in handles]: peak RSS {peak} MB (target 500)")  # fmt: skip
    print(f"the same input and result lists alone: peak RSS {base} MB")
    print(f"paracore's share: {peak - base} MB, {(peak - base) * 2**20 / n:.0f} bytes per item")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
