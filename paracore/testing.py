"""Test doubles for code that uses paracore: fake jobs, a fake clock and a fake submitter.

Nothing here touches a scheduler, the real clock or the file system, so tests that drive a
:class:`~paracore.shell.handle.SubmitHandle` (waits, timeouts, retries with backoff) run instantly
and deterministically::

    from paracore import AttemptResources, RetryPolicy
    from paracore.testing import FakeClock, FakeJob, FakeSubmitter

    clock = FakeClock()
    submitter = FakeSubmitter([FakeJob.failing("boom"), FakeJob.succeeding(42)])
    handle = submitter.handle(retry=RetryPolicy(retries=1, jitter=0), clock=clock)
    assert handle.result(timeout=600) == 42
    assert submitter.resubmissions == 1
    assert clock.sleeps  # the backoff was "slept" in virtual time

A :class:`FakeJob` is one attempt: it reports PENDING, then RUNNING, until it has been polled
(``done()``) the scripted number of times, then ends with its scripted value or error. A
:class:`FakeSubmitter` hands out a scripted sequence of FakeJobs, one per submission, and
counts them. A :class:`FakeClock` provides ``now()`` and ``sleep()`` over virtual time and
records every sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from paracore.backends.slurm.accounting import JobRecord
from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources
from paracore.core.retry import RetryPolicy
from paracore.errors import JobFailedError
from paracore.shell.handle import SubmitHandle
from paracore.shell.waiting import MAX_POLL_S

__all__ = ["FakeClock", "FakeJob", "FakeRecord", "FakeSubmitter", "job_record"]

_NEVER = -1


class FakeClock:
    """Virtual time: ``sleep(s)`` advances ``now()`` by ``s`` at once and records ``s``.

    Pass ``clock.now`` and ``clock.sleep`` wherever paracore accepts ``clock=`` and
    ``sleep=`` (``SubmitHandle``, ``gather``).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.start = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance virtual time by ``seconds`` and record it; negative raises, like time.sleep."""
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds}")
        self.sleeps.append(seconds)
        self._now += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep (time passing elsewhere)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds}")
        self._now += seconds

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._now - self.start


@attrs.frozen
class FakeRecord:
    """The parts of a :class:`~paracore.backends.slurm.accounting.JobRecord` a handle reads."""

    state: str
    nodes: str = ""
    exit_code: int | None = None
    exit_signal: int | None = None

    @property
    def state_raw(self) -> str:
        """sacct's State as printed, e.g. ``CANCELLED by 0`` (here the state itself)."""
        return self.state


class FakeJob:
    """One scripted attempt implementing the :class:`~paracore.backends.base.RunningJob` protocol.

    Build one with :meth:`succeeding`, :meth:`failing` or :meth:`never_done`. ``polls`` counts
    the calls to :meth:`done`; ``cancelled`` says whether :meth:`cancel` stopped the attempt.
    """

    def __init__(
        self,
        *,
        value: Any = None,
        error: JobFailedError | str | None = None,
        final_state: str = "COMPLETED",
        after_polls: int = 0,
        job_id: str | None = None,
        array_index: int | None = None,
        stdout_path: str | None = None,
        stderr_path: str | None = None,
        nodes: str | None = None,
    ) -> None:
        if after_polls != _NEVER and after_polls < 0:
            raise ValueError(f"after_polls must be >= 0, got {after_polls}")
        self._value = value
        self._error = error
        self._final_state = final_state
        self._after_polls = after_polls
        self.job_id: str = job_id if job_id is not None else "fake"
        self.has_own_id = job_id is not None
        self.array_index = array_index
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.nodes = nodes
        self.polls = 0
        self.cancelled = False
        self.cancel_calls = 0

    # ------------------------------------------------------------------ constructors

    @classmethod
    def succeeding(cls, value: Any = None, *, after_polls: int = 0, **fields: Any) -> FakeJob:
        """An attempt that returns ``value`` once polled ``after_polls`` times."""
        return cls(value=value, final_state="COMPLETED", after_polls=after_polls, **fields)

    @classmethod
    def failing(
        cls,
        error: JobFailedError | str = "fake job failed",
        *,
        state: str = "FAILED",
        after_polls: int = 0,
        **fields: Any,
    ) -> FakeJob:
        """An attempt that ends in ``state`` and raises ``error``.

        A string becomes a fresh :class:`~paracore.errors.JobFailedError` carrying the
        job id and state each time :meth:`outcome` is called; an exception is raised as is.
        """
        return cls(error=error, final_state=state, after_polls=after_polls, **fields)

    @classmethod
    def never_done(cls, **fields: Any) -> FakeJob:
        """An attempt that stays PENDING forever (e.g. an unsatisfiable dependency)."""
        return cls(after_polls=_NEVER, **fields)

    # ------------------------------------------------------------------ the protocol

    def _finished(self) -> bool:
        if self.cancelled:
            return True
        return self._after_polls != _NEVER and self.polls >= self._after_polls

    @property
    def state(self) -> str:
        """PENDING before the first poll, RUNNING until done, then the final state."""
        if self.cancelled:
            return "CANCELLED"
        if self._finished():
            return self._final_state
        return "PENDING" if self.polls == 0 else "RUNNING"

    def record(self) -> FakeRecord | None:
        """A scheduler-like record once finished (for the node a failure happened on)."""
        if not self._finished():
            return None
        return FakeRecord(state=self.state, nodes=self.nodes or "")

    def done(self) -> bool:
        """Count a poll; True once the scripted number of polls has passed (or cancelled)."""
        finished = self._finished()
        self.polls += 1
        return finished

    def outcome(self) -> Any:
        """The scripted value, or raise the scripted error (JobFailedError)."""
        if not self._finished():
            raise AssertionError(f"outcome() of {self.job_id} called before done() was true")
        if self.cancelled:
            raise JobFailedError(
                f"fake job {self.job_id} was cancelled", job_id=self.job_id, state="CANCELLED"
            )
        if self._error is None:
            return self._value
        if isinstance(self._error, str):
            raise JobFailedError(self._error, job_id=self.job_id, state=self._final_state)
        raise self._error

    def cancel(self) -> None:
        """Cancel the attempt if it is still going: it is then done, CANCELLED, and fails.

        Like ``scancel`` on a finished job, cancelling an attempt that already ended changes
        nothing. ``cancel_calls`` counts the calls either way.
        """
        self.cancel_calls += 1
        if not self._finished():
            self.cancelled = True

    def __repr__(self) -> str:
        return f"FakeJob(job_id={self.job_id!r}, state={self.state!r}, polls={self.polls})"


class FakeSubmitter:
    """Hands out scripted FakeJobs, one per submission, and counts the submissions.

    ``script`` holds FakeJobs or zero-argument callables returning one. Jobs without an
    explicit ``job_id`` are named ``<prefix>-1``, ``<prefix>-2``, ... in submission order.
    Submitting more often than scripted raises AssertionError, so a test notices surplus
    retries instead of hanging.
    """

    def __init__(
        self, script: Iterable[FakeJob | Callable[[], FakeJob]], *, prefix: str = "fake"
    ) -> None:
        self._script = list(script)
        self._prefix = prefix
        self.jobs: list[FakeJob] = []
        self.requests: list[AttemptResources | None] = []

    @property
    def submissions(self) -> int:
        """How many jobs were handed out, the first submission included."""
        return len(self.jobs)

    @property
    def resubmissions(self) -> int:
        """How many jobs were handed out after the first (i.e. retries)."""
        return max(0, len(self.jobs) - 1)

    def submit(self, resources: AttemptResources | None = None) -> FakeJob:
        """The next scripted job; usable as a SubmitHandle's ``resubmit`` callable.

        ``resources`` (what the handle asked this attempt for) is kept in ``requests``.
        """
        self.requests.append(resources)
        n = len(self.jobs)
        if n >= len(self._script):
            raise AssertionError(
                f"FakeSubmitter: submission {n + 1} requested but only {len(self._script)} scripted"
            )
        item = self._script[n]
        job = item if isinstance(item, FakeJob) else item()
        if not job.has_own_id:
            job.job_id = f"{self._prefix}-{n + 1}"
        self.jobs.append(job)
        return job

    def handle(
        self,
        *,
        retry: RetryPolicy | None = None,
        clock: FakeClock | None = None,
        job_name: str = "fake",
        rng: random.Random | None = None,
        poll_s: float = 1.0,
        max_poll_s: float = MAX_POLL_S,
        resources: AttemptResources | None = None,
        limits: PartitionLimits | None = None,
        parents: tuple[SubmitHandle, ...] = (),
    ) -> SubmitHandle:
        """Submit the first scripted job and wrap it in a SubmitHandle that resubmits here.

        Without ``clock`` a fresh :class:`FakeClock` is used, so nothing ever really sleeps.
        """
        clock = clock if clock is not None else FakeClock()
        return SubmitHandle(
            self.submit(),
            job_name=job_name,
            retry=retry if retry is not None else RetryPolicy(),
            resubmit=self.submit,
            resources=resources,
            limits=(lambda _partition: limits) if limits is not None else None,
            parents=parents,
            rng=rng if rng is not None else random.Random(0),
            clock=clock.now,
            sleep=clock.sleep,
            poll_s=poll_s,
            max_poll_s=max_poll_s,
        )


def job_record(job_id: str, state: str, **fields: Any) -> JobRecord:
    """A full sacct record (:class:`~paracore.backends.slurm.accounting.JobRecord`) for tests.

    Unset fields are plausible: exit 0:0, one second elapsed, partition ``debug`` on node
    ``vm``; ``fields`` overrides any of them (``max_rss_kb=...``, ``elapsed_s=...``).
    """
    values: dict[str, Any] = {
        "job_id": job_id, "name": "job", "state": state.split()[0], "state_raw": state,
        "exit_code": 0, "exit_signal": 0, "reason": "None", "elapsed_s": 1, "max_rss_kb": None,
        "req_mem_mb": None, "time_limit_min": None, "partition": "debug", "nodes": "vm",
        "alloc_cpus": 1, "start": "", "end": "",
    }  # fmt: skip
    values.update(fields)
    return JobRecord(**values)
