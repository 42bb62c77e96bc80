"""The pure lifecycle: the step function's laws, checked by a Hypothesis state machine."""

from __future__ import annotations

import json

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources
from paracore.core.failures import FailureClass
from paracore.core.lifecycle import (
    Attempt,
    CancelJob,
    CancelRequested,
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
    backoff_delay,
    decode,
    encode,
    step,
)
from paracore.core.retry import RetryPolicy, base_delay
from tests.strategies import retry_policies

ALL_CLASSES = frozenset(FailureClass)


def _attempt(job_id: str = "1", nodes: str | None = None) -> Attempt:
    return Attempt(job_id=job_id, state="FAILED", error="boom", nodes=nodes)


def parents_views() -> st.SearchStrategy[Parents]:
    """No parents, or parents in any mix of running, succeeded and failed."""
    return st.one_of(
        st.just(Parents()),
        st.builds(
            lambda failed, final: Parents(
                failed=failed, all_final=final or bool(failed), exist=True
            ),
            st.lists(st.sampled_from(["7 (user_error)", "8 (timeout)"]), max_size=2).map(tuple),
            st.booleans(),
        ),
    )


def limits() -> st.SearchStrategy[PartitionLimits | None]:
    """A partition's caps, or none known."""
    return st.one_of(
        st.none(),
        st.builds(
            PartitionLimits,
            node_mem_mb=st.one_of(st.none(), st.integers(100, 10_000)),
            max_time_min=st.one_of(st.none(), st.integers(1, 600)),
        ),
    )


class Lifecycle(RuleBasedStateMachine):
    """Drive one piece of work through random events the way a shell would."""

    @initialize(
        policy=retry_policies(),
        mem=st.one_of(st.none(), st.integers(100, 5000)),
        time_min=st.one_of(st.none(), st.integers(1, 300)),
    )
    def start(self, policy: RetryPolicy, mem: int | None, time_min: int | None) -> None:
        """A fresh piece of work, running its first attempt."""
        self.state = TaskState(
            policy=policy, resources=AttemptResources(mem_mb=mem, time_min=time_min)
        )
        self.now = 0.0
        self.requested: AttemptResources | None = None  # an unanswered Resubmit effect
        self.submitted = 1
        self.finishes = 0
        self.cancelled = False
        self.history: list[AttemptResources] = [self.state.resources]

    def _step(self, event: object) -> None:
        before = self.state
        self.state, effects = step(self.state, event, self.now)  # type: ignore[arg-type]
        if before.final:
            assert self.state == before
            assert effects == ()
        for effect in effects:
            if isinstance(effect, Resubmit):
                assert not self.cancelled, "no resubmission after a cancel"
                assert self.state.due(self.now)
                assert effect.resources == self.state.retry_resources
                self.requested = effect.resources
            elif isinstance(effect, Finish):
                self.finishes += 1
                assert self.state.final
                assert effect.succeeded == (self.state.phase is Phase.SUCCEEDED)
            else:
                assert isinstance(effect, CancelJob)
                assert before.phase is Phase.RUNNING
        if self.state.final and not before.final:
            assert any(isinstance(e, Finish) for e in effects)

    @rule(dt=st.floats(0, 5000), parents=parents_views())
    def tick(self, dt: float, parents: Parents) -> None:
        """Time passes; the attempt is still running, or the work waits."""
        self.now += dt
        self._step(Tick(parents))

    @precondition(lambda self: self.state.phase is Phase.RUNNING)
    @rule()
    def succeed(self) -> None:
        """The running attempt returns a value."""
        self._step(Succeeded(Attempt(job_id=str(self.submitted), state="COMPLETED")))
        assert self.state.phase is Phase.SUCCEEDED

    @precondition(lambda self: self.state.phase is Phase.RUNNING)
    @rule(
        failure=st.sampled_from(sorted(ALL_CLASSES)),
        parents=parents_views(),
        caps=limits(),
        jitter=st.floats(0.1, 1.9),
        can_resubmit=st.booleans(),
        by_scheduler=st.booleans(),
    )
    def fail(self, failure, parents, caps, jitter, can_resubmit, by_scheduler) -> None:
        """The running attempt ends without a value."""
        used = self.state.retries_used
        event = Failed(
            attempt=_attempt(str(self.submitted), nodes="n1"),
            failure=failure,
            parents=parents,
            limits=caps,
            jitter=jitter,
            can_resubmit=can_resubmit,
            cancelled_by_scheduler=by_scheduler,
        )
        self._step(event)
        assert self.state.attempts[-1].failure_class is not None
        if self.state.phase is Phase.WAITING_RETRY and self.state.retries_used > used:
            assert self.state.policy.retries_class(failure) or failure in (
                FailureClass.DEPENDENCY,
                FailureClass.CANCELLED,
            )

    @precondition(lambda self: self.requested is not None)
    @rule()
    def resubmitted(self) -> None:
        """The shell submitted the requested attempt."""
        self._step(Resubmitted())
        if self.state.phase is Phase.RUNNING:
            assert self.state.resources == self.requested
            self.submitted += 1
            self.history.append(self.state.resources)
        self.requested = None

    @precondition(lambda self: self.requested is not None)
    @rule(failure=st.sampled_from([FailureClass.SCHEDULER_UNREACHABLE, FailureClass.USER_ERROR]))
    def submit_failed(self, failure: FailureClass) -> None:
        """The shell could not submit the requested attempt."""
        self.requested = None
        self._step(SubmitFailed("controller unreachable", failure))

    @rule()
    def cancel(self) -> None:
        """The user cancels."""
        final = self.state.final
        self._step(CancelRequested())
        if not final:
            self.cancelled = True
            self.requested = None

    @rule()
    def expedite(self) -> None:
        """A group asks a waiting retry to ride along now."""
        self._step(Expedite())

    @invariant()
    def budget_is_never_overspent(self) -> None:
        """Retries used never exceed the policy's budget."""
        if hasattr(self, "state"):
            assert 0 <= self.state.retries_used <= self.state.policy.retries

    @invariant()
    def finish_is_reported_at_most_once(self) -> None:
        """Finish comes exactly once, when (and only when) the work became final."""
        if hasattr(self, "state"):
            assert self.finishes == (1 if self.state.final else 0)

    @invariant()
    def requests_never_shrink(self) -> None:
        """Memory and time asked for never decrease from one attempt to the next."""
        if hasattr(self, "state"):
            for older, newer in zip(self.history, self.history[1:], strict=False):
                for field in ("mem_mb", "time_min"):
                    a, b = getattr(older, field), getattr(newer, field)
                    assert a is None or b is None or b >= a

    @invariant()
    def state_round_trips_as_json(self) -> None:
        """The state survives encode -> JSON -> decode unchanged (the run store keeps it)."""
        if hasattr(self, "state"):
            assert decode(json.loads(json.dumps(encode(self.state)))) == self.state


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


# ---------------------------------------------------------------- examples


POLICY = RetryPolicy(retries=2, backoff_s=10, jitter=0, retry_on=ALL_CLASSES)


def test_a_retried_failure_waits_its_backoff_then_asks_for_more_memory() -> None:
    """OOM: WAITING_RETRY until the delay passed, then Resubmit with 1.5x memory."""
    state = TaskState(policy=POLICY, resources=AttemptResources(mem_mb=1000))
    state, effects = step(state, Failed(_attempt(), FailureClass.OUT_OF_MEMORY), 100.0)
    assert (state.phase, state.resubmit_at, effects) == (Phase.WAITING_RETRY, 110.0, ())
    assert step(state, Tick(), 109.9) == (state, ())
    _, effects = step(state, Tick(), 110.0)
    assert effects == (Resubmit(AttemptResources(mem_mb=1500)),)


def test_the_budget_ends_the_work() -> None:
    """After retries are spent the next failure is final, with the attempts recorded."""
    state = TaskState(policy=attrs.evolve(POLICY, retries=0))
    state, effects = step(state, Failed(_attempt(), FailureClass.USER_ERROR), 0.0)
    assert state.phase is Phase.FAILED
    assert effects == (Finish(succeeded=False),)
    assert [a.failure_class for a in state.attempts] == [FailureClass.USER_ERROR]


def test_a_parent_failure_cancels_a_running_child() -> None:
    """A running child whose parent failed for good is cancelled, failing as a dependency."""
    state = TaskState(policy=POLICY)
    parents = Parents(failed=("7 (user_error)",), all_final=True, exist=True)
    state, effects = step(state, Tick(parents), 0.0)
    assert effects == (CancelJob(), Finish(succeeded=False))
    assert state.ending is not None and state.ending.parents == ("7 (user_error)",)


def test_a_child_cancelled_by_the_scheduler_waits_for_a_retried_parent() -> None:
    """CANCELLED by the scheduler with a parent still retrying: wait, then run again."""
    state = TaskState(policy=attrs.evolve(POLICY, retries=0))
    running = Parents(all_final=False, exist=True)
    event = Failed(_attempt(), FailureClass.CANCELLED, parents=running, cancelled_by_scheduler=True)
    state, _ = step(state, event, 0.0)
    assert state.phase is Phase.WAITING_PARENTS
    assert state.attempts[-1].failure_class is FailureClass.DEPENDENCY
    state, effects = step(state, Tick(Parents(all_final=True, exist=True)), 5.0)
    assert effects == (Resubmit(AttemptResources()),)
    assert state.retries_used == 0  # a dependency retry costs no budget


def test_cancel_while_waiting_ends_the_work_at_once() -> None:
    """Cancelling during the backoff fails the work; no resubmission follows."""
    state = TaskState(policy=POLICY)
    state, _ = step(state, Failed(_attempt(), FailureClass.USER_ERROR), 0.0)
    assert state.phase is Phase.WAITING_RETRY
    state, effects = step(state, CancelRequested(), 1.0)
    assert state.phase is Phase.FAILED
    assert effects == (Finish(succeeded=False),)
    assert step(state, Tick(), 1e9) == (state, ())


@given(retry_policies(), st.integers(1, 30), st.floats(0.0, 2.0))
def test_backoff_delay_is_the_base_delay_scaled_and_capped(policy, retry, factor) -> None:
    """Without jitter the delay is the base delay; with it, base x factor, never over the cap."""
    delay = backoff_delay(policy, retry, factor)
    base = base_delay(policy, retry)
    if policy.jitter == 0:
        assert delay == base
    else:
        assert delay == min(policy.cap_s, base * factor)
    assert delay <= max(policy.cap_s, base)
