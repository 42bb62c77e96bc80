"""How a map's items are packed into array tasks (pure).

One scheduler task per item is slow for many small items: a scheduler starts a few array
tasks a second, and ``MaxArraySize`` caps an array. So a map's items are packed into chunks,
one chunk per array task, run in series inside it. :func:`chunk_size_for` picks the size from
what is known; :func:`pack` cuts the items into chunks whose sizes differ by at most one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "MIN_TASK_S",
    "TASKS_PER_SLOT",
    "chunk_size_for",
    "pack",
]

TASKS_PER_SLOT = 4
"""Array tasks per slot that can run at once: enough to balance uneven items."""
MIN_TASK_S = 60.0
"""With measured item durations, a chunk should run at least this long (start-up amortised)."""


def chunk_size_for(
    items: int,
    *,
    parallelism: int,
    max_array_size: int,
    item_seconds: float | None = None,
    time_limit_s: float | None = None,
) -> int:
    """Items per array task: 1 for small maps, else enough to keep the array short.

    ``parallelism`` is how many tasks may run at once (the throttle, or the partition's cores
    over the task's cpus). A map of at most ``TASKS_PER_SLOT * parallelism`` items keeps one
    task per item (the seed API's behaviour, and right for long items). Larger maps get
    ``TASKS_PER_SLOT * parallelism`` tasks (never more than ``max_array_size``); with a pilot's
    ``item_seconds`` a chunk runs at least :data:`MIN_TASK_S`, and within half the walltime
    (unless that would need more chunks than ``max_array_size``).
    """
    if items <= 0:
        return 1
    tasks = min(items, max(1, TASKS_PER_SLOT * max(1, parallelism)), max(1, max_array_size))
    size = math.ceil(items / tasks)
    if item_seconds is not None and item_seconds > 0 and items > tasks:
        size = max(size, math.ceil(MIN_TASK_S / item_seconds))
        if time_limit_s is not None and time_limit_s > 0:
            size = min(size, max(1, math.floor(time_limit_s / 2 / item_seconds)))
    # never more chunks than one array may hold, whatever the walltime says
    size = max(size, math.ceil(items / max(1, max_array_size)))
    return max(1, min(size, items))


def pack(positions: Sequence[int], size: int) -> list[Sequence[int]]:
    """Cut ``positions`` into ``ceil(n / size)`` chunks, in order, sizes differing by at most 1.

    Each chunk is a slice of ``positions`` (a ``range`` stays a ``range``: no list per item).
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    n = len(positions)
    if n == 0:
        return []
    count = math.ceil(n / size)
    base, extra = divmod(n, count)
    chunks: list[Sequence[int]] = []
    start = 0
    for c in range(count):
        end = start + base + (1 if c < extra else 0)
        chunks.append(positions[start:end])
        start = end
    return chunks
