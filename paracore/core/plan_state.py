"""The run of a workflow plan as a pure step function, beside the task lifecycle.

A :class:`PlanState` is one frozen value: per step (in topological order) its :class:`Phase`,
:class:`How` this submission got it, the run of the store that carries it and whether any of
its jobs may still run; for the plan, whether the scheduler holds children until their
parents succeeded (Slurm's ``afterok``) or a step is submitted only once its parents
succeeded (this machine), whether the plan is recorded in the run store, and whether it was
cancelled. :func:`plan_step` takes a state and one :class:`Event` (what the shell observed)
and returns the next state and the :class:`Effect` values the shell must carry out. It never
submits, waits, looks at a job or touches the store: a step's retries happen inside its
handles (:mod:`paracore.core.lifecycle`); here a step runs until its handles have an outcome.

Phases of a step::

    PENDING ──Found: the earlier run is kept──▶ SUCCEEDED (reused) or RUNNING (attached)
       ├──Found: a parent failed or did not run──▶ NOT_RUN
       ├──Found: Slurm, or every parent succeeded──▶ SUBMITTING ──Submitted──▶ RUNNING
       └──Found: a parent still runs (this machine)──▶ WAITING
    WAITING ──Observed or Submitted: every parent succeeded──▶ SUBMITTING (one at a time)
       └──Observed: a parent failed or did not run; CancelRequested──▶ NOT_RUN
    SUBMITTING ──SubmitFailed──▶ WAITING (tried again at the next look), NOT_RUN (starting)
       └──ParentFailed: a parent failed before the step could be submitted──▶ NOT_RUN
    RUNNING ──Observed──▶ SUCCEEDED, FAILED, or NOT_RUN (blocked: a parent failed)

SUCCEEDED, FAILED and NOT_RUN are final. The plan is final once every step is and none has a
job still running; :class:`Finish` is reported then, once, and a final plan absorbs every
event. The state is plain data (:func:`encode` / :func:`decode`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from paracore.core.plan_graph import descendants

__all__ = [
    "Adopt",
    "Cancel",
    "CancelRequested",
    "Discard",
    "Earlier",
    "Effect",
    "Event",
    "Failure",
    "Finish",
    "Found",
    "How",
    "Observed",
    "Outcome",
    "ParentFailed",
    "Phase",
    "PlanState",
    "RecordPlan",
    "RecordStep",
    "StartFailed",
    "StepSeen",
    "StepState",
    "Submit",
    "SubmitFailed",
    "Submitted",
    "decode",
    "encode",
    "plan_step",
]


class Phase(str, enum.Enum):
    """Where a step is in this submission (the values are what ``status()`` shows)."""

    PENDING = "pending"  # not looked at yet: the plan is starting
    WAITING = "waiting"  # not submitted: a parent still runs (backends without dependencies)
    SUBMITTING = "submitting"  # Submit asked of the shell, not answered yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_RUN = "not run"  # a parent failed, or the plan was cancelled first


FINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.NOT_RUN})
UNFINISHED_PHASES = frozenset({Phase.PENDING, Phase.WAITING, Phase.SUBMITTING, Phase.RUNNING})


class How(str, enum.Enum):
    """How this submission got a step's jobs."""

    REUSED = "reused"  # an earlier submission completed it
    ATTACHED = "attached"  # an earlier submission's jobs, still in flight
    SUBMITTED = "submitted"


class Outcome(str, enum.Enum):
    """What a step's jobs say, as the shell sees them."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # one of them failed for good
    BLOCKED = "blocked"  # they failed only because a parent did: they never ran


@attrs.frozen
class StepState:
    """One step: its phase, how it was got, its run of the store, and whether any of its jobs
    may still run (a map step that failed for good while other tasks run)."""

    name: str
    parents: tuple[str, ...] = ()
    phase: Phase = Phase.PENDING
    how: How | None = None
    run_id: str | None = None
    active: bool = False

    @property
    def final(self) -> bool:
        """True once the step has an outcome that will not change."""
        return self.phase in FINAL_PHASES

    @property
    def how_text(self) -> str:
        """``submitted``, ``reused`` or ``attached``; ``waiting`` before it is submitted,
        ``not run`` once it never will be."""
        if self.how is not None:
            return self.how.value
        return "not run" if self.phase is Phase.NOT_RUN else "waiting"


@attrs.frozen
class Failure:
    """The first step (in topological order) that failed for good, the steps downstream of
    it (they will not run) and the other steps still unfinished."""

    step: str
    not_run: tuple[str, ...]
    running: tuple[str, ...]


@attrs.frozen
class PlanState:
    """Everything paracore knows about one submission of a plan (a value)."""

    steps: tuple[StepState, ...]
    schedules_dependencies: bool
    recorded: bool = False
    cancel_requested: bool = False

    @classmethod
    def new(
        cls,
        order: Sequence[str],
        parents: Mapping[str, Sequence[str]],
        *,
        schedules_dependencies: bool,
    ) -> PlanState:
        """A plan about to start: every step PENDING, ``order`` topological."""
        steps = tuple(StepState(name, tuple(parents[name])) for name in order)
        return cls(steps=steps, schedules_dependencies=schedules_dependencies)

    @property
    def order(self) -> tuple[str, ...]:
        """The step names, in topological order."""
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> StepState:
        """The step called ``name`` (KeyError if none is)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def named(self, *phases: Phase) -> tuple[str, ...]:
        """The steps in one of ``phases``, in topological order."""
        return tuple(s.name for s in self.steps if s.phase in phases)

    @property
    def unfinished(self) -> tuple[str, ...]:
        """The steps without an outcome yet."""
        return self.named(*UNFINISHED_PHASES)

    @property
    def final(self) -> bool:
        """True once every step has its outcome and none has a job still running."""
        return all(s.final and not s.active for s in self.steps)

    def failure(self) -> Failure | None:
        """The first step that failed for good, and what that means for the others."""
        failed = self.named(Phase.FAILED)
        if not failed:
            return None
        parents = {s.name: s.parents for s in self.steps}
        not_run = descendants(self.order, parents, failed[:1])
        running = tuple(n for n in self.unfinished if n not in not_run)
        return Failure(step=failed[0], not_run=not_run, running=running)


# ---------------------------------------------------------------- events


@attrs.frozen
class Earlier:
    """What an earlier submission of the plan left for a step: its run, whether the step's
    definition (its key) is the same now, and what its jobs say."""

    run_id: str
    same_definition: bool
    outcome: Outcome


@attrs.frozen
class Found:
    """The plan is starting: the shell looked up what an earlier submission left for
    ``step`` (None: nothing usable). Steps are found one by one, in topological order."""

    step: str
    earlier: Earlier | None = None


@attrs.frozen
class Submitted:
    """The shell carried out a :class:`Submit`; ``run_id`` is the run carrying the step."""

    step: str
    run_id: str | None = None


@attrs.frozen
class SubmitFailed:
    """The shell could not carry out a :class:`Submit` (it raises the error)."""

    step: str


@attrs.frozen
class ParentFailed:
    """The shell was about to carry out a :class:`Submit` and found a parent already failed
    (the scheduler would refuse the dependency): the step will not run."""

    step: str


@attrs.frozen
class StepSeen:
    """What the jobs of a step say now, and whether any of them may still run."""

    step: str
    outcome: Outcome
    active: bool = True


@attrs.frozen
class Observed:
    """The shell looked at every step with jobs that may still run (one round)."""

    steps: tuple[StepSeen, ...] = ()


@attrs.frozen
class CancelRequested:
    """The user cancelled the plan: cancel what runs, submit nothing more."""


@attrs.frozen
class StartFailed:
    """Starting the plan raised: cancel what this submission submitted, and stop."""


Event = Found | Submitted | SubmitFailed | ParentFailed | Observed | CancelRequested | StartFailed


# ---------------------------------------------------------------- effects


@attrs.frozen
class Adopt:
    """Take the earlier submission's jobs as the step's (reused, or re-attached)."""

    step: str


@attrs.frozen
class Discard:
    """Cancel what still runs of the earlier submission's jobs of the step (its definition
    changed, it failed, or a parent runs again)."""

    step: str


@attrs.frozen
class Submit:
    """Submit the step, after its parents ``after`` (Slurm's ``afterok`` on their jobs), then
    send :class:`Submitted` or :class:`SubmitFailed`."""

    step: str
    after: tuple[str, ...] = ()


@attrs.frozen
class Cancel:
    """Cancel the unfinished jobs of ``steps``."""

    steps: tuple[str, ...]


@attrs.frozen
class RecordPlan:
    """Every step is submitted or waiting: record the plan (each step's run and how)."""


@attrs.frozen
class RecordStep:
    """Record the run of a step submitted after the plan was recorded."""

    step: str


@attrs.frozen
class Finish:
    """Every step has its outcome: ``failed`` failed for good (the first is the one to
    report), ``not_run`` never ran; ``cancelled`` says the plan was cancelled."""

    succeeded: bool
    failed: tuple[str, ...] = ()
    not_run: tuple[str, ...] = ()
    cancelled: bool = False


Effect = Adopt | Discard | Submit | Cancel | RecordPlan | RecordStep | Finish


# ---------------------------------------------------------------- the step function

Transition = tuple[PlanState, tuple[Effect, ...]]


def _with(state: PlanState, *changed: StepState) -> PlanState:
    by_name = {s.name: s for s in changed}
    return attrs.evolve(state, steps=tuple(by_name.get(s.name, s) for s in state.steps))


def _starting(state: PlanState) -> bool:
    return not state.recorded and not state.cancel_requested


def _record(state: PlanState, effects: tuple[Effect, ...]) -> Transition:
    """Record the plan once every step is placed (submitted, kept or waiting)."""
    placing = state.named(Phase.PENDING, Phase.SUBMITTING)
    if _starting(state) and not placing:
        return attrs.evolve(state, recorded=True), (*effects, RecordPlan())
    return state, effects


def _on_found(state: PlanState, event: Found) -> Transition:
    pending = state.named(Phase.PENDING)
    if not pending or pending[0] != event.step or state.named(Phase.SUBMITTING):
        return state, ()  # out of turn: steps are found in order, each Submit answered first
    step = state.step(event.step)
    parents = [state.step(p) for p in step.parents]
    carried_over = all(p.how in (How.REUSED, How.ATTACHED) for p in parents)
    earlier = event.earlier
    effects: tuple[Effect, ...] = ()
    if earlier is not None:
        usable = earlier.outcome in (Outcome.SUCCEEDED, Outcome.RUNNING)
        if earlier.same_definition and carried_over and usable:
            reused = earlier.outcome is Outcome.SUCCEEDED
            kept = attrs.evolve(
                step,
                phase=Phase.SUCCEEDED if reused else Phase.RUNNING,
                how=How.REUSED if reused else How.ATTACHED,
                run_id=earlier.run_id,
                active=not reused,
            )
            return _record(_with(state, kept), (Adopt(step.name),))
        effects = (Discard(step.name),)
    if any(p.phase in (Phase.FAILED, Phase.NOT_RUN) for p in parents):
        return _record(_with(state, attrs.evolve(step, phase=Phase.NOT_RUN)), effects)
    if state.schedules_dependencies or all(p.phase is Phase.SUCCEEDED for p in parents):
        submitting = attrs.evolve(step, phase=Phase.SUBMITTING)
        return _with(state, submitting), (*effects, Submit(step.name, step.parents))
    return _record(_with(state, attrs.evolve(step, phase=Phase.WAITING)), effects)


def _on_submitted(state: PlanState, event: Submitted) -> Transition:
    step = state.step(event.step)
    if step.phase is not Phase.SUBMITTING:
        return state, ()
    running = attrs.evolve(
        step, phase=Phase.RUNNING, how=How.SUBMITTED, run_id=event.run_id, active=True
    )
    state = _with(state, running)
    effects: tuple[Effect, ...] = ()
    if state.recorded:
        effects = (RecordStep(step.name),)
    if state.cancel_requested:
        effects = (*effects, Cancel((step.name,)))
    state, effects = _record(state, effects)
    state, more = _settle(state)  # the next waiting step whose parents succeeded
    return state, (*effects, *more)


def _abandon(state: PlanState) -> Transition:
    """Starting failed: nothing more is submitted, what was submitted is cancelled."""
    never = Phase.PENDING, Phase.WAITING, Phase.SUBMITTING
    state = attrs.evolve(state, cancel_requested=True)
    state = _with(
        state, *(attrs.evolve(s, phase=Phase.NOT_RUN) for s in state.steps if s.phase in never)
    )
    submitted = tuple(s.name for s in state.steps if s.how is How.SUBMITTED)
    return state, ((Cancel(submitted),) if submitted else ())


def _on_submit_failed(state: PlanState, event: SubmitFailed) -> Transition:
    step = state.step(event.step)
    if step.phase is not Phase.SUBMITTING:
        return state, ()
    if _starting(state):
        return _abandon(state)
    phase = Phase.NOT_RUN if state.cancel_requested else Phase.WAITING
    return _with(state, attrs.evolve(step, phase=phase)), ()


def _on_parent_failed(state: PlanState, event: ParentFailed) -> Transition:
    step = state.step(event.step)
    if step.phase is not Phase.SUBMITTING:
        return state, ()
    state, effects = _record(_with(state, attrs.evolve(step, phase=Phase.NOT_RUN)), ())
    state, more = _settle(state)
    return state, (*effects, *more)


_SEEN_PHASE = {
    Outcome.SUCCEEDED: Phase.SUCCEEDED,
    Outcome.FAILED: Phase.FAILED,
    Outcome.BLOCKED: Phase.NOT_RUN,
}


def _seen(step: StepState, seen: StepSeen) -> StepState:
    if not step.active:
        return step
    active = seen.outcome is not Outcome.SUCCEEDED and (
        seen.active or seen.outcome is Outcome.RUNNING
    )
    if step.phase is Phase.RUNNING and seen.outcome is not Outcome.RUNNING:
        return attrs.evolve(step, phase=_SEEN_PHASE[seen.outcome], active=active)
    if step.final:  # its outcome stands; only whether jobs still run may change
        return attrs.evolve(step, active=active)
    return step


def _settle(state: PlanState) -> Transition:
    """Waiting steps, in order: none runs after a parent failed or did not run, or after a
    cancel; the first whose parents all succeeded is submitted (one Submit at a time, so a
    submission that fails leaves the others waiting, as they were)."""
    phases = {s.name: s.phase for s in state.steps}
    changed: list[StepState] = []
    for step in state.steps:
        parents = [phases[p] for p in step.parents]
        if step.phase is Phase.WAITING and (
            state.cancel_requested or any(p in (Phase.FAILED, Phase.NOT_RUN) for p in parents)
        ):
            phases[step.name] = Phase.NOT_RUN
            changed.append(attrs.evolve(step, phase=Phase.NOT_RUN))
    state = _with(state, *changed)
    if state.named(Phase.SUBMITTING):
        return state, ()
    for step in state.steps:
        if step.phase is Phase.WAITING and all(phases[p] is Phase.SUCCEEDED for p in step.parents):
            submitting = attrs.evolve(step, phase=Phase.SUBMITTING)
            return _with(state, submitting), (Submit(step.name, step.parents),)
    return state, ()


def _on_observed(state: PlanState, event: Observed) -> Transition:
    seen = {s.step: s for s in event.steps}
    state = _with(state, *(_seen(s, seen[s.name]) for s in state.steps if s.name in seen))
    return _settle(state)


def _on_cancel(state: PlanState) -> Transition:
    state = attrs.evolve(state, cancel_requested=True)
    never = Phase.PENDING, Phase.WAITING
    state = _with(
        state, *(attrs.evolve(s, phase=Phase.NOT_RUN) for s in state.steps if s.phase in never)
    )
    active = tuple(s.name for s in state.steps if s.active)
    return state, ((Cancel(active),) if active else ())


def _dispatch(state: PlanState, event: Event) -> Transition:
    if isinstance(event, Found):
        return _on_found(state, event)
    if isinstance(event, Submitted):
        return _on_submitted(state, event)
    if isinstance(event, SubmitFailed):
        return _on_submit_failed(state, event)
    if isinstance(event, ParentFailed):
        return _on_parent_failed(state, event)
    if isinstance(event, Observed):
        return _on_observed(state, event)
    if isinstance(event, CancelRequested):
        return _on_cancel(state)
    if isinstance(event, StartFailed):
        return _abandon(state) if _starting(state) else (state, ())
    raise TypeError(f"not a plan event: {event!r}")


def plan_step(state: PlanState, event: Event) -> Transition:
    """The next state after ``event``, and what the shell must do (pure).

    A final plan absorbs every event; an event that does not apply to the state (a step not
    in the phase it speaks of) changes nothing. :class:`Finish` comes once, when the plan
    becomes final.
    """
    if state.final:
        return state, ()
    after, effects = _dispatch(state, event)
    if after.final:
        finish = Finish(
            succeeded=all(s.phase is Phase.SUCCEEDED for s in after.steps),
            failed=after.named(Phase.FAILED),
            not_run=after.named(Phase.NOT_RUN),
            cancelled=after.cancel_requested,
        )
        effects = (*effects, finish)
    return after, effects


# ---------------------------------------------------------------- plain data


def encode(state: PlanState) -> dict[str, Any]:
    """The state as JSON-able plain data (see :func:`decode`)."""
    return {
        "schedules_dependencies": state.schedules_dependencies,
        "recorded": state.recorded,
        "cancel_requested": state.cancel_requested,
        "steps": [
            {
                "name": s.name,
                "parents": list(s.parents),
                "phase": s.phase.value,
                "how": None if s.how is None else s.how.value,
                "run_id": s.run_id,
                "active": s.active,
            }
            for s in state.steps
        ],
    }


def decode(data: Mapping[str, Any]) -> PlanState:
    """The state :func:`encode` turned into plain data."""
    return PlanState(
        steps=tuple(
            StepState(
                name=s["name"],
                parents=tuple(s["parents"]),
                phase=Phase(s["phase"]),
                how=None if s["how"] is None else How(s["how"]),
                run_id=s["run_id"],
                active=s["active"],
            )
            for s in data["steps"]
        ),
        schedules_dependencies=data["schedules_dependencies"],
        recorded=data["recorded"],
        cancel_requested=data["cancel_requested"],
    )
