"""Laws of paracore.core.retry: monotone capped delays, bounded jitter, reproducible schedules."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paracore.core.retry import RetryPolicy, base_delay, jittered, schedule
from paracore.errors import SpecError
from tests.strategies import retry_policies

_REL = 1e-9


@given(retry_policies(max_retries=60))
def test_base_delays_never_decrease_and_never_exceed_cap(policy: RetryPolicy) -> None:
    """Un-jittered delays are non-decreasing and never above the cap."""
    delays = schedule(policy)
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert all(0 <= d <= policy.cap_s for d in delays)


@given(retry_policies(), st.integers(1, 10_000))
def test_base_delay_formula(policy: RetryPolicy, retry: int) -> None:
    """Delay n is min(cap, backoff * multiplier**(n-1)), even for huge n (no overflow)."""
    delay = base_delay(policy, retry)
    if policy.backoff_s == 0:
        raw = 0.0
    else:  # in log space: multiplier**(n-1) alone may overflow while the product does not
        log_raw = math.log(policy.backoff_s) + (retry - 1) * math.log(policy.multiplier)
        raw = math.exp(log_raw) if log_raw < 700 else math.inf
    assert delay == pytest.approx(min(policy.cap_s, raw), rel=_REL)


@given(retry_policies(), st.integers(1, 50), st.integers(0, 2**32))
def test_jitter_stays_in_band(policy: RetryPolicy, retry: int, seed: int) -> None:
    """A jittered delay d' lies in [d*(1-j), min(cap, d*(1+j))]."""
    delay = base_delay(policy, retry)
    value = jittered(policy, delay, random.Random(seed))
    low = delay * (1 - policy.jitter)
    high = min(policy.cap_s, delay * (1 + policy.jitter))
    assert low * (1 - _REL) <= value <= high * (1 + _REL)


@given(retry_policies(), st.integers(0, 2**32))
def test_jittered_schedule_stays_in_band_and_under_cap(policy: RetryPolicy, seed: int) -> None:
    """Every entry of a jittered schedule is within its own base delay's band."""
    base = schedule(policy)
    for d, j in zip(base, schedule(policy, random.Random(seed)), strict=True):
        assert (
            d * (1 - policy.jitter) * (1 - _REL) <= j <= min(policy.cap_s, d * (1 + policy.jitter))
        )


@given(retry_policies(), st.integers(0, 2**32))
def test_schedule_length_equals_retries(policy: RetryPolicy, seed: int) -> None:
    """There is one delay before each retry, with or without jitter."""
    assert len(schedule(policy)) == policy.retries
    assert len(schedule(policy, random.Random(seed))) == policy.retries


@given(retry_policies(), st.integers(0, 2**32))
def test_schedule_reproducible_with_same_seed(policy: RetryPolicy, seed: int) -> None:
    """The same seeded random.Random gives the same schedule."""
    assert schedule(policy, random.Random(seed)) == schedule(policy, random.Random(seed))


@given(retry_policies().filter(lambda p: p.jitter == 0 or p.retries == 0), st.integers(0, 99))
def test_zero_jitter_is_the_base_schedule(policy: RetryPolicy, seed: int) -> None:
    """Without jitter the randomised schedule equals the base schedule."""
    assert schedule(policy, random.Random(seed)) == schedule(policy)


def test_default_schedule_example() -> None:
    """The documented example: 30 s doubling, capped at the hour."""
    policy = RetryPolicy(retries=9, jitter=0)
    assert schedule(policy) == (30, 60, 120, 240, 480, 960, 1920, 3600, 3600)


def test_base_delay_rejects_retry_zero() -> None:
    """Retry numbers start at 1."""
    with pytest.raises(ValueError):
        base_delay(RetryPolicy(), 0)


def test_max_attempts_counts_the_first() -> None:
    """max_attempts is the first attempt plus every retry."""
    assert RetryPolicy(retries=3).max_attempts == 4


@pytest.mark.parametrize(
    "fields",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"retries": True},
        {"backoff_s": -0.1},
        {"backoff_s": float("nan")},
        {"backoff_s": "30"},
        {"multiplier": 0.5},
        {"multiplier": float("nan")},
        {"cap_s": -1},
        {"jitter": 1},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"jitter": True},
    ],
)
def test_retry_policy_rejects_invalid_values(fields: dict) -> None:
    """Negative counts, shrinking multipliers, NaN and out-of-band jitter raise SpecError."""
    with pytest.raises(SpecError):
        RetryPolicy(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"retries": 0},
        {"backoff_s": 0},
        {"multiplier": 1},
        {"cap_s": 0},
        {"jitter": 0},
        {"jitter": 0.99},
    ],
)
def test_retry_policy_accepts_boundaries(fields: dict) -> None:
    """Zero retries, zero delays, multiplier 1 and jitter just under 1 are valid."""
    assert RetryPolicy(**fields)
