"""Stale or lost files never decide an outcome: keyed failure records, results first, 'lost'.

A real submitit SlurmJob object (no Slurm needed until it is asked) over files written here,
with a fake sacct behind the poller.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit

from paracore.backends.slurm import _drop_stale_result
from paracore.backends.slurm.jobs import RESULT_GRACE_S, SubmititJob
from paracore.backends.slurm.polling import Poller
from paracore.core.failures import DEFAULT_RETRY_ON, FailureClass
from paracore.errors import JobFailedError
from paracore.runtime.tasks import TaskFailure, failure_path
from paracore.testing import FakeClock, job_record


def _job(tmp_path: Path, state: str, clock: FakeClock, key: str = "new") -> SubmititJob:
    records = {"77": job_record("77", state)}
    poller = Poller(lambda ids: {j: records[j] for j in ids if j in records}, clock=clock.now)
    job = submitit.SlurmJob(folder=tmp_path, job_id="77")
    return SubmititJob(job, None, "call f()", poller, clock.now, key)


def _failurejob_record(path: Path) -> None:
    failure = TaskFailure(kind="call", exc_type="builtins.ValueError", exc_message="old run")
    path.write_bytes(cloudpickle.dumps(failure))


def test_an_old_failure_record_of_a_reused_job_id_is_not_read(tmp_path: Path) -> None:
    """Slurm reused id 77: the old run's failure records do not turn the new success into one."""
    clock = FakeClock()
    job = _job(tmp_path, "COMPLETED", clock)
    pickle = tmp_path / "77_0_result.pkl"
    _failurejob_record(failure_path(pickle, "old"))  # another submission's key
    _failurejob_record(tmp_path / "77_0_failure.pkl")  # the unkeyed name of older versions
    pickle.write_bytes(cloudpickle.dumps(("success", 42)))
    assert job.done()
    assert job.outcome() == 42


def test_a_value_beats_a_failurejob_record(tmp_path: Path) -> None:
    """Even a record with the job's own key cannot override a result that holds a value."""
    clock = FakeClock()
    job = _job(tmp_path, "COMPLETED", clock)
    pickle = tmp_path / "77_0_result.pkl"
    _failurejob_record(failure_path(pickle, "new"))
    pickle.write_bytes(cloudpickle.dumps(("success", "kept")))
    assert job.outcome() == "kept"


def test_a_completed_job_whose_result_was_deleted_is_lost(tmp_path: Path) -> None:
    """COMPLETED in sacct, no result file: wait for the file system, then fail as 'lost'."""
    clock = FakeClock()
    job = _job(tmp_path, "COMPLETED", clock)
    assert not job.done()  # the file may still be on its way (shared file systems lag)
    clock.advance(RESULT_GRACE_S + 1)
    assert job.done()
    with pytest.raises(JobFailedError, match="left no result") as info:
        job.outcome()
    assert info.value.failure_class is FailureClass.LOST
    assert FailureClass.LOST in DEFAULT_RETRY_ON  # so the default policy runs it again


def test_a_stale_result_pickle_is_removed_at_submission(tmp_path: Path) -> None:
    """A result older than the submission belongs to an older job with the same id."""
    stale, fresh = tmp_path / "5_0_result.pkl", tmp_path / "6_0_result.pkl"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"new")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    now = time.time()
    _drop_stale_result(stale, now)
    _drop_stale_result(fresh, now)
    _drop_stale_result(tmp_path / "7_0_result.pkl", now)  # none there: nothing to do
    assert not stale.exists() and fresh.exists()
