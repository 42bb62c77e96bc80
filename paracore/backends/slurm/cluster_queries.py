"""What the live Slurm cluster allows: parsers of ``scontrol``/``sinfo`` and a cache with expiry.

The parsers of ``scontrol -o show partition``, ``scontrol -o show node`` and ``sinfo`` output
are pure and tested on captured text. :class:`ClusterQueries` runs the commands and keeps the
answer for ``ttl_s`` seconds (partitions and nodes change rarely, but they do change: a
long-lived session must not trust an answer forever). Idle cores are never cached.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from paracore.backends.slurm.commands import Runner, run_command
from paracore.core.cluster import ClusterInfo, Node, Partition
from paracore.core.units import int_or_none, parse_walltime
from paracore.errors import SpecError

__all__ = [
    "ClusterQueries",
    "parse_idle_cpus",
    "parse_max_array_size",
    "parse_max_time",
    "parse_nodes",
    "parse_partitions",
    "parse_records",
]

_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "NONE", ""})
_RECORD_FIELD = re.compile(
    r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?=\s+[A-Za-z][A-Za-z0-9_:/]*=|\s*$)"
)
CLUSTER_INFO_TTL_S = 300.0
"""How long an answer about partitions and nodes is trusted before asking again."""


def parse_records(text: str) -> list[dict[str, str]]:
    """``key=value`` records from ``scontrol show ...`` output, one-line (``-o``) or multi-line.

    Values may contain spaces (``OS=Linux 6.1 #1 SMP``): a value runs up to the next ``Key=``.
    """
    lines = [line.strip() for line in text.splitlines()]
    if any(line and not line.startswith(("PartitionName=", "NodeName=")) for line in lines):
        blocks, current = [], []  # multi-line form: records are separated by blank lines
        for line in lines:
            if line:
                current.append(line)
            elif current:
                blocks.append(" ".join(current))
                current = []
        if current:
            blocks.append(" ".join(current))
    else:
        blocks = [line for line in lines if line]
    return [{m[1]: m[2].strip() for m in _RECORD_FIELD.finditer(block)} for block in blocks]


def parse_max_array_size(text: str) -> int | None:
    """Tasks one array may hold, from ``scontrol show config`` (``MaxArraySize = 1001``).

    Slurm allows indices up to ``MaxArraySize - 1``, so an array of indices ``0..n-1`` may
    have ``n = MaxArraySize`` tasks. None when the line is missing or not a number.
    """
    found = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", text, re.MULTILINE)
    return int(found[1]) if found and int(found[1]) > 0 else None


def parse_max_time(text: str) -> int | None:
    """Minutes for a scontrol ``MaxTime`` (``00:05:00``, ``3-00:00:00``); None if unlimited."""
    if text.strip().upper() in _UNLIMITED:
        return None
    try:
        return parse_walltime(text.strip(), field="MaxTime", source="scontrol")
    except SpecError:  # beyond a year: no limit that matters
        return None


def parse_partitions(text: str) -> tuple[Partition, ...]:
    """Partitions from ``scontrol -o show partition``."""
    out = []
    for rec in parse_records(text):
        if "PartitionName" not in rec:
            continue
        max_time = rec.get("MaxTime", "UNLIMITED")
        out.append(
            Partition(
                name=rec["PartitionName"],
                max_time_min=parse_max_time(max_time),
                max_time_text=max_time,
                default=rec.get("Default", "NO").upper() == "YES",
                state=rec.get("State", "UP"),
                total_cpus=int_or_none(rec.get("TotalCPUs")),
            )
        )
    return tuple(out)


def parse_nodes(text: str) -> tuple[Node, ...]:
    """Nodes from ``scontrol -o show node``: CPUs (CPUTot), RealMemory (MB), Partitions."""
    out = []
    for rec in parse_records(text):
        if "NodeName" not in rec:
            continue
        parts = rec.get("Partitions", "")
        out.append(
            Node(
                name=rec["NodeName"],
                cpus=int_or_none(rec.get("CPUTot")) or int_or_none(rec.get("CPUEfctv")) or 0,
                memory_mb=int_or_none(rec.get("RealMemory")) or 0,
                partitions=tuple(p for p in parts.split(",") if p and p != "(null)"),
                state=rec.get("State", ""),
            )
        )
    return tuple(out)


def parse_idle_cpus(text: str) -> dict[str, int]:
    """Idle cores per partition from ``sinfo -h -o '%P|%C'`` (``%C`` is ``A/I/O/T``).

    sinfo prints several lines for a partition whose nodes are in different states; they add.
    """
    idle: dict[str, int] = {}
    for line in text.splitlines():
        if "|" not in line:
            continue
        name, counts = (part.strip() for part in line.split("|", 1))
        fields = counts.split("/")
        if len(fields) != 4 or not fields[1].isdigit():
            continue
        name = name.rstrip("*")
        idle[name] = idle.get(name, 0) + int(fields[1])
    return idle


class ClusterQueries:
    """Asks Slurm about partitions and nodes, and keeps the answer for ``ttl_s`` seconds.

    One per :class:`~paracore.shell.session.Session`; tests make their own with a fake
    ``runner`` and ``clock``.
    """

    def __init__(
        self,
        runner: Runner = run_command,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = CLUSTER_INFO_TTL_S,
    ) -> None:
        self._runner = runner
        self._clock = clock
        self._ttl_s = ttl_s
        self._info: ClusterInfo | None = None
        self._read_at = -math.inf
        self._max_array: tuple[int | None] | None = None

    def info(self) -> ClusterInfo:
        """Partitions and nodes (``scontrol -o show partition`` / ``node``), cached a while."""
        now = self._clock()
        if self._info is None or now - self._read_at > self._ttl_s:
            self._info = ClusterInfo(
                parse_partitions(self._runner(["scontrol", "-o", "show", "partition"])),
                parse_nodes(self._runner(["scontrol", "-o", "show", "node"])),
            )
            self._read_at = now
        return self._info

    def idle_cpus(self, partition: str) -> int:
        """Idle cores in ``partition`` now (``sinfo``), never cached."""
        text = self._runner(["sinfo", "-h", "-p", partition, "-o", "%P|%C"])
        return parse_idle_cpus(text).get(partition, 0)

    def max_array_size(self) -> int | None:
        """The cluster's ``MaxArraySize`` (``scontrol show config``), asked once; None: unknown."""
        if self._max_array is None:
            try:
                self._max_array = (
                    parse_max_array_size(self._runner(["scontrol", "show", "config"])),
                )
            except Exception:  # an older or restricted scontrol: the caller's fallback applies
                self._max_array = (None,)
        return self._max_array[0]

    def clear(self) -> None:
        """Forget the cached answer (e.g. after the cluster's configuration changed)."""
        self._info = None
        self._max_array = None
