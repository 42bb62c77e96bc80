"""The pure recommendation math: sampling, percentiles, formulas, clamping, edge cases."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paracore import JobSpec, autotuned
from paracore.core.autotune import (
    MIN_MEM_GB,
    MIN_TIME_MIN,
    PartitionLimits,
    PilotError,
    Recommendation,
    Suggestion,
    TaskMeasurement,
    default_parallelism,
    mem_gb_from_peak,
    percentile,
    recommend,
    sample_indices,
    time_from_p95,
)
from tests.strategies import partition_limits, pilot_durations, pilot_peaks, pilot_tasks


def _ok(durations, peaks=None) -> list[TaskMeasurement]:
    peaks = peaks or [100.0] * len(durations)
    return [
        TaskMeasurement(index=i, label=f"t{i}", duration_s=d, max_rss_mb=m)
        for i, (d, m) in enumerate(zip(durations, peaks, strict=True))
    ]


def _rec(tasks, **kw) -> Recommendation:
    kw.setdefault("cpus_per_task", 1)
    kw.setdefault("mem_gb_guess", 8)
    return recommend(tasks, **kw)


# ---------------------------------------------------------------- properties


@given(st.integers(0, 500), st.integers(0, 600), st.integers())
def test_sample_is_reproducible_for_a_seed(population: int, size: int, seed: int) -> None:
    """The same seed gives the same sample: sorted, distinct, in range, of min(size, n)."""
    first = sample_indices(population, size, seed)
    assert first == sample_indices(population, size, seed)
    assert list(first) == sorted(set(first))
    assert len(first) == min(size, population)
    assert all(0 <= i < population for i in first)


@given(st.lists(pilot_durations(), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_lies_between_min_and_max(values: list[float], q: float) -> None:
    """Any percentile of a sample lies between its min and max; p0 is min and p100 max."""
    assert min(values) <= percentile(values, q) <= max(values)
    assert percentile(values, 0) == min(values)
    assert percentile(values, 100) == max(values)


@given(st.lists(pilot_durations(), min_size=1, max_size=50))
def test_p95_is_monotone_in_q(values: list[float]) -> None:
    """p50 <= p95 <= max for any sample."""
    assert percentile(values, 50) <= percentile(values, 95) <= max(values)


@given(pilot_tasks(), st.data(), st.one_of(st.none(), partition_limits()))
def test_more_time_or_memory_never_lowers_the_recommendation(tasks, data, limits) -> None:
    """Monotone: making any task slower or bigger never gives a smaller recommendation."""
    i = data.draw(st.integers(0, len(tasks) - 1))
    more_time = data.draw(st.floats(0, 1e5, allow_nan=False))
    more_mem = data.draw(st.floats(0, 1e5, allow_nan=False))
    bigger = list(tasks)
    bigger[i] = attrs.evolve(
        tasks[i],
        duration_s=tasks[i].duration_s + more_time,
        max_rss_mb=tasks[i].max_rss_mb + more_mem,
    )
    low, high = _rec(tasks, limits=limits), _rec(bigger, limits=limits)
    assert high.time_min >= low.time_min
    assert high.mem_gb >= low.mem_gb
    assert high.duration.p95 >= low.duration.p95


@given(pilot_tasks(), st.one_of(st.none(), partition_limits()), st.integers(1, 64))
def test_recommendation_stays_within_minimums_and_clamps(tasks, limits, cpus) -> None:
    """Never below 1 minute / 1 GB / 1 CPU / 1 task, never above the partition's limits."""
    rec = _rec(tasks, limits=limits, cpus_per_task=cpus)
    assert rec.time_min >= MIN_TIME_MIN
    assert rec.mem_gb >= MIN_MEM_GB
    assert rec.cpus_per_task >= 1
    assert rec.array_parallelism is None or rec.array_parallelism >= 1
    if limits is not None:
        if limits.max_time_min is not None:
            assert rec.time_min <= limits.max_time_min
        if limits.node_mem_mb is not None:
            assert rec.mem_gb <= max(MIN_MEM_GB, limits.node_mem_mb // 1024)
        if limits.node_cpus is not None:
            assert rec.cpus_per_task <= limits.node_cpus
        if limits.total_cpus is not None and rec.array_parallelism is not None:
            assert rec.array_parallelism <= max(1, limits.total_cpus // rec.cpus_per_task)


@given(pilot_tasks())
def test_unclamped_recommendation_covers_p95_and_peak_with_the_margin(tasks) -> None:
    """Without limits: time_min*60 >= 1.3*p95 and mem_gb*1024 >= 1.3*max peak."""
    rec = _rec(tasks)
    assert rec.time_min * 60 >= rec.duration.p95 * 1.3 - 1e-6
    assert rec.mem_gb * 1024 >= rec.memory.max * 1.3 - 1e-6


@given(pilot_peaks())
def test_finer_mem_is_at_most_mem_gb_and_covers_the_margin(peak: float) -> None:
    """The finer ``mem`` string covers 1.3x the peak and never exceeds ``mem_gb``."""
    rec = _rec(_ok([10.0], [peak]))
    mb = int(rec.mem[:-1]) * (1024 if rec.mem.endswith("G") else 1)
    assert mb >= peak * 1.3 - 1e-6
    assert mb <= rec.mem_gb * 1024


# ---------------------------------------------------------------- formulas


def test_seed_formulas() -> None:
    """time_min = ceil(p95*1.3/60), mem_gb = ceil(max_rss_mb*1.3/1024), with minimums."""
    assert time_from_p95(100) == math.ceil(130 / 60) == 3
    assert time_from_p95(0) == 1
    assert mem_gb_from_peak(1000) == 2
    assert mem_gb_from_peak(0) == 1
    assert default_parallelism(100, 4) == 7
    assert default_parallelism(2, 1) == 1
    assert default_parallelism(None, 1) is None


def test_as_dict_splats_into_map_cmds_and_autotuned() -> None:
    """as_dict has the four seed keys; the Suggestion is that dict and works with autotuned."""
    rec = _rec(_ok([30, 40, 50, 60, 70]), limits=PartitionLimits("p", total_cpus=20))
    suggest = Suggestion(rec)
    assert set(suggest) == {"time_min", "mem_gb", "cpus_per_task", "array_parallelism"}
    assert suggest == rec.as_dict() and suggest.recommendation is rec
    spec = autotuned(suggest)(JobSpec.command("true"))
    assert spec.resources.time_min == 2 and spec.resources.mem_mb == 1024
    assert spec.resources.array_parallelism == 6
    assert autotuned(rec)(JobSpec.command("true")) == spec
    assert {f for f, _text in rec.formulas} >= {"time_min", "mem_gb", "cpus_per_task"}


# ---------------------------------------------------------------- edge cases


def test_failed_tasks_are_reported_and_left_out() -> None:
    """A failed task is kept in the evidence, left out of the statistics, and warned about."""
    tasks = [*_ok([10, 20, 30]), TaskMeasurement(index=9, label="bad", state="FAILED", error="x")]
    rec = _rec(tasks)
    assert rec.duration.n == 3 and rec.duration.max == 30
    assert [t.index for t in rec.failed] == [9]
    assert any("1 of 4 pilot tasks failed" in w for w in rec.warnings)


def test_too_many_failures_raise_pilot_error() -> None:
    """More than half of the pilot failing gives no recommendation but a clear error."""
    bad = [TaskMeasurement(index=i, label=f"b{i}", state="FAILED", error="boom") for i in range(3)]
    with pytest.raises(PilotError, match="3 of 5 pilot tasks failed") as info:
        _rec([*_ok([1, 2]), *bad])
    assert "item 0 (b0): FAILED: boom" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    _rec([*_ok([1, 2, 3]), *bad[:2]])  # exactly... 2 of 5 is fine


def test_long_tail_uses_p95_and_reports_the_tail() -> None:
    """A long tail: p95 sets the limit; tasks beyond it are reported as over the limit."""
    durations = [60.0] * 19 + [3000.0]
    rec = _rec(_ok(durations))
    assert rec.duration.p95 == pytest.approx(60 + 0.05 * 2940)
    assert rec.time_min == math.ceil(rec.duration.p95 * 1.3 / 60)
    assert [t.duration_s for t in rec.over_time_limit] == [3000.0]
    assert any("long tail" in w for w in rec.warnings)


def test_memory_spike_is_covered_and_flagged() -> None:
    """A memory spike: mem_gb follows the maximum, and the spike is named."""
    rec = _rec(_ok([10] * 10, [200.0] * 9 + [5000.0]))
    assert rec.mem_gb == math.ceil(5000 * 1.3 / 1024)
    assert [t.max_rss_mb for t in rec.spikes] == [5000.0]
    assert any("memory spikes" in w for w in rec.warnings)


def test_small_sample_warns_weak_estimate() -> None:
    """Fewer measured tasks than requested: the estimate is called weak."""
    rec = _rec(_ok([10, 20]), requested_size=20)
    assert any("only 2 measured tasks of the 20 requested" in w for w in rec.warnings)


def test_clamped_values_warn() -> None:
    """Values above the partition's limits are clamped, each with a warning."""
    limits = PartitionLimits("short", max_time_min=5, node_mem_mb=4096, node_cpus=2, total_cpus=2)
    rec = _rec(_ok([3600.0], [10_000.0]), limits=limits, cpus_per_task=8)
    assert (rec.time_min, rec.mem_gb, rec.cpus_per_task) == (5, 4, 2)
    assert rec.mem == "4G"
    text = " ".join(rec.warnings)
    assert "time_min 78 min" in text and "mem_gb 13 GB" in text and "cpus_per_task 8" in text


def test_time_only_uses_the_memory_guess() -> None:
    """measurement='time_only' ignores peaks: mem_gb is the guess, memory stats are absent."""
    rec = _rec(_ok([10, 20]), measurement="time_only", mem_gb_guess=3)
    assert rec.mem_gb == 3 and rec.memory is None
    assert "time_only" in dict(rec.formulas)["mem_gb"]


def test_given_array_parallelism_wins_over_the_share() -> None:
    """A profile's array_parallelism is used (clamped to what the partition can run)."""
    limits = PartitionLimits("p", total_cpus=100)
    assert _rec(_ok([1]), limits=limits, array_parallelism=20).array_parallelism == 20
    assert _rec(_ok([1]), limits=limits, array_parallelism=500).array_parallelism == 100
    assert _rec(_ok([1]), limits=limits).array_parallelism == 30
