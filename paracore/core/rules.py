"""Pure checks of a spec against what the cluster allows, and the array throttle rules.

:func:`validate` lists every reason the live cluster would refuse (or never run) a spec, from a
:class:`~paracore.core.cluster.ClusterInfo` the backend read; :func:`effective_parallelism`
and :func:`choose_parallelism` decide how many array tasks run at once. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from paracore.core.cluster import ClusterInfo
from paracore.core.resolved import ResolvedSpec
from paracore.core.units import format_memory
from paracore.errors import SpecError

__all__ = [
    "FALSE_WORDS",
    "Problem",
    "choose_parallelism",
    "effective_parallelism",
    "first_error",
    "switched_on",
    "validate",
    "validation_enabled",
]

FALSE_WORDS = frozenset({"0", "false", "no", "off"})
"""Words that turn a switch off in an environment variable (``PARACORE_VALIDATE=0``)."""


def switched_on(text: str) -> bool:
    """An environment switch's value: anything but ``0``/``false``/``no``/``off`` is on."""
    return text.strip().lower() not in FALSE_WORDS


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


def _mem_gb_text(mb: int) -> str:
    return f"{math.floor(mb / 1024 * 10) / 10:g}"


def _mem_gb_value(mb: int) -> int | float:
    gb = mb / 1024
    return int(gb) if gb.is_integer() else gb


def validate(
    spec: ResolvedSpec, info: ClusterInfo, origins: Mapping[str, str] | None = None
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
    if res.partition is not None:
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
    if res.time_min is not None and limit is not None and res.time_min > limit:
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
    if nodes and res.mem_mb is not None:
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
    if nodes and res.cpus_per_task is not None:
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
    return switched_on(environ.get("PARACORE_VALIDATE", "1"))


def effective_parallelism(spec: ResolvedSpec) -> tuple[int | None, str | None]:
    """The array throttle to use, and a warning when the profile's cap lowered it."""
    res = spec.resources
    wanted = res.array_parallelism if isinstance(res.array_parallelism, int) else None
    cap = res.max_array_parallelism
    if wanted is None:
        return cap, None
    if cap is not None and wanted > cap:
        return cap, (
            f"array_parallelism={wanted} is above the profile's max_array_parallelism={cap}; "
            f"using {cap}"
        )
    return wanted, None
