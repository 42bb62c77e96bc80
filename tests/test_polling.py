"""The batched poller: one sacct per interval, and squeue plus files after sacct goes silent."""

from __future__ import annotations

import attrs

from paracore.backends.slurm.accounting import JobRecord, parse_squeue
from paracore.backends.slurm.polling import Poller
from paracore.errors import SchedulerUnreachable
from paracore.testing import FakeClock, job_record


@attrs.define
class FakeScheduler:
    """sacct that may be down or not know jobs; squeue listing what is queued."""

    sacct: dict[str, JobRecord] = attrs.field(factory=dict)
    queued: dict[str, str] = attrs.field(factory=dict)
    sacct_down: bool = False
    sacct_calls: int = 0
    squeue_calls: int = 0

    def query(self, ids):
        self.sacct_calls += 1
        if self.sacct_down:
            raise SchedulerUnreachable("sacct: error: slurmdbd: Connection refused")
        return {j: self.sacct[j] for j in ids if j in self.sacct}

    def queue(self):
        self.squeue_calls += 1
        return dict(self.queued)


def _poller(fake: FakeScheduler, clock: FakeClock) -> Poller:
    return Poller(fake.query, queue=fake.queue, clock=clock.now, silence_s=60)


def test_squeue_is_not_asked_while_sacct_answers() -> None:
    """While sacct answers and knows the job, squeue is never called."""
    fake, clock = FakeScheduler(sacct={"1": job_record("1", "RUNNING")}), FakeClock()
    poller = _poller(fake, clock)
    for _ in range(10):
        poller.record("1")
        clock.advance(30)
    assert fake.sacct_calls >= 5 and fake.squeue_calls == 0
    assert poller.note() is None


def test_a_job_sacct_never_lists_is_looked_up_in_squeue_then_gone() -> None:
    """After the silence period squeue decides: queued means waiting, absent means ended."""
    fake, clock = FakeScheduler(queued={"7": "PENDING"}), FakeClock()
    poller = _poller(fake, clock)
    assert poller.record("7") is None and fake.squeue_calls == 0
    clock.advance(61)
    poller.refresh(force=True)
    assert poller.queued_state("7") == "PENDING" and not poller.gone("7")
    fake.queued.clear()
    clock.advance(30)
    poller.refresh(force=True)
    assert poller.gone("7") and poller.queued_state("7") is None


def test_sacct_down_is_noted_and_squeue_takes_over() -> None:
    """A failing sacct is reported in note() with its error, and squeue is asked after a while."""
    fake, clock = FakeScheduler(sacct_down=True, queued={"9": "RUNNING"}), FakeClock()
    poller = _poller(fake, clock)
    poller.record("9")
    assert "Connection refused" in (poller.note() or "")
    clock.advance(61)
    poller.refresh(force=True)
    assert poller.queued_state("9") == "RUNNING"
    assert "sacct has not answered for 61 s" in (poller.note() or "")
    fake.sacct_down = False
    fake.sacct["9"] = job_record("9", "COMPLETED")
    poller.refresh(force=True)
    assert poller.note() is None and poller.record("9", refresh=False).terminal
    assert poller.queued_state("9") is None


def test_parse_squeue_lists_array_tasks() -> None:
    """squeue -r prints one line per array task."""
    assert parse_squeue("12_0|RUNNING\n12_1|PENDING\n13|PENDING\n") == {
        "12_0": "RUNNING", "12_1": "PENDING", "13": "PENDING",
    }  # fmt: skip


def test_a_job_watched_between_queries_is_asked_about_at_once() -> None:
    """A job found again (re-attached) gets sacct's word now, not at the poller's next turn;
    jobs watched together still make one query, and the rhythm resumes after it."""
    fake = FakeScheduler(sacct={"1": job_record("1", "RUNNING"), "2": job_record("2", "FAILED")})
    clock = FakeClock()
    poller = _poller(fake, clock)
    poller.record("1")
    assert fake.sacct_calls == 1
    clock.advance(0.5)  # well inside the interval
    poller.watch("2")
    poller.watch("3")
    assert poller.record("2") is not None and poller.record("2").state == "FAILED"
    assert fake.sacct_calls == 2
    poller.record("3")
    assert fake.sacct_calls == 2  # the same round: no second query
