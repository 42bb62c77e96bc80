"""A Slurm job seen through the RunningJob protocol (submitit's job, paracore's poller).

Its state comes from the backend's shared :class:`~paracore.backends.slurm.polling.Poller`
(one batched ``sacct`` per interval for every job being waited on), never from one query per
job. It is done when its result pickle exists or sacct says it ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import submitit
from submitit.core import utils as submitit_utils
from submitit.core.utils import FailedJobError, UncompletedJobError

from paracore.backends.outcomes import KILLED_HINTS, failure_error, file_tail
from paracore.backends.slurm.polling import Poller
from paracore.core.failures import FailureClass, classify
from paracore.runtime.tasks import failure_path, read_failure

__all__ = ["SACCT_GRACE_S", "SubmititJob"]

SACCT_GRACE_S = 120.0
"""How long a failed payload waits for sacct to say whether Slurm killed it."""


class SubmititJob:
    """A submitit job seen through the RunningJob protocol.

    Its state comes from the backend's shared :class:`~.polling.Poller` (one batched
    ``sacct`` per interval for every job being waited on), never from one query per job. It
    is done when its result pickle exists or sacct says it ended.
    """

    def __init__(
        self,
        job: submitit.Job,
        array_index: int | None,
        describe: str,
        poller: Poller,
        clock: Callable[[], float],
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
        now = self._clock()
        if self._failed_seen is None:
            self._failed_seen = now
        return now - self._failed_seen > SACCT_GRACE_S

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

    def cancel(self) -> None:
        self._job.cancel(check=False)
