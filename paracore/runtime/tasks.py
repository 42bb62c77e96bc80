"""What runs inside the job: the payload, under the task's environment, and failure records.

These callables are pickled at submit time and called on the node, so this module and the
rest of :mod:`paracore.runtime` import only the standard library and cloudpickle (submitit
only inside a submitit job). When a payload fails, a :class:`TaskFailure` is written next to
submitit's result pickle so the submitting side can raise an error with the original
exception type and message (submitit itself only keeps the traceback text).

A task writes an ``exit`` record as it starts and removes it once its payload returned: a
process that ends inside the payload without raising (``os._exit``, a segfault, a kill)
leaves that record, so the submitting side knows at once that no result is coming, rather
than waiting for a result file a shared file system might still be showing late.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.runtime.environment import (
    SetupFailed,
    applied_environment,
    compose_environment,
    run_setup,
)
from paracore.runtime.safe_files import UntrustedFile, read_private, write_private
from paracore.runtime.streams import pump

__all__ = [
    "CallTask",
    "CommandFailed",
    "CommandResult",
    "CommandTask",
    "TaskFailure",
    "clear_failure",
    "exit_failure",
    "failure_path",
    "read_failure",
    "run_shell",
    "sendable",
    "start_task",
    "task_failure",
    "unpicklable_result",
    "write_failure",
]

STDERR_TAIL_CHARS = 4000
CAPTURE_LIMIT_CHARS = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a shell command left behind: its exit code and captured output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """A payload's failure, recorded in the job and read back by the submitting process.

    ``kind`` is ``"command"``, ``"call"``, ``"setup"``, ``"result"`` (the call returned a
    value that could not be pickled) or ``"exit"`` (the process ended inside the payload
    without raising: the record a task leaves until its payload returns).

    The original exception travels as a pickle of its own inside the record, so an exception
    that pickles but cannot be rebuilt (an ``__init__`` with two required arguments, a class
    the reading side cannot import) loses only itself: the record still reads, with the type
    name, message and traceback text, and ``exception_note`` says why ``exception`` is None.
    """

    kind: str
    exc_type: str
    exc_message: str
    traceback: str = ""
    returncode: int | None = None
    stderr_tail: str = ""
    exception: Any = dataclasses.field(default=None, compare=False)  # the original, or None
    exception_note: str = ""

    def __reduce__(self) -> tuple[Any, ...]:
        blob, note = b"", self.exception_note
        if self.exception is not None:
            try:
                blob = cloudpickle.dumps(self.exception)
            except Exception as err:  # the exception itself does not pickle: keep its text
                note = f"could not be pickled on the node: {type(err).__name__}: {err}"
        fields = (self.kind, self.exc_type, self.exc_message, self.traceback, self.returncode)
        return (_rebuilt_failure, (*fields, self.stderr_tail, blob, note))


def _rebuilt_failure(
    kind: str,
    exc_type: str,
    exc_message: str,
    traceback_text: str,
    returncode: int | None,
    stderr_tail: str,
    exception_blob: bytes,
    note: str,
) -> TaskFailure:
    """A failure record read back: its exception rebuilt when that works, else None and why."""
    exception: Any = None
    if exception_blob:
        try:
            exception = cloudpickle.loads(exception_blob)
        except Exception as err:
            note = f"could not be rebuilt here: {type(err).__name__}: {err}"
    if exception is not None and not isinstance(exception, BaseException):
        exception, note = None, f"was read back as a {type(exception).__name__}"
    return TaskFailure(
        kind, exc_type, exc_message, traceback_text, returncode, stderr_tail, exception, note
    )


class CommandFailed(RuntimeError):
    """Raised inside the job when the command exits non-zero (so Slurm marks it FAILED)."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        super().__init__(f"command exited with code {result.returncode}")


def failure_path(result_pickle: Path, key: str) -> Path:
    """Where the failure record of a task lives: beside its result pickle, named by its key.

    The key is unique to the submission that made the task, so a record left by an older job
    that had the same job id (Slurm reuses ids after a controller reset) is never read.
    """
    stem = result_pickle.name.replace("_result.pkl", "")
    return result_pickle.with_name(f"{stem}_{key}_failure.pkl")


def _record_path(key: str) -> Path | None:
    """Where this job's record with ``key`` goes; None outside a submitit job."""
    if "SUBMITIT_FOLDER" not in os.environ:
        return None
    import submitit  # only inside a submitit job; the submitting side never reaches here

    return failure_path(submitit.JobEnvironment().paths.result_pickle, key)


def write_failure(failure: TaskFailure, key: str) -> None:
    """Write the record beside submitit's result pickle when running under submitit."""
    path = _record_path(key)
    if path is not None:
        write_private(path, cloudpickle.dumps(failure))


def clear_failure(key: str) -> None:
    """Remove the task's ``exit`` record: its payload returned (under submitit only). A record
    that cannot be removed is left: the result, once written, wins over it."""
    path = _record_path(key)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def exit_failure() -> TaskFailure:
    """The record a task leaves while its payload runs: read back only when the process ended
    inside the payload without raising."""
    return TaskFailure(
        kind="exit",
        exc_type="",
        exc_message="the process exited without writing a result",
    )


def read_failure(result_pickle: Path, key: str) -> TaskFailure | None:
    """The failure record of a task, or None when it left none (killed, or succeeded).

    Raises UntrustedFile when the record (or its folder) is not one only you could have
    written. A record that cannot be read still says that the task failed, and why not.
    """
    path = failure_path(result_pickle, key)
    try:
        blob = read_private(path)
    except UntrustedFile:
        raise
    except OSError:  # not there (or not readable): no record
        return None
    try:
        record = cloudpickle.loads(blob)
    except Exception as err:
        return TaskFailure(
            kind="call",
            exc_type=f"{type(err).__module__}.{type(err).__qualname__}",
            exc_message=f"its failure record {path} could not be read: {err}",
        )
    return record if isinstance(record, TaskFailure) else None


def unpicklable_result(value: Any, err: BaseException) -> TypeError:
    """The error of a payload whose return value could not be pickled, naming its type."""
    kind = type(value)
    return TypeError(
        f"the result, a {kind.__module__}.{kind.__qualname__}, could not be pickled: "
        f"{type(err).__name__}: {err}"
    )


class _Pickled:
    """A value pickled already: its pickle is the value's own (loading gives the value)."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, ...]:
        return (cloudpickle.loads, (self.blob,))


def sendable(value: Any, key: str) -> Any:
    """``value`` ready for submitit to pickle as the job's result, under submitit only.

    It is pickled here, once, so a value that cannot be pickled (a lock, a generator) fails
    the task with a record saying so (kind ``"result"``) rather than leaving no result.
    """
    if "SUBMITIT_FOLDER" not in os.environ:
        return value
    try:
        blob = cloudpickle.dumps(value)
    except Exception as err:
        error = unpicklable_result(value, err)
        write_failure(dataclasses.replace(task_failure(error), kind="result"), key)
        raise error from err
    return _Pickled(blob)


_nested_calls = 0
"""Calls running inside a call of this process (an in-process task inside a job): their
values go back to their caller as they are."""


# ---------------------------------------------------------------- payloads


@dataclasses.dataclass(frozen=True)
class CommandTask:
    """Run a shell command in bash with the spec's environment policy; return its result."""

    cmd: str
    merge: str = "inherit"
    overlay: tuple[tuple[str, str], ...] = ()
    setup: str | None = None
    start_jitter_s: float = 0.0
    record_key: str = "task"

    def __call__(self) -> CommandResult:
        env = start_task(self.start_jitter_s, self.merge, self.overlay, self.setup, self.record_key)
        try:
            result = run_shell(self.cmd, env)
        except Exception as err:  # a non-zero exit, or bash could not be started
            write_failure(task_failure(err), self.record_key)
            raise
        clear_failure(self.record_key)
        return result


def run_shell(cmd: str, env: dict[str, str]) -> CommandResult:
    """Run ``cmd`` in bash with ``env``, copying its output to ours and keeping a bounded copy.

    Raises CommandFailed (holding the result) when it exits non-zero.
    """
    proc = subprocess.Popen(
        ["bash", "-c", cmd],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out: list[str] = []
    err: list[str] = []
    pumps = [
        threading.Thread(target=pump, args=(stream, sink, kept, CAPTURE_LIMIT_CHARS), daemon=True)
        for stream, sink, kept in ((proc.stdout, sys.stdout, out), (proc.stderr, sys.stderr, err))
    ]
    for thread in pumps:
        thread.start()
    returncode = proc.wait()
    for thread in pumps:
        thread.join()
    result = CommandResult(returncode, "".join(out), "".join(err))
    if returncode != 0:
        raise CommandFailed(result)
    return result


@dataclasses.dataclass(frozen=True)
class CallTask:
    """Call a Python function with the spec's environment policy applied to ``os.environ``.

    The function and its arguments travel as one cloudpickle blob, unpickled only after the
    submitting process's ``sys.path`` entries are added, so functions from the user's own
    modules (a script's folder, a test package) import on the node as they did at submit time.
    """

    blob: bytes
    sys_path: tuple[str, ...] = ()
    merge: str = "inherit"
    overlay: tuple[tuple[str, str], ...] = ()
    setup: str | None = None
    start_jitter_s: float = 0.0
    record_key: str = "task"

    @classmethod
    def pack(
        cls,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: tuple[tuple[str, Any], ...] = (),
        **options: Any,
    ) -> CallTask:
        """Pickle ``fn(*args, **kwargs)`` now; raises whatever cloudpickle raises."""
        return cls(cloudpickle.dumps((fn, tuple(args), tuple(kwargs))), **options)

    def __call__(self) -> Any:
        global _nested_calls
        env = start_task(self.start_jitter_s, self.merge, self.overlay, self.setup, self.record_key)
        sys.path.extend(p for p in self.sys_path if p not in sys.path)
        outer = _nested_calls == 0
        with applied_environment(env):
            _nested_calls += 1
            try:
                fn, args, kwargs = cloudpickle.loads(self.blob)
                value = fn(*args, **dict(kwargs))
            except Exception as err:
                write_failure(task_failure(err), self.record_key)
                raise
            finally:
                _nested_calls -= 1
        if outer:
            value = sendable(value, self.record_key)
        clear_failure(self.record_key)
        return value


def start_task(
    jitter_s: float,
    merge: str,
    overlay: tuple[tuple[str, str], ...],
    setup: str | None,
    record_key: str,
) -> dict[str, str]:
    """Task start, shared by commands, calls and chunks: jitter, the ``exit`` record (removed
    once the payload returns), then the task's environment."""
    _start_jitter(jitter_s)
    with contextlib.suppress(OSError):  # without it, an early exit is only found out later
        write_failure(exit_failure(), record_key)
    current = dict(os.environ)
    try:
        setup_env = run_setup(setup, current) if setup else None
    except SetupFailed as err:
        write_failure(task_failure(err), record_key)
        raise
    return compose_environment(current, merge, dict(overlay), setup_env)


def task_failure(err: BaseException) -> TaskFailure:
    """The failure record of a payload that raised ``err`` (a command, a setup line or a call)."""
    if isinstance(err, CommandFailed):
        return TaskFailure(
            kind="command",
            exc_type="CommandFailed",
            exc_message=str(err),
            returncode=err.result.returncode,
            stderr_tail=err.result.stderr[-STDERR_TAIL_CHARS:],
        )
    err_type = type(err)
    return TaskFailure(
        kind="setup" if isinstance(err, SetupFailed) else "call",
        exc_type=f"{err_type.__module__}.{err_type.__qualname__}",
        exc_message=str(err),
        traceback="".join(traceback.format_exception(err)),
        exception=err,
    )


def _start_jitter(seconds: float) -> None:
    """Spread task starts over ``seconds`` so an array does not hit shared storage at once."""
    if seconds > 0:
        time.sleep(random.uniform(0, seconds))
