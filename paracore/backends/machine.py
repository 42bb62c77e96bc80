"""This machine's size, for the backends that run work here (local, inprocess)."""

from __future__ import annotations

import os

from paracore.core.cluster import PartitionLimits

__all__ = ["machine_limits"]


def machine_limits(name: str) -> PartitionLimits:
    """This machine's size, for backends that run here (no time limit)."""
    cpus = os.cpu_count() or 1
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        mem = None
    return PartitionLimits(name=name, node_mem_mb=mem, node_cpus=cpus, total_cpus=cpus)
