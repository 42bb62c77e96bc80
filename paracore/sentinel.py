"""The "not given" sentinel: distinct from ``None``, which means "cleared"."""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeVar

T = TypeVar("T")


class _NotGiven(enum.Enum):
    """Type of :data:`NOT_GIVEN`; an enum so it pickles and compares by identity."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = _NotGiven.NOT_GIVEN
"""A field nobody has set yet, which configuration may fill; ``None`` means explicitly cleared."""

NotGiven = Literal[_NotGiven.NOT_GIVEN]


def is_given(value: object) -> bool:
    """True when ``value`` was set by someone (``None`` counts as set: it means cleared)."""
    return value is not NOT_GIVEN


def given_or(value: T | NotGiven, default: T) -> T:
    """``value`` if it was given, else ``default``."""
    return default if value is NOT_GIVEN else value  # type: ignore[return-value]
