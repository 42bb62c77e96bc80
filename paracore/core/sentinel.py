"""The "not given" sentinel: distinct from ``None``, which means "cleared"."""

from __future__ import annotations

import enum
from typing import Final, Literal


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
