"""SubmitHandle: one piece of submitted work, across all of its attempts.

A handle never blocks unless asked to, and then never forever: ``result(timeout=...)`` raises
:class:`~paracore.exceptions.JobTimeoutError` when time is up. Retries are driven by a small
state machine advanced by ``done()`` and ``result()``: a failed attempt with retries left is
resubmitted once its backoff delay has passed. The handle reads clock and sleep through
injected functions so tests can drive it without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs

from paracore.backoff import RetryPolicy, base_delay, jittered
from paracore.exceptions import JobFailedError, JobTimeoutError


class RunningJob(Protocol):
    """What the interpreter hands a SubmitHandle: one attempt on some backend."""

    job_id: str
    array_index: int | None
    stdout_path: str | None
    stderr_path: str | None

    @property
    def state(self) -> str: ...

    def done(self) -> bool: ...

    def outcome(self) -> Any:
        """The value, or raise JobFailedError; only called once ``done()`` is true."""
        ...

    def cancel(self) -> None: ...


@attrs.frozen
class Attempt:
    """One submission of the work and how it ended."""

    job_id: str
    state: str
    error: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None


_PENDING = object()


class SubmitHandle:
    """Access to one submitted piece of work: its id, name, logs, state and result."""

    def __init__(
        self,
        job: RunningJob,
        *,
        job_name: str,
        retry: RetryPolicy,
        resubmit: Callable[[], RunningJob] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 1.0,
        max_poll_s: float = 10.0,
    ) -> None:
        self._job = job
        self.job_name = job_name
        self._retry = retry
        self._resubmit = resubmit
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._attempts: list[Attempt] = []
        self._outcome: Any = _PENDING
        self._error: JobFailedError | None = None
        self._resubmit_at: float | None = None
        self._last_error: JobFailedError | None = None
        self._cancelled = False

    # -------------------------------------------------------------- what users read

    @property
    def job_id(self) -> str:
        """The scheduler's id of the current attempt (``<array>_<index>`` for array tasks)."""
        return self._job.job_id

    @property
    def array_index(self) -> int | None:
        """The task's index in its Slurm array, or None for a single job."""
        return self._job.array_index

    @property
    def stdout_path(self) -> str | None:
        """Path of the current attempt's stdout log."""
        return self._job.stdout_path

    @property
    def stderr_path(self) -> str | None:
        """Path of the current attempt's stderr log."""
        return self._job.stderr_path

    @property
    def state(self) -> str:
        """The scheduler's state of the current attempt (e.g. PENDING, RUNNING, COMPLETED)."""
        return self._job.state

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Finished attempts so far, oldest first."""
        return tuple(self._attempts)

    def __repr__(self) -> str:
        return f"SubmitHandle(job_id={self.job_id!r}, job_name={self.job_name!r})"

    # -------------------------------------------------------------- the state machine

    def _record(self, error: JobFailedError | None) -> None:
        job = self._job
        self._attempts.append(
            Attempt(
                job_id=job.job_id,
                state=error.state
                if error and error.state
                else ("COMPLETED" if not error else "FAILED"),
                error=None if error is None else str(error).splitlines()[0],
                stdout_path=job.stdout_path,
                stderr_path=job.stderr_path,
            )
        )

    def _advance(self) -> bool:
        """Move the work forward without blocking; True once it has a final outcome."""
        if self._outcome is not _PENDING or self._error is not None:
            return True
        if self._resubmit_at is not None:
            if self._clock() < self._resubmit_at:
                return False
            assert self._resubmit is not None
            self._job = self._resubmit()
            self._resubmit_at = None
        if not self._job.done():
            return False
        try:
            value = self._job.outcome()
        except JobFailedError as error:
            self._record(error)
            retries_used = len(self._attempts) - 1
            if self._cancelled or self._resubmit is None or retries_used >= self._retry.retries:
                self._error = _with_attempts(error, self._attempts)
                return True
            delay = jittered(self._retry, base_delay(self._retry, retries_used + 1), self._rng)
            self._last_error = error
            self._resubmit_at = self._clock() + delay
            return False
        self._record(None)
        self._outcome = value
        return True

    def done(self) -> bool:
        """True once the work has a final outcome (success, or failure with no retries left)."""
        return self._advance()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the work and return its value; raise its error, or JobTimeoutError.

        For a command the value is a CommandResult; for a Python call, the function's value.
        """
        deadline = None if timeout is None else self._clock() + timeout
        poll = self._poll_s
        while not self._advance():
            now = self._clock()
            if deadline is not None and now >= deadline:
                raise JobTimeoutError(
                    f"job {self.job_id} ({self.job_name}) still {self.state} after {timeout} s; "
                    f"logs: {self.stdout_path}"
                )
            wait = poll if deadline is None else min(poll, deadline - now)
            if self._resubmit_at is not None:
                wait = min(wait, max(0.0, self._resubmit_at - now))
            self._sleep(wait)
            poll = min(self._max_poll_s, poll * 1.5)
        if self._error is not None:
            raise self._error
        return self._outcome

    def exception(self, timeout: float | None = None) -> JobFailedError | None:
        """Wait like :meth:`result` and return the failure instead of raising it."""
        try:
            self.result(timeout)
        except JobFailedError as error:
            return error
        return None

    def cancel(self) -> None:
        """Cancel the current attempt (``scancel``) and stop any further retries."""
        self._cancelled = True
        if self._resubmit_at is not None and self._last_error is not None:
            # waiting to retry: the last attempt already failed and is final now
            self._resubmit_at = None
            self._error = _with_attempts(self._last_error, self._attempts)
            return
        self._job.cancel()


def _with_attempts(error: JobFailedError, attempts: Sequence[Attempt]) -> JobFailedError:
    error.attempts = tuple(attempts)
    if len(attempts) > 1:
        lines = [f"  attempt {i}: job {a.job_id} {a.state}" for i, a in enumerate(attempts, 1)]
        error.args = (f"{error.args[0]}\nafter {len(attempts)} attempts:\n" + "\n".join(lines),)
    return error


def gather(
    handles: Iterable[SubmitHandle],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = 1.0,
    max_poll_s: float = 10.0,
) -> list[Any]:
    """Results of all handles in input order, waiting on all of them together.

    Every round advances every handle (so retries of one never wait on another), with one
    shared deadline. With ``return_exceptions=True`` a failed task's error takes its place in
    the list, so one failure never loses the results of the others.
    """
    handles = list(handles)
    deadline = None if timeout is None else clock() + timeout
    poll = poll_s
    while not all([h.done() for h in handles]):
        now = clock()
        if deadline is not None and now >= deadline:
            unfinished = [h.job_id for h in handles if not h.done()]
            raise JobTimeoutError(
                f"{len(unfinished)} of {len(handles)} jobs unfinished after {timeout} s: "
                + ", ".join(unfinished[:10])
                + (" ..." if len(unfinished) > 10 else "")
            )
        sleep(poll if deadline is None else min(poll, deadline - now))
        poll = min(max_poll_s, poll * 1.5)
    out: list[Any] = []
    for handle in handles:
        try:
            out.append(handle.result(0))
        except JobFailedError as error:
            if not return_exceptions:
                raise
            out.append(error)
    return out
