"""The interpreter: the one place that submits work to a scheduler.

It resolves the backend, checks the spec can be submitted (picklable, command found), builds a
fresh submitit executor per submission from the pure :func:`~paracore.params.to_submitit_params`
and wraps each submitit job in a :class:`~paracore.handle.SubmitHandle`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cloudpickle
from submitit.core.utils import FailedJobError, FailedSubmissionError
from submitit.slurm import slurm as submitit_slurm

from paracore.backoff import AttemptResources, Limits
from paracore.exceptions import (
    DependencyError,
    SpecError,
    SubmissionError,
)
from paracore.executors import executor_for
from paracore.failures import FailureClass
from paracore.handle import RetryGroup, SubmitHandle
from paracore.jobs import InProcessJob, LocalJob, SubmititJob
from paracore.params import (
    effective_parallelism,
    job_name,
    log_folder,
    to_submitit_params,
    with_builtin_defaults,
)
from paracore.polling import Poller
from paracore.runtime import (
    CallTask,
    CommandTask,
)
from paracore.sentinel import NOT_GIVEN
from paracore.slurm import cluster as slurm_cluster
from paracore.slurm.accounting import query_jobs
from paracore.slurm.cluster import checked_for_backend
from paracore.slurm.commands import SchedulerUnreachable
from paracore.spec import BACKENDS, Call, Command, JobSpec, Payload
from paracore.transforms import with_resources

MAX_ARRAY_SIZE = 1000
"""Tasks per Slurm array; Slurm's default MaxArraySize of 1001 allows indices 0..1000."""

Which = Callable[[str], str | None]

# Shell keywords and builtins: a command starting with one needs no program on PATH.
_SHELL_WORD_TEXT = (
    "if then else elif fi case esac for while until do done function select time { } [ [[ ! "
    ". : source export set unset cd echo printf test true false exit return eval exec "
    "read shift trap type ulimit umask wait alias command builtin declare local let"
)
_SHELL_WORDS = frozenset(_SHELL_WORD_TEXT.split())


# ---------------------------------------------------------------- backend and checks


def detect_backend(which: Which = shutil.which) -> str:
    """``slurm`` when ``sbatch`` is on PATH, else ``local`` (submitit's local executor)."""
    return "slurm" if which("sbatch") and which("srun") else "local"


def backend_for(
    spec: JobSpec, which: Which = shutil.which, environ: Mapping[str, str] = os.environ
) -> str:
    """The backend the spec asks for; ``auto`` means ``$PARACORE_BACKEND`` if set, else detect."""
    backend = with_builtin_defaults(spec).backend
    if backend != "auto":
        return str(backend)
    forced = environ.get("PARACORE_BACKEND", "auto")
    if forced not in BACKENDS:
        raise SpecError("PARACORE_BACKEND", forced, f"one of {', '.join(BACKENDS)}", "environment")
    return detect_backend(which) if forced == "auto" else forced


def task_for(spec: JobSpec, sys_path: Sequence[str] = ()) -> CommandTask | CallTask:
    """The callable that runs inside the job; ``sys_path`` is where the node may import from."""
    env = spec.env
    common: dict[str, Any] = {
        "merge": env.merge,
        "overlay": env.overlay,
        "setup": None if env.setup is NOT_GIVEN else env.setup,
        "start_jitter_s": float(with_builtin_defaults(spec).start_jitter_s),  # type: ignore[arg-type]
    }
    payload = spec.payload
    if isinstance(payload, Command):
        return CommandTask(payload.cmd, **common)
    try:
        return CallTask.pack(
            payload.fn, payload.args, payload.kwargs, sys_path=tuple(sys_path), **common
        )
    except Exception:
        _explain_unpicklable(payload)
        raise


def _explain_unpicklable(payload: Call) -> None:
    """Raise a SpecError naming the first part of a call that cloudpickle cannot send."""
    _check_pickles("fn", payload.fn)
    for i, arg in enumerate(payload.args):
        _check_pickles(f"args[{i}]", arg)
    for key, value in payload.kwargs:
        _check_pickles(f"kwargs[{key!r}]", value)


def prepare_task(
    spec: JobSpec, which: Which = shutil.which, sys_path: Sequence[str] = ()
) -> CommandTask | CallTask:
    """The job's task, after failing on what would otherwise only fail on the node.

    A call that cannot be pickled, or a command whose program is not on PATH (and no
    ``env_setup`` that might provide it), raises SpecError before anything is submitted.
    """
    payload = spec.payload
    if isinstance(payload, Command) and spec.env.setup in (NOT_GIVEN, None):
        program = _first_program(payload.cmd)
        if program is not None and program not in _SHELL_WORDS and "=" not in program:
            found = Path(program).exists() if "/" in program else which(program) is not None
            if not found:
                raise SpecError(
                    "cmd",
                    payload.cmd,
                    f"program {program!r} was not found on PATH; give its full path, fix PATH, "
                    "or use env_setup to load it (e.g. 'module load ...')",
                )
    return task_for(spec, sys_path)


def check_submittable(spec: JobSpec, which: Which = shutil.which) -> None:
    """Raise SpecError for what would only fail on the node: pickling, a missing program."""
    prepare_task(spec, which)


def _first_program(cmd: str) -> str | None:
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        return None
    return words[0] if words else None


def _check_pickles(field: str, value: object) -> None:
    try:
        cloudpickle.dumps(value)
    except Exception as err:
        raise SpecError(
            field,
            value,
            f"something cloudpickle can send to the node ({type(err).__name__}: {err}); pass "
            "file paths or plain data instead of open files, locks, sockets or connections",
        ) from None


# ---------------------------------------------------------------- submission


def _describe(spec: JobSpec) -> str:
    payload = spec.payload
    if isinstance(payload, Command):
        text = payload.cmd if len(payload.cmd) <= 60 else payload.cmd[:57] + "..."
        return f"command {text!r}"
    return f"call {payload.label}()"


def _submission_error(err: Exception, spec: JobSpec) -> SubmissionError:
    detail = err
    if isinstance(err, subprocess.CalledProcessError):
        output = (
            err.output.decode(errors="replace") if isinstance(err.output, bytes) else err.output
        )
        detail = (output or "").strip() or err  # type: ignore[assignment]
    if "controller unreachable after" in str(detail):
        return SchedulerUnreachable(f"sbatch could not submit job {job_name(spec)!r}: {detail}")
    return SubmissionError(f"sbatch refused job {job_name(spec)!r}: {detail}")


def _tagged(spec: JobSpec, kind: str, after: Sequence[str]) -> JobSpec:
    """The spec with this submission's unique ``--comment`` token and its dependencies."""
    if kind != "slurm":
        return spec
    extra = dict(spec.resources.extra)
    token = f"paracore-{uuid.uuid4().hex[:16]}"
    extra["comment"] = f"{extra['comment']}-{token}" if extra.get("comment") else token
    if after:
        extra["dependency"] = "afterok:" + ":".join(after)
        extra["kill-on-invalid-dep"] = "yes"
    return with_resources(spec, extra=extra)


def _submit_tasks(
    spec: JobSpec,
    kind: str,
    tasks: Sequence[CommandTask | CallTask],
    describes: Sequence[str],
    *,
    after: Sequence[str] = (),
    poller: Poller | None = None,
) -> list[Any]:
    """Submit tasks sharing one spec: one job, or one array when there are several."""
    if kind == "inprocess":
        index = (lambda i: i) if len(tasks) > 1 else (lambda i: None)
        return [
            InProcessJob(t, index(i), d)
            for i, (t, d) in enumerate(zip(tasks, describes, strict=True))
        ]
    spec = _tagged(spec, kind, after)
    executor = executor_for(spec, kind)
    try:
        if len(tasks) == 1:
            jobs = [executor.submit(tasks[0])]
        else:
            with executor.batch():
                jobs = [executor.submit(task) for task in tasks]
    except (subprocess.CalledProcessError, FailedSubmissionError, FailedJobError, OSError) as err:
        raise _submission_error(err, spec) from err
    array = len(tasks) > 1
    if kind != "slurm":
        return [
            LocalJob(job, i if array else None, d)
            for i, (job, d) in enumerate(zip(jobs, describes, strict=True))
        ]
    return [
        SubmititJob(job, i if array else None, d, poller)
        for i, (job, d) in enumerate(zip(jobs, describes, strict=True))
    ]


# ---------------------------------------------------------------- attempts and dependencies


def attempt_resources(spec: JobSpec) -> AttemptResources:
    """What a (resolved) spec asks for, as the first attempt's resources."""
    res = spec.resources
    exclude = dict(res.extra).get("exclude")
    return AttemptResources(
        partition=res.partition if isinstance(res.partition, str) else None,
        mem_mb=res.mem_mb if isinstance(res.mem_mb, int) else None,
        time_min=res.time_min if isinstance(res.time_min, int) else None,
        exclude=tuple(str(exclude).split(",")) if exclude else (),
    )


def with_attempt_resources(spec: JobSpec, resources: AttemptResources) -> JobSpec:
    """The spec asking for ``resources`` (an escalated retry's memory, time, excluded nodes)."""
    changes: dict[str, Any] = {}
    if resources.mem_mb is not None:
        changes["mem_mb"] = resources.mem_mb
    if resources.time_min is not None:
        changes["time_min"] = resources.time_min
    if resources.exclude:
        changes["extra"] = {"exclude": ",".join(resources.exclude)}
    return with_resources(spec, **changes) if changes else spec


def _limits_for(kind: str) -> Callable[[str | None], Limits | None]:
    """Partition limits from the live cluster (memory of its largest node, MaxTime)."""

    def limits(partition: str | None) -> Limits | None:
        if kind != "slurm":
            return None
        try:
            info = slurm_cluster.CLUSTER_CACHE.info()
        except SchedulerUnreachable:
            return None
        part = info.partition(partition) if partition else info.default_partition
        if part is None:
            return None
        memories = [n.memory_mb for n in info.nodes_of(part.name)]
        return Limits(
            max_mem_mb=max(memories) if memories else None, max_time_min=part.max_time_min
        )

    return limits


AfterOk = Sequence["SubmitHandle | str | int"]


def _parents(after_ok: AfterOk | None, kind: str) -> tuple[list[SubmitHandle], list[str]]:
    """Parent handles still to wait on, and the job ids for ``--dependency=afterok``.

    A parent that already failed raises DependencyError before anything is submitted. A
    parent that already succeeded needs no dependency (Slurm silently drops an ``afterok`` on
    a job purged from the controller, so it is better not to name it at all).
    """
    handles: list[SubmitHandle] = []
    ids: list[str] = []
    raw: list[str] = []
    for parent in after_ok or ():
        if isinstance(parent, SubmitHandle):
            if kind != "slurm":
                parent.exception()  # local and in-process jobs have no scheduler dependencies
            if parent.done():
                if parent.exception(timeout=0) is not None:
                    raise DependencyError(
                        f"not submitted: the job it depends on, {parent.job_id} "
                        f"({parent.job_name}), failed",
                        job_id=parent.job_id,
                        state="DEPENDENCY",
                        failure_class=FailureClass.DEPENDENCY.value,
                    )
                continue
            handles.append(parent)
            ids.append(parent.job_id)
        else:
            raw.append(str(parent))
    if raw and kind == "slurm":
        try:
            records = query_jobs(raw)
        except SchedulerUnreachable:
            records = {}
        for job_id in raw:
            record = records.get(job_id)
            if record is not None and record.terminal:
                if record.state != "COMPLETED":
                    raise DependencyError(
                        f"not submitted: the job it depends on, {job_id}, ended {record.state}",
                        job_id=job_id,
                        state="DEPENDENCY",
                        failure_class=FailureClass.DEPENDENCY.value,
                    )
                continue
            ids.append(job_id)
    return handles, ids


def submit(
    spec: JobSpec,
    *,
    which: Which = shutil.which,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    after_ok: AfterOk | None = None,
    poller: Poller | None = None,
) -> SubmitHandle:
    """Submit one spec as one job and return its handle.

    On Slurm the spec is first checked against the live cluster (partition, MaxTime, node
    memory and cpus; see :mod:`paracore.slurm.cluster`): ``origins`` says where each value
    came from for the error message, ``validate=False`` (or ``$PARACORE_VALIDATE=0``) skips it.
    ``after_ok`` (handles or job ids) makes the job wait until they all succeeded
    (``--dependency=afterok`` with ``--kill-on-invalid-dep=yes``); if one fails, waiting on this
    job raises DependencyError. Failed attempts are retried per ``spec.retry`` with escalated
    resources (see docs/retries.md).
    """
    spec = with_builtin_defaults(spec)
    kind = backend_for(spec, which)
    spec = checked_for_backend(spec, kind, origins=origins, validate=validate)
    task = prepare_task(spec, which, sys.path)
    describe = _describe(spec)
    parents, after = _parents(after_ok, kind)

    def resubmit(resources: AttemptResources) -> Any:
        attempt_spec = with_attempt_resources(spec, resources)
        return _submit_tasks(attempt_spec, kind, [task], [describe], poller=poller)[0]

    job = _submit_tasks(spec, kind, [task], [describe], after=after, poller=poller)[0]
    return SubmitHandle(
        job,
        job_name=job_name(spec),
        retry=spec.retry,
        resubmit=resubmit,
        resources=attempt_resources(spec),
        limits=_limits_for(kind),
        parents=parents,
    )


def submit_map(
    spec: JobSpec,
    payloads: Sequence[Payload],
    *,
    which: Which = shutil.which,
    max_array_size: int = MAX_ARRAY_SIZE,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    after_ok: AfterOk | None = None,
    poller: Poller | None = None,
) -> list[SubmitHandle]:
    """Submit one task per payload as ONE Slurm array (split above ``max_array_size``).

    Every payload is checked before anything is submitted. Handles come back in input order
    and share a :class:`~paracore.handle.RetryGroup`: elements that fail in the same round
    are resubmitted together as one new, smaller array, per the spec's retry policy, while
    the others' results are kept. ``after_ok`` works as for :func:`submit`.
    """
    if not payloads:
        return []
    spec = with_builtin_defaults(spec)
    kind = backend_for(spec, which)
    spec = checked_for_backend(spec, kind, origins=origins, validate=validate)
    specs = [spec.with_payload(p) for p in payloads]
    tasks = [prepare_task(s, which, sys.path) for s in specs]
    _warning = effective_parallelism(spec)[1]
    if _warning:
        warnings.warn(_warning, stacklevel=2)
    describes = [_describe(s) for s in specs]
    parents, after = _parents(after_ok, kind)
    limits = _limits_for(kind)
    resources = attempt_resources(spec)
    handles: list[SubmitHandle] = []
    for start in range(0, len(tasks), max_array_size):
        chunk = slice(start, start + max_array_size)
        jobs = _submit_tasks(spec, kind, tasks[chunk], describes[chunk], after=after, poller=poller)
        for job in jobs:
            handles.append(
                SubmitHandle(
                    job,
                    job_name=job_name(spec),
                    retry=spec.retry,
                    resources=resources,
                    limits=limits,
                    parents=parents,
                )
            )

    def resubmit_many(indices: Sequence[int], attempt: AttemptResources) -> list[Any]:
        attempt_spec = with_attempt_resources(spec, attempt)
        jobs: list[Any] = []
        for start in range(0, len(indices), max_array_size):
            part = indices[start : start + max_array_size]
            jobs += _submit_tasks(
                attempt_spec,
                kind,
                [tasks[i] for i in part],
                [describes[i] for i in part],
                poller=poller,
            )
        return jobs

    RetryGroup(handles, resubmit_many, retry=spec.retry)
    return handles


def preview(spec: JobSpec, *, array_size: int | None = None) -> str:
    """The exact sbatch script paracore would submit for ``spec``, without submitting it."""
    spec = with_builtin_defaults(spec)
    params = to_submitit_params(spec, "slurm")
    generic = submitit_slurm.SlurmExecutor._equivalence_dict()
    converted: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith("slurm_"):
            converted[key[len("slurm_") :]] = value
        elif key == "mem_gb":
            converted["mem"] = submitit_slurm._convert_mem(value)
        else:
            converted[generic[key]] = value  # type: ignore[literal-required]
    if array_size is not None and array_size > 1:
        converted["map_count"] = array_size
    folder = Path(log_folder(spec)).absolute()
    command = f"{shlex.quote(sys.executable)} -u -m submitit.core._submit {folder}"
    return submitit_slurm._make_sbatch_string(command=command, folder=folder, **converted)
