"""The interpreter: the one place that hands work to a backend.

It resolves the spec's backend from the current :class:`~paracore.shell.session.Session`,
checks the spec can be submitted (against the cluster, picklable, command found), submits
through the backend and wraps each attempt in a :class:`~paracore.shell.handle.SubmitHandle`.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cloudpickle

from paracore.backends.base import Backend, RunningJob, Task
from paracore.core.cluster import PartitionLimits
from paracore.core.digest import content_key
from paracore.core.failures import FailureClass
from paracore.core.lifecycle import TaskState, encode
from paracore.core.options import SubmitOptions
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.rules import effective_parallelism
from paracore.core.spec import Call, JobSpec, Payload
from paracore.core.summary import describe
from paracore.errors import DependencyError, RunNotFound, SchedulerUnreachable, SpecError
from paracore.runtime.tasks import CallTask, CommandTask
from paracore.shell.announce import announce
from paracore.shell.call_content import call_content
from paracore.shell.checks import describe_payload, prepare_task
from paracore.shell.config_files import settle_options
from paracore.shell.handle import LimitsFor, SubmitHandle
from paracore.shell.private import owner_only, private_folder, trusted_folder
from paracore.shell.runs import (
    LEASE_S,
    RunLedger,
    RunParts,
    attach_run,
    handles_for,
    save_run_files,
)
from paracore.shell.session import current_session
from paracore.shell.signals import signals_deferred
from paracore.shell.store import RunRow, RunStore

__all__ = [
    "MAX_ARRAY_SIZE",
    "AfterOk",
    "RunRequest",
    "attach",
    "backend_for",
    "detect_backend",
    "preview",
    "submit",
    "submit_map",
]

MAX_ARRAY_SIZE = 1000
"""Tasks per array when the backend does not say (Slurm's default MaxArraySize is 1001)."""

AfterOk = Sequence["SubmitHandle | str | int"]


def detect_backend() -> str:
    """``slurm`` when ``sbatch`` and ``srun`` are on PATH, else ``local``."""
    return current_session().detect_backend()


def backend_for(spec: JobSpec | ResolvedSpec) -> str:
    """The backend the spec asks for; ``auto`` means ``$PARACORE_BACKEND`` if set, else detect."""
    return current_session().backend_name(resolve_spec(spec).backend)


def array_limit(backend: Backend) -> int:
    """Tasks one array may hold on this backend: the cluster's ``MaxArraySize`` when it says."""
    ask = getattr(backend, "max_array_size", None)
    found = ask() if callable(ask) else None
    return found if isinstance(found, int) and found > 0 else MAX_ARRAY_SIZE


def limits_for(backend: Backend) -> LimitsFor:
    """Partition limits for escalation; None when they cannot be known."""

    def limits(partition: str | None) -> PartitionLimits | None:
        try:
            return backend.limits(partition)
        except (SpecError, SchedulerUnreachable):
            return None

    return limits


def _dependency_error(job_id: str, text: str) -> DependencyError:
    return DependencyError(
        f"not submitted: the job it depends on, {text}",
        job_id=job_id,
        state="DEPENDENCY",
        failure_class=FailureClass.DEPENDENCY,
    )


def parents_of(after_ok: AfterOk | None, backend: Backend) -> tuple[list[SubmitHandle], list[str]]:
    """Parent handles still to wait on, and the job ids for ``--dependency=afterok``.

    A parent that already failed raises DependencyError before anything is submitted. A
    parent that already succeeded needs no dependency (Slurm silently drops an ``afterok`` on
    a job purged from the controller, so it is better not to name it at all). On a backend
    without scheduler dependencies, submission waits for the parents to finish.
    """
    handles: list[SubmitHandle] = []
    ids: list[str] = []
    raw: list[str] = []
    for parent in after_ok or ():
        if isinstance(parent, SubmitHandle):
            if not backend.schedules_dependencies:
                parent.exception()
            if parent.done():
                if parent.exception(timeout=0) is not None:
                    raise _dependency_error(
                        parent.job_id, f"{parent.job_id} ({parent.job_name}), failed"
                    )
                continue
            handles.append(parent)
            ids.append(parent.job_id)
        else:
            raw.append(str(parent))
    if raw and backend.schedules_dependencies:
        try:
            records = backend.accounting(raw)
        except SchedulerUnreachable:
            records = {}
        for job_id in raw:
            record = records.get(job_id)
            if record is not None and record.terminal:
                if record.state != "COMPLETED":
                    raise _dependency_error(job_id, f"{job_id}, ended {record.state}")
                continue
            ids.append(job_id)
    return handles, ids


def prepared(spec: JobSpec | ResolvedSpec, options: SubmitOptions) -> tuple[ResolvedSpec, Backend]:
    """The spec resolved (once) and checked for its backend; nothing submitted yet.

    A log folder that belongs to someone else is refused (results are unpickled from it).
    """
    resolved = resolve_spec(spec)
    backend = current_session().backend_for(resolved)
    resolved = backend.check(resolved, origins=options.origin_of, validate=options.validate)
    if backend.keeps_files:
        # an absolute log folder: the run's files must be found from any directory later
        absolute = str(Path(resolved.log_dir).expanduser().absolute())
        resolved = attrs.evolve(resolved, log_dir=absolute)
        folder = Path(resolved.log_folder)
        if folder.exists() and folder.stat().st_uid != os.geteuid():
            trusted_folder(folder)  # someone else's folder: refused with what to do
    return resolved, backend


def submit_once(
    backend: Backend,
    spec: ResolvedSpec,
    tasks: Sequence[Task],
    describes: Sequence[str],
    after: Sequence[str] = (),
    on_submitted: Callable[[list[RunningJob]], None] | None = None,
) -> list[RunningJob]:
    """One submission through the backend: all of it, recorded, or none of it.

    The log folder is made (or tightened to) 0700 first, and the umask is 077 while the
    backend submits, so pickles, records and the logs Slurm writes are 0600. SIGINT and
    SIGTERM wait until the submission is over and recorded (``on_submitted``: the run
    store), so an interrupted submission never leaves jobs nobody knows about.
    """
    if backend.keeps_files:
        private_folder(Path(spec.log_folder))
    with signals_deferred(), owner_only():
        jobs = backend.submit(spec, tasks, describes, after=after)
        if on_submitted is not None:
            on_submitted(jobs)
    return jobs


def submit_again(
    backend: Backend, spec: ResolvedSpec, tasks: Sequence[Task], describes: Sequence[str]
) -> list[RunningJob]:
    """Submit tasks of a recorded run again (a retry, or a re-attached run's resubmission)."""
    return submit_once(backend, spec, tasks, describes)


def source_fingerprint(fn: Callable[..., Any] | None) -> bytes:
    """The source text of the function a call runs (of a ``functools.partial``'s function, of
    a callable object's class), or ``b""`` when it has none to read (a builtin).

    A function defined in a module is pickled by name, so its pickle does not change when its
    code does; its source does. Only the function's own text counts, not the helpers it calls.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if fn is None:
        return b""
    for target in (fn, type(fn)):
        try:
            return inspect.getsource(target).encode("utf-8", "surrogatepass")
        except (OSError, TypeError):
            continue
    return b""


def _task_bytes(task: Task, source: bytes = b"") -> bytes:
    """What a task runs, as bytes for the content key (never its per-submission key); a
    call's function's ``source`` (:func:`source_fingerprint`) counts too."""
    if isinstance(task, CommandTask):
        return b"command\0" + task.cmd.encode("utf-8", "surrogatepass")
    if isinstance(task, CallTask):
        content = call_content(task.blob)
        return b"call\0" + len(content).to_bytes(8, "big") + content + source
    pickled: bytes = cloudpickle.dumps(task)
    return pickled


def sources_of(payloads: Sequence[Payload]) -> list[bytes]:
    """The source of each call's function (read once per distinct function; ``b""`` for a
    command)."""
    read: dict[int, bytes] = {}
    out: list[bytes] = []
    for payload in payloads:
        if isinstance(payload, Call):
            if id(payload.fn) not in read:
                read[id(payload.fn)] = source_fingerprint(payload.fn)
            out.append(read[id(payload.fn)])
        else:
            out.append(b"")
    return out


def key_fields(spec: ResolvedSpec, backend: Backend) -> dict[str, Any]:
    """How the work runs, for the content key: resources, environment, name, backend.

    The array throttle is left out: it changes how fast, not what, runs (and ``"auto"``
    settles to the idle cores of the moment).
    """
    summary = describe(spec)
    for key in ("payload", "retries", "array_parallelism", "max_array_parallelism"):
        summary.pop(key, None)
    summary["backend"] = backend.name
    return summary


def _summary(spec: ResolvedSpec) -> dict[str, Any]:
    """What the store shows of a run's spec: environment variable names, never their values,
    and whether there is a setup line, never the line (``${VAR}`` in a spec file puts the
    submitting shell's values into it, and a caller may have written a token into it)."""
    summary = describe(spec)
    summary["env"] = sorted(summary["env"])
    summary["env_setup"] = summary["env_setup"] is not None
    return summary


@attrs.frozen
class RunRequest:
    """What one run submits: its kind (``job`` or ``map``), the checked spec and backend, the
    tasks with their labels, the array size limit, (for a chunked map) what its content key
    is made of instead of the tasks, and the source of each task's function."""

    kind: str
    spec: ResolvedSpec
    backend: Backend = attrs.field(eq=False)
    tasks: Sequence[Task] = attrs.field(eq=False)
    describes: Sequence[str]
    max_array_size: int
    content: Sequence[bytes] | None = None
    sources: Sequence[bytes] = attrs.field(default=(), eq=False)
    """Per task, the source of the function it calls (empty: none known)."""

    def parts(self, run_id: str = "") -> RunParts:
        """What building the run's handles needs."""
        return RunParts(
            run_id=run_id,
            kind=self.kind,
            spec=self.spec,
            backend=self.backend,
            tasks=self.tasks,
            labels=self.describes,
            limits=limits_for(self.backend),
            max_array_size=self.max_array_size,
            submit=submit_again,
        )

    def slices(self) -> list[slice]:
        """The tasks split into arrays the backend accepts."""
        size = self.max_array_size
        return [slice(i, i + size) for i in range(0, len(self.tasks), size)]

    def content_key(self) -> str:
        """The key identical work shares: the spec's fields and what each task runs."""
        if self.content is not None:
            parts = list(self.content)
        else:
            sources = self.sources or [b""] * len(self.tasks)
            parts = [_task_bytes(t, s) for t, s in zip(self.tasks, sources, strict=True)]
        return content_key(self.kind, key_fields(self.spec, self.backend), parts)


def claim_run(
    store: RunStore,
    request: RunRequest,
    resume: str,
    *,
    run_id: str | None = None,
    accept: Callable[[RunRow], bool] | None = None,
) -> str | RunRow:
    """A new run id claimed in the store for ``request`` (its files saved; ``run_id`` when
    given), or the identical run recorded earlier that ``resume`` lets it re-attach to
    (``accept``: what else a collected run must satisfy to be re-used by ``"cache"``)."""
    spec = request.spec
    run_id = run_id or store.new_run_id()
    files = store.folder / "runs" / run_id
    save_run_files(files, spec, request.tasks)
    first = encode(TaskState(policy=spec.retry, resources=spec.attempt))
    key = request.content_key()
    with store.claim(key, reuse=resume, accept=accept) as (conn, found):
        if found is None:
            store.insert_run(
                conn,
                run_id=run_id,
                content_key=key,
                name=spec.name,
                kind=request.kind,
                backend=request.backend.name,
                log_folder=spec.log_folder,
                files=str(files),
                summary=_summary(spec),
                tags=dict(spec.tags),
                labels=request.describes,
                record_keys=[t.record_key for t in request.tasks],
                states=[first] * len(request.tasks),
                lease_s=LEASE_S,
            )
    if found is None:
        return run_id
    shutil.rmtree(files, ignore_errors=True)
    return found


def _age(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3 h 5 min``, ``2 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days" if seconds >= 2 * 86400 else "1 day"


def announce_reuse(store: RunStore, run: RunRow) -> None:
    """Say, in one line on the ``paracore`` logger (stderr when logging is not set up), that a
    submission re-attached to an earlier run instead of submitting: which, how old, how far."""
    phases = [t.phase for t in store.tasks(run.id)]
    ended = sum(1 for phase in phases if phase in ("succeeded", "failed"))
    if run.collected is not None:  # resume="cache"
        what, anew = "re-used the results of", "to run it again"
    else:
        what, anew = "re-attached to", "to submit anew"
    announce(
        f"{what} run {run.id} ({run.name}, submitted {_age(time.time() - run.created)} ago, "
        f"{ended} of {len(phases)} tasks finished) instead of submitting; pass "
        f"resume='never' {anew}"
    )


def attach_found(store: RunStore, request: RunRequest, run: RunRow) -> list[SubmitHandle]:
    """The handles of ``run``, the identical earlier run a claim found."""
    session = current_session()
    return attach_run(
        store,
        run,
        backend=request.backend,
        limits=limits_for(request.backend),
        clock=session.clock,
        sleep=session.sleep,
        submit=submit_again,
        max_array_size=request.max_array_size,
    )


def claim_or_attach(store: RunStore, request: RunRequest, resume: str) -> str | list[SubmitHandle]:
    """A new run id claimed in the store for ``request`` (its files saved), or the handles of
    the identical run recorded earlier when ``resume`` lets it be re-attached (announced)."""
    claimed = claim_run(store, request, resume)
    if isinstance(claimed, str):
        return claimed
    announce_reuse(store, claimed)
    return attach_found(store, request, claimed)


def submit_parts(
    request: RunRequest,
    after: Sequence[str],
    on_part: Callable[[int, list[RunningJob]], None] | None = None,
) -> list[RunningJob]:
    """Every array of the request submitted, or none: a part that fails cancels the parts
    already submitted. ``on_part(offset, jobs)`` records each part before control returns."""
    jobs: list[RunningJob] = []
    with signals_deferred():  # an interruption lands after all parts are recorded, or undone
        try:
            for part in request.slices():
                offset = len(jobs)

                def recorded(submitted: list[RunningJob], offset: int = offset) -> None:
                    if on_part is not None:
                        on_part(offset, submitted)

                jobs += submit_once(
                    request.backend,
                    request.spec,
                    request.tasks[part],
                    request.describes[part],
                    after,
                    recorded,
                )
        except BaseException:
            if jobs:  # a later part failed: all or nothing
                request.backend.cancel([j.job_id for j in jobs])
            raise
    return jobs


def make_ledger(store: RunStore, run_id: str, request: RunRequest) -> RunLedger:
    """The ledger that keeps a new run's handles and its store record in step."""
    spec, backend = request.spec, request.backend
    return RunLedger(
        store,
        run_id,
        clock=current_session().clock,
        job_for=lambda row: backend.reattach(
            spec,
            str(row.job_id),
            array_index=row.array_index,
            record_key=row.record_key,
            describe=row.label,
        ),
        versions=store.versions(run_id),
    )


@attrs.frozen
class Started:
    """A run's handles, and the earlier run they belong to when the submission re-attached
    to one instead of submitting (None: submitted now, as ``run_id``)."""

    handles: list[SubmitHandle]
    run_id: str | None
    attached: RunRow | None = None


def start_run(
    request: RunRequest,
    *,
    parents: Sequence[SubmitHandle],
    after: Sequence[str],
    options: SubmitOptions,
) -> list[SubmitHandle]:
    """Submit the request as one run (or re-attach to the identical one) and return the
    handles: claim or attach, submit every part, then hand out handles with a ledger."""
    return begin_run(request, parents=parents, after=after, options=options).handles


def begin_run(
    request: RunRequest,
    *,
    parents: Sequence[SubmitHandle],
    after: Sequence[str],
    options: SubmitOptions,
    run_id: str | None = None,
    prepare: Callable[[], None] | None = None,
    accept: Callable[[RunRow], bool] | None = None,
    announced: bool = True,
) -> Started:
    """:func:`start_run`, saying whether it re-attached. ``run_id`` is the id a new run gets,
    ``prepare`` runs once a new run is claimed, before anything is submitted (the files its
    tasks read), ``accept`` is what a collected run must also satisfy for ``cache``, and
    ``announced`` whether a re-attach is announced (:func:`announce`)."""
    if not request.backend.keeps_files:  # results live in this process only: nothing to record
        if prepare is not None:
            prepare()
        ran = submit_parts(request, after)
        return Started(handles_for(request.parts(), ran, [None] * len(ran), None, parents), None)
    store = current_session().store(None if options.store is None else Path(options.store))
    resume = options.for_dependent().resume if after else options.resume
    claimed = claim_run(store, request, resume, run_id=run_id, accept=accept)
    if not isinstance(claimed, str):
        if announced:
            announce_reuse(store, claimed)
        return Started(attach_found(store, request, claimed), claimed.id, claimed)
    run_id = claimed

    def recorded(offset: int, jobs: list[RunningJob]) -> None:
        store.submitted(
            run_id, [(offset + i, _fields(job, request.spec)) for i, job in enumerate(jobs)]
        )

    with signals_deferred():  # an interruption lands once every part is recorded, or undone
        try:
            if prepare is not None:
                prepare()
            jobs = submit_parts(request, after, recorded)
        except BaseException:
            store.delete(run_id)
            shutil.rmtree(store.folder / "runs" / run_id, ignore_errors=True)
            raise
    ledger = make_ledger(store, run_id, request)
    return Started(
        handles_for(request.parts(run_id), jobs, [None] * len(jobs), ledger, parents), run_id
    )


def _fields(job: RunningJob, spec: ResolvedSpec) -> dict[str, Any]:
    """What the store keeps about a first attempt."""
    res = spec.attempt
    return {
        "job_id": job.job_id,
        "array_index": job.array_index,
        "stdout": job.stdout_path,
        "stderr": job.stderr_path,
        "partition": res.partition,
        "mem_mb": res.mem_mb,
        "time_min": res.time_min,
        "exclude": ",".join(res.exclude) or None,
    }


def options_of(
    options: SubmitOptions | None,
    *,
    origins: Mapping[str, str] | None,
    validate: bool | None,
    resume: str | None,
) -> SubmitOptions:
    """``options``, or options settled from the keywords and the configuration (not both)."""
    if options is None:
        return settle_options(resume=resume, validate=validate, origins=origins)
    if origins is not None or validate is not None or resume is not None:
        raise TypeError("give either options= or origins/validate/resume, not both")
    return options


def submit(
    spec: JobSpec | ResolvedSpec,
    *,
    after_ok: AfterOk | None = None,
    options: SubmitOptions | None = None,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    resume: str | None = None,
) -> SubmitHandle:
    """Submit one spec as one job and return its handle.

    On Slurm the spec is first checked against the live cluster (partition, MaxTime, node
    memory and cpus): ``origins`` says where each value came from for the error message,
    ``validate=False`` (or ``$PARACORE_VALIDATE=0``) skips it. ``after_ok`` (handles or job
    ids) makes the job wait until they all succeeded (``--dependency=afterok`` with
    ``--kill-on-invalid-dep=yes``); if one fails, waiting on this job raises DependencyError.
    Failed attempts are retried per ``spec.retry`` with escalated resources (see
    docs/retries.md). The submission is recorded in the run store; ``resume`` (``auto``,
    ``cache`` or ``never``; default: the ``resume`` setting) decides whether identical work
    recorded earlier is re-attached instead (see docs/runs.md). ``options`` gives these
    choices as one settled :class:`~paracore.core.options.SubmitOptions` instead.
    """
    options = options_of(options, origins=origins, validate=validate, resume=resume)
    resolved, backend = prepared(spec, options)
    task = prepare_task(resolved, current_session().which, sys.path)
    parents, after = parents_of(after_ok, backend)
    request = RunRequest(
        "job", resolved, backend, [task], [describe_payload(resolved)], 1,
        sources=sources_of([resolved.payload]),
    )  # fmt: skip
    (handle,) = start_run(request, parents=parents, after=after, options=options)
    return handle


def submit_map(
    spec: JobSpec | ResolvedSpec,
    payloads: Sequence[Payload],
    *,
    max_array_size: int | None = None,
    after_ok: AfterOk | None = None,
    options: SubmitOptions | None = None,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    resume: str | None = None,
) -> list[SubmitHandle]:
    """Submit one task per payload as ONE Slurm array (split above ``max_array_size``, by
    default the cluster's ``MaxArraySize``).

    Every payload is checked before anything is submitted. Handles come back in input order
    and share a :class:`~paracore.shell.handle.RetryGroup`: elements that fail in the same
    round are resubmitted together as one new, smaller array, per the spec's retry policy,
    while the others' results are kept. ``after_ok``, ``options`` and ``resume`` work as for
    :func:`submit`.
    """
    if not payloads:
        return []
    options = options_of(options, origins=origins, validate=validate, resume=resume)
    resolved, backend = prepared(spec, options)
    return map_prepared(
        resolved,
        backend,
        payloads,
        after_ok=after_ok,
        options=options,
        max_array_size=max_array_size or array_limit(backend),
    )


def map_prepared(
    spec: ResolvedSpec,
    backend: Backend,
    payloads: Sequence[Payload],
    *,
    after_ok: AfterOk | None,
    options: SubmitOptions,
    max_array_size: int,
) -> list[SubmitHandle]:
    """:func:`submit_map` for a spec already resolved and checked for its backend."""
    which = current_session().which
    specs = [spec.with_payload(p) for p in payloads]
    tasks = [prepare_task(s, which, sys.path) for s in specs]
    warning = effective_parallelism(spec)[1]
    if warning:
        warnings.warn(warning, stacklevel=3)
    describes = [describe_payload(s) for s in specs]
    parents, after = parents_of(after_ok, backend)
    sources = sources_of([s.payload for s in specs])
    request = RunRequest("map", spec, backend, tasks, describes, max_array_size, sources=sources)
    return start_run(request, parents=parents, after=after, options=options)


def attach(run_id: str) -> list[SubmitHandle]:
    """The handles of a recorded run, in input order, usable as if this process submitted them.

    ``run_id`` may be a unique prefix (``paracore ls`` lists the runs). Finished results are
    read from disk; unfinished work carries on under its retry policy, with its attempts so
    far counted, and only one process resubmits a given task.
    """
    session = current_session()
    store = session.store()
    run = store.run(run_id)
    if run is None:
        raise RunNotFound(
            f"no run {run_id!r} in the run store {store.path}; `paracore ls` lists the runs"
        )
    backend = session.backend(run.backend)
    return attach_run(
        store,
        run,
        backend=backend,
        limits=limits_for(backend),
        clock=session.clock,
        sleep=session.sleep,
        submit=submit_again,
        max_array_size=array_limit(backend),
    )


def preview(
    spec: JobSpec | ResolvedSpec, *, array_size: int | None = None, token: str | None = None
) -> str:
    """The exact sbatch script paracore would submit for ``spec``, without submitting it.

    Every submission carries a fresh ``--comment`` token; ``token`` shows the script of the
    one that carried it.
    """
    slurm = current_session().backend("slurm")
    return slurm.preview(resolve_spec(spec), array_size=array_size, token=token)
