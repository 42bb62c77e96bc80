"""The chunking arithmetic: every item in exactly one chunk, in order, sizes balanced, and
never more chunks than one array may hold."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from paracore.core.chunking import MIN_TASK_S, TASKS_PER_SLOT, chunk_size_for, pack

counts = st.integers(min_value=0, max_value=5000)
sizes = st.integers(min_value=1, max_value=6000)


@given(counts, sizes)
def test_pack_puts_every_item_in_exactly_one_chunk_in_order(n: int, size: int) -> None:
    chunks = pack(range(n), size)
    assert [p for chunk in chunks for p in chunk] == list(range(n))
    assert len(chunks) == math.ceil(n / size)


@given(counts, sizes)
def test_pack_sizes_differ_by_at_most_one_and_never_exceed_the_size(n: int, size: int) -> None:
    lengths = [len(chunk) for chunk in pack(range(n), size)]
    if lengths:
        assert max(lengths) - min(lengths) <= 1
        assert max(lengths) <= size
        assert min(lengths) >= 1


@given(st.lists(st.integers(0, 10**6), unique=True, max_size=300), sizes)
def test_pack_keeps_any_positions_and_their_order(positions: list[int], size: int) -> None:
    chunks = pack(sorted(positions), size)
    assert [p for chunk in chunks for p in chunk] == sorted(positions)


def test_pack_of_a_range_makes_ranges_not_lists() -> None:
    """A million items are cut into a few ranges, not a million-element list per chunk."""
    chunks = pack(range(1_000_000), 125_000)
    assert all(isinstance(chunk, range) for chunk in chunks)
    assert [len(c) for c in chunks] == [125_000] * 8


@given(
    counts,
    st.integers(min_value=1, max_value=512),
    st.integers(min_value=1, max_value=1001),
    st.one_of(st.none(), st.floats(min_value=0.001, max_value=3600)),
    st.one_of(st.none(), st.floats(min_value=60, max_value=7 * 86400)),
)
def test_chunk_size_never_needs_more_chunks_than_an_array_holds(
    n: int, parallelism: int, max_array: int, item_s: float | None, limit_s: float | None
) -> None:
    size = chunk_size_for(
        n,
        parallelism=parallelism,
        max_array_size=max_array,
        item_seconds=item_s,
        time_limit_s=limit_s,
    )
    assert 1 <= size <= max(1, n)
    assert len(pack(range(n), size)) <= max_array


@given(st.integers(min_value=1, max_value=512), st.integers(min_value=1, max_value=1001))
def test_small_maps_keep_one_task_per_item(parallelism: int, max_array: int) -> None:
    """Up to TASKS_PER_SLOT tasks per slot, each item is its own task (the seed behaviour)."""
    n = min(TASKS_PER_SLOT * parallelism, max_array)
    assert chunk_size_for(n, parallelism=parallelism, max_array_size=max_array) == 1


def test_large_maps_get_a_few_tasks_per_slot() -> None:
    size = chunk_size_for(100_000, parallelism=4, max_array_size=1001)
    assert len(pack(range(100_000), size)) == TASKS_PER_SLOT * 4


def test_measured_items_make_chunks_of_at_least_a_minute_within_half_the_walltime() -> None:
    # 10 000 items of 0.5 s on 100 slots: 400 tasks of 25 items would run 12.5 s each
    size = chunk_size_for(10_000, parallelism=100, max_array_size=1001, item_seconds=0.5)
    assert size * 0.5 >= MIN_TASK_S
    # with a 1-minute walltime a chunk holds at most 30 s of items
    size = chunk_size_for(
        10_000, parallelism=100, max_array_size=1001, item_seconds=0.5, time_limit_s=60
    )
    assert size * 0.5 <= 30
