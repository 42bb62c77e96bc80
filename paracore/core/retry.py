"""Retry policies and their backoff schedules (pure).

The schedule is computed from the policy and an injected :class:`random.Random`; only the
interpreter sleeps. Delay before retry ``n`` (1-based) is
``min(cap_s, backoff_s * multiplier ** (n - 1))``, then scaled by a factor drawn uniformly
from ``[1 - jitter, 1 + jitter]`` and clipped to the cap again.

Which failures are retried is the policy's ``retry_on`` (classes from
:mod:`paracore.core.failures`); what the next attempt asks for is
:func:`paracore.core.escalation.escalate`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs

from paracore.core.failures import DEFAULT_RETRY_ON, NEVER_RETRIED, FailureClass
from paracore.errors import SpecError

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""The shape of an attrs validator."""


def _non_negative_int(field: str) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(field, value, "a whole number >= 0")

    return check


def _non_negative_float(field: str) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise SpecError(field, value, "a number of seconds >= 0")

    return check


def _multiplier(_inst: object, _attr: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise SpecError("retry.multiplier", value, "a number >= 1 (delays never decrease)")


def _jitter(_inst: object, _attr: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise SpecError("retry.jitter", value, "a fraction in [0, 1), e.g. 0.1 for +/-10%")


def _failure_classes(value: object) -> frozenset[FailureClass]:
    if isinstance(value, frozenset) and all(isinstance(v, FailureClass) for v in value):
        return value  # already canonical (every evolve of a policy passes it again)
    if isinstance(value, str | FailureClass):
        value = (value,)
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        items = None
    known = ", ".join(c.value for c in FailureClass)
    if items is None:
        raise SpecError("retry.retry_on", value, f"a set of failure classes among {known}")
    out = set()
    for item in items:
        try:
            out.add(item if isinstance(item, FailureClass) else FailureClass(str(item)))
        except ValueError:
            raise SpecError("retry.retry_on", item, f"failure classes among {known}") from None
    return frozenset(out)


def _factor(field: str) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 100:
            raise SpecError(field, value, "a factor >= 1 (1 keeps the request unchanged)")

    return check


def _positive_int(field: str) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(field, value, "a whole number >= 1")

    return check


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often failed work is submitted again, which failures count, and what changes.

    ``retries`` is the budget: at most ``retries + 1`` attempts. Only failures whose class is
    in ``retry_on`` spend it (default: timeout, out of memory, node failure, preemption, boot
    failure, scheduler unreachable); a cancellation or a failed dependency is never retried.
    After running out of memory the next attempt asks for ``mem_factor`` times the memory;
    after a timeout ``time_factor`` times the walltime; after a node failure the node is
    excluded (``exclude_failed_nodes``). ``submit_attempts`` bounds how often one ``sbatch``
    is tried when the controller does not answer.
    """

    retries: int = attrs.field(default=0, validator=_non_negative_int("retries"))
    backoff_s: float = attrs.field(default=30.0, validator=_non_negative_float("retry_backoff_s"))
    multiplier: float = attrs.field(default=2.0, validator=_multiplier)
    cap_s: float = attrs.field(default=3600.0, validator=_non_negative_float("retry.cap_s"))
    jitter: float = attrs.field(default=0.1, validator=_jitter)
    retry_on: frozenset[FailureClass] = attrs.field(
        default=DEFAULT_RETRY_ON, converter=_failure_classes
    )
    mem_factor: float = attrs.field(default=1.5, validator=_factor("retry.mem_factor"))
    time_factor: float = attrs.field(default=1.5, validator=_factor("retry.time_factor"))
    exclude_failed_nodes: bool = True
    submit_attempts: int = attrs.field(default=3, validator=_positive_int("retry.submit_attempts"))

    @property
    def max_attempts(self) -> int:
        """The first attempt plus every retry."""
        return self.retries + 1

    def retries_class(self, failure: FailureClass) -> bool:
        """Whether a failure of this class may be retried (budget permitting)."""
        return failure in self.retry_on and failure not in NEVER_RETRIED


_SMALLEST_NORMAL = 2.2250738585072014e-308
_SUBNORMAL_SCALE = 2.0**600


def base_delay(policy: RetryPolicy, retry: int) -> float:
    """Delay before retry number ``retry`` (1-based), before jitter."""
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    # Multiply step by step and stop at the cap, so huge retry numbers never overflow. A
    # subnormal start would lose precision at every step: scale it by a power of two (exact).
    scale = _SUBNORMAL_SCALE if 0 < policy.backoff_s < _SMALLEST_NORMAL else 1.0
    delay, cap = policy.backoff_s * scale, policy.cap_s * scale
    for _ in range(retry - 1):
        delay *= policy.multiplier
        if delay >= cap:
            return policy.cap_s
    return min(policy.cap_s, delay / scale)


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


def may_retry(policy: RetryPolicy, failure: FailureClass, retries_used: int) -> bool:
    """Whether the attempt after ``retries_used`` retries may be made for this failure."""
    return policy.retries_class(failure) and retries_used < policy.retries
