"""Submitting a workflow plan: every step checked first, then submitted in topological order
with ``afterok`` dependencies, recorded in the run store, and watched as one :class:`PlanRun`.

Each step is one run of the store (a job, or one array for a map step). The plan's record
names, per step, the key of its definition (its spec, what it runs, and its parents' keys)
and the run carrying it, so submitting the same plan again re-uses steps that completed,
re-attaches to steps still in flight, and submits anew the failed, cancelled and changed
ones with everything downstream of them. On a backend without scheduler dependencies (the
local machine), a step is submitted once its parents succeeded, as the run is waited on.
Those decisions are the pure :mod:`paracore.core.plan_state`; :class:`PlanRun` carries them
out.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cloudpickle

from paracore.backends.base import Backend, Task
from paracore.core.digest import content_key
from paracore.core.lifecycle import TaskState, wait_bound
from paracore.core.names import sanitize
from paracore.core.options import SubmitOptions
from paracore.core.plan_graph import (
    CallWork,
    CommandWork,
    Graph,
    MapWork,
    Result,
    results_in,
)
from paracore.core.plan_state import (
    Adopt,
    Cancel,
    CancelRequested,
    Discard,
    Earlier,
    Effect,
    Event,
    Failure,
    Finish,
    Found,
    Observed,
    Outcome,
    ParentFailed,
    Phase,
    PlanState,
    RecordPlan,
    RecordStep,
    StartFailed,
    StepSeen,
    Submit,
    SubmitFailed,
    Submitted,
    plan_step,
)
from paracore.core.resolved import ResolvedSpec
from paracore.core.spec import Call, Command, Payload
from paracore.errors import (
    DependencyError,
    JobFailedError,
    JobTimeoutError,
    PlanError,
    StepFailedError,
    StoreError,
)
from paracore.runtime.results import SavedResult, SavedResults, StepCall, replaced
from paracore.shell.checks import describe_payload, prepare_task
from paracore.shell.handle import SubmitHandle, collected
from paracore.shell.protocols import Drivers
from paracore.shell.runs import attach_run
from paracore.shell.session import current_session
from paracore.shell.store import PlanRow, PlanStepRow, RunStore
from paracore.shell.submit import (
    RunRequest,
    array_limit,
    key_fields,
    limits_for,
    parents_of,
    source_fingerprint,
    start_run,
    submit_again,
)
from paracore.shell.waiting import MAX_POLL_S, wait_until

__all__ = ["PlanRun", "StepStatus", "StepWork", "prepare_steps", "submit_plan"]

Saved = SavedResult | SavedResults


@attrs.frozen
class StepWork:
    """A step ready to submit: its checked spec and backend, its tasks and their labels, and
    the key of its definition."""

    name: str
    kind: str  # "job" or "map"
    spec: ResolvedSpec
    backend: Backend = attrs.field(eq=False)
    tasks: tuple[Task, ...] = attrs.field(eq=False)
    labels: tuple[str, ...]
    key: str


def _work_bytes(work: CallWork | CommandWork | MapWork) -> list[bytes]:
    if isinstance(work, CommandWork):
        return [b"command\0" + work.cmd.encode("utf-8", "surrogatepass")]
    pickled: bytes = cloudpickle.dumps(work)
    return [pickled, source_fingerprint(work.fn)]


def step_keys(graph: Graph, checked: Mapping[str, tuple[ResolvedSpec, Backend]]) -> dict[str, str]:
    """Each step's key: its spec's fields, what it runs, and its parents' keys (so a change
    upstream changes every key downstream)."""
    keys: dict[str, str] = {}
    for name in graph.order:
        spec, backend = checked[name]
        parents = [keys[p].encode() for p in graph.parents[name]]
        work = _work_bytes(graph.step(name).work)
        keys[name] = content_key("plan-step", key_fields(spec, backend), [*work, *parents])
    return keys


def saved_results(
    graph: Graph, checked: Mapping[str, tuple[ResolvedSpec, Backend]], keys: Mapping[str, str]
) -> dict[str, Saved]:
    """Where each step another step takes a Result of saves its value: beside its logs (the
    folder the nodes share), named by the plan, the step and its key."""
    out: dict[str, Saved] = {}
    for name in dict.fromkeys(r for s in graph.steps for r in results_in(s)):
        spec, _backend = checked[name]
        stem = f"{sanitize(name)}-{keys[name][:16]}"
        folder = Path(spec.log_folder) / "results" / sanitize(graph.name)
        step = graph.step(name)
        if isinstance(step.work, MapWork):
            out[name] = SavedResults(str(folder / stem), len(step.work.items), name)
        else:
            out[name] = SavedResult(str(folder / f"{stem}.pkl"), name)
    return out


def _swap(value: Any, saved: Mapping[str, Saved]) -> Any:
    """``value`` with each Result replaced by where that step's value is saved."""
    return replaced(value, Result, lambda result: saved[result.step])


def _payloads(graph: Graph, name: str, saved: Mapping[str, Saved]) -> list[Payload]:
    step = graph.step(name)
    work = step.work
    if isinstance(work, CommandWork):
        return [Command(work.cmd)]
    mine = saved.get(name)
    takes = bool(results_in(step))
    args = _swap(work.args, saved)
    kwargs = _swap(dict(work.kwargs), saved)
    if isinstance(work, CallWork):
        if mine is None and not takes:
            return [Call(work.fn, args, kwargs)]
        path = mine.path if isinstance(mine, SavedResult) else None
        return [Call(StepCall(work.fn, path), args, kwargs)]
    if work.fn is None:
        return [Command(str(item)) for item in work.items]
    saves = mine if isinstance(mine, SavedResults) else None
    if saves is None and not takes:
        return [Call(work.fn, (item, *args), kwargs) for item in work.items]
    return [
        Call(
            StepCall(work.fn, None if saves is None else saves.item_path(i)),
            (item, *args),
            kwargs,
        )
        for i, item in enumerate(work.items)
    ]


def prepare_steps(
    graph: Graph, checked: Mapping[str, tuple[ResolvedSpec, Backend]]
) -> dict[str, StepWork]:
    """Every step's tasks, made (and checked: picklable, programs on PATH) before anything
    is submitted."""
    keys = step_keys(graph, checked)
    saved = saved_results(graph, checked, keys)
    which = current_session().which
    out: dict[str, StepWork] = {}
    for name in graph.order:
        spec, backend = checked[name]
        specs = [spec.with_payload(p) for p in _payloads(graph, name, saved)]
        out[name] = StepWork(
            name=name,
            kind="map" if isinstance(graph.step(name).work, MapWork) else "job",
            spec=spec,
            backend=backend,
            tasks=tuple(prepare_task(s, which, sys.path) for s in specs),
            labels=tuple(describe_payload(s) for s in specs),
            key=keys[name],
        )
    return out


# ---------------------------------------------------------------- the run


@attrs.frozen
class StepStatus:
    """One row of :meth:`PlanRun.status`."""

    step: str
    state: str
    how: str  # submitted, reused (completed earlier), attached (in flight earlier), waiting
    jobs: str
    attempts: int
    scheduler: str


_STYLES = {
    Phase.SUCCEEDED.value: "green",
    Phase.FAILED.value: "red",
    Phase.NOT_RUN.value: "yellow",
}


@attrs.frozen
class PlanStatus:
    """What :meth:`PlanRun.status` returns: a row per step, printable as a table."""

    plan: str
    rows: tuple[StepStatus, ...]

    def _cells(self) -> list[tuple[str, ...]]:
        return [(r.step, r.state, r.scheduler, r.how, str(r.attempts), r.jobs) for r in self.rows]

    def __str__(self) -> str:
        head = ("step", "state", "scheduler", "how", "attempts", "jobs")
        rows = [head, *self._cells()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        return f"plan {self.plan}\n" + "\n".join(line.rstrip() for line in lines)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=f"plan {self.plan}")
        for head in ("step", "state", "scheduler", "how", "attempts", "jobs"):
            table.add_column(head)
        for row, cells in zip(self.rows, self._cells(), strict=True):
            table.add_row(*cells, style=_STYLES.get(row.state))
        return table


def _job_ids(handles: Sequence[SubmitHandle]) -> str:
    ids = [h.job_id for h in handles]
    if len(ids) <= 3:
        return ",".join(ids)
    return f"{ids[0]} .. {ids[-1]} ({len(ids)} tasks)"


class PlanRun:
    """A submitted plan: the handles of each step (``run["train"]``), :meth:`wait`,
    :meth:`status` and :meth:`cancel`.

    What happens to the steps is decided by :func:`paracore.core.plan_state.plan_step`; the
    run feeds it what it observes (an earlier submission's jobs, a submission, the handles'
    outcomes, a cancel) and carries out its effects (submit, cancel, record in the store).
    """

    def __init__(
        self,
        graph: Graph,
        work: Mapping[str, StepWork],
        *,
        backend: Backend,
        store: RunStore | None,
        plan_id: str,
    ) -> None:
        session = current_session()
        self.graph = graph
        self.plan_id = plan_id
        self._work = dict(work)
        self._backend = backend
        self._store = store
        self._clock = session.clock
        self._sleep = session.sleep
        self._queue_allowance_s = session.queue_allowance_s
        self._state = PlanState.new(
            graph.order, graph.parents, schedules_dependencies=backend.schedules_dependencies
        )
        self._handles: dict[str, list[SubmitHandle]] = {name: [] for name in graph.order}
        self._earlier: dict[str, list[SubmitHandle]] = {}
        self._finish: Finish | None = None
        # this machine's jobs are cheap to look at, and its waiting steps are submitted
        # only when looked at: look often; a scheduler is asked at most every 2 s
        local = not backend.schedules_dependencies
        self._poll_s = 0.05 if local else 1.0
        self._max_poll_s = 0.25 if local else MAX_POLL_S

    @property
    def name(self) -> str:
        """The plan's name."""
        return self.graph.name

    @property
    def how(self) -> Mapping[str, str]:
        """Per step, how this submission got it: ``submitted``, ``reused`` (it had completed),
        ``attached`` (it was in flight), ``waiting`` (submitted once its parents succeed) or
        ``not run``."""
        return {step.name: step.how_text for step in self._state.steps}

    @property
    def run_ids(self) -> Mapping[str, str | None]:
        """Per step, the run of the store that carries it (``paracore show <id>``)."""
        return {step.name: step.run_id for step in self._state.steps}

    def submitted(self, name: str) -> list[SubmitHandle]:
        """The handles of step ``name`` so far, without waiting ([] while it waits for its
        parents on a local backend, or if it will not run)."""
        self.graph.step(name)
        return list(self._handles.get(name) or [])

    def __repr__(self) -> str:
        return f"PlanRun(plan={self.name!r}, plan_id={self.plan_id!r})"

    # -------------------------------------------------------------- the state machine

    def _feed(self, event: Event) -> None:
        """Step the plan's state and carry out the effects."""
        self._state, effects = plan_step(self._state, event)
        for effect in effects:
            self._apply(effect)

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Submit):
            self._submit(effect.step, effect.after)
        elif isinstance(effect, Adopt):
            self._handles[effect.step] = self._earlier.pop(effect.step)
        elif isinstance(effect, Discard):
            _cancel(self._earlier.pop(effect.step, []))
        elif isinstance(effect, Cancel):
            _cancel([h for name in effect.steps for h in self._handles[name]])
        elif isinstance(effect, RecordPlan):
            self._record_plan()
        elif isinstance(effect, RecordStep):
            step = self._state.step(effect.step)
            if self._store is not None:
                self._store.plan_step_run(self.plan_id, step.name, str(step.run_id), step.how_text)
        else:
            self._finish = effect

    # -------------------------------------------------------------- submitting

    def _start(self, previous: PlanRow | None) -> None:
        """Find every step's earlier run, in topological order, and re-use, re-attach or
        submit it as the state decides; all or nothing."""
        before = {row.step: row for row in previous.steps} if previous else {}
        try:
            for name in self.graph.order:
                self._feed(Found(name, self._find(name, before.get(name))))
        except BaseException:
            self._feed(StartFailed())
            raise

    def _find(self, name: str, before: PlanStepRow | None) -> Earlier | None:
        """What the earlier submission left for the step: its jobs, re-attached, if still
        known (kept aside until the state adopts or discards them)."""
        if before is None or not before.run_id:
            return None
        handles = self._attach(name, before.run_id)
        if handles is None:
            return None
        self._earlier[name] = handles
        Drivers(handles).drive()
        outcome, _active = _seen(handles)
        return Earlier(before.run_id, before.step_key == self._work[name].key, outcome)

    def _attach(self, name: str, run_id: str) -> list[SubmitHandle] | None:
        """The handles of the run an earlier submission left for this step, if still known."""
        assert self._store is not None
        run = self._store.run(run_id)
        if run is None:
            return None
        parents = [h for p in self.graph.parents[name] for h in self._handles[p]]
        try:
            return attach_run(
                self._store,
                run,
                backend=self._backend,
                limits=limits_for(self._backend),
                clock=self._clock,
                sleep=self._sleep,
                submit=submit_again,
                max_array_size=array_limit(self._backend),
                parents=parents,
            )
        except StoreError:  # its files were removed (paracore rm/gc): submit it anew
            return None

    def _submit(self, name: str, after: Sequence[str]) -> None:
        work = self._work[name]
        parents = [h for p in after for h in self._handles[p]]
        try:
            waits_on, ids = parents_of(parents, self._backend)
        except DependencyError:  # a parent failed before this step could be submitted
            self._handles[name] = []
            self._feed(ParentFailed(name))
            return
        try:
            size = 1 if work.kind == "job" else array_limit(work.backend)
            request = RunRequest(work.kind, work.spec, work.backend, work.tasks, work.labels, size)
            handles = start_run(
                request,
                parents=waits_on,
                after=list(dict.fromkeys(ids)),
                options=SubmitOptions(resume="never"),
            )
        except BaseException:
            self._feed(SubmitFailed(name))
            raise
        ledger = handles[0].ledger if handles else None
        self._handles[name] = handles
        self._feed(Submitted(name, getattr(ledger, "run_id", None)))

    def _record_plan(self) -> None:
        if self._store is None:
            return
        self._store.insert_plan(
            self.plan_id,
            name=self.name,
            backend=self._backend.name,
            graph={"order": list(self.graph.order), "parents": dict(self.graph.parents)},
            steps=[
                (s.name, self._work[s.name].key, s.run_id, s.how_text) for s in self._state.steps
            ],
        )

    # -------------------------------------------------------------- watching

    def _advance(self) -> bool:
        """One round: look at every step with unfinished jobs once (the state submits the
        waiting steps whose parents succeeded); True once the plan is final."""
        Drivers([h for hs in self._handles.values() for h in hs if not h.final]).drive()
        seen = tuple(
            StepSeen(step.name, *_seen(self._handles[step.name]))
            for step in self._state.steps
            if step.active
        )
        self._feed(Observed(seen))
        return self._finish is not None

    def _bound(self) -> float:
        """How long :meth:`wait` waits by default: every step in turn, each for as long as
        its own handles may take (queueing and every retry included)."""
        total = 0.0
        for name in self.graph.order:
            handles = self._handles.get(name) or []
            if handles:
                total += Drivers(handles).bound()
            else:
                spec = self._work[name].spec
                state = TaskState(policy=spec.retry, resources=spec.attempt)
                total += wait_bound(state, self._queue_allowance_s)
        return total

    def _failure(self) -> StepFailedError | None:
        """The error of the first step (in topological order) that failed for good."""
        failure = self._state.failure()
        if failure is None:
            return None
        handle = next(h for h in self._handles[failure.step] if h.failed and not h.blocked)
        try:
            handle.outcome()
        except JobFailedError as error:
            return self._step_error(failure, error)
        return None

    def _step_error(self, failure: Failure, error: JobFailedError) -> StepFailedError:
        not_run = failure.not_run
        lines = [f"plan {self.name!r}: step {failure.step!r} failed: {error}"]
        lines.append("will not run: " + (", ".join(not_run) if not_run else "(nothing)"))
        if failure.running:
            lines.append("still running (not affected): " + ", ".join(failure.running))
        failed = StepFailedError(
            "\n".join(lines),
            step=failure.step,
            not_run=not_run,
            job_id=error.job_id,
            state=error.state,
            exc_type=error.exc_type,
            exc_message=error.exc_message,
            returncode=error.returncode,
            stderr_tail=error.stderr_tail,
            stdout_path=error.stdout_path,
            stderr_path=error.stderr_path,
            attempts=error.attempts,
            failure_class=error.failure_class,
        )
        failed.__cause__ = error
        return failed

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for every step and return each one's result (a list for a map step).

        Raises StepFailedError as soon as a step fails for good, naming it, carrying its own
        error and listing the steps that will not run; JobTimeoutError after ``timeout``
        (default: every step in turn for its whole bound).
        """
        limit = self._bound() if timeout is None else timeout

        def advance() -> bool:
            finished = self._advance()
            failure = None if self._state.cancel_requested else self._failure()
            if failure is not None:
                raise failure
            return finished

        def timed_out() -> JobTimeoutError:
            left = self._state.unfinished
            return JobTimeoutError(
                f"plan {self.name!r}: {len(left)} steps unfinished after {limit:.0f} s: "
                + ", ".join(left)
            )

        wait_until(
            advance,
            timeout=limit,
            clock=self._clock,
            sleep=self._sleep,
            poll_s=self._poll_s,
            max_poll_s=self._max_poll_s,
            next_due=lambda: None,
            timed_out=timed_out,
        )
        finish = self._finish
        assert finish is not None
        if finish.cancelled and not finish.succeeded:
            skipped = [n for n in self.graph.order if n in (*finish.failed, *finish.not_run)]
            raise StepFailedError(
                f"plan {self.name!r} was cancelled: {', '.join(skipped)} did not finish",
                step=skipped[0],
                not_run=skipped,
                state="CANCELLED",
            )
        out: dict[str, Any] = {}
        for name in self.graph.order:
            handles = self._handles[name]
            values = [h.outcome() for h in handles]
            collected(handles)
            out[name] = values if self._work[name].kind == "map" else values[0]
        return out

    def status(self) -> PlanStatus:
        """A row per step (state, scheduler states, how it was got, attempts, job ids); print
        it for a table."""
        self._advance()
        rows = []
        for step in self._state.steps:
            handles = self._handles[step.name]
            states = {h.state for h in handles if not h.final}
            rows.append(
                StepStatus(
                    step=step.name,
                    state=step.phase.value,
                    how=step.how_text,
                    jobs=_job_ids(handles),
                    attempts=sum(len(h.attempts) + (0 if h.final else 1) for h in handles),
                    scheduler=",".join(sorted(states)),
                )
            )
        return PlanStatus(plan=self.name, rows=tuple(rows))

    def cancel(self) -> None:
        """Cancel every unfinished step (Slurm cancels what waits on them); steps not yet
        submitted never will be."""
        self._feed(CancelRequested())

    def __getitem__(self, name: str) -> Any:
        """The handle of step ``name`` (a list of handles for a map step); a step still
        waiting for its parents (local backends) is waited for until it is submitted."""
        self.graph.step(name)  # an unknown name: PlanError with the closest known one
        if self._state.step(name).phase is Phase.WAITING:
            wait_until(
                lambda: self._advance() or self._state.step(name).phase is not Phase.WAITING,
                timeout=self._bound(),
                clock=self._clock,
                sleep=self._sleep,
                poll_s=self._poll_s,
                max_poll_s=self._max_poll_s,
                next_due=lambda: None,
                timed_out=lambda: JobTimeoutError(f"step {name!r} was never submitted"),
            )
        if self._state.step(name).how is None:
            raise PlanError(f"step {name!r} of plan {self.name!r} was not run")
        handles = self._handles[name]
        return handles if self._work[name].kind == "map" else handles[0]


def _cancel(handles: Sequence[SubmitHandle]) -> None:
    """Cancel the handles that are not final yet."""
    for handle in handles:
        if not handle.final:
            handle.cancel()


def _seen(handles: Sequence[SubmitHandle]) -> tuple[Outcome, bool]:
    """What the handles of a step say (as they were last driven), and whether any of them
    may still run."""
    active = not all(h.final for h in handles)
    failed = [h for h in handles if h.failed]
    if failed:
        blocked = all(h.blocked for h in failed)
        return (Outcome.BLOCKED if blocked else Outcome.FAILED), active
    return (Outcome.RUNNING if active else Outcome.SUCCEEDED), active


def submit_plan(
    graph: Graph, work: Mapping[str, StepWork], *, backend: Backend, resume: str
) -> PlanRun:
    """Submit the prepared steps of ``graph`` (re-using what the newest recorded submission of
    the same plan left, unless ``resume`` is ``never``) and return the run."""
    session = current_session()
    store = session.store() if backend.keeps_files else None
    previous = None
    if store is not None and resume != "never":
        previous = store.latest_plan(graph.name, backend.name)
    run = PlanRun(graph, work, backend=backend, store=store, plan_id=uuid.uuid4().hex[:8])
    run._start(previous)
    return run
