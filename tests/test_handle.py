"""Tests for paracore.handle (SubmitHandle, gather), driven by paracore.testing's fakes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracore.backoff import RetryPolicy, schedule
from paracore.exceptions import JobFailedError, JobTimeoutError, ParacoreError
from paracore.handle import SubmitHandle, gather
from paracore.testing import FakeClock, FakeJob, FakeSubmitter

NO_JITTER = RetryPolicy(retries=0, backoff_s=5, jitter=0)


def _policy(retries: int, **fields) -> RetryPolicy:
    return RetryPolicy(retries=retries, **{"backoff_s": 5.0, "jitter": 0.0, **fields})


def small_policies() -> st.SearchStrategy[RetryPolicy]:
    """Retry policies with short enough delays that polling through them stays cheap."""
    return st.builds(
        RetryPolicy,
        retries=st.integers(0, 4),
        backoff_s=st.floats(0, 100),
        multiplier=st.floats(1, 3),
        cap_s=st.floats(0, 300),
        jitter=st.one_of(st.just(0.0), st.floats(0, 0.9)),
    )


# --- the fakes themselves -----------------------------------------------------------------


def test_fake_job_becomes_done_after_polls() -> None:
    """A FakeJob is PENDING, then RUNNING, and done only after the scripted polls."""
    job = FakeJob.succeeding("v", after_polls=2)
    assert job.state == "PENDING"
    assert [job.done(), job.done(), job.done()] == [False, False, True]
    assert job.state == "COMPLETED"
    assert job.outcome() == "v"


def test_fake_clock_sleeps_virtually() -> None:
    """FakeClock.sleep advances now() and records the sleep; negative sleeps raise."""
    clock = FakeClock(start=100)
    clock.sleep(2.5)
    clock.advance(1)
    assert (clock.now(), clock.sleeps, clock.elapsed) == (103.5, [2.5], 3.5)
    with pytest.raises(ValueError):
        clock.sleep(-1)


def test_fake_submitter_refuses_unscripted_submissions() -> None:
    """Submitting more often than scripted raises instead of inventing a job."""
    submitter = FakeSubmitter([FakeJob.succeeding(1)])
    submitter.submit()
    with pytest.raises(AssertionError):
        submitter.submit()


# --- result -------------------------------------------------------------------------------


def test_result_returns_value() -> None:
    """result() waits (in virtual time) and returns the job's value."""
    clock = FakeClock()
    submitter = FakeSubmitter([FakeJob.succeeding({"x": 1}, after_polls=5)])
    handle = submitter.handle(retry=NO_JITTER, clock=clock)
    assert handle.state == "PENDING"
    assert handle.result() == {"x": 1}
    assert handle.state == "COMPLETED"
    assert [a.state for a in handle.attempts] == ["COMPLETED"]
    assert submitter.submissions == 1
    assert clock.elapsed > 0


def test_failure_without_retries_raises_the_jobs_error() -> None:
    """With no retries a failed job raises its JobFailedError at once, never resubmitting."""
    submitter = FakeSubmitter([FakeJob.failing("boom", state="OUT_OF_MEMORY")])
    handle = submitter.handle(retry=NO_JITTER)
    with pytest.raises(JobFailedError, match="boom") as info:
        handle.result()
    assert info.value.state == "OUT_OF_MEMORY"
    assert submitter.resubmissions == 0


def test_failure_retries_exactly_then_raises_with_attempts() -> None:
    """retries=2 resubmits exactly twice, then raises with .attempts listing all 3."""
    submitter = FakeSubmitter([FakeJob.failing(f"boom {i}", after_polls=1) for i in range(3)])
    handle = submitter.handle(retry=_policy(2), clock=FakeClock())
    with pytest.raises(JobFailedError) as info:
        handle.result()
    assert submitter.resubmissions == 2
    attempts = info.value.attempts
    assert [a.job_id for a in attempts] == ["fake-1", "fake-2", "fake-3"]
    assert [a.state for a in attempts] == ["FAILED"] * 3
    assert [a.error for a in attempts] == ["boom 0", "boom 1", "boom 2"]
    assert handle.attempts == attempts
    assert "after 3 attempts" in str(info.value)


def test_flaky_job_succeeds_after_one_resubmission() -> None:
    """A job that fails once then succeeds returns the value after exactly one resubmission."""
    submitter = FakeSubmitter([FakeJob.failing("flaky"), FakeJob.succeeding(7, after_polls=2)])
    handle = submitter.handle(retry=_policy(3), clock=FakeClock())
    assert handle.result() == 7
    assert submitter.resubmissions == 1
    assert [a.state for a in handle.attempts] == ["FAILED", "COMPLETED"]
    assert handle.job_id == "fake-2"


class _TimedJob(FakeJob):
    """A FakeJob that records the virtual time at which its outcome was read."""

    clock: FakeClock
    read_at: list[float]

    def outcome(self):
        self.read_at.append(self.clock.now())
        return super().outcome()


@settings(max_examples=60, deadline=None)
@given(small_policies(), st.integers(0, 2**32), st.floats(0.1, 5))
def test_delays_before_resubmission_follow_the_schedule(
    policy: RetryPolicy, seed: int, poll_s: float
) -> None:
    """The wait between a failure and its resubmission is the policy's (seeded) schedule."""
    clock = FakeClock()
    failures: list[float] = []
    submitted: list[float] = []

    def failing() -> FakeJob:
        job = _TimedJob.failing("boom", after_polls=1)
        job.clock, job.read_at = clock, failures
        submitted.append(clock.now())
        return job

    submitter = FakeSubmitter([failing] * (policy.retries + 1))
    handle = submitter.handle(retry=policy, clock=clock, rng=random.Random(seed), poll_s=poll_s)
    with pytest.raises(JobFailedError):
        handle.result()
    assert len(failures) == len(submitted) == policy.retries + 1
    expected = schedule(policy, random.Random(seed))
    waited = tuple(s - f for f, s in zip(failures[:-1], submitted[1:], strict=True))
    assert waited == pytest.approx(expected, abs=1e-6)
    assert all(s >= 0 for s in clock.sleeps)


def test_delays_follow_schedule_when_driven_by_done() -> None:
    """Driving with done(): no resubmission before the delay is up, one as soon as it is."""
    clock = FakeClock()
    policy = _policy(2, backoff_s=10, multiplier=3)
    submitter = FakeSubmitter([FakeJob.failing("a"), FakeJob.failing("b"), FakeJob.succeeding(1)])
    handle = submitter.handle(retry=policy, clock=clock)
    for n, delay in enumerate(schedule(policy), start=1):
        assert handle.done() is False  # reads the failure, schedules the retry
        clock.advance(delay - 0.25)
        assert handle.done() is False
        assert submitter.submissions == n
        clock.advance(0.25)
        # resubmits now and reads the new attempt at once: done only when it succeeded
        assert handle.done() is (n == policy.retries)
        assert submitter.submissions == n + 1
    assert handle.done() is True
    assert handle.result(timeout=0) == 1
    assert clock.sleeps == []


def test_done_drives_retries_without_result() -> None:
    """Polling done() alone resubmits after the backoff and eventually finishes."""
    clock = FakeClock()
    submitter = FakeSubmitter([FakeJob.failing("x", after_polls=1), FakeJob.succeeding("ok")])
    handle = submitter.handle(retry=_policy(1), clock=clock)
    polls = 0
    while not handle.done():
        clock.advance(1)
        polls += 1
        assert polls < 100
    assert submitter.resubmissions == 1
    assert handle.result(timeout=0) == "ok"


# --- timeouts -----------------------------------------------------------------------------


@settings(max_examples=60)
@given(st.floats(0, 1000), st.floats(0.01, 30), st.floats(0, 1e6))
def test_result_timeout_raises_at_the_deadline(timeout: float, poll_s: float, start: float) -> None:
    """A job that never finishes raises JobTimeoutError once virtual time reaches the timeout."""
    clock = FakeClock(start=start)
    submitter = FakeSubmitter([FakeJob.never_done(job_id="123_4")])
    handle = submitter.handle(retry=NO_JITTER, clock=clock, poll_s=poll_s)
    with pytest.raises(JobTimeoutError) as info:
        handle.result(timeout=timeout)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, ParacoreError)
    assert "123_4" in str(info.value)
    assert clock.now() >= start + timeout
    assert clock.elapsed == pytest.approx(timeout, abs=1e-6)  # never slept past the deadline


def test_timeout_during_backoff_does_not_oversleep() -> None:
    """A deadline inside a long backoff wait still raises at the deadline."""
    clock = FakeClock()
    submitter = FakeSubmitter([FakeJob.failing("x"), FakeJob.succeeding(1)])
    handle = submitter.handle(retry=_policy(1, backoff_s=1000), clock=clock)
    with pytest.raises(JobTimeoutError):
        handle.result(timeout=60)
    assert clock.elapsed == pytest.approx(60)
    assert submitter.resubmissions == 0


# --- cancel -------------------------------------------------------------------------------


def test_cancel_stops_retries() -> None:
    """Cancelling a running attempt cancels it and its failure is final despite retries left."""
    submitter = FakeSubmitter([FakeJob.succeeding(1, after_polls=100), FakeJob.succeeding(2)])
    handle = submitter.handle(retry=_policy(3), clock=FakeClock())
    assert handle.done() is False
    handle.cancel()
    assert submitter.jobs[0].cancelled
    with pytest.raises(JobFailedError) as info:
        handle.result(timeout=1000)
    assert info.value.state == "CANCELLED"
    assert submitter.submissions == 1


def test_cancel_during_backoff_stops_resubmission() -> None:
    """Cancelling while waiting to resubmit means no new attempt is ever submitted."""
    clock = FakeClock()
    submitter = FakeSubmitter([FakeJob.failing("x"), FakeJob.succeeding(2)])
    handle = submitter.handle(retry=_policy(3), clock=clock)
    assert handle.done() is False  # failure read; retry scheduled
    handle.cancel()
    clock.advance(10_000)
    with pytest.raises(JobFailedError):
        handle.result(timeout=10)
    assert submitter.submissions == 1


# --- gather -------------------------------------------------------------------------------


def _handles(clock: FakeClock, scripts: list[list[FakeJob]], retries: int = 0) -> list:
    return [
        FakeSubmitter(script, prefix=f"job{i}").handle(retry=_policy(retries), clock=clock)
        for i, script in enumerate(scripts)
    ]


@given(st.lists(st.integers(0, 20), min_size=1, max_size=8))
def test_gather_returns_values_in_input_order(polls: list[int]) -> None:
    """gather returns each handle's value in input order, whatever order they finish in."""
    clock = FakeClock()
    handles = _handles(clock, [[FakeJob.succeeding(i, after_polls=p)] for i, p in enumerate(polls)])
    out = gather(handles, timeout=1e6, clock=clock.now, sleep=clock.sleep)
    assert out == list(range(len(polls)))


def test_gather_return_exceptions_keeps_other_results() -> None:
    """With return_exceptions=True the failed position holds the error, the rest their values."""
    clock = FakeClock()
    scripts = [
        [FakeJob.succeeding("a", after_polls=3)],
        [FakeJob.failing("b failed", after_polls=1)],
        [FakeJob.succeeding("c")],
    ]
    out = gather(
        _handles(clock, scripts), return_exceptions=True, clock=clock.now, sleep=clock.sleep
    )
    assert out[0] == "a"
    assert isinstance(out[1], JobFailedError)
    assert "b failed" in str(out[1])
    assert out[2] == "c"


def test_gather_raises_first_failure_by_default() -> None:
    """Without return_exceptions gather raises the failed job's error."""
    clock = FakeClock()
    scripts = [[FakeJob.succeeding("a")], [FakeJob.failing("b failed")]]
    with pytest.raises(JobFailedError, match="b failed"):
        gather(_handles(clock, scripts), clock=clock.now, sleep=clock.sleep)


def test_gather_drives_retries_of_every_handle() -> None:
    """gather resubmits failed attempts of any handle, per its retry policy."""
    clock = FakeClock()
    scripts = [
        [FakeJob.failing("x"), FakeJob.succeeding(1)],
        [FakeJob.succeeding(2, after_polls=4)],
    ]
    assert gather(_handles(clock, scripts, retries=1), clock=clock.now, sleep=clock.sleep) == [1, 2]


def test_gather_shared_deadline_names_unfinished_jobs() -> None:
    """One shared deadline: JobTimeoutError names the unfinished jobs, not the finished ones."""
    clock = FakeClock()
    scripts = [
        [FakeJob.succeeding("a", job_id="111")],
        [FakeJob.never_done(job_id="222")],
        [FakeJob.succeeding("c", after_polls=2, job_id="333")],
        [FakeJob.never_done(job_id="444")],
    ]
    handles = _handles(clock, scripts)
    with pytest.raises(JobTimeoutError) as info:
        gather(handles, timeout=30, clock=clock.now, sleep=clock.sleep)
    message = str(info.value)
    assert "222" in message
    assert "444" in message
    assert "111" not in message
    assert "333" not in message
    assert "2 of 4" in message
    assert clock.elapsed == pytest.approx(30)


def test_handle_exposes_job_fields() -> None:
    """The handle shows the current attempt's id, array index and log paths."""
    job = FakeJob.succeeding(
        1, job_id="77_3", array_index=3, stdout_path="/l/77_3.out", stderr_path="/l/77_3.err"
    )
    handle = SubmitHandle(job, job_name="demo", retry=NO_JITTER)
    assert (handle.job_id, handle.array_index, handle.job_name) == ("77_3", 3, "demo")
    assert (handle.stdout_path, handle.stderr_path) == ("/l/77_3.out", "/l/77_3.err")
    assert "77_3" in repr(handle)
