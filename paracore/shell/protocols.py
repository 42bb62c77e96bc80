"""What waiting code may ask of handles and of the drivers that advance them.

:func:`~paracore.shell.handle.gather`, the Pool, plans, progress bars and chunked maps wait on
a :class:`Handle` (a :class:`~paracore.shell.handle.SubmitHandle` or a chunked map's
:class:`~paracore.shell.chunked_map.ItemHandle`) and advance it through its :class:`Driver`: the
lone handle, its :class:`~paracore.shell.handle.RetryGroup` or its
:class:`~paracore.shell.chunked_map.ChunkedMap`. :class:`Drivers` drives each distinct driver once
per round, however many of its handles are waited on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from paracore.core.lifecycle import Attempt
from paracore.errors import JobFailedError

__all__ = ["Driver", "Drivers", "Handle"]


class Driver(Protocol):
    """What advances work once per round of a wait: a lone handle, a group or a chunked map."""

    def drive(self) -> None:
        """One round: look at the work once and resubmit what is due; never blocks."""

    def due(self) -> float | None:
        """When the next retry falls due (the session's clock), or None."""

    def bound(self) -> float:
        """How long waiting for all of this driver's work may take, in seconds."""

    def handed(self, handles: Sequence[Handle]) -> None:
        """These of its handles' outcomes reached the caller (the run store records it)."""


class Handle(Protocol):
    """One piece of submitted work, as waiting code sees it."""

    @property
    def job_id(self) -> str:
        """The scheduler's id of the job (or array task) running the work now."""

    @property
    def job_name(self) -> str:
        """The job's name."""

    @property
    def state(self) -> str:
        """The scheduler's state of the current attempt (or the item's, once final)."""

    @property
    def stdout_path(self) -> str | None:
        """Path of the current attempt's stdout log."""

    @property
    def stderr_path(self) -> str | None:
        """Path of the current attempt's stderr log."""

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Finished attempts so far, oldest first."""

    @property
    def final(self) -> bool:
        """True once the work has a final outcome (without advancing it)."""

    @property
    def failed(self) -> bool:
        """True once the work failed for good (without advancing it)."""

    def driver(self) -> Driver:
        """What advances this handle once per round."""

    def outcome(self) -> Any:
        """The final value, or raise the final error; only once :attr:`final`."""

    def done(self) -> bool:
        """Advance the work, then whether it has a final outcome."""

    def wait_bound(self) -> float:
        """How long :meth:`result` waits without a ``timeout``."""

    def scheduler_note(self) -> str | None:
        """The scheduler's complaint about the current attempt, if any."""

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the work and return its value, or raise its error."""

    def exception(self, timeout: float | None = None) -> JobFailedError | None:
        """Wait like :meth:`result` and return the failure instead of raising it."""

    def cancel(self) -> None:
        """Cancel the work and stop any further retries."""


class Drivers:
    """The distinct drivers of some handles, advanced together: each once per round."""

    def __init__(self, handles: Iterable[Handle]) -> None:
        found = {id(d): d for d in (h.driver() for h in handles)}
        self.drivers: list[Driver] = list(found.values())

    def drive(self) -> None:
        """One round: drive each driver once (a group or map once for all its members)."""
        for driver in self.drivers:
            driver.drive()

    def due(self) -> float | None:
        """The earliest moment any of them has a retry due, or None."""
        due = [d for d in (driver.due() for driver in self.drivers) if d is not None]
        return min(due) if due else None

    def bound(self) -> float:
        """The longest any of them may take (0 for none)."""
        return max((driver.bound() for driver in self.drivers), default=0.0)
