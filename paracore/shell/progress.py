"""A progress bar while waiting on many handles: done, failed, running, pending and an ETA.

Shown (with rich) only when stderr is a terminal, unless asked for; ``progress=False`` turns it
off. Counting is cheap for a whole chunked map (its status bytes); other handles are counted
one by one from what they already know (no scheduler call of its own).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from paracore.shell.protocols import Handle

__all__ = ["ProgressBar", "progress_wanted", "tally"]

MIN_HANDLES = 2
"""Waiting on fewer handles than this never shows a bar."""


def progress_wanted(progress: bool | None, count: int) -> bool:
    """Show a bar? ``progress`` if given, else when stderr is a terminal and there are several."""
    if progress is not None:
        return progress
    return count >= MIN_HANDLES and sys.stderr.isatty()


def tally(handles: Sequence[Handle]) -> dict[str, int]:
    """How many of ``handles`` are done, failed, running and pending."""
    chunked = getattr(handles, "map", None)
    if chunked is not None and len(handles) == chunked.count:
        counts: dict[str, int] = chunked.counts()
        return counts
    counts = {"done": 0, "failed": 0, "running": 0, "pending": 0}
    for handle in handles:
        counts[_phase(handle)] += 1
    return counts


def _phase(handle: Handle) -> str:
    if handle.final:
        return "failed" if handle.failed else "done"
    return "running" if handle.state == "RUNNING" else "pending"


class ProgressBar:
    """A rich progress bar over ``total`` handles, refreshed by :meth:`update` each round."""

    def __init__(self, handles: Sequence[Handle], *, enabled: bool, what: str = "tasks") -> None:
        self._handles = handles
        self._enabled = enabled
        self._what = what
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressBar:
        if self._enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._what, total=len(self._handles), detail="")
        return self

    def update(self) -> None:
        """Count the handles again and redraw."""
        if self._progress is None:
            return
        counts = tally(self._handles)
        finished = counts["done"] + counts["failed"]
        detail = (
            f"done {counts['done']}  failed {counts['failed']}  "
            f"running {counts['running']}  pending {counts['pending']}"
        )
        self._progress.update(self._task, completed=finished, detail=detail)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()
