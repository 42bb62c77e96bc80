"""Callables that adapt a user's function for a pool's map, run on the node.

They live in the runtime so unpickling them in a job imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Applied", "Star", "WithInitializer"]


class Star:
    """``fn(*item)``: what ``starmap`` calls for each item (a tuple of arguments)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, item: Iterable[Any]) -> Any:
        return self.fn(*item)


class Applied:
    """``fn(*args, **kwargs)`` for an item ``(args, kwargs)``: what ``apply`` calls."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, item: tuple[tuple[Any, ...], dict[str, Any]]) -> Any:
        args, kwargs = item
        return self.fn(*args, **kwargs)


class WithInitializer:
    """``fn(item)``, after ``initializer(*initargs)`` ran once in this process (per chunk)."""

    def __init__(
        self, fn: Callable[[Any], Any], initializer: Callable[..., Any], initargs: tuple[Any, ...]
    ) -> None:
        self.fn = fn
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.ready = False
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, item: Any) -> Any:
        if not self.ready:
            self.initializer(*self.initargs)
            self.ready = True
        return self.fn(item)
