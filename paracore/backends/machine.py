"""What the backends that run work on this machine (local, inprocess) share.

There is no scheduler here: nothing to validate a spec against, no throttle, no accounting;
the limits are the machine's own size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from paracore.backends.base import JobState
from paracore.core.cluster import PartitionLimits
from paracore.core.resolved import ResolvedSpec

__all__ = ["ThisMachine", "machine_limits"]


def machine_limits(name: str) -> PartitionLimits:
    """This machine's size, for backends that run here (no time limit)."""
    cpus = os.cpu_count() or 1
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        mem = None
    return PartitionLimits(name=name, node_mem_mb=mem, node_cpus=cpus, total_cpus=cpus)


class ThisMachine:
    """The parts of the Backend protocol that are the same for every backend running here."""

    name = "machine"
    schedules_dependencies = False
    measures_in_task = True
    keeps_files = True

    def check(
        self, spec: ResolvedSpec, *, origins: Mapping[str, str] | None, validate: bool | None
    ) -> ResolvedSpec:
        """Nothing to check against; an ``"auto"`` throttle means nothing here."""
        if spec.resources.array_parallelism == "auto":
            return spec.with_resources(array_parallelism=None)
        return spec

    def accounting(self, job_ids: Sequence[str]) -> Mapping[str, JobState]:
        """No accounting on this machine."""
        return {}

    def limits(self, partition: str | None) -> PartitionLimits | None:
        """This machine's size."""
        return machine_limits(self.name)
