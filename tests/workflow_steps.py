"""Functions the workflow tests run as steps (top-level, so they pickle by reference)."""

from __future__ import annotations

from pathlib import Path


def noop() -> None:
    """A step that does nothing."""


def make(n: int) -> list[int]:
    """0 .. n-1."""
    return list(range(n))


def square_all(xs: list[int]) -> list[int]:
    """Each number squared."""
    return [x * x for x in xs]


def times(x: int, k: int = 2) -> int:
    """``x`` times ``k``."""
    return x * k


def add(*parts: list[int]) -> int:
    """The sum of every number of every list."""
    return sum(sum(p) for p in parts)


def fail_until(marker: str) -> str:
    """Fails while ``marker`` does not exist (a test creates it to 'fix' the step)."""
    if not Path(marker).exists():
        raise ValueError(f"no {Path(marker).name} yet")
    return "fixed"
