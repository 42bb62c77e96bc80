"""What the next attempt asks for after a failure: resource escalation (pure).

More memory after running out of it, more time after a timeout, the failed node excluded
after a node failure, all capped by the partition's limits (a
:class:`~paracore.core.cluster.PartitionLimits`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from paracore.core.cluster import PartitionLimits
from paracore.core.failures import FailureClass
from paracore.core.retry import RetryPolicy

__all__ = [
    "AttemptResources",
    "Refused",
    "escalate",
]


def _node_names(nodes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(nodes)))


@attrs.frozen(kw_only=True)
class AttemptResources:
    """What one attempt asked the scheduler for (memory in MB, time in minutes)."""

    partition: str | None = None
    mem_mb: int | None = None
    time_min: int | None = None
    exclude: tuple[str, ...] = attrs.field(default=(), converter=_node_names)

    def describe(self) -> str:
        """``mem 1536M, time 2 min, partition debug, exclude n1``, leaving out what is unset."""
        parts = []
        if self.mem_mb is not None:
            parts.append(f"mem {self.mem_mb}M")
        if self.time_min is not None:
            parts.append(f"time {self.time_min} min")
        if self.partition:
            parts.append(f"partition {self.partition}")
        if self.exclude:
            parts.append("exclude " + ",".join(self.exclude))
        return ", ".join(parts) or "scheduler defaults"


@attrs.frozen
class Refused:
    """The next attempt cannot be made: why, in words a user can act on."""

    reason: str


def _grow(current: int, factor: float) -> int:
    """``current * factor`` rounded up, and always at least one more unit when factor > 1."""
    grown = math.ceil(current * factor - 1e-9)
    return max(grown, current + 1) if factor > 1 else current


def _capped(
    what: str, unit: str, current: int, wanted: int, cap: int | None, partition: str
) -> int | Refused:
    if cap is None or wanted <= cap:
        return wanted
    if current < cap:
        return cap
    where = f"partition {partition}" if partition else "the partition"
    return Refused(
        f"ran out of {what} with {current}{unit}, the most {where} allows; "
        f"a retry would need {wanted}{unit} (ask for a partition with more {what}, or make the "
        "task smaller)"
    )


def escalate(
    policy: RetryPolicy,
    failure: FailureClass,
    current: AttemptResources,
    *,
    nodes: Iterable[str] = (),
    limits: PartitionLimits | None = None,
) -> AttemptResources | Refused:
    """What the next attempt asks for after ``failure`` (pure).

    Out of memory: memory times ``mem_factor``; timeout: walltime times ``time_factor``; both
    rounded up and capped by ``limits``. A request already at the cap cannot grow, so the
    answer is :class:`Refused`. Node failure: the attempt's ``nodes`` are excluded. Any other
    class: the same request. Requests never decrease.
    """
    limits = limits or PartitionLimits()
    partition = current.partition or ""
    if failure is FailureClass.OUT_OF_MEMORY:
        if current.mem_mb is None:
            return Refused("ran out of memory without a --mem request to grow; set mem")
        mem = _capped(
            "memory",
            "M",
            current.mem_mb,
            _grow(current.mem_mb, policy.mem_factor),
            limits.node_mem_mb,
            partition,
        )
        return mem if isinstance(mem, Refused) else attrs.evolve(current, mem_mb=mem)
    if failure is FailureClass.TIMEOUT:
        if current.time_min is None:
            return Refused("ran out of time without a --time request to grow; set time")
        time_min = _capped(
            "time",
            " min",
            current.time_min,
            _grow(current.time_min, policy.time_factor),
            limits.max_time_min,
            partition,
        )
        if isinstance(time_min, Refused):
            return time_min
        return attrs.evolve(current, time_min=time_min)
    if failure is FailureClass.NODE_FAILURE and policy.exclude_failed_nodes:
        new = tuple(n for n in nodes if n and n not in ("None", "None assigned"))
        return attrs.evolve(current, exclude=(*current.exclude, *new))
    return current
