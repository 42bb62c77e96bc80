"""Runs: recording submissions in the store, re-attaching to them, and keeping handles in step.

A submission claims its run in the store before ``sbatch`` (by content key: the identical
work re-attaches instead of submitting again, see :func:`paracore.core.digest.content_key`),
records every job id before control returns to the caller, and hands out handles whose
:class:`RunLedger` writes each change to the store, takes a lease before resubmitting a task
(only one process does), and reloads what another process changed. :func:`attach` rebuilds
the handles of a recorded run, in input order, as if this process had submitted them.

A run's own files (``runs/<id>/`` in the store) are unpickled only when that folder and each
file are yours and writable by nobody else, checked on the descriptor that is read. What
removing a run deletes is named from what the run recorded and confined to its folders: the
files of its jobs in its log folder, its chunked map's ``map-<key>`` folder there once no other
run uses it, and its folder in the store (:func:`remove_run_files`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cloudpickle

from paracore.backends.base import Backend, RunningJob, Task
from paracore.core.config import RESUME_MODES
from paracore.core.escalation import AttemptResources
from paracore.core.lifecycle import Attempt, TaskState, decode, encode
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.rules import effective_parallelism
from paracore.errors import RunNotFound, StoreError
from paracore.runtime.chunks import ChunkTask
from paracore.shell.handle import LimitsFor, RetryGroup, SubmitHandle
from paracore.shell.private import (
    owner_only,
    plain_name,
    private_folder,
    read_trusted,
    remove_inside,
)
from paracore.shell.store import RunRow, RunStore, TaskRow

__all__ = [
    "LEASE_S",
    "RESUME_MODES",
    "InUse",
    "RunLedger",
    "attach_run",
    "load_run_files",
    "remove_run_files",
    "run_folders",
    "save_run_files",
    "unrecorded_jobs",
]

LEASE_S = 600.0
"""How long a process may hold a run's submission, or a task's resubmission, for itself."""
ATTACH_WAIT_S = 120.0
"""How long re-attaching waits for another process to record the jobs it is submitting."""


# ---------------------------------------------------------------- the run's files


SPEC_FILE = "spec.pkl"
TASKS_FILE = "tasks.pkl"
FOLDERS_FILE = "folders.json"
"""The folders a run's tasks write into besides its jobs' files (a chunked map's folder)."""


def save_run_files(folder: Path, spec: ResolvedSpec, tasks: Sequence[Task]) -> None:
    """What resubmitting needs in another process: the checked spec and the prepared tasks,
    and (as JSON, read without unpickling) the folders the tasks write into."""
    private_folder(folder)
    folders = sorted({task.folder for task in tasks if isinstance(task, ChunkTask)})
    with owner_only():
        (folder / SPEC_FILE).write_bytes(cloudpickle.dumps(spec))
        (folder / TASKS_FILE).write_bytes(cloudpickle.dumps(list(tasks)))
        (folder / FOLDERS_FILE).write_text(json.dumps(folders))


def _untrusted(err: PermissionError) -> StoreError:
    return StoreError(
        f"the files of this run cannot be trusted: {err.filename}: {err.strerror}. They are "
        "unpickled (run) to resubmit the run, so paracore reads them only from a folder and "
        "files of yours that nobody else may write; your run store may have been tampered "
        "with: check who made them, and use a private store (`store:` or $PARACORE_STORE)"
    )


def load_run_files(folder: Path) -> tuple[ResolvedSpec, list[Task]]:
    """The spec and tasks :func:`save_run_files` kept (only from a folder and files of
    yours that nobody else may write, never through a symbolic link)."""
    try:
        spec_blob, tasks_blob = read_trusted(folder, [SPEC_FILE, TASKS_FILE])
    except PermissionError as err:
        raise _untrusted(err) from None
    except OSError as err:
        raise StoreError(
            f"the files of this run are gone ({err.strerror}: {err.filename or folder}); its "
            "results, if any, are still in its log folder, but it cannot be resubmitted"
        ) from None
    spec = cloudpickle.loads(spec_blob)
    tasks = cloudpickle.loads(tasks_blob)
    return resolve_spec(spec), list(tasks)  # a store written before specs were resolved


def run_folders(run: RunRow) -> frozenset[str] | None:
    """The folders this run's tasks write into besides its jobs' files in the log folder (a
    chunked map's ``map-<key>`` folder); None when unknown (its files are gone or not yours).

    A run recorded before ``folders.json`` existed is read from its (trusted) tasks.
    """
    folder = Path(run.files)
    try:
        (text,) = read_trusted(folder, [FOLDERS_FILE])
        folders = json.loads(text)
    except FileNotFoundError:
        folders = None
    except (OSError, ValueError):
        return None
    if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
        return frozenset(folders)
    try:
        (blob,) = read_trusted(folder, [TASKS_FILE])
        tasks = cloudpickle.loads(blob)
    except Exception:  # gone, not yours, or not readable by this version: unknown
        return None
    return frozenset(task.folder for task in tasks if isinstance(task, ChunkTask))


# ---------------------------------------------------------------- handles and the store


def job_fields(handle: SubmitHandle) -> dict[str, Any]:
    """What the store keeps about a handle's current attempt."""
    res = handle.resources
    return {
        "job_id": handle.job_id,
        "array_index": handle.array_index,
        "stdout": handle.stdout_path,
        "stderr": handle.stderr_path,
        "partition": res.partition,
        "mem_mb": res.mem_mb,
        "time_min": res.time_min,
        "exclude": ",".join(res.exclude) or None,
    }


def _ended(attempt: Attempt | None) -> dict[str, Any] | None:
    if attempt is None:
        return None
    return {
        "job_id": attempt.job_id,
        "state": attempt.state,
        "failure_class": None if attempt.failure_class is None else attempt.failure_class.value,
        "exit_code": attempt.exit_code,
        "nodes": attempt.nodes,
    }


class RunLedger:
    """The store behind the handles of one run (see :class:`~paracore.shell.handle.Ledger`).

    Times in the lifecycle are the session's clock; the store keeps wall-clock times, so a
    process started later reads the same moment for a due retry.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        clock: Callable[[], float],
        job_for: Callable[[TaskRow], RunningJob],
        versions: Mapping[int, int],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self._clock = clock
        self._job_for = job_for
        self._known = dict(versions)
        self._pending: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []

    def _to_wall(self, state: TaskState) -> dict[str, Any]:
        data = encode(state)
        if state.resubmit_at is not None:
            data["resubmit_at"] = state.resubmit_at - self._clock() + time.time()
        return data

    def from_wall(self, data: Mapping[str, Any]) -> TaskState:
        """A task's state as the store keeps it, its times moved onto the session's clock."""
        data = dict(data)
        if data.get("resubmit_at") is not None:
            data["resubmit_at"] = data["resubmit_at"] - time.time() + self._clock()
        return decode(data)

    def changed(self, handle: SubmitHandle, ended: Attempt | None) -> None:
        """Remember a change; it is written at the next :meth:`flush`."""
        self._pending.append((handle.index, self._to_wall(handle.lifecycle), _ended(ended)))

    def flush(self) -> None:
        """Write every remembered change in one transaction; a task another process changed
        since this one last saw it is not overwritten (the next :meth:`refresh` reloads it)."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._known.update(self.store.save_states(self.run_id, pending, self._known))

    def may_resubmit(self, handles: Sequence[SubmitHandle]) -> list[SubmitHandle]:
        """The handles whose resubmission lease this process now holds: only those no other
        process changed since this one last saw them (compare-and-set on their versions, in
        the transaction that takes the lease), so one process moves a task to its next
        attempt."""
        self.flush()
        known = {h.index: self._known.get(h.index, -1) for h in handles}
        taken = self.store.lease(self.run_id, known, LEASE_S)
        self._known.update(taken)
        return [h for h in handles if h.index in taken]

    def resubmitted(self, handles: Sequence[SubmitHandle]) -> None:
        """Record the new attempts (and release the leases)."""
        self.flush()
        jobs = [(h.index, job_fields(h)) for h in handles]
        self._known.update(self.store.resubmitted(self.run_id, jobs))

    def collected(self, handles: Sequence[SubmitHandle]) -> None:
        """These outcomes reached the user."""
        self.flush()
        final = [h.index for h in handles if h.lifecycle.final]
        if final:
            self.store.collected(self.run_id, final)

    def refresh(self, handles: Sequence[SubmitHandle]) -> None:
        """Take what another process changed (a retry it submitted, an outcome it read)."""
        versions = self.store.versions(self.run_id)
        stale = [h for h in handles if versions.get(h.index, -1) > self._known.get(h.index, -1)]
        if not stale:
            return
        rows = {row.idx: row for row in self.store.tasks(self.run_id)}
        for handle in stale:
            row = rows.get(handle.index)
            if row is None:  # removed since the versions were read
                raise RunNotFound(
                    f"run {self.run_id} was removed from the run store {self.store.path} "
                    "while this process followed it"
                )
            job = None
            if row.job_id is not None and row.job_id != handle.job_id:
                job = self._job_for(row)
            handle.restore(self.from_wall(row.state), job)
            self._known[handle.index] = row.version


# ---------------------------------------------------------------- re-attaching


@attrs.frozen
class RunParts:
    """What building a run's handles needs, whether it was just submitted or is re-attached."""

    run_id: str
    kind: str
    spec: ResolvedSpec
    backend: Backend
    tasks: Sequence[Task]
    labels: Sequence[str]
    limits: LimitsFor
    max_array_size: int
    submit: Callable[[Backend, ResolvedSpec, Sequence[Task], Sequence[str]], list[RunningJob]]


def handles_for(
    parts: RunParts,
    jobs: Sequence[RunningJob],
    states: Sequence[TaskState | None],
    ledger: RunLedger | None,
    parents: Sequence[SubmitHandle] = (),
) -> list[SubmitHandle]:
    """The run's handles in input order, able to resubmit (one job, or one array group)."""
    spec = parts.spec

    def resubmit(attempt: AttemptResources) -> RunningJob:
        attempt_spec = spec.with_attempt(attempt)
        return parts.submit(parts.backend, attempt_spec, [parts.tasks[0]], [parts.labels[0]])[0]

    handles = [
        SubmitHandle(
            job,
            job_name=spec.name,
            retry=spec.retry,
            resubmit=resubmit if parts.kind == "job" else None,
            resources=spec.attempt,
            limits=parts.limits,
            parents=parents,
            lifecycle=state,
            ledger=ledger,
            index=index,
        )
        for index, (job, state) in enumerate(zip(jobs, states, strict=True))
    ]
    if parts.kind == "map":

        def resubmit_many(indices: Sequence[int], attempt: AttemptResources) -> list[RunningJob]:
            attempt_spec = spec.with_attempt(attempt)
            out: list[RunningJob] = []
            for start in range(0, len(indices), parts.max_array_size):
                chunk = indices[start : start + parts.max_array_size]
                out += parts.submit(
                    parts.backend,
                    attempt_spec,
                    [parts.tasks[i] for i in chunk],
                    [parts.labels[i] for i in chunk],
                )
            return out

        RetryGroup(
            handles,
            resubmit_many,
            retry=spec.retry,
            parallelism=effective_parallelism(spec)[0],
        )
    return handles


def wait_until_active(store: RunStore, run: RunRow, sleep: Callable[[float], None]) -> RunRow:
    """The run once its submitter recorded the jobs (bounded by its lease and a wait)."""
    deadline = time.time() + ATTACH_WAIT_S
    while run.status == "submitting":
        if time.time() > deadline or (run.owner_until or 0) < time.time():
            raise StoreError(
                f"run {run.id} is being submitted by {run.owner} and no job was recorded "
                f"within {ATTACH_WAIT_S:.0f} s; try again, or submit anew with resume='never'"
            )
        sleep(0.5)
        found = store.run(run.id)
        if found is None:  # its submission failed and was forgotten
            raise StoreError(f"run {run.id} was not submitted (its submission failed)")
        run = found
    return run


def attach_run(
    store: RunStore,
    run: RunRow,
    *,
    backend: Backend,
    limits: LimitsFor,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    submit: Callable[[Backend, ResolvedSpec, Sequence[Task], Sequence[str]], list[RunningJob]],
    max_array_size: int,
    parents: Sequence[SubmitHandle] = (),
) -> list[SubmitHandle]:
    """The handles of a recorded run, in input order, usable as if submitted here
    (``parents``: the handles its jobs wait on with ``afterok``, when known)."""
    run = wait_until_active(store, run, sleep)
    spec, tasks = load_run_files(Path(run.files))
    store.follow(run.id)  # this process may collect it now: gc leaves it alone
    rows = store.tasks(run.id)

    def job_for(row: TaskRow) -> RunningJob:
        if row.job_id is None:
            raise StoreError(f"task {row.idx} of run {run.id} has no job recorded")
        return backend.reattach(
            spec,
            row.job_id,
            array_index=row.array_index,
            record_key=row.record_key,
            describe=row.label,
        )

    ledger = RunLedger(
        store,
        run.id,
        clock=clock,
        job_for=job_for,
        versions={row.idx: row.version for row in rows},
    )
    parts = RunParts(
        run_id=run.id,
        kind=run.kind,
        spec=spec,
        backend=backend,
        tasks=tasks,
        labels=[row.label for row in rows],
        limits=limits,
        max_array_size=max_array_size,
        submit=submit,
    )
    jobs = [job_for(row) for row in rows]
    states = [ledger.from_wall(row.state) for row in rows]
    return handles_for(parts, jobs, states, ledger, parents)


# ---------------------------------------------------------------- removing a run


SUBMISSION_LINK = ".submission_file_"
"""submitit leaves a link ``.submission_file_<uuid>.sh`` to each ``<job>_submission.sh``."""
SUBMITTED_PICKLE = "_submitted.pkl"


def _real(path: str) -> str:
    return os.path.realpath(path)


@attrs.frozen
class InUse:
    """What runs that stay still use: their chunked maps' folders, and the log folders in
    which what a run uses is unknown (its files are gone), where no map folder is removed."""

    folders: frozenset[str] = frozenset()
    unknown: frozenset[str] = frozenset()

    @classmethod
    def of(cls, runs: Iterable[RunRow]) -> InUse:
        """What ``runs`` use (real paths)."""
        folders: set[str] = set()
        unknown: set[str] = set()
        for run in runs:
            found = run_folders(run)
            if found is None:
                unknown.add(_real(run.log_folder))
            else:
                folders.update(_real(f) for f in found)
        return cls(frozenset(folders), frozenset(unknown))

    def uses(self, folder: str, log_folder: str) -> bool:
        """Whether a run that stays may use ``folder`` (in ``log_folder``; real paths)."""
        return folder in self.folders or log_folder in self.unknown


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _job_roots(job_ids: Iterable[str]) -> set[str]:
    """The jobs (arrays) of these job ids: ``584`` for ``584_2``."""
    return {job_id.partition("_")[0] for job_id in job_ids}


def _job_files(log_folder: str, job_ids: Iterable[str]) -> list[str]:
    """The names of these jobs' files in their log folder: ``<job>_*`` (logs, pickles,
    results, failure records), each array's ``<array>_submission.sh`` and submitit's links
    to those scripts."""
    prefixes = tuple(f"{job}_" for job in job_ids if plain_name(job))
    scripts = {f"{root}_submission.sh" for root in _job_roots(job_ids) if plain_name(root)}
    names = []
    for entry in _entries(log_folder):
        name = entry.name
        if name.startswith(prefixes) or name in scripts:
            names.append(name)
        elif name.startswith(SUBMISSION_LINK) and entry.is_symlink():
            try:
                target = os.readlink(entry.path)
            except OSError:
                continue
            if os.path.basename(target) in scripts:
                names.append(name)
    return names


def remove_run_files(store: RunStore, run: RunRow, in_use: InUse) -> tuple[int, list[str]]:
    """Remove what belongs to a run: its jobs' files in its log folder, its chunked map's
    folder there unless a run that stays uses it (``in_use``), and its folder in the store.

    Only entries directly in the run's log folder (a private folder of yours) and in the
    store's ``runs/`` are removed, each named by what the run recorded, links never
    followed. Returns how many files were removed and notes on what was left, and why.
    """
    notes: list[str] = []
    log_folder = _real(run.log_folder)
    job_ids = {a.job_id for a in store.attempts(run.id)}
    job_ids |= {t.job_id for t in store.tasks(run.id) if t.job_id}
    names = _job_files(log_folder, job_ids)
    for folder in sorted(run_folders(run) or ()):
        real = _real(folder)
        name = os.path.basename(real)
        if os.path.dirname(real) != log_folder or not name.startswith("map-"):
            notes.append(f"left {folder}: not a map folder in the run's log folder {log_folder}")
        elif in_use.uses(real, log_folder):
            notes.append(f"left {folder}: another run uses it")
        else:
            names.append(name)
    removed = 0
    try:
        removed += remove_inside(Path(log_folder), names)
    except PermissionError as err:
        notes.append(
            f"left the files of its jobs in {log_folder}: {err.strerror} (paracore deletes "
            "only in a private folder of yours)"
        )
    if plain_name(run.id):
        try:
            removed += remove_inside(store.folder / "runs", [run.id])
        except PermissionError as err:
            notes.append(f"left {store.folder / 'runs' / run.id}: {err.strerror}")
    return removed, notes


def unrecorded_jobs(store: RunStore, run: RunRow) -> list[str]:
    """Jobs a ``submitting`` run whose submitter died may have submitted without recording
    them: the jobs (arrays) whose files appeared in its log folder since the run was created
    and that no run in the store recorded. Named so they can be cancelled by hand."""
    found = []
    for entry in _entries(_real(run.log_folder)):
        if not entry.name.endswith(SUBMITTED_PICKLE) or entry.is_symlink():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < run.created - 1:
                continue
        except OSError:
            continue
        found.append(entry.name[: -len(SUBMITTED_PICKLE)])
    recorded = store.recorded_jobs(found)
    return sorted(_job_roots(j for j in found if j not in recorded), key=_job_order)


def _job_order(job: str) -> tuple[int, str]:
    return (int(job), job) if job.isdigit() else (0, job)
