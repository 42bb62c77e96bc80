"""The interpreter: the one place that hands work to a backend.

It resolves the spec's backend from the current :class:`~paracore.shell.session.Session`,
checks the spec can be submitted (against the cluster, picklable, command found), submits
through the backend and wraps each attempt in a :class:`~paracore.shell.handle.SubmitHandle`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from paracore.backends.base import Backend, RunningJob, Task
from paracore.core.cluster import PartitionLimits
from paracore.core.defaults import with_builtin_defaults
from paracore.core.escalation import AttemptResources, attempt_resources, with_attempt_resources
from paracore.core.failures import FailureClass
from paracore.core.names import job_name, log_folder
from paracore.core.rules import effective_parallelism
from paracore.core.spec import JobSpec, Payload
from paracore.errors import DependencyError, SchedulerUnreachable, SpecError
from paracore.shell.checks import describe_payload, prepare_task
from paracore.shell.handle import LimitsFor, RetryGroup, SubmitHandle
from paracore.shell.private import owner_only, private_folder, trusted_folder
from paracore.shell.records import record_submission, signals_deferred
from paracore.shell.session import current_session

__all__ = [
    "MAX_ARRAY_SIZE",
    "AfterOk",
    "backend_for",
    "detect_backend",
    "preview",
    "submit",
    "submit_map",
]

MAX_ARRAY_SIZE = 1000
"""Tasks per Slurm array; Slurm's default MaxArraySize of 1001 allows indices 0..1000."""

AfterOk = Sequence["SubmitHandle | str | int"]


def detect_backend() -> str:
    """``slurm`` when ``sbatch`` and ``srun`` are on PATH, else ``local``."""
    return current_session().detect_backend()


def backend_for(spec: JobSpec) -> str:
    """The backend the spec asks for; ``auto`` means ``$PARACORE_BACKEND`` if set, else detect."""
    return current_session().backend_name(spec)


def _limits_for(backend: Backend) -> LimitsFor:
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


def _parents(after_ok: AfterOk | None, backend: Backend) -> tuple[list[SubmitHandle], list[str]]:
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


def _prepared(
    spec: JobSpec, origins: Mapping[str, str] | None, validate: bool | None
) -> tuple[JobSpec, Backend]:
    """The spec resolved and checked for its backend (nothing submitted yet).

    A log folder that belongs to someone else is refused (results are unpickled from it).
    """
    session = current_session()
    spec = with_builtin_defaults(spec)
    backend = session.backend_for(spec)
    spec = backend.check(spec, origins=origins, validate=validate)
    if backend.keeps_files:
        folder = Path(log_folder(spec))
        if folder.exists() and folder.stat().st_uid != os.geteuid():
            trusted_folder(folder)  # someone else's folder: refused with what to do
    return spec, backend


def _submit(
    backend: Backend,
    spec: JobSpec,
    tasks: Sequence[Task],
    describes: Sequence[str],
    after: Sequence[str] = (),
) -> list[RunningJob]:
    """One submission through the backend: all of it, recorded, or none of it.

    The log folder is made (or tightened to) 0700 first, and the umask is 077 while the
    backend submits, so pickles, records and the logs Slurm writes are 0600. SIGINT and
    SIGTERM wait until the submission is over and written to ``submissions.jsonl`` in the log
    folder, so an interrupted submission never leaves jobs nobody knows about.
    """
    folder = Path(log_folder(spec))
    if backend.keeps_files:
        private_folder(folder)
    with signals_deferred(), owner_only():
        jobs = backend.submit(spec, tasks, describes, after=after)
        if backend.keeps_files:
            record_submission(folder, backend.name, job_name(spec), jobs, after)
    return jobs


def submit(
    spec: JobSpec,
    *,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    after_ok: AfterOk | None = None,
) -> SubmitHandle:
    """Submit one spec as one job and return its handle.

    On Slurm the spec is first checked against the live cluster (partition, MaxTime, node
    memory and cpus): ``origins`` says where each value came from for the error message,
    ``validate=False`` (or ``$PARACORE_VALIDATE=0``) skips it. ``after_ok`` (handles or job
    ids) makes the job wait until they all succeeded (``--dependency=afterok`` with
    ``--kill-on-invalid-dep=yes``); if one fails, waiting on this job raises DependencyError.
    Failed attempts are retried per ``spec.retry`` with escalated resources (see
    docs/retries.md).
    """
    spec, backend = _prepared(spec, origins, validate)
    task = prepare_task(spec, current_session().which, sys.path)
    describe = describe_payload(spec)
    parents, after = _parents(after_ok, backend)

    def resubmit(resources: AttemptResources) -> RunningJob:
        attempt_spec = with_attempt_resources(spec, resources)
        return _submit(backend, attempt_spec, [task], [describe])[0]

    job = _submit(backend, spec, [task], [describe], after)[0]
    return SubmitHandle(
        job,
        job_name=job_name(spec),
        retry=spec.retry,
        resubmit=resubmit,
        resources=attempt_resources(spec),
        limits=_limits_for(backend),
        parents=parents,
    )


def submit_map(
    spec: JobSpec,
    payloads: Sequence[Payload],
    *,
    max_array_size: int = MAX_ARRAY_SIZE,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
    after_ok: AfterOk | None = None,
) -> list[SubmitHandle]:
    """Submit one task per payload as ONE Slurm array (split above ``max_array_size``).

    Every payload is checked before anything is submitted. Handles come back in input order
    and share a :class:`~paracore.shell.handle.RetryGroup`: elements that fail in the same
    round are resubmitted together as one new, smaller array, per the spec's retry policy,
    while the others' results are kept. ``after_ok`` works as for :func:`submit`.
    """
    if not payloads:
        return []
    spec, backend = _prepared(spec, origins, validate)
    which = current_session().which
    specs = [spec.with_payload(p) for p in payloads]
    tasks = [prepare_task(s, which, sys.path) for s in specs]
    warning = effective_parallelism(spec)[1]
    if warning:
        warnings.warn(warning, stacklevel=2)
    describes = [describe_payload(s) for s in specs]
    parents, after = _parents(after_ok, backend)
    limits = _limits_for(backend)
    resources = attempt_resources(spec)
    name = job_name(spec)
    handles: list[SubmitHandle] = []
    for start in range(0, len(tasks), max_array_size):
        part = slice(start, start + max_array_size)
        for job in _submit(backend, spec, tasks[part], describes[part], after):
            handles.append(
                SubmitHandle(
                    job,
                    job_name=name,
                    retry=spec.retry,
                    resources=resources,
                    limits=limits,
                    parents=parents,
                )
            )

    def resubmit_many(indices: Sequence[int], attempt: AttemptResources) -> list[RunningJob]:
        attempt_spec = with_attempt_resources(spec, attempt)
        jobs: list[RunningJob] = []
        for start in range(0, len(indices), max_array_size):
            part = indices[start : start + max_array_size]
            jobs += _submit(
                backend, attempt_spec, [tasks[i] for i in part], [describes[i] for i in part]
            )
        return jobs

    RetryGroup(handles, resubmit_many, retry=spec.retry, parallelism=effective_parallelism(spec)[0])
    return handles


def preview(spec: JobSpec, *, array_size: int | None = None, token: str | None = None) -> str:
    """The exact sbatch script paracore would submit for ``spec``, without submitting it.

    Every submission carries a fresh ``--comment`` token; ``token`` shows the script of the
    one that carried it.
    """
    slurm = current_session().backend("slurm")
    return slurm.preview(spec, array_size=array_size, token=token)
