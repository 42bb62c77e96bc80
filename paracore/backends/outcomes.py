"""What a failed attempt left behind, turned into the error users see (any backend).

A failure record written by the task (:mod:`paracore.runtime.tasks`) means the payload itself
failed: a user error with the original exception type and message, or the command's exit code
and stderr tail. Without one (or with the ``exit`` record a task leaves while its payload
runs), the scheduler's state, exit code, reason and the stderr tail say why
(:func:`~paracore.core.failures.classify`).

Result pickles are read only through :mod:`paracore.runtime.safe_files`: a file someone else
could have written, or one reached through their symbolic link, is refused, never unpickled.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Protocol

from paracore.core.failures import FailureClass, classify, state_word
from paracore.errors import CommandFailedError, DependencyError, JobFailedError, RemoteError
from paracore.runtime.safe_files import UntrustedFile, read_private
from paracore.runtime.tasks import STDERR_TAIL_CHARS, TaskFailure

__all__ = [
    "EXITED_HINT",
    "KILLED_HINTS",
    "Located",
    "failure_error",
    "file_tail",
    "read_result",
    "refused",
    "unreadable",
]

EXITED_HINT = "its process exited without writing a result"
"""Why a job that ended without a value or a failure record failed, unless Slurm killed it."""


def read_result(path: Path) -> tuple[str, Any]:
    """A task's result pickle, read safely: ``("success", value)``, ``("error", traceback
    text)``, ``("absent", None)`` (not there, or not whole yet), ``("refused",
    UntrustedFile)`` (not a file only you could have written) or ``("unreadable", error)``
    (the value cannot be rebuilt here)."""
    try:
        blob = read_private(path)
    except UntrustedFile as err:
        return "refused", err
    except OSError:  # not there (or not readable)
        return "absent", None
    try:
        outcome, value = pickle.loads(blob)
    except (EOFError, pickle.UnpicklingError):  # still being written
        return "absent", None
    except Exception as err:  # the value does not rebuild here (its class, its __init__)
        return "unreadable", err
    return str(outcome), value


class Located(Protocol):
    """What names a job in its errors: its id and its log files."""

    @property
    def job_id(self) -> str: ...
    @property
    def stdout_path(self) -> str | None: ...
    @property
    def stderr_path(self) -> str | None: ...


def refused(err: UntrustedFile, job: Located, describe: str) -> JobFailedError:
    """The error of a job whose files paracore will not read (someone else could have
    written them): never retried, since the files would be refused again."""
    return JobFailedError(
        f"{describe}: job {job.job_id}: paracore will not read {err.path}: {err.why}",
        job_id=job.job_id,
        state="REFUSED",
        failure_class=FailureClass.UNKNOWN,
        stdout_path=job.stdout_path,
        stderr_path=job.stderr_path,
    )


def unreadable(err: BaseException, job: Located, describe: str) -> RemoteError:
    """The error of a job whose value was sent but cannot be rebuilt in this process."""
    kind = type(err)
    error = RemoteError(
        f"{describe}: job {job.job_id}: its result could not be rebuilt here: "
        f"{kind.__name__}: {err}; logs: {job.stdout_path} {job.stderr_path}",
        job_id=job.job_id,
        state="COMPLETED",
        exc_type=f"{kind.__module__}.{kind.__qualname__}",
        exc_message=str(err),
        failure_class=FailureClass.USER_ERROR,
        stdout_path=job.stdout_path,
        stderr_path=job.stderr_path,
    )
    error.__cause__ = err
    return error


def file_tail(path: str | None, chars: int = STDERR_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a log file ("" when it cannot be read)."""
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


KILLED_HINTS = {
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
    step_states: tuple[str, ...] = (),
) -> JobFailedError:
    """Turn what a failed job left behind into the error users see, with its failure class.

    A failure record (the payload raised or exited non-zero) is a user error; otherwise the
    scheduler's state, exit code, reason and the stderr tail say why (:func:`classify`). The
    ``exit`` record counts as none: the process ended inside the payload without raising.
    """
    if failure is not None and failure.kind == "exit":
        failure = None
    logs = f"logs: {stdout_path} {stderr_path}" if stdout_path else "no log files"
    common: dict[str, Any] = {
        "job_id": job_id,
        "state": state,
        "stdout_path": stdout_path,
        "stderr_path": stderr_path,
    }
    if failure is not None:
        common["failure_class"] = FailureClass.USER_ERROR
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
        if failure.kind == "result":
            text = f"{describe}: {failure.exc_message} (job {job_id}); {logs}"
        else:
            what = "env_setup failed" if failure.kind == "setup" else "raised"
            text = f"{describe} {what}: {failure.exc_type}: {failure.exc_message} (job {job_id})"
            text += f"; {logs}"
        if not isinstance(failure.exception, BaseException) and failure.exception_note:
            text += f"\n(the {failure.exc_type} itself {failure.exception_note})"
            if failure.traceback:
                text += f"\ntraceback on the node:\n{failure.traceback.rstrip()}"
        error = RemoteError(
            text,
            exc_type=failure.exc_type,
            exc_message=failure.exc_message,
            stderr_tail=failure.traceback[-STDERR_TAIL_CHARS:],
            **common,
        )
        if isinstance(failure.exception, BaseException):
            error.__cause__ = failure.exception
        return error
    word = state_word(state) or "UNKNOWN"
    tail = file_tail(stderr_path).rstrip()
    failure_class = classify(
        state,
        exit_code=exit_code,
        exit_signal=exit_signal,
        reason=reason,
        stderr_tail=tail,
        step_states=step_states,
    )
    hint = KILLED_HINTS.get(failure_class, EXITED_HINT)
    exit_text = f" (exit {exit_code}:{exit_signal or 0})" if exit_code is not None else ""
    error_type = DependencyError if failure_class is FailureClass.DEPENDENCY else JobFailedError
    return error_type(
        f"{describe}: job {job_id} ended {word}{exit_text}: {hint}; {logs}"
        + (f"\nstderr tail:\n{tail}" if tail else ""),
        stderr_tail=tail,
        failure_class=failure_class,
        **{**common, "state": word},
    )
