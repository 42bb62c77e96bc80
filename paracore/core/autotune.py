"""Recommendation math for a pilot run (pure): sampling, statistics, formulas, clamping.

Nothing here submits, sleeps, reads the clock or the environment: the pilot runner
(:mod:`paracore.shell.pilot`) measures, this module turns measurements into a
:class:`Recommendation`, and :mod:`paracore.shell.report` shows it. The formulas are the seed's::

    time_min = ceil(p95_duration_s * 1.3 / 60)      at least 1 minute
    mem_gb   = ceil(max_rss_mb     * 1.3 / 1024)    at least 1 GB

each clamped to the partition's limits (MaxTime, node memory, node CPUs) with a warning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from paracore.core.cluster import PartitionLimits
from paracore.errors import PilotError

Measurement = Literal["time_only", "time_and_rss"]
MEASUREMENTS: tuple[str, ...] = ("time_only", "time_and_rss")

FACTOR = 1.3
"""Safety margin applied to the measured p95 duration and peak memory."""
MIN_TIME_MIN = 1
"""Never recommend less than one minute."""
MIN_MEM_GB = 1
"""Never recommend less than one GB (the finer ``mem`` never goes below 64 MB)."""
MIN_MEM_MB = 64
PARALLELISM_SHARE = 0.3
"""Share of a partition's CPUs an array may use at once when no throttle is configured."""
MAX_FAILED_FRACTION = 0.5
"""A pilot with more than this share of failed tasks gives no recommendation."""
SPIKE_RATIO = 2.0
"""A task whose peak memory is above this multiple of the median peak is flagged a spike."""


# ---------------------------------------------------------------- sampling and statistics


def sample_indices(population: int, size: int, seed: int) -> tuple[int, ...]:
    """Indices of a random sample of ``size`` out of ``population`` items, sorted.

    The same seed always gives the same sample; ``size`` above the population takes all.
    """
    if population < 0 or size < 0:
        raise ValueError("population and size must be >= 0")
    chosen = random.Random(seed).sample(range(population), min(size, population))
    return tuple(sorted(chosen))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics.

    The same definition as numpy's default, so it always lies between min and max.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    value = ordered[low] + (ordered[high] - ordered[low]) * fraction
    return min(max(value, ordered[0]), ordered[-1])  # guard against rounding


@attrs.frozen
class Stats:
    """Summary of one measured quantity over the successful pilot tasks."""

    n: int
    min: float
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """Statistics of a non-empty sample."""
        return cls(
            n=len(values),
            min=float(min(values)),
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            max=float(max(values)),
        )


# ---------------------------------------------------------------- measurements and limits


@attrs.frozen
class TaskMeasurement:
    """What one pilot task used, and how it ended.

    ``duration_s`` is wall time, ``max_rss_mb`` peak resident memory; ``source`` says where
    they came from: ``"sacct"`` (Slurm accounting) or ``"rusage"`` (measured in the task).
    """

    index: int  # position of the item in the caller's input
    label: str
    job_id: str = ""
    state: str = "COMPLETED"
    duration_s: float | None = None
    max_rss_mb: float | None = None
    error: str | None = None
    attempts: int = 1
    time_limit_min: int | None = None  # the limit the (last) attempt ran under
    source: str = "rusage"

    @property
    def ok(self) -> bool:
        """True when the task completed and its duration is known."""
        return self.state == "COMPLETED" and self.duration_s is not None


# ---------------------------------------------------------------- formulas


def time_from_p95(p95_s: float, factor: float = FACTOR) -> int:
    """``ceil(p95 * factor / 60)`` minutes, at least :data:`MIN_TIME_MIN`."""
    return max(MIN_TIME_MIN, math.ceil(p95_s * factor / 60))


def mem_gb_from_peak(max_rss_mb: float, factor: float = FACTOR) -> int:
    """``ceil(max_rss_mb * factor / 1024)`` GB, at least :data:`MIN_MEM_GB`."""
    return max(MIN_MEM_GB, math.ceil(max_rss_mb * factor / 1024))


def mem_mb_from_peak(max_rss_mb: float, factor: float = FACTOR) -> int:
    """The finer memory: ``max_rss_mb * factor`` rounded up to a multiple of 16 MB (>= 64)."""
    return max(MIN_MEM_MB, 16 * math.ceil(max_rss_mb * factor / 16))


def default_parallelism(total_cpus: int | None, cpus_per_task: int) -> int | None:
    """30% of the partition's CPUs, in tasks of ``cpus_per_task``, at least 1; None if unknown."""
    if total_cpus is None:
        return None
    return max(1, math.floor(total_cpus * PARALLELISM_SHARE / max(1, cpus_per_task)))


def clamp(value: int, upper: int | None, what: str, unit: str) -> tuple[int, str | None]:
    """``min(value, upper)`` and a warning when the limit lowered it (``upper=None``: none)."""
    if upper is None or value <= upper:
        return value, None
    return upper, f"{what} {value} {unit} is above the partition's limit; clamped to {upper} {unit}"


# ---------------------------------------------------------------- the recommendation


@attrs.frozen
class Recommendation:
    """A pilot's recommendation and its evidence.

    ``as_dict()`` gives the four keywords of ``map_cmds``/``map_func`` (so it works with the
    :func:`~paracore.core.transforms.autotuned` transform); ``mem`` is a finer memory string (e.g.
    ``"416M"``) for when whole GB are too coarse. The evidence: every task's measurement, the
    statistics of the successful ones, the formulas applied, the limits and the warnings.
    """

    time_min: int
    mem_gb: int
    cpus_per_task: int
    array_parallelism: int | None
    mem: str
    measurement: str
    factor: float
    seed: int | None
    requested_size: int
    population: int
    tasks: tuple[TaskMeasurement, ...]
    duration: Stats | None
    memory: Stats | None
    formulas: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...] = ()
    limits: PartitionLimits | None = None
    backend: str = ""

    def as_dict(self) -> dict[str, Any]:
        """``{time_min, mem_gb, cpus_per_task, array_parallelism}``: splat into map_cmds."""
        return {
            "time_min": self.time_min,
            "mem_gb": self.mem_gb,
            "cpus_per_task": self.cpus_per_task,
            "array_parallelism": self.array_parallelism,
        }

    @property
    def succeeded(self) -> tuple[TaskMeasurement, ...]:
        """The tasks whose measurements entered the statistics."""
        return tuple(t for t in self.tasks if t.ok)

    @property
    def failed(self) -> tuple[TaskMeasurement, ...]:
        """The tasks left out of the statistics (failed, killed, or not measured)."""
        return tuple(t for t in self.tasks if not t.ok)

    @property
    def over_time_limit(self) -> tuple[TaskMeasurement, ...]:
        """Successful tasks that took longer than the recommended limit (the long tail)."""
        limit = self.time_min * 60
        return tuple(t for t in self.succeeded if (t.duration_s or 0) > limit)

    @property
    def spikes(self) -> tuple[TaskMeasurement, ...]:
        """Tasks whose peak memory is above twice the median peak."""
        if self.memory is None:
            return ()
        bar = self.memory.p50 * SPIKE_RATIO
        return tuple(t for t in self.succeeded if t.max_rss_mb is not None and t.max_rss_mb > bar)


class Suggestion(dict[str, Any]):
    """What :func:`~paracore.shell.pilot.autotune_from_pilot` returns: a plain dict of
    ``time_min, mem_gb, cpus_per_task, array_parallelism`` (``map_cmds(cmds, **suggest)``)
    that also carries the full :class:`Recommendation` as ``.recommendation``."""

    def __init__(self, recommendation: Recommendation) -> None:
        super().__init__(recommendation.as_dict())
        self.recommendation = recommendation

    def as_dict(self) -> dict[str, Any]:
        """The plain dict of the four keywords."""
        return dict(self)


def _fmt_mem(mb: int) -> str:
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def recommend(
    tasks: Sequence[TaskMeasurement],
    *,
    measurement: Measurement = "time_and_rss",
    cpus_per_task: int,
    mem_gb_guess: float,
    limits: PartitionLimits | None = None,
    array_parallelism: int | None = None,
    requested_size: int | None = None,
    population: int | None = None,
    seed: int | None = None,
    factor: float = FACTOR,
    max_failed_fraction: float = MAX_FAILED_FRACTION,
    backend: str = "",
) -> Recommendation:
    """Turn pilot measurements into a :class:`Recommendation` (pure).

    Failed tasks are left out of the statistics; more than ``max_failed_fraction`` of them
    raises :class:`PilotError`. With ``measurement="time_only"`` memory is the guess. Every
    value is clamped to ``limits`` (a warning says so) and never below the minimums.
    """
    if measurement not in MEASUREMENTS:
        raise ValueError(f"measurement must be one of {MEASUREMENTS}, got {measurement!r}")
    tasks = tuple(tasks)
    requested = len(tasks) if requested_size is None else requested_size
    ok = [t for t in tasks if t.ok]
    failed = [t for t in tasks if not t.ok]
    if not tasks:
        raise PilotError("the pilot ran no tasks: give at least one item")
    if len(failed) > max_failed_fraction * len(tasks) or not ok:
        lines = [
            f"  item {t.index} ({t.label}): {t.state}{': ' + t.error if t.error else ''}"
            for t in failed[:10]
        ]
        raise PilotError(
            f"{len(failed)} of {len(tasks)} pilot tasks failed (more than "
            f"{max_failed_fraction:.0%}); no recommendation. Fix the failures, or raise "
            "time_min_guess / mem_gb_guess if they were killed:\n" + "\n".join(lines)
        )
    warnings: list[str] = []
    if failed:
        warnings.append(
            f"{len(failed)} of {len(tasks)} pilot tasks failed and are left out of the "
            "statistics: " + ", ".join(f"item {t.index} {t.state}" for t in failed[:10])
        )
    if len(ok) < requested:
        warnings.append(
            f"only {len(ok)} measured tasks of the {requested} requested: the estimate is weak"
        )
    elif len(ok) < 5:
        warnings.append(f"only {len(ok)} measured tasks: p95 is close to the maximum, weak")

    duration = Stats.of([float(t.duration_s) for t in ok])  # type: ignore[arg-type]
    time_min = time_from_p95(duration.p95, factor)
    formulas = [
        ("time_min", f"ceil(p95 {duration.p95:.1f} s x {factor} / 60) = {time_min} min"),
    ]
    max_time = limits.max_time_min if limits else None
    time_min, note = clamp(time_min, max_time, "time_min", "min")
    if note:
        warnings.append(note + "; tasks may time out")

    peaks = [float(t.max_rss_mb) for t in ok if t.max_rss_mb is not None]
    memory: Stats | None = None
    node_mem_gb = None if not limits or limits.node_mem_mb is None else limits.node_mem_mb // 1024
    if measurement == "time_and_rss" and peaks:
        memory = Stats.of(peaks)
        if len(peaks) < len(ok):
            warnings.append(f"peak memory is known for {len(peaks)} of {len(ok)} tasks only")
        mem_gb = mem_gb_from_peak(memory.max, factor)
        mem_mb = mem_mb_from_peak(memory.max, factor)
        formulas.append(
            ("mem_gb", f"ceil(max {memory.max:.1f} MB x {factor} / 1024) = {mem_gb} GB")
        )
        formulas.append(("mem", f"max {memory.max:.1f} MB x {factor}, to 16 MB = {mem_mb} MB"))
    else:
        mem_gb = max(MIN_MEM_GB, math.ceil(mem_gb_guess))
        mem_mb = mem_gb * 1024
        why = "not measured (time_only)" if measurement == "time_only" else "no MaxRSS reported"
        formulas.append(("mem_gb", f"the guess, {why} = {mem_gb} GB"))
        if measurement == "time_and_rss":
            warnings.append("no task reported its peak memory: mem_gb is the guess")
    mem_gb, note = clamp(mem_gb, node_mem_gb, "mem_gb", "GB")
    if note:
        warnings.append(note)
    if limits and limits.node_mem_mb is not None:
        mem_mb = min(mem_mb, limits.node_mem_mb)

    node_cpus = limits.node_cpus if limits else None
    cpus, note = clamp(max(1, int(cpus_per_task)), node_cpus, "cpus_per_task", "CPUs")
    formulas.append(("cpus_per_task", f"the guess = {cpus}"))
    if note:
        warnings.append(note)

    total_cpus = limits.total_cpus if limits else None
    if array_parallelism is not None:
        parallelism: int | None = max(1, int(array_parallelism))
        formulas.append(("array_parallelism", f"given (profile) = {parallelism}"))
    else:
        parallelism = default_parallelism(total_cpus, cpus)
        formulas.append(
            (
                "array_parallelism",
                f"{PARALLELISM_SHARE:.0%} of {total_cpus} partition CPUs / {cpus} per task, "
                f"at least 1 = {parallelism}"
                if parallelism is not None
                else "partition size unknown: left to configuration",
            )
        )
    if parallelism is not None and total_cpus is not None:
        parallelism, note = clamp(
            parallelism, max(1, total_cpus // cpus), "array_parallelism", "tasks"
        )
        if note:
            warnings.append(note)

    rec = Recommendation(
        time_min=time_min,
        mem_gb=mem_gb,
        cpus_per_task=cpus,
        array_parallelism=parallelism,
        mem=_fmt_mem(mem_mb),
        measurement=measurement,
        factor=factor,
        seed=seed,
        requested_size=requested,
        population=len(tasks) if population is None else population,
        tasks=tasks,
        duration=duration,
        memory=memory,
        formulas=tuple(formulas),
        warnings=tuple(warnings),
        limits=limits,
        backend=backend,
    )
    extra: list[str] = []
    if rec.over_time_limit:
        slow = rec.over_time_limit
        extra.append(
            f"long tail: {len(slow)} of {len(ok)} pilot tasks ran longer than the recommended "
            f"{time_min} min (slowest {duration.max:.0f} s); p95 is used, so expect about that "
            "share of the full run to time out, or raise time_min"
        )
    if rec.spikes:
        extra.append(
            f"memory spikes: {len(rec.spikes)} task(s) peaked above {SPIKE_RATIO:g}x the median "
            f"({memory.p50:.0f} MB); mem_gb follows the maximum, so it covers them"  # type: ignore[union-attr]
        )
    return attrs.evolve(rec, warnings=rec.warnings + tuple(extra)) if extra else rec
