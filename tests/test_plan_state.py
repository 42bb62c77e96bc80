"""The pure plan state: the step function's laws over random DAGs, checked by a Hypothesis
state machine that feeds it what a PlanRun would, and a few examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from paracore.core.plan_graph import descendants
from paracore.core.plan_state import (
    Adopt,
    Cancel,
    CancelRequested,
    Discard,
    Earlier,
    Effect,
    Event,
    Finish,
    Found,
    How,
    Observed,
    Outcome,
    ParentFailed,
    Phase,
    PlanState,
    RecordPlan,
    RecordStep,
    StartFailed,
    StepSeen,
    StepState,
    Submit,
    SubmitFailed,
    Submitted,
    decode,
    encode,
    plan_step,
)
from tests.strategies import plan_dags

DEAD = (Phase.FAILED, Phase.NOT_RUN)
ROLLS = st.integers(0, 7)
"""A rule taking a roll acts only on 0: the plan is seldom abandoned or cancelled early."""


def earlier_runs(name: str) -> st.SearchStrategy[Earlier | None]:
    """Nothing left by an earlier submission, or its run in any state, changed or not."""
    return st.one_of(
        st.none(),
        st.builds(
            Earlier,
            run_id=st.just(f"old-{name}"),
            same_definition=st.booleans(),
            outcome=st.sampled_from(Outcome),
        ),
    )


class PlanMachine(RuleBasedStateMachine):
    """Drive one submission of a random plan through the events a PlanRun feeds it."""

    @initialize(dag=plan_dags(), slurm=st.booleans())
    def start(self, dag: tuple[tuple[str, ...], dict[str, tuple[str, ...]]], slurm: bool) -> None:
        """A plan about to start, on Slurm (afterok) or on this machine."""
        self.order, self.parents = dag
        self.state = PlanState.new(self.order, self.parents, schedules_dependencies=slurm)
        self.request: str | None = None  # the unanswered Submit
        self.ran: set[str] = set()  # steps whose Submit was answered with Submitted
        self.finishes = 0
        self.records = 0

    # ------------------------------------------------------------ feeding and checking

    def _ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.parents[name])
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(self.parents[parent])
        return found

    def _step(self, event: Event) -> tuple[Effect, ...]:
        before = self.state
        self.state, effects = plan_step(before, event)
        if before.final:
            assert (self.state, effects) == (before, ())
        for old, new in zip(before.steps, self.state.steps, strict=True):
            if old.final:
                assert new.phase is old.phase, "a step's final state never changes"
            if old.how is How.REUSED:
                assert new == old
        for effect in effects:
            self._check(effect, event)
        if not before.final:
            assert self.state.final == any(isinstance(e, Finish) for e in effects)
        return effects

    def _check(self, effect: Effect, event: Event) -> None:
        state = self.state
        if isinstance(effect, Submit):
            assert self.request is None, "one Submit at a time"
            self.request = effect.step
            step = state.step(effect.step)
            assert step.phase is Phase.SUBMITTING and step.how is None  # never a reused step
            assert effect.step not in self.ran, "a step runs once per submission"
            assert effect.after == self.parents[effect.step]
            assert not state.cancel_requested
            for name in self._ancestors(effect.step):  # no step runs after an ancestor failed
                assert state.step(name).phase not in DEAD
            for parent in effect.after:
                if state.schedules_dependencies:  # afterok on jobs that exist
                    assert state.step(parent).how is not None
                else:
                    assert state.step(parent).phase is Phase.SUCCEEDED
        elif isinstance(effect, Adopt | Discard):
            assert isinstance(event, Found) and event.earlier is not None
            assert event.step == effect.step
        elif isinstance(effect, Cancel):
            assert effect.steps
            assert all(state.step(n).how is not None for n in effect.steps)
        elif isinstance(effect, RecordPlan):
            self.records += 1
            assert self.records == 1
            assert not state.named(Phase.PENDING, Phase.SUBMITTING)
        elif isinstance(effect, RecordStep):
            assert self.records == 1, "a later step is recorded after the plan"
            assert state.step(effect.step).how is How.SUBMITTED
        else:
            self.finishes += 1
            assert state.final
            succeeded = state.named(Phase.SUCCEEDED)
            assert effect.failed == state.named(Phase.FAILED)
            assert effect.not_run == state.named(Phase.NOT_RUN)
            assert sorted((*succeeded, *effect.failed, *effect.not_run)) == sorted(self.order)
            assert effect.succeeded == (len(succeeded) == len(self.order))
            assert effect.cancelled == state.cancel_requested

    @property
    def _starting(self) -> bool:
        return not self.state.recorded and not self.state.cancel_requested

    def _sighting(self, step: StepState) -> st.SearchStrategy[StepSeen]:
        """What a step's jobs may say: success only after every parent succeeded, a real
        failure only once they could run (or were cancelled), blocked once a parent failed."""
        if step.final:
            outcome = Outcome.FAILED if step.phase is Phase.FAILED else Outcome.BLOCKED
            return st.builds(StepSeen, st.just(step.name), st.just(outcome), st.booleans())
        parents = [self.state.step(p).phase for p in step.parents]
        outcomes = [Outcome.RUNNING]
        if all(p is Phase.SUCCEEDED for p in parents):
            outcomes += [Outcome.SUCCEEDED, Outcome.FAILED]
        elif self.state.cancel_requested:
            outcomes.append(Outcome.FAILED)
        if any(p in DEAD for p in parents):
            outcomes.append(Outcome.BLOCKED)
        return st.builds(
            StepSeen, st.just(step.name), st.sampled_from(outcomes), st.booleans()
        ).map(lambda s: StepSeen(s.step, s.outcome, s.outcome is Outcome.RUNNING or s.active))

    # ------------------------------------------------------------ rules

    @precondition(lambda self: self.request is None and self.state.named(Phase.PENDING))
    @rule(data=st.data())
    def find(self, data: st.DataObject) -> None:
        """The plan starts: the shell finds what an earlier submission left for the next step."""
        name = self.state.named(Phase.PENDING)[0]
        earlier = data.draw(earlier_runs(name))
        self._step(Found(name, earlier))
        step = self.state.step(name)
        if step.how in (How.REUSED, How.ATTACHED):  # kept: unchanged, usable, parents kept
            assert earlier is not None and earlier.same_definition
            assert earlier.outcome in (Outcome.SUCCEEDED, Outcome.RUNNING)
            assert all(self.state.step(p).how in (How.REUSED, How.ATTACHED) for p in step.parents)
        else:
            assert step.phase in (Phase.SUBMITTING, Phase.WAITING)

    @precondition(lambda self: self.request is not None)
    @rule()
    def submitted(self) -> None:
        """The shell carried out the Submit."""
        name = self.request
        assert name is not None
        self.request = None
        self.ran.add(name)
        self._step(Submitted(name, f"run-{name}"))
        step = self.state.step(name)
        assert (step.phase, step.how, step.run_id) == (Phase.RUNNING, How.SUBMITTED, f"run-{name}")

    @precondition(lambda self: self.request is not None)
    @rule(roll=ROLLS)
    def submit_fails(self, roll: int) -> None:
        """The shell could not submit: starting, the plan stops; later, the step waits."""
        if roll:
            return  # rarely: most submissions succeed
        name = self.request
        assert name is not None
        self.request = None
        starting = self._starting
        self._step(SubmitFailed(name))
        if starting:
            assert self.state.cancel_requested
            assert not self.state.named(Phase.PENDING, Phase.WAITING, Phase.SUBMITTING)
        else:
            assert self.state.step(name).phase in (Phase.WAITING, Phase.NOT_RUN)

    @precondition(lambda self: self.request is None and self._starting)
    @rule(roll=ROLLS)
    def start_fails(self, roll: int) -> None:
        """Starting raised: only what this submission submitted is cancelled."""
        if roll:
            return
        submitted = tuple(s.name for s in self.state.steps if s.how is How.SUBMITTED)
        effects = self._step(StartFailed())
        cancels = [e for e in effects if isinstance(e, Cancel)]
        assert cancels == ([Cancel(submitted)] if submitted else [])
        assert not self.state.named(Phase.PENDING, Phase.WAITING)

    @precondition(lambda self: self.request is None and not self.state.named(Phase.PENDING))
    @rule(data=st.data())
    def observe(self, data: st.DataObject) -> None:
        """One round: the shell looks at every step whose jobs may still run."""
        seen = tuple(data.draw(self._sighting(s)) for s in self.state.steps if s.active)
        self._step(Observed(seen))
        if self.request is None:  # settled: no waiting step is ready
            for step in self.state.steps:
                if step.phase is Phase.WAITING:
                    phases = [self.state.step(p).phase for p in step.parents]
                    assert not all(p is Phase.SUCCEEDED for p in phases)

    @precondition(lambda self: self.request is None and not self.state.named(Phase.PENDING))
    @rule(roll=ROLLS)
    def cancel(self, roll: int) -> None:
        """The user cancels: every step with jobs still running is cancelled."""
        if roll:
            return
        final = self.state.final
        active = tuple(s.name for s in self.state.steps if s.active)
        effects = self._step(CancelRequested())
        if not final:
            assert self.state.cancel_requested
            assert [e for e in effects if isinstance(e, Cancel)] == (
                [Cancel(active)] if active else []
            )
            assert not self.state.named(Phase.WAITING, Phase.PENDING)

    @rule(data=st.data())
    def stray(self, data: st.DataObject) -> None:
        """An event out of turn (about a step not in the phase it speaks of) changes nothing."""
        name = data.draw(st.sampled_from(self.order))
        step = self.state.step(name)
        events: list[Event] = []
        if step.phase is not Phase.SUBMITTING:
            events += [Submitted(name, "stray"), SubmitFailed(name)]
        pending = self.state.named(Phase.PENDING)
        if self.request is not None or not pending or pending[0] != name:
            events.append(Found(name, None))
        if not events:
            return
        before = self.state
        assert plan_step(before, data.draw(st.sampled_from(events))) == (before, ())

    # ------------------------------------------------------------ invariants

    @invariant()
    def state_round_trips_as_json(self) -> None:
        """The state survives encode -> JSON -> decode unchanged."""
        if hasattr(self, "state"):
            assert decode(json.loads(json.dumps(encode(self.state)))) == self.state

    @invariant()
    def steps_run_after_their_parents(self) -> None:
        """On this machine a submitted step's parents all succeeded; on Slurm they all have
        jobs for its afterok."""
        if not hasattr(self, "state"):
            return
        for step in self.state.steps:
            if step.how is not How.SUBMITTED:
                continue
            for parent in step.parents:
                if self.state.schedules_dependencies:
                    assert self.state.step(parent).how is not None
                else:
                    assert self.state.step(parent).phase is Phase.SUCCEEDED

    @invariant()
    def a_failed_steps_descendants_never_wait_to_run(self) -> None:
        """No step waits to be submitted once a parent failed or did not run, nor after a
        cancel."""
        if not hasattr(self, "state"):
            return
        for step in self.state.steps:
            if step.phase in (Phase.WAITING, Phase.PENDING, Phase.SUBMITTING):
                assert not self.state.cancel_requested
                assert all(self.state.step(p).phase not in DEAD for p in step.parents)

    @invariant()
    def only_steps_with_jobs_are_active(self) -> None:
        """A running step has jobs; a step without jobs has none running."""
        if not hasattr(self, "state"):
            return
        for step in self.state.steps:
            if step.phase is Phase.RUNNING:
                assert step.active
            if step.active:
                assert step.how is not None
                assert step.phase is Phase.RUNNING or step.final

    @invariant()
    def finish_is_reported_once_when_final(self) -> None:
        """Finish came exactly once if the plan is final, never before."""
        if hasattr(self, "state"):
            assert self.finishes == (1 if self.state.final else 0)

    def teardown(self) -> None:
        """Whatever happened, the plan reaches its end: every step in one final state."""
        if not hasattr(self, "state"):
            return
        for _ in range(10 * len(self.order) + 10):
            if self.state.final:
                break
            if self.request is not None:
                self.submitted()
            elif self.state.named(Phase.PENDING):
                self._step(Found(self.state.named(Phase.PENDING)[0], None))
            else:
                self._step(Observed(tuple(_settling(self.state))))
        assert self.state.final
        assert all(s.final for s in self.state.steps)
        assert self.finishes == 1


def _settling(state: PlanState) -> list[StepSeen]:
    """A round in which every active step moves on as far as its parents allow."""
    out = []
    for step in state.steps:
        if not step.active:
            continue
        phases = [state.step(p).phase for p in step.parents]
        if step.final:
            outcome = Outcome.FAILED if step.phase is Phase.FAILED else Outcome.BLOCKED
            out.append(StepSeen(step.name, outcome, active=False))
        elif any(p in DEAD for p in phases):
            out.append(StepSeen(step.name, Outcome.BLOCKED, active=False))
        elif all(p is Phase.SUCCEEDED for p in phases):
            out.append(StepSeen(step.name, Outcome.SUCCEEDED, active=False))
    return out


TestPlanMachine = PlanMachine.TestCase
TestPlanMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# ---------------------------------------------------------------- examples

CHAIN = (("a", "b", "c"), {"a": (), "b": ("a",), "c": ("b",)})


def _run(state: PlanState, *events: Event) -> tuple[PlanState, list[Effect]]:
    effects: list[Effect] = []
    for event in events:
        state, more = plan_step(state, event)
        effects += more
    return state, effects


def _fresh(slurm: bool, dag: Any = CHAIN) -> PlanState:
    return PlanState.new(*dag, schedules_dependencies=slurm)


def test_on_slurm_every_step_is_submitted_at_once_after_its_parents() -> None:
    """Slurm: each step is submitted as it is found, afterok on its parents, then recorded."""
    state, effects = _run(
        _fresh(True),
        Found("a"),
        Submitted("a", "r1"),
        Found("b"),
        Submitted("b", "r2"),
        Found("c"),
        Submitted("c", "r3"),
    )
    assert effects == [Submit("a"), Submit("b", ("a",)), Submit("c", ("b",)), RecordPlan()]
    assert [s.how_text for s in state.steps] == ["submitted"] * 3


def test_on_this_machine_a_step_waits_until_its_parents_succeeded() -> None:
    """Local: b waits for a; a's success submits b, which is recorded on its own."""
    state, effects = _run(_fresh(False), Found("a"), Submitted("a", "r1"), Found("b"), Found("c"))
    assert effects == [Submit("a"), RecordPlan()]
    assert state.step("b").how_text == "waiting"
    state, effects = _run(state, Observed((StepSeen("a", Outcome.SUCCEEDED, False),)))
    assert effects == [Submit("b", ("a",))]
    state, effects = _run(state, Submitted("b", "r2"))
    assert effects == [RecordStep("b")]
    assert state.step("c").phase is Phase.WAITING


def test_steps_ready_together_are_submitted_one_at_a_time_in_order() -> None:
    """Local: both children of a are submitted after it, the second once the first is."""
    fork = (("a", "b", "c"), {"a": (), "b": ("a",), "c": ("a",)})
    state, _ = _run(_fresh(False, fork), Found("a"), Submitted("a", "r1"), Found("b"), Found("c"))
    state, effects = _run(state, Observed((StepSeen("a", Outcome.SUCCEEDED, False),)))
    assert effects == [Submit("b", ("a",))]
    state, effects = _run(state, Submitted("b", "r2"))
    assert effects == [RecordStep("b"), Submit("c", ("a",))]


def test_a_resumed_plan_reuses_what_completed_and_reruns_what_follows_a_change() -> None:
    """a completed earlier (reused); b changed (its old jobs discarded); c runs again too."""
    done = Earlier("old-a", same_definition=True, outcome=Outcome.SUCCEEDED)
    changed = Earlier("old-b", same_definition=False, outcome=Outcome.RUNNING)
    same = Earlier("old-c", same_definition=True, outcome=Outcome.SUCCEEDED)
    state, effects = _run(
        _fresh(True),
        Found("a", done),
        Found("b", changed),
        Submitted("b", "r2"),
        Found("c", same),
        Submitted("c", "r3"),
    )
    assert effects == [
        Adopt("a"),
        Discard("b"),
        Submit("b", ("a",)),
        Discard("c"),
        Submit("c", ("b",)),
        RecordPlan(),
    ]
    assert [s.how_text for s in state.steps] == ["reused", "submitted", "submitted"]
    assert state.step("a").run_id == "old-a"


def test_a_failure_names_the_step_and_what_will_not_run() -> None:
    """Local: a fails; b and c never run; the failure and Finish say so."""
    state, _ = _run(_fresh(False), Found("a"), Submitted("a", "r1"), Found("b"), Found("c"))
    state, effects = _run(state, Observed((StepSeen("a", Outcome.FAILED, False),)))
    assert state.named(Phase.NOT_RUN) == ("b", "c")
    assert effects == [Finish(succeeded=False, failed=("a",), not_run=("b", "c"))]
    failure = state.failure()
    assert failure is not None and (failure.step, failure.not_run) == ("a", ("b", "c"))
    assert plan_step(state, CancelRequested()) == (state, ())


def test_cancel_stops_what_runs_and_what_waits() -> None:
    """Cancel: the running step is cancelled, the waiting ones will never be submitted."""
    state, _ = _run(_fresh(False), Found("a"), Submitted("a", "r1"), Found("b"), Found("c"))
    state, effects = _run(state, CancelRequested())
    assert effects == [Cancel(("a",))]
    assert state.named(Phase.NOT_RUN) == ("b", "c")
    state, effects = _run(state, Observed((StepSeen("a", Outcome.FAILED, False),)))
    assert effects == [Finish(succeeded=False, failed=("a",), not_run=("b", "c"), cancelled=True)]


def test_a_submission_that_fails_later_is_tried_again_at_the_next_look() -> None:
    """Local: b's submission raised; b waits again and is submitted in the next round."""
    state, _ = _run(_fresh(False), Found("a"), Submitted("a", "r1"), Found("b"), Found("c"))
    state, effects = _run(
        state, Observed((StepSeen("a", Outcome.SUCCEEDED, False),)), SubmitFailed("b")
    )
    assert effects == [Submit("b", ("a",))]
    assert state.step("b").phase is Phase.WAITING
    _, effects = _run(state, Observed())
    assert effects == [Submit("b", ("a",))]


def test_a_submission_that_fails_while_starting_cancels_what_was_submitted() -> None:
    """Slurm: c cannot be submitted: a and b are cancelled, nothing is recorded."""
    state, effects = _run(
        _fresh(True),
        Found("a"),
        Submitted("a", "r1"),
        Found("b"),
        Submitted("b", "r2"),
        Found("c"),
        SubmitFailed("c"),
        StartFailed(),
    )
    assert effects[-1] == Cancel(("a", "b"))
    assert RecordPlan() not in effects
    assert state.step("c").phase is Phase.NOT_RUN


def test_a_failed_map_with_tasks_still_running_is_cancelled_with_the_plan() -> None:
    """A step that failed while some of its tasks run stays cancellable until they end."""
    dag = (("m",), {"m": ()})
    state, _ = _run(_fresh(True, dag), Found("m"), Submitted("m", "r1"))
    state, effects = _run(state, Observed((StepSeen("m", Outcome.FAILED, True),)))
    assert state.step("m").phase is Phase.FAILED and not state.final and effects == []
    state, effects = _run(state, CancelRequested())
    assert effects == [Cancel(("m",))]
    _, effects = _run(state, Observed((StepSeen("m", Outcome.FAILED, False),)))
    assert effects == [Finish(succeeded=False, failed=("m",), cancelled=True)]


@pytest.mark.parametrize("slurm", [True, False])
def test_a_blocked_step_did_not_run(slurm: bool) -> None:
    """Jobs that failed only because a parent did make the step 'not run', not 'failed'."""
    dag = (("a", "b"), {"a": (), "b": ("a",)})
    state, _ = _run(_fresh(slurm, dag), Found("a"), Submitted("a", "r1"), Found("b"))
    if slurm:
        state, _ = _run(state, Submitted("b", "r2"))
    seen = [StepSeen("a", Outcome.FAILED, False)]
    if slurm:
        seen.append(StepSeen("b", Outcome.BLOCKED, False))
    state, _ = _run(state, Observed(tuple(seen)))
    assert (state.step("a").phase, state.step("b").phase) == (Phase.FAILED, Phase.NOT_RUN)
    assert descendants(state.order, {"a": (), "b": ("a",)}, ["a"]) == ("b",)


def test_a_step_whose_parent_failed_before_it_was_submitted_does_not_run() -> None:
    """Slurm: a fails before b is submitted (the scheduler would refuse the dependency): b and
    the steps after it do not run, nothing more is submitted, and the failure names a."""
    state, effects = _run(_fresh(True), Found("a"), Submitted("a", "r1"), Found("b"))
    assert effects[-1] == Submit("b", ("a",))
    state, effects = _run(state, ParentFailed("b"), Found("c"))
    assert state.named(Phase.NOT_RUN) == ("b", "c")
    assert not any(isinstance(e, Submit) for e in effects)
    assert RecordPlan() in effects
    state, effects = _run(state, Observed((StepSeen("a", Outcome.FAILED, False),)))
    assert effects == [Finish(succeeded=False, failed=("a",), not_run=("b", "c"))]
    assert plan_step(state, ParentFailed("b")) == (state, ())
