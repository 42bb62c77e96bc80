"""Two processes following one run: only one moves a failed task to its next attempt (the
lease is taken with a compare-and-set on the task's version), and the retry budget is spent
once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import paracore as pc
from paracore.core.failures import FailureClass
from paracore.core.resolved import ResolvedSpec
from paracore.shell.handle import SubmitHandle
from paracore.shell.runs import RunLedger
from paracore.shell.session import current_session
from paracore.shell.store import RunStore
from paracore.testing import FakeJob

_IDS = itertools.count(1)


class FlakyBackend:
    """Keeps files (so runs are recorded); the first array's tasks fail on a node failure,
    every later submission succeeds."""

    name = "flaky"
    schedules_dependencies = True
    measures_in_task = False
    keeps_files = True

    def __init__(self) -> None:
        self.submissions: list[int] = []  # tasks per submission
        self.failing: set[str] = set()

    def check(
        self, spec: ResolvedSpec, *, origins: Mapping[str, str] | None, validate: bool | None
    ) -> ResolvedSpec:
        return spec

    def _job(self, job_id: str, index: int | None) -> FakeJob:
        if job_id in self.failing:
            error = pc.JobFailedError(
                "node died", job_id=job_id, state="NODE_FAIL",
                failure_class=FailureClass.NODE_FAILURE,
            )  # fmt: skip
            return FakeJob.failing(error, job_id=job_id, array_index=index, state="NODE_FAIL")
        return FakeJob.succeeding(index, job_id=job_id, array_index=index)

    def submit(self, spec: ResolvedSpec, tasks: Sequence[Any], describes: Sequence[str], *,
               after: Sequence[str] = ()) -> list[FakeJob]:  # fmt: skip
        first = next(_IDS)
        ids = [f"{first}_{i}" for i in range(len(tasks))]
        if not self.submissions:
            self.failing.update(ids)
        self.submissions.append(len(tasks))
        return [self._job(job_id, i) for i, job_id in enumerate(ids)]

    def reattach(self, spec: ResolvedSpec, job_id: str, *, array_index: int | None,
                 record_key: str, describe: str) -> FakeJob:  # fmt: skip
        return self._job(job_id, array_index)

    def accounting(self, job_ids: Sequence[str]) -> Mapping[str, Any]:
        return {}

    def cancel(self, job_ids: Sequence[str]) -> None:
        pass

    def limits(self, partition: str | None) -> None:
        return None

    def preview(self, spec: Any, *, array_size: int | None = None, token: str | None = None) -> str:
        return ""


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyBackend]:
    monkeypatch.chdir(tmp_path)
    backend = FlakyBackend()
    session = pc.Session(backends={"flaky": backend}, environ={"HOME": str(tmp_path)})
    with pc.use_session(session):
        yield backend


def _racing(monkeypatch: pytest.MonkeyPatch, late: SubmitHandle, first: Any) -> None:
    """Between ``late``'s decision to resubmit (from its refresh) and its lease, the other
    process (``first``: one round of its handles) moves the tasks to their next attempt."""
    ledger = late.ledger
    assert isinstance(ledger, RunLedger)
    decide = ledger.may_resubmit

    def racing(handles: Sequence[SubmitHandle]) -> list[SubmitHandle]:
        first()
        return decide(handles)

    monkeypatch.setattr(ledger, "may_resubmit", racing)


def _spec(tmp_path: Path, cmd: str = "true") -> pc.JobSpec:
    spec = pc.with_log_dir(str(tmp_path / "logs"), pc.JobSpec.command(cmd))
    return pc.with_retries(3, pc.with_backend("flaky", spec), backoff_s=0, jitter=0)


def test_two_followers_of_a_map_resubmit_each_failed_task_once(
    tmp_path: Path, flaky: FlakyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' handles of one run see the same failures; the one that decided from a
    stale refresh finds the tasks moved on and follows (before: a second array was submitted
    and every task spent two retries)."""
    pc.submit_map(_spec(tmp_path), [pc.Command("true")] * 3, resume="never")
    (run,) = current_session().store().runs()
    ours, theirs = pc.attach(run.id), pc.attach(run.id)
    _racing(monkeypatch, ours[0], theirs[0].driver().drive)
    ours[0].driver().drive()
    assert flaky.submissions == [3, 3]  # the first array, then ONE retry array
    assert pc.gather(ours, timeout=60) == pc.gather(theirs, timeout=60) == [0, 1, 2]
    assert [h.job_id for h in ours] == [h.job_id for h in theirs]
    store = current_session().store()
    assert [t.state["retries_used"] for t in store.tasks(run.id)] == [1, 1, 1]
    assert [a.n for a in store.attempts(run.id)] == [1, 2, 1, 2, 1, 2]
    assert flaky.submissions == [3, 3]


def test_two_followers_of_a_job_resubmit_it_once(
    tmp_path: Path, flaky: FlakyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race for a single job (resubmitted by its own handle, not a group)."""
    pc.submit(_spec(tmp_path), resume="never")
    (run,) = current_session().store().runs()
    (ours,), (theirs,) = pc.attach(run.id), pc.attach(run.id)
    _racing(monkeypatch, ours, theirs.done)
    ours.done()
    assert flaky.submissions == [1, 1]
    assert ours.result(timeout=60) == theirs.result(timeout=60) == 0
    assert ours.job_id == theirs.job_id
    store = current_session().store()
    assert [t.state["retries_used"] for t in store.tasks(run.id)] == [1]
    assert len(store.attempts(run.id)) == 2


def test_a_lease_or_a_state_written_from_a_stale_view_is_refused(tmp_path: Path) -> None:
    """The store's compare-and-set: a write or a lease names the version it was decided
    from; once the task moved on (a write, a lease), it is refused and the task kept."""
    store = RunStore(tmp_path)
    run_id = store.new_run_id()
    with store.claim("key", reuse="never") as (conn, _found):
        store.insert_run(
            conn, run_id=run_id, content_key="key", name="n", kind="map", backend="slurm",
            log_folder="/l", files="/f", summary={}, tags={}, labels=["a"], record_keys=["k"],
            states=[{"phase": "running"}], lease_s=60,
        )  # fmt: skip
    assert store.save_states(run_id, [(0, {"phase": "waiting_retry"}, None)], {0: 0}) == {0: 1}
    assert store.save_states(run_id, [(0, {"phase": "failed"}, None)], {0: 0}) == {}
    assert store.tasks(run_id)[0].phase == "waiting_retry"
    assert store.lease(run_id, {0: 0}, 60) == {}  # decided before the write above
    assert store.lease(run_id, {0: 1}, 60) == {0: 2}
    assert store.save_states(run_id, [(0, {"phase": "failed"}, None)], {0: 1}) == {}
    assert store.tasks(run_id)[0].phase == "waiting_retry"
