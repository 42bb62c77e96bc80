"""A Slurm job seen through the RunningJob protocol (submitit's job, paracore's poller).

Its state comes from the backend's shared :class:`~paracore.backends.slurm.polling.Poller`
(one batched ``sacct`` per interval for every job being waited on), never from one query per
job. It is done when its result pickle exists or sacct says it ended. Its files are read
only through :mod:`paracore.runtime.safe_files` (files of yours, in a folder of yours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import submitit

from paracore.backends.outcomes import (
    KILLED_HINTS,
    failure_error,
    file_tail,
    read_result,
    refused,
    unreadable,
)
from paracore.backends.slurm.polling import Poller
from paracore.core.failures import FailureClass, classify
from paracore.errors import JobFailedError
from paracore.runtime.safe_files import UntrustedFile
from paracore.runtime.tasks import TaskFailure, read_failure

__all__ = ["RESULT_GRACE_S", "SACCT_GRACE_S", "SubmititJob"]

SACCT_GRACE_S = 120.0
"""How long a failed payload waits for sacct to say whether Slurm killed it."""
RESULT_GRACE_S = 60.0
"""How long a job sacct says COMPLETED may take to show its result file (file system lag).

Not waited for when the task's ``exit`` record is there: its process ended inside the payload
(``os._exit``, a crash), so no result is coming."""


class SubmititJob:
    """A submitit job seen through the RunningJob protocol.

    Its state comes from the backend's shared :class:`~.polling.Poller` (one batched
    ``sacct`` per interval for every job being waited on), never from one query per job. It
    is done when its result pickle holds a value, when sacct says it ended, or when neither
    sacct nor squeue has known it for the poller's silence period (then its files decide).
    ``record_key`` names its failure record (unique to the submission).
    """

    def __init__(
        self,
        job: submitit.Job[Any],
        array_index: int | None,
        describe: str,
        poller: Poller,
        clock: Callable[[], float],
        record_key: str,
    ) -> None:
        self._job = job
        self.job_id = str(job.job_id)
        self.array_index = array_index
        self.stdout_path: str | None = str(job.paths.stdout)
        self.stderr_path: str | None = str(job.paths.stderr)
        self._describe = describe
        self._poller = poller
        self._poller.watch(self.job_id)
        self._clock = clock
        self._record_key = record_key
        self._waiting_since: float | None = None

    def record(self) -> Any:
        """The job's latest sacct record (None until sacct knows it); no new query."""
        return self._poller.record(self.job_id, refresh=False)

    def scheduler_note(self) -> str | None:
        """The scheduler's complaint while it lasts (sacct not answering), for messages."""
        return self._poller.note()

    @property
    def state(self) -> str:
        """sacct's state, else squeue's, else what the job's files say."""
        record = self._poller.record(self.job_id, refresh=False)
        if record is not None:
            return str(record.state)
        queued = self._poller.queued_state(self.job_id)
        if queued is not None:
            return queued
        if self._job.paths.result_pickle.exists():
            return "COMPLETED"
        return "UNKNOWN" if self._poller.gone(self.job_id) else "PENDING"

    def _waited(self, limit_s: float) -> bool:
        """True once ``limit_s`` passed since this job was first seen waiting for something."""
        now = self._clock()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since > limit_s

    def done(self) -> bool:
        """Whether the job has ended (never blocks; asks the poller at most once per interval)."""
        record = self._poller.record(self.job_id)
        pickle = self._job.paths.result_pickle
        if record is not None and record.terminal:
            if record.state == "COMPLETED" and not pickle.exists():
                if self._failure() is not None:
                    return True  # it ended inside its payload: no result is coming
                # ended, but its result is not visible yet: shared file systems lag
                return self._waited(RESULT_GRACE_S)
            return True
        if self._poller.gone(self.job_id):
            return True
        if not pickle.exists():
            return False
        if self._result()[0] in ("success", "refused", "unreadable"):
            return True  # a value (or one that will not be read): no need to wait for sacct
        # The payload failed, but the scheduler may have caused it (an OOM kill or the time
        # limit kills the payload, and our wrapper records that). Wait for sacct's verdict,
        # but not forever if sacct does not answer.
        return self._waited(SACCT_GRACE_S)

    def _result(self) -> tuple[str, Any]:
        """submitit's result pickle, read safely (see :func:`~.outcomes.read_result`)."""
        return read_result(self._job.paths.result_pickle)

    def _failure(self) -> TaskFailure | UntrustedFile | None:
        """The task's failure record; the refusal when paracore will not read it."""
        try:
            return read_failure(self._job.paths.result_pickle, self._record_key)
        except UntrustedFile as err:
            return err

    def outcome(self) -> Any:
        """The value, or raise the error the job's records and the scheduler's state explain."""
        record = self.record()
        if record is not None and not record.terminal:
            record = None  # sacct had not caught up within the grace period
        result, value = self._result()
        if result == "success":  # a value beats any other evidence
            return value
        if result == "refused":
            raise refused(value, self, self._describe)
        if result == "unreadable":
            raise unreadable(value, self, self._describe)
        failure = self._failure()
        if isinstance(failure, UntrustedFile):
            raise refused(failure, self, self._describe)
        if (
            failure is None
            and result == "absent"
            and (record is None or record.state == "COMPLETED")
        ):
            raise self._lost(record)
        error = failure_error(
            failure,
            job_id=self.job_id,
            state=record.state_raw if record is not None else "FAILED",
            describe=self._describe,
            exit_code=None if record is None else record.exit_code,
            exit_signal=None if record is None else record.exit_signal,
            reason="" if record is None else record.reason,
            step_states=() if record is None else record.step_states,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
        )
        if (
            failure is not None
            and failure.kind != "exit"
            and record is not None
            and record.terminal
        ):
            # the payload failed because the scheduler killed it: the scheduler's class wins
            killed = classify(
                record.state_raw,
                exit_code=record.exit_code,
                exit_signal=record.exit_signal,
                reason=record.reason,
                stderr_tail=file_tail(self.stderr_path),
                step_states=record.step_states,
            )
            if killed not in (FailureClass.USER_ERROR, FailureClass.UNKNOWN):
                error.failure_class = killed
                error.state = record.state
                error.args = (
                    f"{error.args[0]}\nSlurm ended job {self.job_id} {record.state}: "
                    f"{KILLED_HINTS.get(killed, killed.value)}",
                )
        raise error

    def _lost(self, record: Any) -> JobFailedError:
        """The error of a job that ended without leaving a result or a failure record."""
        pickle = self._job.paths.result_pickle
        if record is not None:
            how = f"ended {record.state}"
        else:
            how = f"is known neither to sacct nor to squeue after {self._poller.silence_s:.0f} s"
        note = self._poller.note()
        return JobFailedError(
            f"{self._describe}: job {self.job_id} {how} but left no result ({pickle} is "
            "missing: deleted, or lost by the file system); logs: "
            f"{self.stdout_path} {self.stderr_path}" + (f"\n{note}" if note else ""),
            job_id=self.job_id,
            state=record.state if record is not None else "LOST",
            failure_class=FailureClass.LOST,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
        )

    def cancel(self) -> None:
        """``scancel`` the job (a finished one is left alone)."""
        self._job.cancel(check=False)
