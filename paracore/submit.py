"""The interpreter: the one module that imports submitit and touches the scheduler.

It resolves the backend, checks the spec can be submitted (picklable, command found), builds a
fresh submitit executor per submission from the pure :func:`~paracore.params.to_submitit_params`
and wraps each submitit job in a :class:`~paracore.handle.SubmitHandle`.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import submitit
from submitit.core.utils import FailedJobError, FailedSubmissionError, UncompletedJobError
from submitit.slurm import slurm as submitit_slurm

from paracore.exceptions import (
    CommandFailedError,
    JobFailedError,
    RemoteError,
    SpecError,
    SubmissionError,
)
from paracore.handle import SubmitHandle
from paracore.params import (
    effective_parallelism,
    job_name,
    log_folder,
    to_submitit_params,
    with_builtin_defaults,
)
from paracore.runtime import (
    STDERR_TAIL_CHARS,
    CallTask,
    CommandFailed,
    CommandTask,
    SetupFailed,
    TaskFailure,
    read_failure,
)
from paracore.sentinel import NOT_GIVEN
from paracore.slurm.cluster import checked_for_backend
from paracore.spec import BACKENDS, Call, Command, JobSpec, Payload

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
    "OUT_OF_MEMORY": "it used more memory than it asked for (raise mem)",
    "TIMEOUT": "it ran past its time limit (raise time)",
    "CANCELLED": "it was cancelled",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it reached its deadline",
}


def failure_error(
    failure: TaskFailure | None,
    *,
    job_id: str,
    state: str,
    describe: str,
    stdout_path: str | None,
    stderr_path: str | None,
) -> JobFailedError:
    """Turn what a failed job left behind into the error users see."""
    logs = f"logs: {stdout_path} {stderr_path}" if stdout_path else "no log files"
    common = {
        "job_id": job_id,
        "state": state,
        "stdout_path": stdout_path,
        "stderr_path": stderr_path,
    }
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
    hint = _KILLED_HINTS.get(word, "it ended without writing a result")
    tail = _tail(stderr_path).rstrip()
    return JobFailedError(
        f"{describe}: job {job_id} ended {word}: {hint}; {logs}"
        + (f"\nstderr tail:\n{tail}" if tail else ""),
        stderr_tail=tail,
        **{**common, "state": word},
    )


class SubmititJob:
    """A submitit job seen through the RunningJob protocol."""

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


def _executor(spec: JobSpec, kind: str) -> submitit.AutoExecutor:
    """A fresh executor per submission: submitit's parameters accumulate on an executor."""
    executor = submitit.AutoExecutor(folder=log_folder(spec), cluster=kind)
    executor.update_parameters(**to_submitit_params(spec, kind))  # type: ignore[arg-type]
    return executor


def _submission_error(err: Exception, spec: JobSpec) -> SubmissionError:
    detail = err
    if isinstance(err, subprocess.CalledProcessError):
        output = (
            err.output.decode(errors="replace") if isinstance(err.output, bytes) else err.output
        )
        detail = (output or "").strip() or err  # type: ignore[assignment]
    return SubmissionError(f"sbatch refused job {job_name(spec)!r}: {detail}")


def _submit_tasks(
    spec: JobSpec, kind: str, tasks: Sequence[CommandTask | CallTask], describes: Sequence[str]
) -> list[Any]:
    """Submit tasks sharing one spec: one job, or one array when there are several."""
    if kind == "inprocess":
        index = (lambda i: i) if len(tasks) > 1 else (lambda i: None)
        return [
            InProcessJob(t, index(i), d)
            for i, (t, d) in enumerate(zip(tasks, describes, strict=True))
        ]
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
    return [
        SubmititJob(job, i if array else None, d)
        for i, (job, d) in enumerate(zip(jobs, describes, strict=True))
    ]


def _handle(spec: JobSpec, kind: str, job: Any, resubmit: Callable[[], Any]) -> SubmitHandle:
    return SubmitHandle(job, job_name=job_name(spec), retry=spec.retry, resubmit=resubmit)


def submit(
    spec: JobSpec,
    *,
    which: Which = shutil.which,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
) -> SubmitHandle:
    """Submit one spec as one job and return its handle.

    On Slurm the spec is first checked against the live cluster (partition, MaxTime, node
    memory and cpus; see :mod:`paracore.slurm.cluster`): ``origins`` says where each value
    came from for the error message, ``validate=False`` (or ``$PARACORE_VALIDATE=0``) skips it.
    """
    spec = with_builtin_defaults(spec)
    kind = backend_for(spec, which)
    spec = checked_for_backend(spec, kind, origins=origins, validate=validate)
    task = prepare_task(spec, which, sys.path)
    describe = _describe(spec)

    def resubmit() -> Any:
        return _submit_tasks(spec, kind, [task], [describe])[0]

    return _handle(spec, kind, resubmit(), resubmit)


def submit_map(
    spec: JobSpec,
    payloads: Sequence[Payload],
    *,
    which: Which = shutil.which,
    max_array_size: int = MAX_ARRAY_SIZE,
    origins: Mapping[str, str] | None = None,
    validate: bool | None = None,
) -> list[SubmitHandle]:
    """Submit one task per payload as ONE Slurm array (split above ``max_array_size``).

    Every payload is checked before anything is submitted. Handles come back in input order;
    a failed task is resubmitted on its own, per the spec's retry policy.
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
    handles: list[SubmitHandle] = []
    for start in range(0, len(tasks), max_array_size):
        chunk = slice(start, start + max_array_size)
        jobs = _submit_tasks(spec, kind, tasks[chunk], describes[chunk])
        for item, task, describe, job in zip(
            specs[chunk], tasks[chunk], describes[chunk], jobs, strict=True
        ):

            def resubmit(item=item, task=task, describe=describe) -> Any:
                return _submit_tasks(item, kind, [task], [describe])[0]

            handles.append(_handle(item, kind, job, resubmit))
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
