"""Tests for paracore.shell.handle (SubmitHandle, gather), driven by paracore.testing's fakes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources
from paracore.core.failures import DEFAULT_RETRY_ON, FailureClass
from paracore.core.retry import RetryPolicy, schedule
from paracore.errors import DependencyError, JobFailedError, JobTimeoutError, ParacoreError
from paracore.shell.handle import RetryGroup, SubmitHandle, gather
from paracore.shell.protocols import Drivers
from paracore.testing import FakeClock, FakeJob, FakeSubmitter

NO_JITTER = RetryPolicy(retries=0, backoff_s=5, jitter=0)
# FakeJob.failing ends FAILED, a user error: these policies retry it, as retries=N does.
WITH_USER_ERRORS = DEFAULT_RETRY_ON | {FailureClass.USER_ERROR}


def _policy(retries: int, **fields) -> RetryPolicy:
    return RetryPolicy(
        retries=retries,
        **{"backoff_s": 5.0, "jitter": 0.0, "retry_on": WITH_USER_ERRORS, **fields},
    )


def small_policies() -> st.SearchStrategy[RetryPolicy]:
    """Retry policies with short enough delays that polling through them stays cheap."""
    return st.builds(
        RetryPolicy,
        retries=st.integers(0, 4),
        backoff_s=st.floats(0, 100),
        multiplier=st.floats(1, 3),
        cap_s=st.floats(0, 300),
        jitter=st.one_of(st.just(0.0), st.floats(0, 0.9)),
        retry_on=st.just(WITH_USER_ERRORS),
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


# --- failure classes, escalation, groups and dependencies ---------------------------------


def test_oom_retry_asks_for_more_memory_and_records_it() -> None:
    """After OUT_OF_MEMORY the next attempt asks 1.5x memory; attempts record both."""
    submitter = FakeSubmitter(
        [FakeJob.failing("oom", state="OUT_OF_MEMORY"), FakeJob.succeeding(1)]
    )
    start = AttemptResources(mem_mb=1000, time_min=10, partition="p")
    handle = submitter.handle(retry=RetryPolicy(retries=1, backoff_s=0), resources=start)
    assert handle.result(timeout=10) == 1
    assert submitter.requests == [None, AttemptResources(mem_mb=1500, time_min=10, partition="p")]
    assert [a.resources.mem_mb for a in handle.attempts] == [1000, 1500]
    assert handle.attempts[0].failure_class is FailureClass.OUT_OF_MEMORY


def test_escalation_past_the_partition_cap_fails_with_a_clear_message() -> None:
    """At the partition's memory cap an OOM is not retried; the error says why."""
    submitter = FakeSubmitter([FakeJob.failing("oom", state="OUT_OF_MEMORY")])
    handle = submitter.handle(
        retry=RetryPolicy(retries=3, backoff_s=0),
        resources=AttemptResources(mem_mb=4096, partition="short"),
        limits=PartitionLimits(node_mem_mb=4096),
    )
    with pytest.raises(JobFailedError, match="most partition short allows"):
        handle.result(timeout=10)
    assert submitter.submissions == 1


def test_node_failure_excludes_the_node() -> None:
    """After NODE_FAIL on n3 the next attempt excludes n3."""
    submitter = FakeSubmitter(
        [FakeJob.failing("node", state="NODE_FAIL", nodes="n3"), FakeJob.succeeding(2)]
    )
    handle = submitter.handle(retry=RetryPolicy(retries=1, backoff_s=0))
    assert handle.result(timeout=10) == 2
    assert submitter.requests[1].exclude == ("n3",)


def test_cancellation_and_user_errors_by_default_are_not_retried() -> None:
    """A bare policy never retries a cancellation, nor a user error."""
    for state in ("CANCELLED by 0", "FAILED"):
        submitter = FakeSubmitter([FakeJob.failing("x", state=state), FakeJob.succeeding(1)])
        handle = submitter.handle(retry=RetryPolicy(retries=5, backoff_s=0))
        with pytest.raises(JobFailedError, match="not retried"):
            handle.result(timeout=10)
        assert submitter.submissions == 1


def _group(
    clock: FakeClock,
    scripts: list[list[FakeJob]],
    policy: RetryPolicy,
    resources: AttemptResources | None = None,
):
    """Handles sharing a RetryGroup whose resubmissions pop the next scripted job per index."""
    queues = [list(s) for s in scripts]
    calls: list[tuple[list[int], AttemptResources]] = []
    handles = [
        SubmitHandle(
            q.pop(0),
            job_name="g",
            retry=policy,
            resources=resources,
            clock=clock.now,
            sleep=clock.sleep,
        )
        for q in queues
    ]

    def resubmit_many(indices, resources):
        calls.append((list(indices), resources))
        return [queues[i].pop(0) for i in indices]

    RetryGroup(handles, resubmit_many, retry=policy, clock=clock.now)
    return handles, calls


def test_group_resubmits_failures_of_one_round_together_and_keeps_order() -> None:
    """Elements failing in the same round go back as ONE batch; results stay in input order."""
    clock = FakeClock()
    scripts = [[FakeJob.succeeding(i, after_polls=2)] for i in range(6)]
    scripts[1] = [FakeJob.failing("x", after_polls=1), FakeJob.succeeding(1, after_polls=1)]
    scripts[4] = [FakeJob.failing("y", after_polls=1), FakeJob.succeeding(4, after_polls=3)]
    handles, calls = _group(clock, scripts, _policy(2))
    assert gather(handles, timeout=1000, clock=clock.now, sleep=clock.sleep) == list(range(6))
    assert [c[0] for c in calls] == [[1, 4]]
    assert handles[0].group.rounds == [(1, 4)]


def test_drivers_drive_a_group_once_per_round_and_a_lone_handle_by_itself() -> None:
    """A group's members share one driver; a lone handle's driver is its own, every time."""
    clock = FakeClock()
    members, _ = _group(
        clock, [[FakeJob.succeeding(i, after_polls=1)] for i in range(3)], _policy(0)
    )
    lone = FakeSubmitter([FakeJob.succeeding("x", after_polls=1)]).handle(retry=_policy(0))
    drivers = Drivers([*members, lone, lone])
    assert drivers.drivers == [members[0].group, lone.driver()]
    rounds = []
    group = members[0].group
    group.advance = lambda: rounds.append(1)
    drivers.drive()
    assert rounds == [1]
    drivers.drive()
    assert lone.final and lone.outcome() == "x" and rounds == [1, 1]
    assert drivers.due() is None and drivers.bound() == max(group.bound(), lone.wait_bound())


def test_group_takes_along_elements_still_waiting_out_their_backoff() -> None:
    """An element that failed a poll later rides along with the first batch: one new array."""
    clock = FakeClock()
    scripts = [[FakeJob.succeeding(i, after_polls=1)] for i in range(5)]
    scripts[1] = [FakeJob.failing("x", after_polls=1), FakeJob.succeeding(1)]
    scripts[3] = [FakeJob.failing("y", after_polls=3), FakeJob.succeeding(3)]
    handles, calls = _group(clock, scripts, _policy(1, backoff_s=30))
    assert gather(handles, timeout=1000, clock=clock.now, sleep=clock.sleep) == list(range(5))
    assert [c[0] for c in calls] == [[1, 3]]
    assert all(len(h.attempts) == 2 for h in (handles[1], handles[3]))


def test_group_batches_by_resources() -> None:
    """An OOM element and a user-error element of one round need two different batches."""
    clock = FakeClock()
    scripts = [
        [FakeJob.failing("oom", state="OUT_OF_MEMORY"), FakeJob.succeeding("a")],
        [FakeJob.failing("bug"), FakeJob.succeeding("b")],
        [FakeJob.succeeding("c")],
    ]
    handles, calls = _group(clock, scripts, _policy(1), AttemptResources(mem_mb=100))
    assert gather(handles, timeout=1000, clock=clock.now, sleep=clock.sleep) == ["a", "b", "c"]
    assert sorted((c[0], c[1].mem_mb) for c in calls) == [([0], 150), ([1], 100)]


def test_child_of_failed_parent_raises_dependency_error() -> None:
    """A pending child whose parent failed finally is cancelled and raises DependencyError."""
    clock = FakeClock()
    parent = FakeSubmitter([FakeJob.failing("boom", after_polls=2)], prefix="parent").handle(
        retry=NO_JITTER, clock=clock
    )
    child_sub = FakeSubmitter([FakeJob.never_done()], prefix="child")
    child = child_sub.handle(retry=NO_JITTER, clock=clock, parents=(parent,))
    with pytest.raises(DependencyError, match="parent-1"):
        child.result(timeout=100)
    assert child_sub.jobs[0].cancelled
    assert clock.elapsed < 100
    assert child.blocked and not parent.blocked


def test_child_cancelled_by_slurm_after_its_parent_failed_is_a_dependency_error() -> None:
    """A child Slurm cancelled (sacct's reason not yet 'Dependency') raises DependencyError."""
    clock = FakeClock()
    parent = FakeSubmitter([FakeJob.failing("boom")], prefix="parent").handle(
        retry=NO_JITTER, clock=clock
    )
    child = FakeSubmitter([FakeJob.failing("cancelled", state="CANCELLED")], prefix="child").handle(
        retry=NO_JITTER, clock=clock, parents=(parent,)
    )  # both end in the same poll, as when sacct reports them together
    with pytest.raises(DependencyError, match="parent-1"):
        child.result(timeout=100)


def test_child_waits_for_a_retried_parent_then_runs_again() -> None:
    """A child cancelled because its parent's first attempt failed runs once the retry succeeds."""
    clock = FakeClock()
    parent = FakeSubmitter(
        [FakeJob.failing("flaky", after_polls=1), FakeJob.succeeding("p", after_polls=3)],
        prefix="parent",
    ).handle(retry=_policy(1), clock=clock)
    child_sub = FakeSubmitter(
        [FakeJob.failing("dep", state="PENDING_DEP"), FakeJob.succeeding("c")], prefix="child"
    )
    child_sub.jobs  # noqa: B018
    child_sub._script[0]._error = DependencyError(
        "cancelled: dependency", job_id="child-1", state="CANCELLED", failure_class="dependency"
    )
    child = child_sub.handle(retry=NO_JITTER, clock=clock, parents=(parent,))
    assert child.result(timeout=1000) == "c"
    assert [a.failure_class for a in child.attempts] == [FailureClass.DEPENDENCY, None]
    assert parent.result(timeout=0) == "p"


def test_final_error_lists_every_attempt_with_class_resources_and_logs() -> None:
    """The exhausted error names each attempt's job, class, resources, and all log paths."""
    jobs = [
        FakeJob.failing("oom", state="OUT_OF_MEMORY", stdout_path=f"/l/{i}.out",
                        stderr_path=f"/l/{i}.err")
        for i in range(3)
    ]  # fmt: skip
    handle = FakeSubmitter(jobs).handle(
        retry=RetryPolicy(retries=2, backoff_s=0), resources=AttemptResources(mem_mb=100)
    )
    with pytest.raises(JobFailedError) as info:
        handle.result(timeout=10)
    message = str(info.value)
    for i, mem in enumerate((100, 150, 225)):
        assert f"fake-{i + 1} OUT_OF_MEMORY (out_of_memory)" in message
        assert f"mem {mem}M" in message
        assert f"/l/{i}.err" in message


# --- bounded waits by default -------------------------------------------------------------


class _NotedJob(FakeJob):
    """A FakeJob whose scheduler keeps complaining."""

    def scheduler_note(self) -> str:
        return "sacct has not answered for 300 s (9 failed calls): Connection refused"


def test_result_without_timeout_is_bounded_by_walltime_and_queue_allowance() -> None:
    """No timeout means each possible attempt's queue allowance plus walltime, not forever."""
    from paracore.shell.session import Session, use_session

    clock = FakeClock()
    with use_session(Session(clock=clock.now, sleep=clock.sleep, queue_allowance_s=600)):
        submitter = FakeSubmitter([_NotedJob.never_done(job_id="55")])
        handle = submitter.handle(
            retry=RetryPolicy(retries=1, backoff_s=10, jitter=0),
            clock=clock,
            resources=AttemptResources(time_min=5),
        )
        # 2 attempts: (600 + 300) + (600 + 450, time grows 1.5x) + 10 backoff
        assert handle.wait_bound() == pytest.approx(1960)
        with pytest.raises(JobTimeoutError) as info:
            handle.result()
    assert clock.elapsed == pytest.approx(1960)
    assert "default bound" in str(info.value)
    assert "Connection refused" in str(info.value)


def test_gather_without_timeout_counts_an_arrays_waves() -> None:
    """A throttled array of 6 at 2 at a time waits 3 waves of the slowest task's bound."""
    from paracore.shell.session import Session, use_session

    clock = FakeClock()
    with use_session(Session(clock=clock.now, sleep=clock.sleep, queue_allowance_s=100)):
        handles = [
            SubmitHandle(
                FakeJob.never_done(job_id=f"9_{i}"),
                job_name="a",
                retry=NO_JITTER,
                resources=AttemptResources(time_min=1),
            )
            for i in range(6)
        ]
        RetryGroup(handles, lambda i, r: [], retry=NO_JITTER, parallelism=2)
        with pytest.raises(JobTimeoutError, match="6 of 6 jobs unfinished after 480 s"):
            gather(handles)
    assert clock.elapsed == pytest.approx(480)
