"""The interpreter: the one module that imports submitit and touches the scheduler.

It resolves the backend, checks the spec can be submitted (picklable, command found), builds a
fresh submitit executor per submission from the pure :func:`~paracore.params.to_submitit_params`
and wraps each submitit job in a :class:`~paracore.handle.SubmitHandle`.
"""

from __future__ import annotations

import itertools
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cloudpickle
import submitit
from submitit.core import utils as submitit_utils
from submitit.core.utils import FailedJobError, FailedSubmissionError, UncompletedJobError
from submitit.slurm import slurm as submitit_slurm

from paracore.backoff import AttemptResources, Limits, RetryPolicy, schedule
from paracore.exceptions import (
    CommandFailedError,
    DependencyError,
    JobFailedError,
    RemoteError,
    SpecError,
    SubmissionError,
)
from paracore.failures import FailureClass, classify
from paracore.handle import RetryGroup, SubmitHandle
from paracore.params import (
    effective_parallelism,
    job_name,
    log_folder,
    to_submitit_params,
    with_builtin_defaults,
)
from paracore.polling import DEFAULT_POLLER, Poller
from paracore.runtime import (
    STDERR_TAIL_CHARS,
    CallTask,
    CommandFailed,
    CommandTask,
    SetupFailed,
    TaskFailure,
    failure_path,
    read_failure,
)
from paracore.sentinel import NOT_GIVEN
from paracore.slurm import cluster as slurm_cluster
from paracore.slurm.accounting import query_jobs
from paracore.slurm.cluster import checked_for_backend
from paracore.slurm.commands import SchedulerUnreachable
from paracore.spec import BACKENDS, Call, Command, JobSpec, Payload
from paracore.transforms import with_resources

MAX_ARRAY_SIZE = 1000
SACCT_GRACE_S = 120.0
"""How long a failed payload waits for sacct to say whether Slurm killed it."""
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


# ---------------------------------------------------------------- running jobs


def _state_word(state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``."""
    return state.split()[0] if state.strip() else "UNKNOWN"


def _tail(path: str | None, chars: int = STDERR_TAIL_CHARS) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - chars))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


_KILLED_HINTS = {
    FailureClass.OUT_OF_MEMORY: "it used more memory than it asked for (raise mem)",
    FailureClass.TIMEOUT: "it ran past its time limit (raise time)",
    FailureClass.CANCELLED: "it was cancelled",
    FailureClass.NODE_FAILURE: "its node failed",
    FailureClass.PREEMPTION: "it was preempted",
    FailureClass.BOOT_FAILURE: "its node failed to boot",
    FailureClass.DEPENDENCY: "a job it depends on failed, so Slurm cancelled it",
}


def failure_error(
    failure: TaskFailure | None,
    *,
    job_id: str,
    state: str,
    describe: str,
    stdout_path: str | None,
    stderr_path: str | None,
    exit_code: int | None = None,
    exit_signal: int | None = None,
    reason: str = "",
) -> JobFailedError:
    """Turn what a failed job left behind into the error users see, with its failure class.

    A failure record (the payload raised or exited non-zero) is a user error; otherwise the
    scheduler's state, exit code, reason and the stderr tail say why (:func:`classify`).
    """
    logs = f"logs: {stdout_path} {stderr_path}" if stdout_path else "no log files"
    common = {
        "job_id": job_id,
        "state": state,
        "stdout_path": stdout_path,
        "stderr_path": stderr_path,
    }
    if failure is not None:
        common["failure_class"] = FailureClass.USER_ERROR.value
    if failure is not None and failure.kind == "command":
        tail = failure.stderr_tail.rstrip()
        return CommandFailedError(
            f"{describe} exited with code {failure.returncode} (job {job_id}); {logs}"
            + (f"\nstderr tail:\n{tail}" if tail else ""),
            returncode=failure.returncode,
            stderr_tail=failure.stderr_tail,
            **common,
        )
    if failure is not None:
        what = "env_setup failed" if failure.kind == "setup" else "raised"
        error = RemoteError(
            f"{describe} {what}: {failure.exc_type}: {failure.exc_message} (job {job_id}); {logs}",
            exc_type=failure.exc_type,
            exc_message=failure.exc_message,
            stderr_tail=failure.traceback[-STDERR_TAIL_CHARS:],
            **common,
        )
        if isinstance(failure.exception, BaseException):
            error.__cause__ = failure.exception
        return error
    word = _state_word(state)
    tail = _tail(stderr_path).rstrip()
    failure_class = classify(
        state, exit_code=exit_code, exit_signal=exit_signal, reason=reason, stderr_tail=tail
    )
    hint = _KILLED_HINTS.get(failure_class, "it ended without writing a result")
    exit_text = f" (exit {exit_code}:{exit_signal or 0})" if exit_code is not None else ""
    error_type = DependencyError if failure_class is FailureClass.DEPENDENCY else JobFailedError
    return error_type(
        f"{describe}: job {job_id} ended {word}{exit_text}: {hint}; {logs}"
        + (f"\nstderr tail:\n{tail}" if tail else ""),
        stderr_tail=tail,
        failure_class=failure_class.value,
        **{**common, "state": word},
    )


class SubmititJob:
    """A submitit job seen through the RunningJob protocol.

    Its state comes from a shared :class:`~paracore.polling.Poller` (one batched ``sacct``
    per interval for every job being waited on), never from one query per job. It is done
    when its result pickle exists or sacct says it ended.
    """

    def __init__(
        self,
        job: submitit.Job,
        array_index: int | None,
        describe: str,
        poller: Poller | None = None,
    ) -> None:
        self._job = job
        self.job_id = str(job.job_id)
        self.array_index = array_index
        self.stdout_path = str(job.paths.stdout)
        self.stderr_path = str(job.paths.stderr)
        self._describe = describe
        self._poller = poller if poller is not None else DEFAULT_POLLER
        self._poller.watch(self.job_id)
        self._failed_seen: float | None = None

    def record(self) -> Any:
        """The job's latest sacct record (None until sacct knows it); no new query."""
        return self._poller.record(self.job_id, refresh=False)

    @property
    def state(self) -> str:
        record = self._poller.record(self.job_id, refresh=False)
        if record is not None:
            return record.state
        return "COMPLETED" if self._job.paths.result_pickle.exists() else "PENDING"

    def done(self) -> bool:
        record = self._poller.record(self.job_id)
        if record is not None and record.terminal:
            return True
        if not self._job.paths.result_pickle.exists():
            return False
        if self._succeeded():
            return True  # the result is there, no need to wait for sacct
        # The payload failed, but the scheduler may have caused it (an OOM kill or the time
        # limit kills the payload, and our wrapper records that). Wait for sacct's verdict,
        # but not forever if sacct does not answer.
        if self._failed_seen is None:
            self._failed_seen = time.monotonic()
        return time.monotonic() - self._failed_seen > SACCT_GRACE_S

    def _succeeded(self) -> bool:
        """The result pickle holds a value (not an error), and no failure was recorded."""
        pickle = self._job.paths.result_pickle
        if failure_path(pickle).exists():
            return False
        try:
            outcome, _ = submitit_utils.pickle_load(pickle)
        except Exception:  # still being written, or unreadable: let sacct decide
            return False
        return outcome == "success"

    def outcome(self) -> Any:
        record = self.record()
        if record is not None and not record.terminal:
            record = None  # sacct had not caught up within the grace period
        pickle = self._job.paths.result_pickle
        failure = read_failure(pickle)
        if failure is None and (
            pickle.exists() or (record is not None and record.state == "COMPLETED")
        ):
            try:
                return self._job.result()
            except (FailedJobError, UncompletedJobError):
                failure = read_failure(pickle)
        error = failure_error(
            failure,
            job_id=self.job_id,
            state=record.state_raw if record is not None else "FAILED",
            describe=self._describe,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            exit_code=None if record is None else record.exit_code,
            exit_signal=None if record is None else record.exit_signal,
            reason="" if record is None else record.reason,
        )
        if failure is not None and record is not None and record.terminal:
            # the payload failed because the scheduler killed it: the scheduler's class wins
            killed = classify(
                record.state_raw,
                exit_code=record.exit_code,
                exit_signal=record.exit_signal,
                reason=record.reason,
                stderr_tail=_tail(self.stderr_path),
                step_states=record.step_states,
            )
            if killed not in (FailureClass.USER_ERROR, FailureClass.UNKNOWN):
                error.failure_class = killed.value
                error.state = record.state
                error.args = (
                    f"{error.args[0]}\nSlurm ended job {self.job_id} {record.state}: "
                    f"{_KILLED_HINTS.get(killed, killed.value)}",
                )
        raise error

    def cancel(self) -> None:
        self._job.cancel(check=False)


class LocalJob:
    """A job of submitit's local executor: state and completion from submitit itself."""

    def __init__(self, job: submitit.Job, array_index: int | None, describe: str) -> None:
        self._job = job
        self.job_id = str(job.job_id)
        self.array_index = array_index
        self.stdout_path = str(job.paths.stdout)
        self.stderr_path = str(job.paths.stderr)
        self._describe = describe

    @property
    def state(self) -> str:
        return self._job.state

    def done(self) -> bool:
        return self._job.done()

    def outcome(self) -> Any:
        try:
            return self._job.result()
        except (FailedJobError, UncompletedJobError):
            pass
        raise failure_error(
            read_failure(self._job.paths.result_pickle),
            job_id=self.job_id,
            state=self._job.state,
            describe=self._describe,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
        )

    def cancel(self) -> None:
        self._job.cancel(check=False)


_inprocess_ids = itertools.count(1)


class InProcessJob:
    """Runs the task at once in this process: for tests and debugging, never opens a debugger."""

    def __init__(
        self, task: CommandTask | CallTask, array_index: int | None, describe: str
    ) -> None:
        self.job_id = f"inprocess-{next(_inprocess_ids)}"
        self.array_index = array_index
        self.stdout_path: str | None = None
        self.stderr_path: str | None = None
        self._value: Any = None
        self._error: JobFailedError | None = None
        try:
            self._value = task()
            self.state = "COMPLETED"
        except CommandFailed as err:
            self.state = "FAILED"
            self._error = failure_error(
                TaskFailure(
                    kind="command",
                    exc_type="CommandFailed",
                    exc_message=str(err),
                    returncode=err.result.returncode,
                    stderr_tail=err.result.stderr[-STDERR_TAIL_CHARS:],
                ),
                job_id=self.job_id,
                state="FAILED",
                describe=describe,
                stdout_path=None,
                stderr_path=None,
            )
        except Exception as err:
            self.state = "FAILED"
            kind = "setup" if isinstance(err, SetupFailed) else "call"
            self._error = failure_error(
                TaskFailure(
                    kind=kind,
                    exc_type=f"{type(err).__module__}.{type(err).__qualname__}",
                    exc_message=str(err),
                    exception=err,
                ),
                job_id=self.job_id,
                state="FAILED",
                describe=describe,
                stdout_path=None,
                stderr_path=None,
            )

    def done(self) -> bool:
        return True

    def outcome(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        """Nothing to cancel: the task already ran."""


# ---------------------------------------------------------------- submission


def _describe(spec: JobSpec) -> str:
    payload = spec.payload
    if isinstance(payload, Command):
        text = payload.cmd if len(payload.cmd) <= 60 else payload.cmd[:57] + "..."
        return f"command {text!r}"
    return f"call {payload.label}()"


class _RobustSlurmExecutor(submitit.SlurmExecutor):
    """submitit's Slurm executor whose ``sbatch`` runs through :mod:`paracore.slurm.sbatch`.

    That wrapper retries an ``sbatch`` that timed out or found the controller unreachable,
    after the retry policy's delays, and first looks in ``squeue`` for the submission's
    unique ``--comment`` token so a job that did get created is never submitted twice.
    """

    sbatch_options: tuple[str, ...] = ()

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "paracore.slurm.sbatch",
            *self.sbatch_options,
            "--",
            "sbatch",
            str(submission_file_path),
        ]

    def _internal_process_submissions(self, delayed_submissions: list) -> list:
        # submitit's own array code, with the array executor of this class (submitit's
        # builds a plain SlurmExecutor, which would bypass the wrapper).
        if len(delayed_submissions) == 1:
            return super()._internal_process_submissions(delayed_submissions)
        folder = submitit_utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("time", 5)
        pickle_paths = []
        for delayed in delayed_submissions:
            pickle_path = folder / f"{uuid.uuid4().hex}.pkl"
            delayed.set_timeout(timeout_min, self.max_num_timeout)
            delayed.dump(pickle_path)
            pickle_paths.append(pickle_path)
        count = len(delayed_submissions)
        array_ex = _RobustSlurmExecutor(self.folder, self.max_num_timeout)
        array_ex.sbatch_options = self.sbatch_options
        array_ex.update_parameters(**self.parameters)
        array_ex.parameters["map_count"] = count
        self._throttle()
        first_job = array_ex._submit_command(self._submitit_command_str)
        tasks_ids = list(range(first_job.num_tasks))
        jobs = [
            submitit_slurm.SlurmJob(
                folder=self.folder, job_id=f"{first_job.job_id}_{a}", tasks=tasks_ids
            )
            for a in range(count)
        ]
        for job, pickle_path in zip(jobs, pickle_paths, strict=True):
            job.paths.move_temporary_file(pickle_path, "submitted_pickle")
        return jobs


def _sbatch_delays(policy: RetryPolicy, rng: random.Random) -> tuple[float, ...]:
    """Delays between tries of one sbatch: the policy's own backoff schedule."""
    return schedule(attrs.evolve(policy, retries=policy.submit_attempts - 1), rng)


def _executor(spec: JobSpec, kind: str) -> submitit.AutoExecutor:
    """A fresh executor per submission: submitit's parameters accumulate on an executor."""
    executor = submitit.AutoExecutor(folder=log_folder(spec), cluster=kind)
    executor.update_parameters(**to_submitit_params(spec, kind))  # type: ignore[arg-type]
    if kind == "slurm":
        inner = executor._executor
        robust = _RobustSlurmExecutor(inner.folder, inner.max_num_timeout)
        robust.update_parameters(**inner.parameters)
        token = dict(spec.resources.extra).get("comment", "")
        delays = _sbatch_delays(spec.retry, random.Random())
        robust.sbatch_options = (
            "--token",
            str(token),
            "--delays",
            ",".join(f"{d:.3f}" for d in delays),
            "--timeout",
            os.environ.get("PARACORE_SBATCH_TIMEOUT", "60"),
        )
        executor._executor = robust
    return executor


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
    executor = _executor(spec, kind)
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
