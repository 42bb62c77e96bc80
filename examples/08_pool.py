"""A drop-in for multiprocessing.Pool: the same code, run by the cluster's array tasks.

Swap ``multiprocessing.Pool(4)`` for ``paracore.Pool(4, time_min=10, mem_gb=1)``: ``map``,
``starmap``, ``imap_unordered`` and friends behave as before, and 2000 small items become a
few array tasks (chunks), not 2000 jobs.
"""

import math
import operator
import sys

from paracore import Pool


def score(seed: int) -> float:
    """Some small piece of work per item."""
    return math.sin(seed) ** 2 + math.cos(seed / 7)


def main(count: int = 2000) -> None:
    with Pool(4, time_min=10, mem_gb=1, job_name="pool-demo") as pool:
        scores = pool.map(score, range(count))
        pairs = pool.starmap(operator.mul, [(2, 3), (4, 5)])
        unordered = sorted(pool.imap_unordered(abs, [-3, -1, -2]))
    best = max(range(count), key=scores.__getitem__)
    print(f"{len(scores)} scores, best item {best} ({scores[best]:.3f})")
    print(f"starmap: {pairs}, imap_unordered: {unordered}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
