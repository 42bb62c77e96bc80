"""The pilot runner: real local measurement (inprocess), and the Slurm path against fakes."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import pytest

import paracore
from paracore.backends.slurm.accounting import JobRecord
from paracore.core.autotune import PilotError, Suggestion
from paracore.core.retry import RetryPolicy
from paracore.core.spec import Call, Command
from paracore.shell.handle import SubmitHandle
from paracore.shell.pilot import PilotEdge, autotune_from_pilot, measure_call, measure_command
from paracore.shell.session import Session
from paracore.testing import FakeClock, FakeJob, job_record

PY = sys.executable


def _alloc_cmd(mb: int, seconds: float = 0.0) -> str:
    """A command that touches ``mb`` MB of memory, then sleeps."""
    return (
        f'{PY} -c "import time; b = bytearray({mb} * 2**20); '
        f'b[::4096] = bytes(len(range(0, len(b), 4096))); time.sleep({seconds})"'
    )


def allocate(mb: int) -> int:
    """A top-level function for func pilots: touch ``mb`` MB and return it."""
    block = bytearray(mb * 2**20)
    block[::4096] = bytes(len(range(0, len(block), 4096)))
    return mb


def explode(_item: object) -> None:
    """A function that always fails."""
    raise ValueError("no good")


def _quiet(**kw) -> Suggestion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return autotune_from_pilot(**kw)


# ---------------------------------------------------------------- local measurement


def test_measure_command_reports_real_peak_and_time() -> None:
    """A command allocating 120 MB and sleeping 0.3 s is measured as such by rusage."""
    sample = measure_command(_alloc_cmd(120, 0.3))
    assert 0.3 <= sample.wall_s < 10
    assert 120 * 1024 <= sample.max_rss_kb < 220 * 1024


def test_measure_call_runs_in_a_fresh_interpreter() -> None:
    """A call is measured in its own process: its peak, not the caller's."""
    sample = measure_call(allocate, 150)
    assert 150 * 1024 <= sample.max_rss_kb < 260 * 1024


def test_measure_command_failure_raises_with_stderr() -> None:
    """A failing command fails the measuring task with its exit code and stderr tail."""
    with pytest.raises(RuntimeError, match=r"exited with code 3: oops"):
        measure_command("echo oops >&2; exit 3")


def test_inprocess_pilot_of_commands_measures_and_recommends() -> None:
    """A pilot on the inprocess backend measures each sampled command for real."""
    sizes = [60, 90, 120, 150, 180, 210]
    cmds = [_alloc_cmd(mb, 0.1) for mb in sizes]
    suggest = _quiet(
        sample_cmds_or_items=cmds,
        runner="cmds",
        sample_size=4,
        seed=7,
        backend="inprocess",
        cpus_per_task_guess=1,
        mem_gb_guess=1,
        time_min_guess=1,
    )
    rec = suggest.recommendation
    assert set(suggest) == {"time_min", "mem_gb", "cpus_per_task", "array_parallelism"}
    assert suggest["time_min"] == 1 and suggest["mem_gb"] == 1 and suggest["cpus_per_task"] == 1
    assert rec.seed == 7 and rec.backend == "inprocess" and len(rec.tasks) == 4
    for task in rec.tasks:
        assert task.source == "rusage" and task.ok
        assert sizes[task.index] <= task.max_rss_mb < sizes[task.index] + 100
        assert task.duration_s >= 0.1
    assert rec.memory.max >= max(sizes[t.index] for t in rec.tasks)


def test_pilot_sample_is_reproducible_with_a_seed() -> None:
    """The same seed samples the same items; the seed is recorded when not given."""
    cmds = [f"true {i}" for i in range(30)]
    runs = [
        _quiet(sample_cmds_or_items=cmds, sample_size=5, seed=3, backend="inprocess")
        for _ in range(2)
    ]
    picked = [[t.index for t in r.recommendation.tasks] for r in runs]
    assert picked[0] == picked[1] and len(picked[0]) == 5
    free = _quiet(sample_cmds_or_items=cmds, sample_size=5, backend="inprocess")
    assert isinstance(free.recommendation.seed, int)


def test_func_pilot_measures_each_call() -> None:
    """runner='func' calls fn(item) per sampled item, measured in a fresh interpreter."""
    suggest = _quiet(
        sample_cmds_or_items=[100, 200],
        runner="func",
        fn=allocate,
        sample_size=2,
        seed=1,
        backend="inprocess",
        cpus_per_task_guess=1,
    )
    peaks = {t.index: t.max_rss_mb for t in suggest.recommendation.tasks}
    assert 100 <= peaks[0] < 200 and 200 <= peaks[1] < 300


def test_cmds_pilot_can_build_commands_with_fn() -> None:
    """runner='cmds' with fn: fn(item) builds each command (the seed's config paths)."""
    suggest = _quiet(
        sample_cmds_or_items=["a.json", "b.json"],
        fn=lambda path: f"echo {path}",
        sample_size=5,
        seed=0,
        backend="inprocess",
    )
    assert [t.label for t in suggest.recommendation.tasks] == ["echo a.json", "echo b.json"]
    assert any("of the 5 requested" in w for w in suggest.recommendation.warnings)


def test_pilot_with_too_many_failures_raises() -> None:
    """More than half the pilot failing raises PilotError naming the failures."""
    with pytest.raises(PilotError, match="2 of 3 pilot tasks failed") as info:
        _quiet(
            sample_cmds_or_items=["true", "exit 4", "exit 5"],
            sample_size=3,
            seed=0,
            backend="inprocess",
        )
    assert "exited with code 4" in str(info.value)


def test_pilot_failures_below_the_bar_are_excluded() -> None:
    """A failed task under the bar is reported, excluded from statistics, and warned about."""
    with pytest.warns(UserWarning, match="1 of 3 pilot tasks failed"):
        suggest = autotune_from_pilot(
            ["true", "true", "exit 9"], sample_size=3, seed=0, backend="inprocess"
        )
    rec = suggest.recommendation
    assert rec.duration.n == 2 and [t.index for t in rec.failed] == [2]


def test_func_pilot_failure_keeps_the_error() -> None:
    """A failing call's exception text reaches the pilot error."""
    with pytest.raises(PilotError, match="ValueError: no good"):
        _quiet(sample_cmds_or_items=[1], runner="func", fn=explode, backend="inprocess")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"runner": "shell"}, "runner"),
        ({"runner": "func"}, "fn"),
        ({"measurement": "rss"}, "measurement"),
        ({"sample_size": 0}, "sample_size"),
    ],
)
def test_bad_arguments_raise_spec_errors(kwargs: dict, field: str) -> None:
    """Bad arguments fail before anything runs, naming the argument."""
    with pytest.raises(paracore.SpecError) as info:
        autotune_from_pilot(["true"], backend="inprocess", **kwargs)
    assert info.value.field == field


# ---------------------------------------------------------------- the Slurm path, faked

PARTITIONS = (
    "PartitionName=short Default=NO MaxTime=00:05:00 State=UP TotalCPUs=8 Nodes=n1\n"
    "PartitionName=debug Default=YES MaxTime=UNLIMITED State=UP TotalCPUs=8 Nodes=n1\n"
)
NODES = "NodeName=n1 CPUTot=8 RealMemory=16000 Partitions=short,debug State=IDLE\n"


def _record(job_id: str, state: str, elapsed: int | None, rss_kb: int | None) -> JobRecord:
    return job_record(
        job_id,
        state,
        name="pilot",
        elapsed_s=elapsed,
        max_rss_kb=rss_kb,
        partition="short",
        nodes="n1",
    )


class FakeSlurm:
    """Submission and accounting of a scripted cluster: per attempt, per item, an outcome.

    It is also the pilot's backend: the real Slurm backend's limits over captured scontrol
    text, and accounting from the script.
    """

    name = "slurm"
    measures_in_task = False

    def __init__(self, outcomes: dict[int, list[tuple[str, int, int]]]) -> None:
        self.outcomes = outcomes  # attempt -> [(state, elapsed_s, rss_mb)] per submitted task
        self.submitted: list[tuple[int, list]] = []
        self.records: dict[str, JobRecord] = {}
        self.queries = 0
        self.clock = FakeClock()

    def run(self, cmd: Sequence[str]) -> str:
        return PARTITIONS if cmd[-1] == "partition" else NODES

    def submit_map(self, spec, payloads) -> list[SubmitHandle]:
        attempt = len(self.submitted) + 1
        self.submitted.append((spec.resources.time_min, list(payloads)))
        handles = []
        for i, (state, elapsed, rss) in enumerate(self.outcomes[attempt]):
            job_id = f"{100 + attempt}_{i}"
            job = (
                FakeJob.succeeding(None, job_id=job_id)
                if state == "COMPLETED"
                else FakeJob.failing("killed", state=state, job_id=job_id)
            )
            self.records[job_id] = _record(job_id, state, elapsed, rss * 1024)
            handles.append(SubmitHandle(job, job_name="pilot", retry=RetryPolicy()))
        return handles

    def limits(self, partition):
        return Session(runner=self.run, environ={}).backend("slurm").limits(partition)

    def accounting(self, job_ids):
        self.queries += 1
        if self.queries == 1:  # sacct lags: the first answer has no step MaxRSS yet
            return {j: attrs_evolve(self.records[j], max_rss_kb=None) for j in job_ids}
        return {j: self.records[j] for j in job_ids}

    def edge(self) -> PilotEdge:
        return PilotEdge(
            submit_map=self.submit_map,
            backend=lambda spec: self,
            sleep=self.clock.sleep,
            clock=self.clock.now,
        )


def attrs_evolve(record, **changes):
    import attrs

    return attrs.evolve(record, **changes)


def test_slurm_pilot_reads_sacct_and_waits_for_step_maxrss() -> None:
    """On Slurm the measurements come from sacct, polled until MaxRSS of the steps arrives."""
    fake = FakeSlurm({1: [("COMPLETED", 30, 200), ("COMPLETED", 50, 400), ("COMPLETED", 40, 300)]})
    suggest = _quiet(
        sample_cmds_or_items=["true a", "true b", "true c"],
        sample_size=3,
        seed=0,
        partition="short",
        cpus_per_task_guess=1,
        mem_gb_guess=2,
        time_min_guess=2,
        edge=fake.edge(),
    )
    rec = suggest.recommendation
    assert fake.queries == 2 and fake.clock.sleeps  # polled again after the lagging answer
    assert [t.max_rss_mb for t in rec.tasks] == [200, 400, 300]
    assert all(t.source == "sacct" for t in rec.tasks)
    assert isinstance(fake.submitted[0][1][0], Command)  # the payload runs unwrapped
    assert dict(suggest) == {
        "time_min": 2,  # ceil(p95 49 s * 1.3 / 60)
        "mem_gb": 1,  # ceil(400 MB * 1.3 / 1024)
        "cpus_per_task": 1,
        "array_parallelism": 2,  # 30% of 8 CPUs
    }
    assert rec.limits.max_time_min == 5 and rec.limits.node_mem_mb == 16000


def test_slurm_pilot_clamps_guesses_to_the_partition() -> None:
    """Guesses above the partition's limits are lowered for the pilot, with a warning."""
    fake = FakeSlurm({1: [("COMPLETED", 5, 10)]})
    with pytest.warns(UserWarning, match="time_min guess 30"):
        autotune_from_pilot(["true"], partition="short", cpus_per_task_guess=16,
                            mem_gb_guess=64, time_min_guess=30, edge=fake.edge())  # fmt: skip
    assert fake.submitted[0][0] == 5


def test_timed_out_tasks_run_again_once_with_twice_the_time() -> None:
    """A pilot task killed at the guessed walltime is retried once with 2x, then measured."""
    fake = FakeSlurm(
        {
            1: [("COMPLETED", 20, 100), ("TIMEOUT", 60, 100), ("COMPLETED", 30, 100)],
            2: [("COMPLETED", 90, 120)],
        }
    )
    with pytest.warns(UserWarning, match=r"1 pilot task\(s\) timed out under 1 min"):
        suggest = autotune_from_pilot(
            ["a", "b", "c"], sample_size=3, seed=0, partition="short",
            cpus_per_task_guess=1, time_min_guess=1, edge=fake.edge(),
        )  # fmt: skip
    assert [time for time, _ in fake.submitted] == [1, 2]
    assert len(fake.submitted[1][1]) == 1
    retried = suggest.recommendation.tasks[1]
    assert (retried.state, retried.attempts, retried.time_limit_min) == ("COMPLETED", 2, 2)
    assert suggest["time_min"] == 2  # ceil(p95 84 s * 1.3 / 60)


def test_tasks_timing_out_twice_are_reported() -> None:
    """A task that also times out at 2x is a failure the report names."""
    fake = FakeSlurm(
        {1: [("COMPLETED", 20, 100), ("TIMEOUT", 60, 100), ("COMPLETED", 20, 100)],
         2: [("TIMEOUT", 120, 100)]}
    )  # fmt: skip
    suggest = _quiet(sample_cmds_or_items=["a", "b", "c"], sample_size=3, seed=0,
                     partition="short", time_min_guess=1, edge=fake.edge())  # fmt: skip
    rec = suggest.recommendation
    assert [t.index for t in rec.failed] == [1]
    assert any("timed out even under 2 min" in w for w in rec.warnings)


def test_pilot_calls_on_slurm_are_not_wrapped() -> None:
    """On Slurm a func pilot submits fn(item) itself, so sacct measures the real task."""
    fake = FakeSlurm({1: [("COMPLETED", 5, 50)]})
    _quiet(sample_cmds_or_items=[7], runner="func", fn=allocate, edge=fake.edge())
    payload = fake.submitted[0][1][0]
    assert isinstance(payload, Call) and payload.fn is allocate and payload.args == (7,)


def test_only_slurm_timeout_is_retried() -> None:
    """A timeout is Slurm's TIMEOUT state: a FAILED task is reported, not run again."""
    fake = FakeSlurm({1: [("COMPLETED", 20, 100), ("FAILED", 30, 100), ("COMPLETED", 40, 90)]})
    suggest = _quiet(sample_cmds_or_items=["a", "b", "c"], sample_size=3, seed=0,
                     partition="short", time_min_guess=2, edge=fake.edge())  # fmt: skip
    rec = suggest.recommendation
    assert [time for time, _ in fake.submitted] == [2]
    assert [(t.index, t.state, t.attempts) for t in rec.failed] == [(1, "FAILED", 1)]
    assert not any("timed out" in w for w in rec.warnings)


def test_measurement_is_the_payloads_own_peak_not_the_callers() -> None:
    """A caller holding 600 MB measures `true` as a few MB: the child's peak is its own."""
    ballast = bytearray(600 * 2**20)
    ballast[::4096] = bytes(len(range(0, len(ballast), 4096)))  # touch every page
    sample = measure_command("true")
    assert sample.max_rss_kb < 100 * 1024
    assert len(ballast) == 600 * 2**20
