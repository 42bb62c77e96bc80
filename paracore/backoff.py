"""Retry policies and their backoff schedules (pure).

The schedule is computed from the policy and an injected :class:`random.Random`; only the
interpreter sleeps. Delay before retry ``n`` (1-based) is
``min(cap_s, backoff_s * multiplier ** (n - 1))``, then scaled by a factor drawn uniformly
from ``[1 - jitter, 1 + jitter]`` and clipped to the cap again.
"""

from __future__ import annotations

import random

import attrs

from paracore.exceptions import SpecError


def _non_negative_int(field: str):
    def check(_inst: object, _attr: attrs.Attribute, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(field, value, "a whole number >= 0")

    return check


def _non_negative_float(field: str):
    def check(_inst: object, _attr: attrs.Attribute, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise SpecError(field, value, "a number of seconds >= 0")

    return check


def _multiplier(_inst: object, _attr: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise SpecError("retry.multiplier", value, "a number >= 1 (delays never decrease)")


def _jitter(_inst: object, _attr: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise SpecError("retry.jitter", value, "a fraction in [0, 1), e.g. 0.1 for +/-10%")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often a failed job is submitted again, and how long to wait before each retry."""

    retries: int = attrs.field(default=0, validator=_non_negative_int("retries"))
    backoff_s: float = attrs.field(default=30.0, validator=_non_negative_float("retry_backoff_s"))
    multiplier: float = attrs.field(default=2.0, validator=_multiplier)
    cap_s: float = attrs.field(default=3600.0, validator=_non_negative_float("retry.cap_s"))
    jitter: float = attrs.field(default=0.1, validator=_jitter)

    @property
    def max_attempts(self) -> int:
        """The first attempt plus every retry."""
        return self.retries + 1


def base_delay(policy: RetryPolicy, retry: int) -> float:
    """Delay before retry number ``retry`` (1-based), before jitter."""
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    # Multiply step by step and stop at the cap, so huge retry numbers never overflow.
    delay = policy.backoff_s
    for _ in range(retry - 1):
        delay *= policy.multiplier
        if delay >= policy.cap_s:
            return policy.cap_s
    return min(policy.cap_s, delay)


def jittered(policy: RetryPolicy, delay: float, rng: random.Random) -> float:
    """``delay`` scaled by a random factor within the policy's jitter band, never above the cap."""
    if policy.jitter == 0:
        return delay
    factor = rng.uniform(1 - policy.jitter, 1 + policy.jitter)
    return min(policy.cap_s, delay * factor)


def schedule(policy: RetryPolicy, rng: random.Random | None = None) -> tuple[float, ...]:
    """All delays, one before each retry; without ``rng`` the un-jittered schedule."""
    delays = (base_delay(policy, n) for n in range(1, policy.retries + 1))
    if rng is None:
        return tuple(delays)
    return tuple(jittered(policy, d, rng) for d in delays)
