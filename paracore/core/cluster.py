"""What a cluster allows, as plain values: partitions, nodes, and one partition's limits.

Backends fill these from the scheduler (Slurm: ``scontrol``); the pure checks of
:mod:`paracore.core.rules`, the escalation of :mod:`paracore.core.escalation` and the autotune
math read them. Nothing here talks to a scheduler.
"""

from __future__ import annotations

import attrs

__all__ = ["ClusterInfo", "Node", "Partition", "PartitionLimits"]


@attrs.frozen
class Partition:
    """A partition as the scheduler shows it. ``max_time_min`` is None when unlimited."""

    name: str
    max_time_min: int | None
    max_time_text: str
    default: bool = False
    state: str = "UP"
    total_cpus: int | None = None


@attrs.frozen
class Node:
    """A node: CPUs, memory (MB) and the partitions it belongs to."""

    name: str
    cpus: int
    memory_mb: int
    partitions: tuple[str, ...]
    state: str = ""


@attrs.frozen
class PartitionLimits:
    """What a partition allows one task; None is unlimited or unknown.

    ``node_mem_mb`` and ``node_cpus`` are those of the partition's largest node; retries never
    escalate past them, and autotune clamps its recommendation to them.
    """

    name: str = ""
    max_time_min: int | None = None
    node_mem_mb: int | None = None
    node_cpus: int | None = None
    total_cpus: int | None = None


@attrs.frozen
class ClusterInfo:
    """What the live cluster allows, as parsed values."""

    partitions: tuple[Partition, ...]
    nodes: tuple[Node, ...] = ()

    def partition(self, name: str) -> Partition | None:
        """The partition called ``name``, or None."""
        return next((p for p in self.partitions if p.name == name), None)

    @property
    def default_partition(self) -> Partition | None:
        """The partition jobs go to without ``--partition``."""
        return next((p for p in self.partitions if p.default), None)

    def nodes_of(self, partition: str) -> tuple[Node, ...]:
        """Nodes that belong to ``partition``."""
        return tuple(n for n in self.nodes if partition in n.partitions)

    def limits(self, partition: str | None) -> PartitionLimits | None:
        """The limits of ``partition`` (None: the default one), or None if there is none."""
        part = self.default_partition if partition is None else self.partition(partition)
        if part is None:
            return None
        nodes = self.nodes_of(part.name)
        return PartitionLimits(
            name=part.name,
            max_time_min=part.max_time_min,
            node_mem_mb=max((n.memory_mb for n in nodes), default=None),
            node_cpus=max((n.cpus for n in nodes), default=None),
            total_cpus=part.total_cpus or (sum(n.cpus for n in nodes) or None),
        )
