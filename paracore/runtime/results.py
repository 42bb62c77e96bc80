"""Results passed between the steps of a workflow, on the node.

A step that another step takes a :class:`~paracore.core.plan_graph.Result` of runs as a
:class:`StepCall`, which saves its return value to a file chosen at submit time (the same
file whatever job id an attempt gets). The step taking it receives a :class:`SavedResult`
(or :class:`SavedResults` for a map step) in place of the Result, read back just before the
call. Saved results are written and read through :mod:`paracore.runtime.safe_files` (files of
yours, 0600, in folders of yours). Only the standard library and cloudpickle are imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.runtime.safe_files import read_private, write_private

__all__ = [
    "MissingResult",
    "SavedResult",
    "SavedResults",
    "StepCall",
    "read_saved",
    "replaced",
    "resolved",
    "save",
]


class MissingResult(RuntimeError):
    """An upstream step's result file is not there (it did not succeed, or the files are not
    shared between this node and the one it ran on)."""


def save(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically (a reader never sees half a file), 0600, making
    missing folders 0700."""
    write_private(path, cloudpickle.dumps(value))


def read_saved(path: Path, step: str) -> Any:
    """The value a step saved at ``path``; raises UntrustedFile for a file (or folder) someone
    else could have written."""
    try:
        blob = read_private(path)
    except FileNotFoundError:
        raise MissingResult(
            f"the result of step {step!r} is not at {path}: it did not succeed, or that folder "
            "is not shared with this node"
        ) from None
    return cloudpickle.loads(blob)


@dataclasses.dataclass(frozen=True)
class SavedResult:
    """The return value of step ``step``, saved at ``path``."""

    path: str
    step: str

    def load(self) -> Any:
        """The value, read now."""
        return read_saved(Path(self.path), self.step)


@dataclasses.dataclass(frozen=True)
class SavedResults:
    """The return values of the ``count`` items of map step ``step``, saved in ``folder``."""

    folder: str
    count: int
    step: str

    def item_path(self, index: int) -> str:
        """Where item ``index`` saves its value."""
        return str(Path(self.folder) / f"{index}.pkl")

    def load(self) -> list[Any]:
        """The values in input order, read now."""
        return [read_saved(Path(self.item_path(i)), self.step) for i in range(self.count)]


def replaced(value: Any, kind: type | tuple[type, ...], new: Callable[[Any], Any]) -> Any:
    """``value`` with every ``kind`` in it (inside lists, tuples and dicts too) replaced by
    ``new(it)``; containers are copied, nothing is changed in place."""
    if isinstance(value, kind):
        return new(value)
    if isinstance(value, list | tuple):
        return type(value)(replaced(v, kind, new) for v in value)
    if isinstance(value, dict):
        return {k: replaced(v, kind, new) for k, v in value.items()}
    return value


def resolved(value: Any) -> Any:
    """``value`` with every saved result in it (inside lists, tuples and dicts too) read."""
    return replaced(value, (SavedResult, SavedResults), lambda saved: saved.load())


@dataclasses.dataclass(frozen=True)
class StepCall:
    """Call ``fn`` with saved results read in place, and save what it returns to ``save_to``
    (when another step takes it)."""

    fn: Callable[..., Any]
    save_to: str | None = None

    @property
    def __name__(self) -> str:  # how errors and job labels name the call
        return str(getattr(self.fn, "__name__", type(self.fn).__name__))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        value = self.fn(*resolved(list(args)), **resolved(kwargs))
        if self.save_to is not None:
            save(Path(self.save_to), value)
        return value
