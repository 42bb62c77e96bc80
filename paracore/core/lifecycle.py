"""The life of one piece of submitted work across its attempts, as a pure step function.

A :class:`TaskState` is one frozen value: the phase, what the current attempt asked for, the
attempts so far, the retry budget spent, when the next attempt is due. :func:`step` takes a
state, one :class:`Event` (what the shell observed) and the time, and returns the next state
and the :class:`Effect` values the shell must carry out (submit again, cancel the job, report
the end). It never submits, sleeps, reads the clock or draws random numbers: the shell passes
all of that in (the jitter factor of a backoff delay comes with the event).

Phases::

    RUNNING ──Succeeded──▶ SUCCEEDED
       │  └──Failed──▶ FAILED (not retried: budget, class, cap, cancelled, parent failed)
       │        └──────▶ WAITING_RETRY ──due (Tick)──▶ Resubmit ──Resubmitted──▶ RUNNING
       │        └──────▶ WAITING_PARENTS (a parent is being retried) ──parents ok──▶ WAITING_RETRY
       └──Tick, a parent failed for good──▶ CancelJob, FAILED (dependency)

The state is plain data (:func:`encode` / :func:`decode` give a JSON-able mapping), so a run
store can keep it and another process can carry on from it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources, Refused, escalate
from paracore.core.failures import FailureClass
from paracore.core.retry import RetryPolicy, base_delay, may_retry

__all__ = [
    "Attempt",
    "CancelJob",
    "CancelRequested",
    "Effect",
    "Ending",
    "Event",
    "Expedite",
    "Failed",
    "Finish",
    "Parents",
    "Phase",
    "Resubmit",
    "Resubmitted",
    "SubmitFailed",
    "Succeeded",
    "TaskState",
    "Tick",
    "backoff_delay",
    "decode",
    "encode",
    "jitter_factor",
    "step",
    "wait_bound",
]


class Phase(str, enum.Enum):
    """Where the work is in its life."""

    RUNNING = "running"
    WAITING_RETRY = "waiting_retry"
    WAITING_PARENTS = "waiting_parents"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


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


EndingKind = Literal["attempt", "dependency", "attempt_as_dependency", "submission"]


@attrs.frozen
class Ending:
    """Why the work failed for good, in terms the shell turns into the error users see.

    ``attempt``: the last attempt's own error. ``dependency``: a parent failed for good
    (``parents`` names them). ``attempt_as_dependency``: the attempt was cancelled for a
    dependency that can never be met. ``submission``: the next attempt could not be submitted
    (``message`` says why). ``why`` explains a retry that was not made.
    """

    kind: EndingKind
    why: str | None = None
    parents: tuple[str, ...] = ()
    message: str | None = None


@attrs.frozen
class TaskState:
    """Everything paracore knows about one piece of work between submissions (a value)."""

    policy: RetryPolicy
    resources: AttemptResources = attrs.field(factory=AttemptResources)
    phase: Phase = Phase.RUNNING
    attempts: tuple[Attempt, ...] = ()
    retries_used: int = 0
    resubmit_at: float | None = None
    next_resources: AttemptResources | None = None
    cancel_requested: bool = False
    ending: Ending | None = None

    @property
    def final(self) -> bool:
        """True once the work has an outcome that will not change."""
        return self.phase in FINAL_PHASES

    @property
    def failed(self) -> bool:
        """True once the work has failed for good."""
        return self.phase is Phase.FAILED

    @property
    def waiting_to_retry(self) -> bool:
        """Failed, and waiting out the backoff before its next attempt."""
        return self.phase is Phase.WAITING_RETRY

    def due(self, now: float) -> bool:
        """Whether the next attempt should be submitted at ``now``."""
        return (
            self.phase is Phase.WAITING_RETRY
            and self.resubmit_at is not None
            and now >= self.resubmit_at
        )

    @property
    def retry_resources(self) -> AttemptResources:
        """What the next attempt will ask for."""
        return self.next_resources or self.resources

    @property
    def last_failure(self) -> FailureClass | None:
        """The class of the last attempt's failure, if it failed."""
        return self.attempts[-1].failure_class if self.attempts else None


# ---------------------------------------------------------------- events


@attrs.frozen
class Parents:
    """What the work's ``after_ok`` parents look like now.

    ``failed`` describes each parent that failed for good (``"<job id> (<class>)"``);
    ``all_final`` is True once every parent has an outcome; ``exist`` says there are parents.
    """

    failed: tuple[str, ...] = ()
    all_final: bool = True
    exist: bool = False


NO_PARENTS = Parents()


@attrs.frozen
class Tick:
    """Time passed and the current attempt is not known to have ended."""

    parents: Parents = NO_PARENTS


@attrs.frozen
class Succeeded:
    """The current attempt ended with a value."""

    attempt: Attempt


@attrs.frozen
class Failed:
    """The current attempt ended without a value.

    ``failure`` is its class; ``cancelled_by_scheduler`` says the scheduler (not a person)
    cancelled it, which for work with parents means a dependency that failed. ``limits`` are
    the partition's (for escalation), ``jitter`` the factor for the backoff delay (see
    :func:`jitter_factor`), ``can_resubmit`` whether the shell can submit again at all.
    """

    attempt: Attempt
    failure: FailureClass
    parents: Parents = NO_PARENTS
    limits: PartitionLimits | None = None
    jitter: float = 1.0
    can_resubmit: bool = True
    cancelled_by_scheduler: bool = False


@attrs.frozen
class Resubmitted:
    """The shell carried out a :class:`Resubmit`: a new attempt is running."""


@attrs.frozen
class SubmitFailed:
    """The shell could not carry out a :class:`Resubmit`; ``message`` says why."""

    message: str
    failure: FailureClass
    jitter: float = 1.0


@attrs.frozen
class CancelRequested:
    """The user cancelled the work: cancel the attempt, never retry."""


@attrs.frozen
class Expedite:
    """Submit a retry that is waiting out its backoff now (to join another batch)."""


Event = Tick | Succeeded | Failed | Resubmitted | SubmitFailed | CancelRequested | Expedite


# ---------------------------------------------------------------- effects


@attrs.frozen
class Resubmit:
    """Submit the next attempt asking for ``resources``, then send :class:`Resubmitted`."""

    resources: AttemptResources


@attrs.frozen
class CancelJob:
    """Cancel the current attempt at the scheduler."""


@attrs.frozen
class Finish:
    """The work has its final outcome."""

    succeeded: bool


Effect = Resubmit | CancelJob | Finish


# ---------------------------------------------------------------- delays


def jitter_factor(policy: RetryPolicy, rng: random.Random) -> float:
    """A factor within the policy's jitter band; 1.0 (drawing nothing) without jitter.

    For the shell: draw it with the run's own random generator and pass it in the event.
    """
    if policy.jitter == 0:
        return 1.0
    return rng.uniform(1 - policy.jitter, 1 + policy.jitter)


def backoff_delay(policy: RetryPolicy, retry: int, factor: float = 1.0) -> float:
    """Delay before retry ``retry`` (1-based) scaled by a jitter ``factor``, capped."""
    delay = base_delay(policy, retry)
    if policy.jitter == 0:
        return delay
    return min(policy.cap_s, delay * factor)


# ---------------------------------------------------------------- how long to wait


UNKNOWN_TIME_MIN = 24 * 60
"""The walltime assumed for an attempt that asked for none (the scheduler's default)."""


def wait_bound(state: TaskState, queue_allowance_s: float) -> float:
    """How long waiting for this work may take, by default: 0 once it is final.

    Each attempt still possible may queue for ``queue_allowance_s`` and then run for its
    walltime (growing by ``time_factor`` as timeouts are retried), with the backoff delay
    before each retry.
    """
    if state.final:
        return 0.0
    policy = state.policy
    minutes = state.retry_resources.time_min or UNKNOWN_TIME_MIN
    remaining = policy.retries - state.retries_used + 1
    total = 0.0
    for k in range(remaining):
        total += queue_allowance_s + minutes * 60 * policy.time_factor**k
        if k:
            total += base_delay(policy, state.retries_used + k)
    return total


# ---------------------------------------------------------------- the step function


def _fail(state: TaskState, ending: Ending) -> tuple[TaskState, tuple[Effect, ...]]:
    final = attrs.evolve(
        state, phase=Phase.FAILED, ending=ending, resubmit_at=None, next_resources=None
    )
    return final, (Finish(succeeded=False),)


def _retry_at(
    state: TaskState, at: float, resources: AttemptResources, now: float, **changes: Any
) -> tuple[TaskState, tuple[Effect, ...]]:
    waiting = attrs.evolve(
        state, phase=Phase.WAITING_RETRY, resubmit_at=at, next_resources=resources, **changes
    )
    return waiting, ((Resubmit(resources),) if waiting.due(now) else ())


def _on_tick(state: TaskState, event: Tick, now: float) -> tuple[TaskState, tuple[Effect, ...]]:
    parents = event.parents
    if state.phase is Phase.WAITING_PARENTS:
        if parents.failed:
            return _fail(state, Ending("dependency", parents=parents.failed))
        if parents.all_final:  # the parents succeeded after their retries: run again
            return _retry_at(state, now, state.resources, now)
        return state, ()
    if state.phase is Phase.WAITING_RETRY:
        return state, ((Resubmit(state.retry_resources),) if state.due(now) else ())
    if parents.failed:  # never wait on a job whose parent failed: it would never run
        failed, effects = _fail(state, Ending("dependency", parents=parents.failed))
        return failed, (CancelJob(), *effects)
    return state, ()


def _on_failed(state: TaskState, event: Failed, now: float) -> tuple[TaskState, tuple[Effect, ...]]:
    failure = event.failure
    parents = event.parents
    if failure is FailureClass.CANCELLED and parents.exist and event.cancelled_by_scheduler:
        # The scheduler cancels an after_ok child whose parent failed (--kill-on-invalid-dep);
        # sacct's Reason may not say "Dependency" yet when the record is first read.
        failure = FailureClass.DEPENDENCY
    attempt = attrs.evolve(event.attempt, failure_class=failure, resources=state.resources)
    state = attrs.evolve(state, attempts=(*state.attempts, attempt))
    if state.cancel_requested:
        return _fail(state, Ending("attempt"))
    if failure is FailureClass.DEPENDENCY:
        if parents.failed:
            return _fail(state, Ending("dependency", parents=parents.failed))
        if parents.exist and not parents.all_final:  # a parent is being retried
            return attrs.evolve(state, phase=Phase.WAITING_PARENTS), ()
        if parents.exist and event.can_resubmit:
            return _retry_at(state, now, state.resources, now)
        return _fail(state, Ending("attempt_as_dependency"))
    if not event.can_resubmit:
        return _fail(state, Ending("attempt"))
    policy = state.policy
    if not may_retry(policy, failure, state.retries_used):
        why = None
        if not policy.retries_class(failure) and policy.retries:
            why = f"{failure.value} is not retried by this policy"
        return _fail(state, Ending("attempt", why=why))
    nodes = [event.attempt.nodes] if event.attempt.nodes else []
    nxt = escalate(policy, failure, state.resources, nodes=nodes, limits=event.limits)
    if isinstance(nxt, Refused):
        return _fail(state, Ending("attempt", why=nxt.reason))
    used = state.retries_used + 1
    at = now + backoff_delay(policy, used, event.jitter)
    return _retry_at(state, at, nxt, now, retries_used=used)


def _on_submit_failed(
    state: TaskState, event: SubmitFailed, now: float
) -> tuple[TaskState, tuple[Effect, ...]]:
    attempt = Attempt(
        job_id="(not submitted)",
        state="NOT_SUBMITTED",
        error=event.message.splitlines()[0] if event.message else None,
        failure_class=event.failure,
        resources=state.next_resources,
    )
    state = attrs.evolve(state, attempts=(*state.attempts, attempt))
    if not may_retry(state.policy, event.failure, state.retries_used):
        return _fail(state, Ending("submission", message=event.message))
    used = state.retries_used + 1
    at = now + backoff_delay(state.policy, used, event.jitter)
    return _retry_at(state, at, state.retry_resources, now, retries_used=used)


def step(state: TaskState, event: Event, now: float) -> tuple[TaskState, tuple[Effect, ...]]:
    """The next state after ``event`` at time ``now``, and what the shell must do (pure).

    A final state absorbs every event. A :class:`Resubmit` effect is emitted whenever the next
    attempt is due; the shell answers it with :class:`Resubmitted` or :class:`SubmitFailed`.
    """
    if state.final:
        return state, ()
    if isinstance(event, Tick):
        return _on_tick(state, event, now)
    if isinstance(event, Succeeded):
        if state.phase is not Phase.RUNNING:
            return state, ()
        attempt = attrs.evolve(event.attempt, failure_class=None, resources=state.resources)
        done = attrs.evolve(state, phase=Phase.SUCCEEDED, attempts=(*state.attempts, attempt))
        return done, (Finish(succeeded=True),)
    if isinstance(event, Failed):
        if state.phase is not Phase.RUNNING:
            return state, ()
        return _on_failed(state, event, now)
    if isinstance(event, Resubmitted):
        if state.phase is not Phase.WAITING_RETRY:
            return state, ()
        running = attrs.evolve(
            state,
            phase=Phase.RUNNING,
            resources=state.retry_resources,
            resubmit_at=None,
            next_resources=None,
        )
        return running, ()
    if isinstance(event, SubmitFailed):
        if state.phase is not Phase.WAITING_RETRY:
            return state, ()
        return _on_submit_failed(state, event, now)
    if isinstance(event, CancelRequested):
        state = attrs.evolve(state, cancel_requested=True)
        if state.phase is Phase.RUNNING:
            return state, (CancelJob(),)
        # waiting to retry (or for parents): the last attempt already failed and is final
        return _fail(state, Ending("attempt"))
    if isinstance(event, Expedite):
        if state.phase is not Phase.WAITING_RETRY:
            return state, ()
        return _retry_at(state, now, state.retry_resources, now)
    raise TypeError(f"not a lifecycle event: {event!r}")


# ---------------------------------------------------------------- plain data


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def encode(state: TaskState) -> dict[str, Any]:
    """The state as JSON-able plain data (see :func:`decode`)."""
    plain: dict[str, Any] = _plain(attrs.asdict(state, recurse=True))
    return plain


def _resources(data: Mapping[str, Any] | None) -> AttemptResources | None:
    return None if data is None else AttemptResources(**data)


def _attempt(data: Mapping[str, Any]) -> Attempt:
    fields = dict(data)
    fields["failure_class"] = (
        None if fields["failure_class"] is None else FailureClass(fields["failure_class"])
    )
    fields["resources"] = _resources(fields["resources"])
    return Attempt(**fields)


def decode(data: Mapping[str, Any]) -> TaskState:
    """The state :func:`encode` turned into plain data."""
    ending = data["ending"]
    return TaskState(
        policy=RetryPolicy(**data["policy"]),
        resources=AttemptResources(**data["resources"]),
        phase=Phase(data["phase"]),
        attempts=tuple(_attempt(a) for a in data["attempts"]),
        retries_used=data["retries_used"],
        resubmit_at=data["resubmit_at"],
        next_resources=_resources(data["next_resources"]),
        cancel_requested=data["cancel_requested"],
        ending=None
        if ending is None
        else Ending(**{**ending, "parents": tuple(ending["parents"])}),
    )
