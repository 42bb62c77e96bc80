"""SubmitHandle: one piece of submitted work, across all of its attempts.

A handle never blocks unless asked to, and then never forever: ``result(timeout=...)`` raises
:class:`~paracore.errors.JobTimeoutError` when time is up. What happens between attempts is
decided by the pure :func:`paracore.core.lifecycle.step`; a handle only observes its current
attempt, feeds what it saw to the step function and carries out the effects (submit again,
cancel, build the final error). Handles of one ``submit_map`` share a :class:`RetryGroup`,
which resubmits the elements that failed in the same round as ONE new array, so the others'
results are kept and every handle keeps its input position. A child submitted with
``after_ok`` whose parent failed ends with a DependencyError as soon as the parent's failure
is final, never hanging.

Clock, sleep and random numbers come from the current
:class:`~paracore.shell.session.Session` unless given, so tests drive handles in virtual time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from paracore.backends.base import RunningJob
from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources
from paracore.core.failures import FailureClass, classify
from paracore.core.lifecycle import (
    NO_PARENTS,
    Attempt,
    CancelJob,
    CancelRequested,
    Effect,
    Event,
    Expedite,
    Failed,
    Finish,
    Parents,
    Phase,
    Resubmit,
    Resubmitted,
    SubmitFailed,
    Succeeded,
    TaskState,
    Tick,
    jitter_factor,
    step,
    wait_bound,
)
from paracore.core.retry import RetryPolicy, may_retry
from paracore.errors import (
    DependencyError,
    JobFailedError,
    JobTimeoutError,
    SpecError,
    SubmissionError,
)
from paracore.shell.progress import ProgressBar, progress_wanted
from paracore.shell.protocols import Driver, Drivers, Handle
from paracore.shell.session import current_session
from paracore.shell.waiting import MAX_POLL_S, wait_until

__all__ = ["RetryGroup", "SubmitHandle", "collected", "gather"]


class Ledger(Protocol):
    """Where handles keep their state so other processes can carry on (the run store).

    A handle with a ledger tells it every change, asks it before resubmitting (only one
    process may resubmit a task), tells it what was resubmitted and which outcomes were
    handed to the user, and lets it reload what another process changed.
    """

    def changed(self, handle: SubmitHandle, ended: Attempt | None) -> None: ...

    def flush(self) -> None: ...

    def may_resubmit(self, handles: Sequence[SubmitHandle]) -> list[SubmitHandle]: ...

    def resubmitted(self, handles: Sequence[SubmitHandle]) -> None: ...

    def collected(self, handles: Sequence[SubmitHandle]) -> None: ...

    def refresh(self, handles: Sequence[SubmitHandle]) -> None: ...


Resubmit_ = Callable[[AttemptResources], RunningJob]
LimitsFor = Callable[[str | None], PartitionLimits | None]
Jitter = Callable[[], float]

_ESCALATED = (FailureClass.OUT_OF_MEMORY, FailureClass.TIMEOUT)


def failure_class_of(error: JobFailedError) -> FailureClass:
    """The failure class a job's error carries, or the one its state implies."""
    if error.failure_class is not None:
        return error.failure_class
    if error.exc_type is not None or error.returncode is not None:
        return FailureClass.USER_ERROR
    return classify(error.state or "FAILED", stderr_tail=error.stderr_tail or "")


def _record_of(job: RunningJob) -> Any:
    get = getattr(job, "record", None)
    return get() if callable(get) else None


def _first_line(text: str, default: str) -> str:
    lines = text.splitlines()
    return lines[0] if lines else default


class SubmitHandle:
    """Access to one submitted piece of work: its id, name, logs, state and result."""

    def __init__(
        self,
        job: RunningJob,
        *,
        job_name: str,
        retry: RetryPolicy,
        resubmit: Resubmit_ | None = None,
        resources: AttemptResources | None = None,
        limits: LimitsFor | None = None,
        parents: Sequence[SubmitHandle] = (),
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_s: float = 1.0,
        max_poll_s: float = MAX_POLL_S,
        lifecycle: TaskState | None = None,
        ledger: Ledger | None = None,
        index: int = 0,
    ) -> None:
        session = current_session()
        self._job = job
        self.job_name = job_name
        self._state = lifecycle or TaskState(
            policy=retry, resources=resources or AttemptResources()
        )
        self._resubmit = resubmit
        self._limits = limits
        self._parents = tuple(parents)
        self._rng = rng if rng is not None else session.rng
        self._clock = clock if clock is not None else session.clock
        self._sleep = sleep if sleep is not None else session.sleep
        self._queue_allowance_s = session.queue_allowance_s
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._value: Any = None
        self._has_value = False
        self._last_error: JobFailedError | None = None
        self._error: JobFailedError | None = None
        self._group: RetryGroup | None = None
        self._index = index
        self._ledger = ledger
        self._alone = _Alone(self)

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
        return self._state.attempts

    @property
    def resources(self) -> AttemptResources:
        """What the current attempt asked for."""
        return self._state.resources

    @property
    def lifecycle(self) -> TaskState:
        """The work's whole state between attempts, as one plain value."""
        return self._state

    @property
    def group(self) -> RetryGroup | None:
        """The group shared by the handles of one ``submit_map`` (None for a single job)."""
        return self._group

    @property
    def index(self) -> int:
        """The task's position in its run's input (0 for a single job)."""
        return self._index

    @property
    def ledger(self) -> Ledger | None:
        """Where the handle records its state (the run store), or None."""
        return self._ledger

    @property
    def final(self) -> bool:
        """True once the work has a final outcome (without looking at the job again)."""
        return self._state.final

    @property
    def failed(self) -> bool:
        """True once the work failed for good (without looking at the job again)."""
        return self._state.failed

    @property
    def blocked(self) -> bool:
        """True when the work failed only because work it depends on failed (never ran)."""
        ending = self._state.ending
        if ending is not None and ending.kind in ("dependency", "attempt_as_dependency"):
            return True
        return isinstance(self._error, DependencyError)

    def __repr__(self) -> str:
        return f"SubmitHandle(job_id={self.job_id!r}, job_name={self.job_name!r})"

    # -------------------------------------------------------------- observing and stepping

    def _parents_view(self) -> Parents:
        if not self._parents:
            return NO_PARENTS
        failed = tuple(
            f"{p.job_id} ({p._state.last_failure or 'failed'})"
            for p in self._parents
            if p._state.failed
        )
        return Parents(
            failed=failed, all_final=all(p._state.final for p in self._parents), exist=True
        )

    def _attempt(self, error: JobFailedError | None) -> Attempt:
        job = self._job
        record = _record_of(job)
        exit_code = nodes = None
        if record is not None:
            if record.exit_code is not None:
                exit_code = f"{record.exit_code}:{record.exit_signal or 0}"
            nodes = record.nodes or None
        return Attempt(
            job_id=job.job_id,
            state="COMPLETED" if error is None else (error.state or "FAILED"),
            error=None if error is None else _first_line(str(error), type(error).__name__),
            stdout_path=job.stdout_path,
            stderr_path=job.stderr_path,
            exit_code=exit_code,
            nodes=nodes,
        )

    def _cancelled_by_scheduler(self) -> bool:
        """The current attempt was cancelled by the controller, not by a person's scancel."""
        record = _record_of(self._job)
        return record is not None and " by " not in f" {record.state_raw} "

    def _failed_event(self, error: JobFailedError, jitter: Jitter) -> Failed:
        failure = failure_class_of(error)
        retrying = may_retry(self._state.policy, failure, self._state.retries_used)
        limits = None
        if retrying and failure in _ESCALATED and self._limits is not None:
            limits = self._limits(self._state.resources.partition)
        return Failed(
            attempt=self._attempt(error),
            failure=failure,
            parents=self._parents_view(),
            limits=limits,
            jitter=jitter() if retrying else 1.0,
            can_resubmit=self._resubmit is not None or self._group is not None,
            cancelled_by_scheduler=self._cancelled_by_scheduler(),
        )

    def _observe(self, now: float, jitter: Jitter) -> list[Resubmit]:
        """Look at the current attempt (never submitting) and step; the resubmissions asked."""
        state = self._state
        if state.final:
            return []
        event: Event
        if state.phase is not Phase.RUNNING or not self._job.done():
            event = Tick(self._parents_view())
        else:
            try:
                value = self._job.outcome()
            except JobFailedError as error:
                self._last_error = error
                event = self._failed_event(error, jitter)
            else:
                self._value, self._has_value = value, True
                event = Succeeded(self._attempt(None))
        return self._feed(event, now)

    def _feed(self, event: Event, now: float) -> list[Resubmit]:
        """Step the lifecycle and carry out every effect but resubmission, which is returned."""
        before = self._state
        self._state, effects = step(self._state, event, now)
        if self._ledger is not None and self._state != before:
            ended = (
                self._state.attempts[-1]
                if len(self._state.attempts) > len(before.attempts)
                else None
            )
            self._ledger.changed(self, ended)
        requests: list[Resubmit] = []
        for effect in effects:
            if isinstance(effect, Resubmit):
                requests.append(effect)
            else:
                self._apply(effect)
        return requests

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, CancelJob):
            self._job.cancel()
        elif isinstance(effect, Finish) and not effect.succeeded:
            self._error = self._final_error()

    def _jitter(self) -> float:
        return jitter_factor(self._state.policy, self._rng)

    def _submission_failed(self, err: Exception, now: float, jitter: Jitter) -> list[Resubmit]:
        """A resubmission could not be sent: spend a retry if the policy allows, else fail."""
        failure = (
            FailureClass.USER_ERROR
            if isinstance(err, SpecError)
            else FailureClass.SCHEDULER_UNREACHABLE
        )
        retrying = may_retry(self._state.policy, failure, self._state.retries_used)
        event = SubmitFailed(
            message=str(err) or type(err).__name__,
            failure=failure,
            jitter=jitter() if retrying else 1.0,
        )
        return self._feed(event, now)

    def _adopt(self, job: RunningJob, now: float) -> None:
        self._job = job
        self._feed(Resubmitted(), now)

    # -------------------------------------------------------------- the final error

    def _final_error(self) -> JobFailedError:
        state = self._state
        ending = state.ending
        assert ending is not None
        last = self._last_error
        paths: dict[str, Any] = {"stdout_path": self.stdout_path, "stderr_path": self.stderr_path}
        error: JobFailedError
        if ending.kind == "dependency":
            error = DependencyError(
                f"{self.job_name}: not run because the job it depends on failed: "
                + ", ".join(ending.parents),
                job_id=self.job_id,
                state="DEPENDENCY",
                failure_class=FailureClass.DEPENDENCY,
                **paths,
            )
        elif ending.kind == "submission":
            error = JobFailedError(
                f"{self.job_name}: resubmission failed: {ending.message}",
                job_id=self.job_id,
                state="NOT_SUBMITTED",
                failure_class=state.last_failure,
                **paths,
            )
        elif last is None:  # re-attached to work whose error object is gone
            attempt = state.attempts[-1]
            error = JobFailedError(
                f"{self.job_name}: {attempt.describe()}",
                job_id=attempt.job_id,
                state=attempt.state,
                failure_class=attempt.failure_class,
                **paths,
            )
        elif ending.kind == "attempt_as_dependency":
            error = DependencyError(
                str(last),
                job_id=last.job_id,
                state=last.state,
                stdout_path=last.stdout_path,
                stderr_path=last.stderr_path,
                failure_class=FailureClass.DEPENDENCY,
            )
        else:
            error = last
        return with_attempts(error, state.attempts, ending.why)

    # -------------------------------------------------------------- driving

    def _resubmit_now(self, resources: AttemptResources, now: float) -> list[Resubmit]:
        assert self._resubmit is not None
        if self._ledger is not None and not self._ledger.may_resubmit([self]):
            # another process holds this task's lease, or moved it on since this process
            # last looked: it resubmits, and this handle takes what it recorded
            self._ledger.refresh([self])
            return []
        try:
            job = self._resubmit(resources)
        except (SubmissionError, SpecError) as err:
            return self._submission_failed(err, now, self._jitter)
        self._adopt(job, now)
        if self._ledger is not None:
            self._ledger.resubmitted([self])
        return self._observe(now, self._jitter)  # a fresh attempt is read at once

    def _advance(self) -> bool:
        """Move the work forward without blocking; True once it has a final outcome."""
        if self._state.final:
            return True
        for parent in self._parents:
            parent._advance()
        if self._group is not None:
            self._group.advance()
            return self._state.final
        if self._ledger is not None:
            self._ledger.refresh([self])
        now = self._clock()
        requests = self._observe(now, self._jitter)
        while requests:
            requests = self._resubmit_now(requests[0].resources, now)
        if self._ledger is not None:
            self._ledger.flush()
        return self._state.final

    # -------------------------------------------------------------- what waiting code uses

    def driver(self) -> Driver:
        """What advances this handle once per round of a wait: its group, or itself alone."""
        return self._group if self._group is not None else self._alone

    def restore(self, state: TaskState, job: RunningJob | None) -> None:
        """Take the state (and current job) another process left in the run store."""
        self._state = state
        if job is not None:
            self._job = job

    def outcome(self) -> Any:
        """The final value, or raise the final error (read from the job's files if needed);
        only once :attr:`final`. Unlike :meth:`result` it never waits nor tells the store."""
        if self._state.failed:
            if self._error is None:  # re-attached: the error object is rebuilt from the files
                try:
                    self._job.outcome()
                except JobFailedError as error:
                    self._last_error = error
                self._error = self._final_error()
            raise self._error
        if not self._has_value:
            self._value, self._has_value = self._job.outcome(), True
        return self._value

    def done(self) -> bool:
        """True once the work has a final outcome (success, or failure with no retries left)."""
        return self._advance()

    def wait_bound(self) -> float:
        """How long :meth:`result` waits without a ``timeout``: every attempt still possible
        may queue for the session's ``queue_allowance_s`` and run for its walltime."""
        return wait_bound(self._state, self._queue_allowance_s)

    def scheduler_note(self) -> str | None:
        """The scheduler's complaint about the current attempt while it lasts, if any."""
        note = getattr(self._job, "scheduler_note", None)
        return note() if callable(note) else None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the work and return its value; raise its error, or JobTimeoutError.

        For a command the value is a CommandResult; for a Python call, the function's value.
        Waits are always bounded: without ``timeout`` the bound is :meth:`wait_bound`
        (``float("inf")`` waits for as long as it takes).
        """
        limit = self.wait_bound() if timeout is None else timeout
        wait_until(
            self._advance,
            timeout=limit,
            clock=self._clock,
            sleep=self._sleep,
            poll_s=self._poll_s,
            max_poll_s=self._max_poll_s,
            next_due=lambda: self._state.resubmit_at,
            timed_out=lambda: JobTimeoutError(
                f"job {self.job_id} ({self.job_name}) still {self.state} after {limit:.0f} s"
                + (" (the default bound; pass timeout= to wait longer)" if timeout is None else "")
                + f"; logs: {self.stdout_path}"
                + _notes([self])
            ),
        )
        try:
            return self.outcome()
        finally:
            if self._ledger is not None:
                self._ledger.collected([self])

    def exception(self, timeout: float | None = None) -> JobFailedError | None:
        """Wait like :meth:`result` and return the failure instead of raising it."""
        try:
            self.result(timeout)
        except JobFailedError as error:
            return error
        return None

    def cancel(self) -> None:
        """Cancel the current attempt (``scancel``) and stop any further retries."""
        self._feed(CancelRequested(), self._clock())


class _Alone:
    """The driver of a handle outside any group: the handle by itself."""

    __slots__ = ("handle",)

    def __init__(self, handle: SubmitHandle) -> None:
        self.handle = handle

    def drive(self) -> None:
        """Advance the handle once."""
        self.handle._advance()

    def due(self) -> float | None:
        """When the handle's retry falls due, or None."""
        return self.handle._state.resubmit_at

    def bound(self) -> float:
        """The handle's own wait bound."""
        return self.handle.wait_bound()

    def handed(self, handles: Sequence[Handle]) -> None:
        """The handle's outcome reached the caller."""
        ledger = self.handle._ledger
        if ledger is not None:
            ledger.collected([h for h in handles if isinstance(h, SubmitHandle)])


class RetryGroup:
    """The handles of one ``submit_map``: failed elements are resubmitted together.

    Each round (one :meth:`advance`) looks at every member once; members that failed in the
    same round share one jitter draw, and when their delay is over all members due for a
    retry with the same resources are resubmitted as ONE new array (``resubmit_many``), with
    members still waiting out a backoff for the same resources riding along. ``rounds``
    records, for every resubmission, the input positions it carried; ``parallelism`` is the
    array's throttle (None: all at once), which bounds how long waiting on it may take.
    """

    def __init__(
        self,
        handles: Sequence[SubmitHandle],
        resubmit_many: Callable[[Sequence[int], AttemptResources], Sequence[RunningJob]],
        *,
        retry: RetryPolicy,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        parallelism: int | None = None,
    ) -> None:
        session = current_session()
        self.handles = tuple(handles)
        self.parallelism = parallelism
        self._resubmit_many = resubmit_many
        self._retry = retry
        self._rng = rng if rng is not None else session.rng
        self._clock = clock if clock is not None else session.clock
        self.rounds: list[tuple[int, ...]] = []
        for index, handle in enumerate(self.handles):
            handle._group = self
            handle._index = index

    def done(self) -> bool:
        """True once every member has a final outcome."""
        self.advance()
        return all(h._state.final for h in self.handles)

    @property
    def _ledger(self) -> Ledger | None:
        return self.handles[0]._ledger if self.handles else None

    def drive(self) -> None:
        """One round (:meth:`advance`), as a :class:`~paracore.shell.protocols.Driver`."""
        self.advance()

    def due(self) -> float | None:
        """When the first member's retry falls due, or None."""
        due = [h._state.resubmit_at for h in self.handles if h._state.resubmit_at is not None]
        return min(due) if due else None

    def bound(self) -> float:
        """The slowest member's bound, times the waves the array throttle makes."""
        if not self.handles:
            return 0.0
        throttle = self.parallelism or len(self.handles)
        waves = -(-len(self.handles) // max(1, throttle))
        return max(h.wait_bound() for h in self.handles) * waves

    def handed(self, handles: Sequence[Handle]) -> None:
        """These members' outcomes reached the caller."""
        ledger = self._ledger
        if ledger is not None:
            ledger.collected([h for h in handles if isinstance(h, SubmitHandle)])

    def advance(self) -> None:
        """One round: look at every member, then resubmit the due ones in batches."""
        ledger = self._ledger
        if ledger is not None:
            ledger.refresh(self.handles)
        now = self._clock()
        drawn: list[float] = []

        def jitter() -> float:  # one draw per round, shared by its members
            if not drawn:
                drawn.append(jitter_factor(self._retry, self._rng))
            return drawn[0]

        batches: dict[AttemptResources, list[SubmitHandle]] = {}
        for handle in self.handles:
            for parent in handle._parents:
                if parent._group is not self:
                    parent._advance()
            for request in handle._observe(now, jitter):
                batches.setdefault(request.resources, []).append(handle)
        # Members already waiting for a later retry with the same resources ride along: one
        # new array rather than one per moment of failure (their wait only gets shorter).
        for handle in self.handles:
            members = batches.get(handle._state.retry_resources, [])
            riding = bool(members) and handle not in members and handle._state.waiting_to_retry
            if riding and handle._feed(Expedite(), now):
                members.append(handle)
        for resources, members in batches.items():
            members.sort(key=lambda h: h._index)
            if ledger is not None:  # only one process resubmits a task
                leased = ledger.may_resubmit(members)
                if len(leased) < len(members):  # moved on elsewhere: take what was recorded
                    ledger.refresh([m for m in members if m not in leased])
                members = leased
                if not members:
                    continue
            indices = [h._index for h in members]
            try:
                jobs = self._resubmit_many(indices, resources)
            except (SubmissionError, SpecError) as err:
                for member in members:
                    member._submission_failed(err, now, jitter)
                continue
            self.rounds.append(tuple(indices))
            for member, job in zip(members, jobs, strict=True):
                member._adopt(job, now)
            if ledger is not None:
                ledger.resubmitted(members)
        if ledger is not None:
            ledger.flush()


def _notes(handles: Iterable[Handle]) -> str:
    """The scheduler's complaints about these handles' jobs, one line each (or "")."""
    notes = dict.fromkeys(n for h in handles if (n := h.scheduler_note()))
    return "".join(f"\nthe scheduler: {note}" for note in notes)


def with_attempts(
    error: JobFailedError, attempts: Sequence[Attempt], why: str | None = None
) -> JobFailedError:
    """``error`` carrying every attempt, its message listing them (and why no retry was made)."""
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
    handles: Iterable[Handle],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    poll_s: float = 1.0,
    max_poll_s: float = MAX_POLL_S,
    progress: bool | None = None,
) -> list[Any]:
    """Results of all handles in input order, waiting on all of them together.

    Every round advances every handle (so retries of one never wait on another), with one
    shared deadline: ``timeout``, else the slowest handle's bound plus the waves an array
    throttle makes (see :meth:`SubmitHandle.wait_bound`). With ``return_exceptions=True`` a
    failed task's error takes its place in the list, so one failure never loses the results
    of the others. A progress bar shows while waiting when stderr is a terminal (``progress``
    True or False decides).
    """
    session = current_session()
    given = handles
    handles = list(handles)
    drivers = Drivers(handles)

    def advance_all() -> bool:
        drivers.drive()  # one round per group or map, not one per member
        bar.update()
        return all(h.final for h in handles)

    limit = drivers.bound() if timeout is None else timeout

    def timed_out() -> JobTimeoutError:
        unfinished = [h for h in handles if not h.final]
        ids = [h.job_id for h in unfinished]
        return JobTimeoutError(
            f"{len(ids)} of {len(handles)} jobs unfinished after {limit:.0f} s"
            + (" (the default bound; pass timeout= to wait longer)" if timeout is None else "")
            + ": "
            + ", ".join(ids[:10])
            + (" ..." if len(ids) > 10 else "")
            + _notes(unfinished)
        )

    shown = given if isinstance(given, Sequence) else handles
    with ProgressBar(shown, enabled=progress_wanted(progress, len(handles))) as bar:
        wait_until(
            advance_all,
            timeout=limit,
            clock=clock if clock is not None else session.clock,
            sleep=sleep if sleep is not None else session.sleep,
            poll_s=poll_s,
            max_poll_s=max_poll_s,
            next_due=drivers.due,
            timed_out=timed_out,
        )
    out: list[Any] = []
    handed: list[Handle] = []  # outcomes the caller received (a raised one included)
    try:
        for handle in handles:
            handed.append(handle)
            try:
                out.append(handle.outcome())
            except JobFailedError as error:
                if not return_exceptions:
                    raise
                out.append(error)
    finally:
        collected(handed)
    return out


def collected(handed: Sequence[Handle]) -> None:
    """Tell the run store which outcomes reached the caller (one write per group or map)."""
    by_driver: dict[int, tuple[Driver, list[Handle]]] = {}
    for handle in handed:
        driver = handle.driver()
        by_driver.setdefault(id(driver), (driver, []))[1].append(handle)
    for driver, members in by_driver.values():
        driver.handed(members)
