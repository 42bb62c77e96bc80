"""The pilot runner (the shell around :mod:`paracore.core.autotune`): run a sample, measure.

:func:`autotune_from_pilot` picks a seeded random sample of the items, submits it as ONE
array through :func:`~paracore.shell.submit.submit_map` with the guessed resources, measures
each task's wall time and peak memory, and hands the measurements to the pure
:func:`~paracore.core.autotune.recommend`.

Where measurements come from depends on the backend:

- **with accounting** (Slurm): Elapsed and MaxRSS of the job steps from the backend's
  ``accounting``, polled (bounded) until every task's row is final and its steps' MaxRSS has
  arrived (it can lag the job row by a few seconds). The payload runs unchanged, so what is
  measured is what the full run will need (the submitit wrapper's own memory included, as the
  cgroup counts it).
- **measured in the task** (local, inprocess): the payload runs in a fresh child process
  (:mod:`paracore.runtime.measure`) and the task reports the child's wall time and peak
  memory, so the caller's own memory never leaks into the figure.

Partition limits (MaxTime, node memory and CPUs) come from the backend's ``limits``.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from paracore.backends.base import Backend
from paracore.core.autotune import (
    MAX_FAILED_FRACTION,
    MEASUREMENTS,
    Suggestion,
    TaskMeasurement,
    recommend,
    sample_indices,
)
from paracore.core.cluster import PartitionLimits
from paracore.core.resolved import resolve_spec
from paracore.core.spec import Call, Command, JobSpec, Payload
from paracore.core.transforms import (
    with_backend,
    with_config,
    with_env,
    with_name,
    with_resources,
)
from paracore.errors import JobFailedError, JobTimeoutError, PilotError, SpecError
from paracore.runtime.measure import PilotSample, measure_call, measure_command
from paracore.shell.handle import SubmitHandle, gather
from paracore.shell.session import current_session
from paracore.shell.submit import submit_map

__all__ = ["PilotEdge", "autotune_from_pilot"]

ACCOUNTING_WAIT_S = 90.0
"""How long to wait for sacct to have final rows (and step MaxRSS) for every pilot task."""
DEFAULT_TIMEOUT_S = 6 * 3600.0
"""How long the pilot may take (queue wait included) before it is cancelled."""


# ---------------------------------------------------------------- the shell's effects


@attrs.frozen
class PilotEdge:
    """Everything the pilot does to the outside world; tests replace parts of it.

    ``backend`` gives the backend for a spec (default: the current session's choice);
    ``clock`` and ``sleep`` default to the current session's.
    """

    submit_map: Callable[[JobSpec, Sequence[Payload]], list[SubmitHandle]] = submit_map
    backend: Callable[[JobSpec], Backend] | None = None
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] | None = None

    def backend_for(self, spec: JobSpec) -> Backend:
        """The backend that runs the pilot."""
        if self.backend is not None:
            return self.backend(spec)
        return current_session().backend_for(resolve_spec(spec))

    def now(self) -> float:
        """The edge's time."""
        return (self.clock or current_session().clock)()

    def wait(self, seconds: float) -> None:
        """Sleep on the edge's clock."""
        (self.sleep or current_session().sleep)(seconds)


# ---------------------------------------------------------------- running the pilot


def _label(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _poll_accounting(
    job_ids: Sequence[str], need_rss: bool, backend: Backend, edge: PilotEdge, wait_s: float
) -> Mapping[str, Any]:
    """Accounting records for the jobs, polled until final (and with MaxRSS), bounded."""
    deadline = edge.now() + wait_s
    delay = 1.0
    while True:
        records: Mapping[str, Any] = backend.accounting(job_ids)
        pending = [
            j
            for j in job_ids
            if j not in records
            or not records[j].terminal
            or records[j].elapsed_s is None
            or (need_rss and records[j].state == "COMPLETED" and records[j].max_rss_kb is None)
        ]
        if not pending or edge.now() >= deadline:
            return records
        edge.wait(delay)
        delay = min(5.0, delay * 1.5)


def _run_attempt(
    spec: JobSpec,
    backend: Backend,
    entries: Sequence[tuple[int, str, Payload]],
    *,
    time_min: int,
    need_rss: bool,
    edge: PilotEdge,
    timeout_s: float,
    accounting_wait_s: float,
    attempt: int,
) -> list[TaskMeasurement]:
    """Submit the entries as one array under ``time_min`` and measure every task."""
    spec = with_resources(spec, time_min=time_min)
    in_task = backend.measures_in_task
    payloads = [_measuring(p) if in_task else p for _i, _l, p in entries]
    handles = edge.submit_map(spec.with_payload(payloads[0]), payloads)
    try:
        outcomes = gather(
            handles, timeout=timeout_s, return_exceptions=True, clock=edge.now, sleep=edge.wait
        )
    except JobTimeoutError as err:
        for handle in handles:
            handle.cancel()
        raise PilotError(
            f"the pilot did not finish within {timeout_s:.0f} s (cancelled): {err}"
        ) from err
    records: Mapping[str, Any] = {}
    if not in_task:
        ids = [h.job_id for h in handles]
        records = _poll_accounting(ids, need_rss, backend, edge, accounting_wait_s)
    out = []
    for (index, label, _p), handle, outcome in zip(entries, handles, outcomes, strict=True):
        error = outcome if isinstance(outcome, JobFailedError) else None
        common: dict[str, Any] = {
            "index": index,
            "label": label,
            "job_id": handle.job_id,
            "attempts": attempt,
            "time_limit_min": time_min,
            "error": None if error is None else _first_line(error),
        }
        if not in_task:
            record = records.get(handle.job_id)
            state = (
                record.state
                if record is not None
                else ((error.state or "FAILED") if error else "COMPLETED")
            )
            if record is None and error is None:
                state, common["error"] = "UNMEASURED", "sacct has no record of the task"
            out.append(
                TaskMeasurement(
                    state=state,
                    duration_s=None if record is None else record.elapsed_s,
                    max_rss_mb=None if record is None else record.max_rss_mb,
                    source="sacct",
                    **common,
                )
            )
        elif error is None:
            sample: PilotSample = outcome
            out.append(
                TaskMeasurement(
                    state="COMPLETED",
                    duration_s=sample.wall_s,
                    max_rss_mb=sample.max_rss_kb / 1024,
                    source="rusage",
                    **common,
                )
            )
        else:
            out.append(TaskMeasurement(state=error.state or "FAILED", source="rusage", **common))
    return out


def _measuring(payload: Payload) -> Call:
    """The payload wrapped so the task measures it (local and inprocess backends)."""
    if isinstance(payload, Command):
        return Call(measure_command, (payload.cmd,))
    return Call(measure_call, (payload.fn, *payload.args))


def _clamp_guess(value: Any, upper: int | None, what: str, notes: list[str]) -> Any:
    if upper is not None and value > upper:
        notes.append(f"{what} guess {value} is above the partition's limit; the pilot uses {upper}")
        return upper
    return value


def autotune_from_pilot(
    sample_cmds_or_items: Iterable[str | Any],
    *,
    runner: Literal["cmds", "func"] = "cmds",
    fn: Callable[[Any], Any] | None = None,
    sample_size: int = 20,
    measurement: Literal["time_only", "time_and_rss"] = "time_and_rss",
    partition: str | None = None,
    cpus_per_task_guess: int = 4,
    mem_gb_guess: int = 8,
    time_min_guess: int = 30,
    env_setup: str | None = None,
    seed: int | None = None,
    array_parallelism: int | None = None,
    job_name: str = "pilot",
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
    max_failed_fraction: float = MAX_FAILED_FRACTION,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    accounting_wait_s: float = ACCOUNTING_WAIT_S,
    edge: PilotEdge | None = None,
) -> Suggestion:
    """Run a random sample of the work for real and recommend resources for the full run.

    ``runner="cmds"``: the items are shell commands (or, with ``fn``, ``fn(item)`` builds
    each command). ``runner="func"``: each task calls ``fn(item)``. ``sample_size`` items are
    picked at random (reproducibly with ``seed``; the seed used is recorded) and submitted
    as ONE array with the guessed resources (clamped to the partition's limits). Tasks that
    time out are run again once with twice the walltime.

    Returns a :class:`~paracore.core.autotune.Suggestion`: a dict of ``time_min``, ``mem_gb``,
    ``cpus_per_task`` and ``array_parallelism`` to splat into ``map_cmds``/``map_func``,
    whose ``.recommendation`` holds the evidence (show it with ``show_report``). Raises
    :class:`~paracore.errors.PilotError` when more than ``max_failed_fraction`` of the
    pilot fails or it does not finish within ``timeout_s``.
    """
    edge = edge or PilotEdge()
    items = list(sample_cmds_or_items)
    if runner not in ("cmds", "func"):
        raise SpecError("runner", runner, "'cmds' (shell commands) or 'func' (fn(item))")
    if runner == "func" and not callable(fn):
        raise SpecError("fn", fn, "a callable: runner='func' calls fn(item) in each task")
    if fn is not None and not callable(fn):
        raise SpecError("fn", fn, "a callable, or None")
    if measurement not in MEASUREMENTS:
        raise SpecError("measurement", measurement, "'time_only' or 'time_and_rss'")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise SpecError("sample_size", sample_size, "a whole number >= 1")
    if not items:
        raise PilotError("no items to sample: give the commands or items of the full run")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    chosen = sample_indices(len(items), sample_size, seed)

    entries: list[tuple[int, str, Payload]] = []
    for index in chosen:
        item = items[index]
        if runner == "cmds":
            cmd = fn(item) if fn is not None else item
            if not isinstance(cmd, str):
                raise SpecError(f"items[{index}]", cmd, "a shell command string (runner='cmds')")
            entries.append((index, _label(cmd), Command(cmd)))
        else:
            entries.append((index, _label(item), Call(fn, (item,))))  # type: ignore[arg-type]

    spec = JobSpec(payload=entries[0][2])
    if backend:
        spec = with_backend(backend, spec)
    resources: dict[str, Any] = {}
    if partition is not None:
        resources["partition"] = partition
    spec = with_resources(spec, **resources)
    spec = with_env({}, spec, **({"setup": env_setup} if env_setup else {}))
    spec = with_name(job_name, spec)
    if config:
        spec = with_config(config, spec)
    target = edge.backend_for(spec)
    part = spec.resources.partition
    limits = target.limits(part if isinstance(part, str) else None) or PartitionLimits(
        name=target.name
    )

    notes: list[str] = []
    cpus = _clamp_guess(max(1, int(cpus_per_task_guess)), limits.node_cpus, "cpus_per_task", notes)
    node_gb = None if limits.node_mem_mb is None else max(1, limits.node_mem_mb // 1024)
    mem_gb = _clamp_guess(mem_gb_guess, node_gb, "mem_gb", notes)
    time_min = _clamp_guess(max(1, int(time_min_guess)), limits.max_time_min, "time_min", notes)
    spec = with_resources(spec, cpus_per_task=cpus, mem_gb=mem_gb)

    need_rss = measurement == "time_and_rss"
    run: dict[str, Any] = {
        "need_rss": need_rss,
        "edge": edge,
        "timeout_s": timeout_s,
        "accounting_wait_s": accounting_wait_s,
    }
    tasks = _run_attempt(spec, target, entries, time_min=time_min, attempt=1, **run)
    timed_out = [i for i, t in enumerate(tasks) if t.state == "TIMEOUT"]
    if timed_out:
        longer = time_min * 2
        if limits.max_time_min is not None:
            longer = min(longer, limits.max_time_min)
        if longer > time_min:
            notes.append(
                f"{len(timed_out)} pilot task(s) timed out under {time_min} min; "
                f"ran them again once with {longer} min"
            )
            again = _run_attempt(
                spec, target, [entries[i] for i in timed_out], time_min=longer, attempt=2, **run
            )
            for i, task in zip(timed_out, again, strict=True):
                tasks[i] = task
        still = [t for t in tasks if t.state == "TIMEOUT"]
        if still:
            limit = still[0].time_limit_min
            notes.append(
                f"{len(still)} pilot task(s) timed out even under {limit} min: they need more "
                "time than the pilot allowed (raise time_min_guess, or use a longer partition)"
            )
    rec = recommend(
        tasks,
        measurement=measurement,
        cpus_per_task=cpus,
        mem_gb_guess=mem_gb,
        limits=limits,
        array_parallelism=array_parallelism,
        requested_size=sample_size,
        population=len(items),
        seed=seed,
        max_failed_fraction=max_failed_fraction,
        backend=target.name,
    )
    rec = attrs.evolve(rec, warnings=tuple(notes) + rec.warnings)
    for message in rec.warnings:
        warnings.warn(f"autotune: {message}", stacklevel=2)
    return Suggestion(rec)
