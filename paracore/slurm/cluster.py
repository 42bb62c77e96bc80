"""What the live cluster allows: partitions, nodes and idle cores, and checks of specs against it.

Parsers of ``scontrol -o show partition``, ``scontrol -o show node`` and ``sinfo`` output are
pure and tested on captured text; :func:`validate` is a pure check of a spec against a
:class:`ClusterInfo`. Only :class:`ClusterCache` (one ``scontrol`` pair per process, kept in
that explicit object) and :func:`preflight` run commands.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence

import attrs

from paracore.exceptions import SpecError
from paracore.params import effective_parallelism
from paracore.slurm.commands import Runner, SchedulerUnreachable, run_command
from paracore.spec import JobSpec
from paracore.transforms import with_array
from paracore.units import format_memory, parse_walltime

_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "NONE", ""})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_RECORD_FIELD = re.compile(
    r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?=\s+[A-Za-z][A-Za-z0-9_:/]*=|\s*$)"
)


# ---------------------------------------------------------------- values


@attrs.frozen
class Partition:
    """A partition as scontrol shows it. ``max_time_min`` is None when unlimited."""

    name: str
    max_time_min: int | None
    max_time_text: str
    default: bool = False
    state: str = "UP"
    total_cpus: int | None = None


@attrs.frozen
class Node:
    """A node as scontrol shows it: CPUs, memory (MB) and the partitions it belongs to."""

    name: str
    cpus: int
    memory_mb: int
    partitions: tuple[str, ...]
    state: str = ""


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


@attrs.frozen
class Problem:
    """One reason the cluster would refuse (or never run) a spec."""

    field: str
    value: object
    accepted: str
    source: str

    def error(self) -> SpecError:
        """The SpecError users see for this problem."""
        return SpecError(self.field, self.value, self.accepted, self.source)


# ---------------------------------------------------------------- pure parsers


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


def parse_max_time(text: str) -> int | None:
    """Minutes for a scontrol ``MaxTime`` (``00:05:00``, ``3-00:00:00``); None if unlimited."""
    if text.strip().upper() in _UNLIMITED:
        return None
    return parse_walltime(text.strip(), field="MaxTime", source="scontrol")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
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
                total_cpus=_int(rec.get("TotalCPUs")),
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
                cpus=_int(rec.get("CPUTot")) or _int(rec.get("CPUEfctv")) or 0,
                memory_mb=_int(rec.get("RealMemory")) or 0,
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


# ---------------------------------------------------------------- pure checks


def _mem_gb_text(mb: int) -> str:
    return f"{math.floor(mb / 1024 * 10) / 10:g}"


def _mem_gb_value(mb: int) -> int | float:
    gb = mb / 1024
    return int(gb) if gb.is_integer() else gb


def validate(
    spec: JobSpec, info: ClusterInfo, origins: Mapping[str, str] | None = None
) -> tuple[Problem, ...]:
    """Every reason the live cluster would refuse or never run ``spec`` (pure).

    Checks the partition exists, the walltime is within the partition's MaxTime, and memory
    and cpus fit on the largest node of the partition. ``origins`` maps flat keys
    (``partition``, ``time_min``, ``mem_gb``, ``cpus_per_task``) to where each value came from.
    """
    origins = origins or {}

    def source(key: str) -> str:
        return origins.get(key, "spec")

    res = spec.resources
    problems: list[Problem] = []
    names = ", ".join(p.name + (" (default)" if p.default else "") for p in info.partitions)
    if isinstance(res.partition, str):
        part = info.partition(res.partition)
        if part is None:
            problems.append(
                Problem(
                    "partition",
                    res.partition,
                    f"no such partition on this cluster; partitions are: {names}",
                    source("partition"),
                )
            )
            return tuple(problems)
        where = f"partition {part.name!r}"
    else:
        part = info.default_partition
        if part is None:
            return ()
        where = f"the default partition {part.name!r}"
    limit = part.max_time_min
    if isinstance(res.time_min, int) and limit is not None and res.time_min > limit:
        problems.append(
            Problem(
                "time_min",
                res.time_min,
                f"{where} allows at most {part.max_time_min} minutes "
                f"(MaxTime={part.max_time_text}); ask for less or choose a partition with "
                f"a longer limit ({_longer(info, res.time_min)})",
                source("time_min"),
            )
        )
    nodes = info.nodes_of(part.name)
    if nodes and isinstance(res.mem_mb, int):
        biggest = max(n.memory_mb for n in nodes)
        if res.mem_mb > biggest:
            problems.append(
                Problem(
                    "mem_gb",
                    _mem_gb_value(res.mem_mb),
                    f"the largest node in {where} has {biggest} MB of memory "
                    f"(RealMemory={biggest}); ask for at most mem_gb={_mem_gb_text(biggest)} "
                    f"(or mem='{format_memory(biggest)}')",
                    source("mem_gb"),
                )
            )
    if nodes and isinstance(res.cpus_per_task, int):
        most = max(n.cpus for n in nodes)
        if res.cpus_per_task > most:
            problems.append(
                Problem(
                    "cpus_per_task",
                    res.cpus_per_task,
                    f"the largest node in {where} has {most} CPUs; ask for at most {most}",
                    source("cpus_per_task"),
                )
            )
    return tuple(problems)


def _longer(info: ClusterInfo, minutes: int) -> str:
    fits = [p.name for p in info.partitions if p.max_time_min is None or p.max_time_min >= minutes]
    return "partitions that allow it: " + ", ".join(fits) if fits else "none allows it"


def first_error(problems: Sequence[Problem]) -> SpecError:
    """One SpecError for a list of problems: the first, with the others mentioned."""
    first = problems[0]
    accepted = first.accepted
    if len(problems) > 1:
        rest = "; ".join(
            f"{p.field}={p.value!r} (from {p.source}): {p.accepted}" for p in problems[1:]
        )
        accepted += f" [also: {rest}]"
    return SpecError(first.field, first.value, accepted, first.source)


def choose_parallelism(idle_cpus: int, cpus_per_task: int, cap: int | None) -> int:
    """Array tasks to run at once: what the idle cores fit (at least 1), never above ``cap``."""
    fits = max(1, idle_cpus // max(1, cpus_per_task))
    return min(fits, cap) if cap is not None else fits


def validation_enabled(validate: bool | None, environ: Mapping[str, str]) -> bool:
    """An explicit ``validate`` wins; else ``$PARACORE_VALIDATE`` (``0``/``false`` = off)."""
    if validate is not None:
        return validate
    return environ.get("PARACORE_VALIDATE", "1").strip().lower() not in _FALSE_WORDS


# ---------------------------------------------------------------- the shell


class ClusterCache:
    """Asks the cluster about partitions and nodes once, and keeps the answer.

    An explicit object rather than a module global: :data:`CLUSTER_CACHE` is the one the
    interpreter uses per process; tests make their own with a fake ``runner``. Idle cores
    change all the time, so :meth:`idle_cpus` is never cached.
    """

    def __init__(self, runner: Runner = run_command) -> None:
        self._runner = runner
        self._info: ClusterInfo | None = None

    def info(self) -> ClusterInfo:
        """Partitions and nodes (``scontrol -o show partition`` / ``node``), cached."""
        if self._info is None:
            self._info = ClusterInfo(
                parse_partitions(self._runner(["scontrol", "-o", "show", "partition"])),
                parse_nodes(self._runner(["scontrol", "-o", "show", "node"])),
            )
        return self._info

    def idle_cpus(self, partition: str) -> int:
        """Idle cores in ``partition`` now (``sinfo``), not cached."""
        text = self._runner(["sinfo", "-h", "-p", partition, "-o", "%P|%C"])
        return parse_idle_cpus(text).get(partition, 0)

    def clear(self) -> None:
        """Forget the cached answer (e.g. after the cluster's configuration changed)."""
        self._info = None


CLUSTER_CACHE = ClusterCache()
"""The per-process cache the interpreter uses."""


def preflight(
    spec: JobSpec,
    *,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    environ: Mapping[str, str] | None = None,
    cache: ClusterCache = CLUSTER_CACHE,
) -> tuple[JobSpec, list[str]]:
    """Check ``spec`` against the live cluster and settle ``array_parallelism="auto"``.

    Raises SpecError for the first problem (naming field, value, origin and what the cluster
    accepts). Skipped when validation is off or Slurm does not answer. Returns the spec (with
    a number for ``"auto"``) and warnings to show.
    """
    environ = os.environ if environ is None else environ
    enabled = validation_enabled(validate, environ)
    auto = spec.resources.array_parallelism == "auto"
    warnings: list[str] = []
    if not enabled and not auto:
        return spec, warnings
    try:
        info: ClusterInfo | None = cache.info()
    except SchedulerUnreachable:
        info = None
    if enabled and info is not None:
        problems = validate_spec(spec, info, origins)
        if problems:
            raise first_error(problems)
    if auto:
        spec, warning = settle_auto_parallelism(spec, info, cache)
        if warning:
            warnings.append(warning)
    return spec, warnings


validate_spec = validate  # the name preflight uses, since its parameter is called ``validate``


def settle_auto_parallelism(
    spec: JobSpec, info: ClusterInfo | None, cache: ClusterCache
) -> tuple[JobSpec, str | None]:
    """Replace ``array_parallelism="auto"`` by the partition's idle cores, capped."""
    res = spec.resources
    partition = res.partition if isinstance(res.partition, str) else None
    if partition is None and info is not None and info.default_partition is not None:
        partition = info.default_partition.name
    capped = with_array(None, spec)
    cap, _ = effective_parallelism(capped)
    if partition is None:
        return capped, "array_parallelism='auto': no partition to ask sinfo about; not set"
    try:
        idle = cache.idle_cpus(partition)
    except SchedulerUnreachable as err:
        return capped, f"array_parallelism='auto': sinfo did not answer ({err}); not set"
    cpus = res.cpus_per_task if isinstance(res.cpus_per_task, int) else 1
    return with_array(choose_parallelism(idle, cpus, cap), spec), None


__all__ = [
    "CLUSTER_CACHE",
    "ClusterCache",
    "ClusterInfo",
    "Node",
    "Partition",
    "Problem",
    "SchedulerUnreachable",
    "checked_for_backend",
    "choose_parallelism",
    "first_error",
    "parse_idle_cpus",
    "parse_max_time",
    "parse_nodes",
    "parse_partitions",
    "parse_records",
    "preflight",
    "validate",
]


def checked_for_backend(
    spec: JobSpec,
    kind: str,
    *,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
) -> JobSpec:
    """The interpreter's hook: :func:`preflight` on the slurm backend, warnings shown.

    On other backends ``array_parallelism="auto"`` is dropped (they do not throttle).
    """
    if kind != "slurm":
        if spec.resources.array_parallelism == "auto":
            return with_array(None, spec)
        return spec
    spec, notes = preflight(spec, origins=origins, validate=validate)
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return spec
