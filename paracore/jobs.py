"""Running jobs on each backend, seen through the RunningJob protocol of paracore.handle.

``SubmititJob`` (Slurm: state from the shared batched poller, classified by sacct),
``LocalJob`` (submitit's local executor) and ``InProcessJob`` (runs at once, for tests and
debugging), plus :func:`failure_error`, which turns what a failed job left behind into the
error users see.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import submitit
from submitit.core import utils as submitit_utils
from submitit.core.utils import FailedJobError, UncompletedJobError

from paracore.exceptions import (
    CommandFailedError,
    DependencyError,
    JobFailedError,
    RemoteError,
)
from paracore.failures import FailureClass, classify, state_word
from paracore.polling import DEFAULT_POLLER, Poller
from paracore.runtime import (
    STDERR_TAIL_CHARS,
    CallTask,
    CommandTask,
    TaskFailure,
    failure_path,
    read_failure,
    task_failure,
)

SACCT_GRACE_S = 120.0
"""How long a failed payload waits for sacct to say whether Slurm killed it."""


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
    word = state_word(state) or "UNKNOWN"
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
        except Exception as err:
            self.state = "FAILED"
            self._error = failure_error(
                task_failure(err),
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
