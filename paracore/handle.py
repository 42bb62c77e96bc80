"""SubmitHandle: one piece of submitted work, across all of its attempts.

A handle never blocks unless asked to, and then never forever: ``result(timeout=...)`` raises
:class:`~paracore.exceptions.JobTimeoutError` when time is up. Retries are a small state
machine advanced by ``done()``, ``result()`` and :func:`gather`:

1. a finished attempt that failed is classified (:mod:`paracore.failures`);
2. if its class is retried by the policy and budget is left, the next attempt's resources are
   computed (:func:`~paracore.backoff.escalate`: more memory, more time, a node excluded,
   capped by the partition's limits) and it is scheduled after the backoff delay;
3. once the delay has passed it is submitted. Handles of one ``submit_map`` share a
   :class:`RetryGroup`, which resubmits the elements that failed in the same round as ONE new
   array, so the others' results are kept and every handle keeps its input position;
4. a child submitted with ``after_ok`` whose parent failed ends with a DependencyError as
   soon as the parent's failure is final, never hanging.

Clock and sleep are injected so tests drive handles in virtual time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs

from paracore.backoff import (
    AttemptResources,
    Limits,
    Refused,
    RetryPolicy,
    base_delay,
    escalate,
    jittered,
    may_retry,
)
from paracore.exceptions import (
    DependencyError,
    JobFailedError,
    JobTimeoutError,
    SpecError,
    SubmissionError,
)
from paracore.failures import FailureClass, classify


class RunningJob(Protocol):
    """What the interpreter hands a SubmitHandle: one attempt on some backend.

    A job may also offer ``record()`` returning its scheduler record
    (:class:`~paracore.slurm.accounting.JobRecord`) for exit codes and nodes.
    """

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


Resubmit = Callable[[AttemptResources], RunningJob]
LimitsFor = Callable[[str | None], Limits | None]


@attrs.frozen
class Attempt:
    """One submission of the work: its job, how it ended, why, and what it asked for."""

    job_id: str
    state: str
    error: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    failure_class: FailureClass | None = None
    exit_code: str | None = None
    nodes: str | None = None
    resources: AttemptResources | None = None

    def describe(self) -> str:
        """``job 12 OUT_OF_MEMORY (out_of_memory), exit 0:125, mem 100M, time 5 min``."""
        text = f"job {self.job_id} {self.state}"
        if self.failure_class is not None:
            text += f" ({self.failure_class.value})"
        if self.exit_code:
            text += f", exit {self.exit_code}"
        if self.resources is not None:
            text += f", {self.resources.describe()}"
        if self.nodes and self.nodes not in ("None assigned",):
            text += f", node {self.nodes}"
        return text


_PENDING = object()


def _failure_class(error: JobFailedError) -> FailureClass:
    if error.failure_class:
        try:
            return FailureClass(str(error.failure_class))
        except ValueError:
            return FailureClass.UNKNOWN
    if error.exc_type is not None or error.returncode is not None:
        return FailureClass.USER_ERROR
    return classify(error.state or "FAILED", stderr_tail=error.stderr_tail or "")


def _last_class(handle: SubmitHandle) -> str:
    last = handle.attempts[-1] if handle.attempts else None
    return last.failure_class.value if last and last.failure_class else "failed"


def _record_of(job: RunningJob) -> Any:
    get = getattr(job, "record", None)
    return get() if callable(get) else None


class SubmitHandle:
    """Access to one submitted piece of work: its id, name, logs, state and result."""

    def __init__(
        self,
        job: RunningJob,
        *,
        job_name: str,
        retry: RetryPolicy,
        resubmit: Resubmit | None = None,
        resources: AttemptResources | None = None,
        limits: LimitsFor | None = None,
        parents: Sequence[SubmitHandle] = (),
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
        self._resources = resources if resources is not None else AttemptResources()
        self._limits = limits
        self._parents = tuple(parents)
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._attempts: list[Attempt] = []
        self._outcome: Any = _PENDING
        self._error: JobFailedError | None = None
        self._resubmit_at: float | None = None
        self._next_resources: AttemptResources | None = None
        self._last_error: JobFailedError | None = None
        self._retries_used = 0
        self._waiting_for_parents = False
        self._cancelled = False
        self._group: RetryGroup | None = None
        self._index = 0

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

    @property
    def resources(self) -> AttemptResources:
        """What the current attempt asked for."""
        return self._resources

    @property
    def group(self) -> RetryGroup | None:
        """The group shared by the handles of one ``submit_map`` (None for a single job)."""
        return self._group

    def __repr__(self) -> str:
        return f"SubmitHandle(job_id={self.job_id!r}, job_name={self.job_name!r})"

    # -------------------------------------------------------------- the state machine

    def _final(self) -> bool:
        return self._outcome is not _PENDING or self._error is not None

    def _failed_finally(self) -> bool:
        return self._error is not None

    def _record(self, error: JobFailedError | None, failure: FailureClass | None) -> None:
        job = self._job
        record = _record_of(job)
        exit_code = None
        nodes = None
        if record is not None:
            if record.exit_code is not None:
                exit_code = f"{record.exit_code}:{record.exit_signal or 0}"
            nodes = record.nodes or None
        state = "COMPLETED" if error is None else (error.state or "FAILED")
        self._attempts.append(
            Attempt(
                job_id=job.job_id,
                state=state,
                error=None if error is None else str(error).splitlines()[0],
                stdout_path=job.stdout_path,
                stderr_path=job.stderr_path,
                failure_class=failure,
                exit_code=exit_code,
                nodes=nodes,
                resources=self._resources,
            )
        )

    def _finish(self, error: JobFailedError, why: str | None = None) -> None:
        self._resubmit_at = None
        self._waiting_for_parents = False
        self._error = _with_attempts(error, self._attempts, why)

    def _dependency_error(self, parents: Sequence[SubmitHandle]) -> DependencyError:
        names = ", ".join(f"{p.job_id} ({_last_class(p)})" for p in parents)
        return DependencyError(
            f"{self.job_name}: not run because the job it depends on failed: {names}",
            job_id=self.job_id,
            state="DEPENDENCY",
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            failure_class=FailureClass.DEPENDENCY.value,
        )

    def _cancelled_by_slurm(self) -> bool:
        """The current attempt was cancelled by the controller, not by a person's scancel."""
        record = _record_of(self._job)
        return record is not None and " by " not in f" {record.state_raw} "

    def _failed_parents(self) -> list[SubmitHandle]:
        return [p for p in self._parents if p._failed_finally()]

    def _check(self, now: float) -> bool:
        """Look at the current attempt without submitting anything; True once final."""
        if self._final():
            return True
        if self._waiting_for_parents:
            failed = self._failed_parents()
            if failed:
                self._finish(self._dependency_error(failed))
                return True
            if all(p._final() for p in self._parents):
                self._waiting_for_parents = False
                self._next_resources = self._resources
                self._resubmit_at = now  # parents succeeded after their retries: run again
            return False
        if self._resubmit_at is not None:
            return False
        if not self._job.done():
            failed = self._failed_parents()
            if failed:  # never wait on a child whose parent failed
                self._job.cancel()
                self._finish(self._dependency_error(failed))
                return True
            return False
        try:
            value = self._job.outcome()
        except JobFailedError as error:
            self._on_failure(error, now)
            return self._final()
        self._record(None, None)
        self._outcome = value
        return True

    def _on_failure(self, error: JobFailedError, now: float) -> None:
        failure = _failure_class(error)
        if failure is FailureClass.CANCELLED and self._parents and self._cancelled_by_slurm():
            # Slurm cancels an after_ok child whose parent failed (--kill-on-invalid-dep);
            # sacct's Reason may not say "Dependency" yet when the record is first read.
            failure = FailureClass.DEPENDENCY
        self._record(error, failure)
        if self._cancelled:
            self._finish(error)
            return
        if failure is FailureClass.DEPENDENCY:
            failed = self._failed_parents()
            if failed:
                self._finish(self._dependency_error(failed))
            elif self._parents and not all(p._final() for p in self._parents):
                self._waiting_for_parents = True  # a parent is being retried
                self._last_error = error
            elif self._parents and self._resubmit is not None:
                self._next_resources = self._resources
                self._resubmit_at = now
                self._last_error = error
            else:
                dep = DependencyError(
                    str(error),
                    job_id=error.job_id,
                    state=error.state,
                    stdout_path=error.stdout_path,
                    stderr_path=error.stderr_path,
                    failure_class=FailureClass.DEPENDENCY.value,
                )
                self._finish(dep)
            return
        if self._resubmit is None and self._group is None:
            self._finish(error)
            return
        if not may_retry(self._retry, failure, self._retries_used):
            why = None
            if not self._retry.retries_class(failure) and self._retry.retries:
                why = f"{failure.value} is not retried by this policy"
            self._finish(error, why)
            return
        limits = None
        if failure in (FailureClass.OUT_OF_MEMORY, FailureClass.TIMEOUT) and self._limits:
            limits = self._limits(self._resources.partition)
        record = _record_of(self._job)
        nodes = [record.nodes] if record is not None and record.nodes else []
        nxt = escalate(self._retry, failure, self._resources, nodes=nodes, limits=limits)
        if isinstance(nxt, Refused):
            self._finish(error, nxt.reason)
            return
        self._retries_used += 1
        delay = self._delay(self._retries_used)
        self._last_error = error
        self._next_resources = nxt
        self._resubmit_at = now + delay

    def _delay(self, retry: int) -> float:
        if self._group is not None:
            return self._group.delay(retry)
        return jittered(self._retry, base_delay(self._retry, retry), self._rng)

    def _due(self, now: float) -> bool:
        return not self._final() and self._resubmit_at is not None and now >= self._resubmit_at

    def _waiting_to_retry(self) -> bool:
        """Failed, and waiting out the backoff before its next attempt."""
        return not self._final() and self._resubmit_at is not None and not self._waiting_for_parents

    def _retry_resources(self) -> AttemptResources:
        """What the next attempt will ask for."""
        return self._next_resources or self._resources

    def _adopt(self, job: RunningJob, resources: AttemptResources) -> None:
        self._job = job
        self._resources = resources
        self._resubmit_at = None
        self._next_resources = None

    def _submission_failed(self, err: Exception, now: float) -> None:
        """A resubmission could not be sent: spend a retry if the policy allows, else fail."""
        failure = (
            FailureClass.USER_ERROR
            if isinstance(err, SpecError)
            else FailureClass.SCHEDULER_UNREACHABLE
        )
        error = JobFailedError(
            f"{self.job_name}: resubmission failed: {err}",
            job_id=self.job_id,
            state="NOT_SUBMITTED",
            failure_class=failure.value,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
        )
        self._attempts.append(
            Attempt(
                job_id="(not submitted)",
                state="NOT_SUBMITTED",
                error=str(err).splitlines()[0] if str(err) else type(err).__name__,
                failure_class=failure,
                resources=self._next_resources,
            )
        )
        if may_retry(self._retry, failure, self._retries_used):
            self._retries_used += 1
            self._resubmit_at = now + self._delay(self._retries_used)
        else:
            self._finish(error)

    def _resubmit_if_due(self, now: float) -> None:
        if not self._due(now):
            return
        assert self._resubmit is not None
        resources = self._next_resources or self._resources
        try:
            job = self._resubmit(resources)
        except (SubmissionError, SpecError) as err:
            self._submission_failed(err, now)
            return
        self._adopt(job, resources)

    def _advance(self) -> bool:
        """Move the work forward without blocking; True once it has a final outcome."""
        if self._final():
            return True
        for parent in self._parents:
            parent._advance()
        if self._group is not None:
            self._group.advance()
            return self._final()
        now = self._clock()
        if self._resubmit_at is not None:
            self._resubmit_if_due(now)
            if self._resubmit_at is not None:
                return False
        return self._check(now)  # a fresh attempt is read at once

    def _next_event(self) -> float | None:
        """When a scheduled resubmission is due, if one is."""
        return self._resubmit_at

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
        if self._final():
            return
        if (self._resubmit_at is not None or self._waiting_for_parents) and self._last_error:
            # waiting to retry: the last attempt already failed and is final now
            self._finish(self._last_error)
            return
        self._job.cancel()


class RetryGroup:
    """The handles of one ``submit_map``: failed elements are resubmitted together.

    Each round (one :meth:`advance`) looks at every member once; members that failed in the
    same round share one backoff delay, and when it is over all members due for a retry with
    the same resources are resubmitted as ONE new array (``resubmit_many``). ``rounds``
    records, for every resubmission, the input positions it carried.
    """

    def __init__(
        self,
        handles: Sequence[SubmitHandle],
        resubmit_many: Callable[[Sequence[int], AttemptResources], Sequence[RunningJob]],
        *,
        retry: RetryPolicy,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handles = tuple(handles)
        self._resubmit_many = resubmit_many
        self._retry = retry
        self._rng = rng or random.Random()
        self._clock = clock
        self._delays: dict[int, float] = {}
        self.rounds: list[tuple[int, ...]] = []
        for index, handle in enumerate(self.handles):
            handle._group = self
            handle._index = index

    def delay(self, retry: int) -> float:
        """The delay before retry ``retry``, drawn once per round for all its members."""
        if retry not in self._delays:
            self._delays[retry] = jittered(self._retry, base_delay(self._retry, retry), self._rng)
        return self._delays[retry]

    def done(self) -> bool:
        """True once every member has a final outcome."""
        self.advance()
        return all(h._final() for h in self.handles)

    def advance(self) -> None:
        """One round: look at every member, then resubmit the due ones in batches."""
        self._delays = {}
        now = self._clock()
        for handle in self.handles:
            for parent in handle._parents:
                if parent._group is not self:
                    parent._advance()
            handle._check(now)
        batches: dict[AttemptResources, list[SubmitHandle]] = {}
        for handle in self.handles:
            if handle._due(now):
                batches.setdefault(handle._retry_resources(), []).append(handle)
        # Members already waiting for a later retry with the same resources ride along: one
        # new array rather than one per moment of failure (their wait only gets shorter).
        for handle in self.handles:
            if handle._waiting_to_retry() and not handle._due(now):
                members = batches.get(handle._retry_resources())
                if members is not None:
                    members.append(handle)
        for resources, members in batches.items():
            members.sort(key=lambda h: h._index)
            indices = [h._index for h in members]
            try:
                jobs = self._resubmit_many(indices, resources)
            except (SubmissionError, SpecError) as err:
                for h in members:
                    h._submission_failed(err, now)
                continue
            self.rounds.append(tuple(indices))
            for handle, job in zip(members, jobs, strict=True):
                handle._adopt(job, resources)

    def next_event(self) -> float | None:
        """The earliest scheduled resubmission among members, if any."""
        times = [h._resubmit_at for h in self.handles if h._resubmit_at is not None]
        return min(times) if times else None


def _with_attempts(
    error: JobFailedError, attempts: Sequence[Attempt], why: str | None = None
) -> JobFailedError:
    error.attempts = tuple(attempts)
    message = error.args[0] if error.args else str(error)
    if why:
        message += f"\nnot retried: {why}"
    if len(attempts) > 1:
        lines = [f"  attempt {i}: {a.describe()}" for i, a in enumerate(attempts, 1)]
        message += f"\nafter {len(attempts)} attempts:\n" + "\n".join(lines)
        logs = [p for a in attempts for p in (a.stdout_path, a.stderr_path) if p]
        if logs:
            message += "\nlogs:\n" + "\n".join(f"  {p}" for p in logs)
        tail = (error.stderr_tail or "").rstrip()
        if tail and tail[-200:] not in message:
            message += "\nstderr tail of the last attempt:\n" + tail[-2000:]
    error.args = (message,)
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

    def advance_all() -> bool:
        groups: dict[int, RetryGroup] = {}
        for handle in handles:
            if handle._group is not None:
                groups.setdefault(id(handle._group), handle._group)
        for group in groups.values():  # one round per group, not one per member
            group.advance()
        for handle in handles:
            if handle._group is None:
                handle._advance()
        return all(h._final() for h in handles)

    while not advance_all():
        now = clock()
        if deadline is not None and now >= deadline:
            unfinished = [h.job_id for h in handles if not h._final()]
            raise JobTimeoutError(
                f"{len(unfinished)} of {len(handles)} jobs unfinished after {timeout} s: "
                + ", ".join(unfinished[:10])
                + (" ..." if len(unfinished) > 10 else "")
            )
        wait = poll if deadline is None else min(poll, deadline - now)
        events = [h._resubmit_at for h in handles if h._resubmit_at is not None]
        if events:
            wait = min(wait, max(0.0, min(events) - now))
        sleep(wait)
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
