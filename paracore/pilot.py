"""The pilot runner (the shell around :mod:`paracore.autotune`): run a sample for real, measure.

:func:`autotune_from_pilot` picks a seeded random sample of the items, submits it as ONE
array through :func:`~paracore.submit.submit_map` with the guessed resources, measures each
task's wall time and peak memory, and hands the measurements to the pure
:func:`~paracore.autotune.recommend`.

Where measurements come from:

- **slurm**: the scheduler's accounting. Elapsed and MaxRSS of the job steps via
  :func:`paracore.slurm.accounting.query_jobs`, polled (bounded) until every task's row is
  final and its steps' MaxRSS has arrived (it can lag the job row by a few seconds). The
  payload runs unchanged, so what is measured is what the full run will need (the submitit
  wrapper's own memory included, as the cgroup counts it).
- **local / inprocess**: inside the task. The payload runs in a fresh child process
  (``bash -c`` for a command, a new Python interpreter for a call) and the task reports the
  child's wall time and its ``ru_maxrss`` from ``os.wait4`` (the largest process of the
  child's tree), so the caller's own memory never leaks into the figure.

Partition limits (MaxTime, node memory and CPUs) come from ``scontrol`` through the parsers
of :mod:`paracore.slurm.cluster`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import attrs
import cloudpickle

from paracore.autotune import (
    MAX_FAILED_FRACTION,
    MEASUREMENTS,
    PartitionLimits,
    PilotError,
    Suggestion,
    TaskMeasurement,
    recommend,
    sample_indices,
)
from paracore.exceptions import JobFailedError, JobTimeoutError, SpecError
from paracore.handle import SubmitHandle, gather
from paracore.slurm.accounting import query_jobs
from paracore.slurm.commands import Runner, run_command
from paracore.spec import Call, Command, JobSpec, Payload
from paracore.submit import backend_for, submit_map
from paracore.transforms import (
    with_backend,
    with_config,
    with_env,
    with_name,
    with_resources,
)

STDERR_KEEP_CHARS = 4000
ACCOUNTING_WAIT_S = 90.0
"""How long to wait for sacct to have final rows (and step MaxRSS) for every pilot task."""
DEFAULT_TIMEOUT_S = 6 * 3600.0
"""How long the pilot may take (queue wait included) before it is cancelled."""


# ---------------------------------------------------------------- measuring inside the task


@attrs.frozen
class PilotSample:
    """What a measuring task reports: the payload's wall time and peak RSS (KiB)."""

    wall_s: float
    max_rss_kb: int


class PilotTaskFailed(RuntimeError):
    """Raised inside a measuring task when its payload fails."""


def _pump(stream: IO[bytes], sink: IO[str], kept: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode(errors="replace")
        sink.write(text)
        sink.flush()
        kept.append(text)
        while sum(map(len, kept)) > STDERR_KEEP_CHARS and len(kept) > 1:
            kept.pop(0)


def measured_run(argv: Sequence[str]) -> PilotSample:
    """Run ``argv`` as a child process; its wall time and peak RSS (``os.wait4``'s rusage).

    The child's stderr is copied to ours; a non-zero exit raises PilotTaskFailed with its tail.
    """
    start = time.monotonic()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kept: list[str] = []
    pump = threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, kept), daemon=True)
    pump.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    pump.join()
    if proc.returncode != 0:
        lines = [line.strip() for line in kept if line.strip()]
        last = lines[-1] if lines else "no stderr"
        raise PilotTaskFailed(f"exited with code {proc.returncode}: {last}")
    return PilotSample(wall_s=wall, max_rss_kb=int(usage.ru_maxrss))


def measure_command(cmd: str) -> PilotSample:
    """Run a shell command in a fresh ``bash -c`` and measure it (local pilots)."""
    return measured_run(["bash", "-c", cmd])


_CALL_CHILD = (
    "import json, sys\n"
    "sys.path[:0] = [p for p in json.loads(sys.argv[2]) if p not in sys.path]\n"
    "import cloudpickle\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    fn, item = cloudpickle.load(f)\n"
    "fn(item)\n"
)


def measure_call(fn: Callable[[Any], Any], item: Any) -> PilotSample:
    """Call ``fn(item)`` in a fresh Python interpreter and measure it (local pilots)."""
    with tempfile.TemporaryDirectory(prefix="paracore-pilot-") as folder:
        path = Path(folder) / "call.pkl"
        path.write_bytes(cloudpickle.dumps((fn, item)))
        return measured_run(
            [sys.executable, "-c", _CALL_CHILD, str(path), json.dumps(list(sys.path))]
        )


# ---------------------------------------------------------------- partition limits


def partition_limits(partition: str | None, run: Runner = run_command) -> PartitionLimits:
    """MaxTime, node memory and CPUs of ``partition`` (None: the default one) from Slurm.

    Uses the parsers of :mod:`paracore.slurm.cluster` over ``scontrol -o show partition`` and
    ``scontrol -o show node``; memory and CPUs are those of the partition's largest node.
    """
    from paracore.slurm.cluster import ClusterCache

    info = ClusterCache(run).info()
    part = info.default_partition if partition is None else info.partition(partition)
    if part is None:
        known = ", ".join(p.name for p in info.partitions) or "none"
        raise SpecError("partition", partition, f"a partition of this cluster: {known}")
    nodes = info.nodes_of(part.name)
    node_cpus = max((n.cpus for n in nodes), default=None)
    return PartitionLimits(
        name=part.name,
        max_time_min=part.max_time_min,
        node_mem_mb=max((n.memory_mb for n in nodes), default=None),
        node_cpus=node_cpus,
        total_cpus=part.total_cpus or (sum(n.cpus for n in nodes) or None),
    )


def _machine_limits(kind: str) -> PartitionLimits:
    """This machine's size, for the local and inprocess backends (no time limit)."""
    cpus = os.cpu_count() or 1
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        mem = None
    return PartitionLimits(name=kind, node_mem_mb=mem, node_cpus=cpus, total_cpus=cpus)


# ---------------------------------------------------------------- the shell's effects


@attrs.frozen
class PilotEdge:
    """Everything the pilot does to the outside world; tests replace parts of it."""

    submit_map: Callable[[JobSpec, Sequence[Payload]], list[SubmitHandle]] = submit_map
    query_jobs: Callable[..., Mapping[str, Any]] = query_jobs
    run: Runner = run_command
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    backend_for: Callable[[JobSpec], str] = backend_for


# ---------------------------------------------------------------- running the pilot


def _label(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _poll_accounting(
    job_ids: Sequence[str], need_rss: bool, edge: PilotEdge, wait_s: float
) -> Mapping[str, Any]:
    """sacct records for the jobs, polled until final (and with MaxRSS when needed), bounded."""
    deadline = edge.clock() + wait_s
    delay = 1.0
    while True:
        records = edge.query_jobs(job_ids)
        pending = [
            j
            for j in job_ids
            if j not in records
            or not records[j].terminal
            or records[j].elapsed_s is None
            or (need_rss and records[j].state == "COMPLETED" and records[j].max_rss_kb is None)
        ]
        if not pending or edge.clock() >= deadline:
            return records
        edge.sleep(delay)
        delay = min(5.0, delay * 1.5)


def _run_attempt(
    spec: JobSpec,
    kind: str,
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
    payloads = [p if kind == "slurm" else _measuring(p) for _i, _l, p in entries]
    handles = edge.submit_map(spec.with_payload(payloads[0]), payloads)
    try:
        outcomes = gather(
            handles, timeout=timeout_s, return_exceptions=True, clock=edge.clock, sleep=edge.sleep
        )
    except JobTimeoutError as err:
        for handle in handles:
            handle.cancel()
        raise PilotError(
            f"the pilot did not finish within {timeout_s:.0f} s (cancelled): {err}"
        ) from err
    records: Mapping[str, Any] = {}
    if kind == "slurm":
        records = _poll_accounting([h.job_id for h in handles], need_rss, edge, accounting_wait_s)
    out = []
    for (index, label, _p), handle, outcome in zip(entries, handles, outcomes, strict=True):
        error = outcome if isinstance(outcome, JobFailedError) else None
        common = {
            "index": index,
            "label": label,
            "job_id": handle.job_id,
            "attempts": attempt,
            "time_limit_min": time_min,
            "error": None if error is None else _first_line(error),
        }
        if kind == "slurm":
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

    Returns a :class:`~paracore.autotune.Suggestion`: a dict of ``time_min``, ``mem_gb``,
    ``cpus_per_task`` and ``array_parallelism`` to splat into ``map_cmds``/``map_func``,
    whose ``.recommendation`` holds the evidence (show it with ``show_report``). Raises
    :class:`~paracore.autotune.PilotError` when more than ``max_failed_fraction`` of the
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
    kind = edge.backend_for(spec)
    if kind == "slurm":
        part = spec.resources.partition
        limits = partition_limits(part if isinstance(part, str) else None, edge.run)
    else:
        limits = _machine_limits(kind)

    notes: list[str] = []
    cpus = _clamp_guess(max(1, int(cpus_per_task_guess)), limits.node_cpus, "cpus_per_task", notes)
    node_gb = None if limits.node_mem_mb is None else max(1, limits.node_mem_mb // 1024)
    mem_gb = _clamp_guess(mem_gb_guess, node_gb, "mem_gb", notes)
    time_min = _clamp_guess(max(1, int(time_min_guess)), limits.max_time_min, "time_min", notes)
    spec = with_resources(spec, cpus_per_task=cpus, mem_gb=mem_gb)

    need_rss = measurement == "time_and_rss"
    run = {
        "need_rss": need_rss,
        "edge": edge,
        "timeout_s": timeout_s,
        "accounting_wait_s": accounting_wait_s,
    }
    tasks = _run_attempt(spec, kind, entries, time_min=time_min, attempt=1, **run)
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
                spec, kind, [entries[i] for i in timed_out], time_min=longer, attempt=2, **run
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
        backend=kind,
    )
    rec = attrs.evolve(rec, warnings=tuple(notes) + rec.warnings)
    for message in rec.warnings:
        warnings.warn(f"autotune: {message}", stacklevel=2)
    return Suggestion(rec)
