"""Workflow plans on the real Slurm: dependency order as sacct records it, results passed
between steps, a failing step's downstream cancelled by the scheduler and named by wait(),
a resubmission that runs only what must run again, a retried step's children, and a bad
step refused before anything is submitted."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest

import paracore as pc
from tests.slurm_helpers import SacctRow, jobs_named, latest_job_id
from tests.workflow_steps import add, fail_until, make, noop, square_all, times

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

SMALL = {"time_min": 5, "mem_gb": 0.25}


def fail_first_try(marker: str) -> str:
    """Fails the first time (leaving ``marker``), succeeds after."""
    if not Path(marker).exists():
        Path(marker).touch()
        raise RuntimeError("first try fails")
    return "second try"


def _tag() -> str:
    """A plan name part no other test (nor an earlier run of this one) uses: sacct keeps
    history, and jobs are found by name."""
    return f"{os.getpid()}-{time.time_ns() % 10**9}"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _by_step(plan: str, after: int, counts: dict[str, int]) -> dict[str, list[SacctRow]]:
    return {step: jobs_named(f"{plan}.{step}", after, n) for step, n in counts.items()}


def test_a_chain_with_a_parallel_stage_runs_in_dependency_order_and_passes_results() -> None:
    """Every step starts after its parents ended (sacct's Start and End), and each step
    gets its parents' return values."""
    name, since = f"order-{_tag()}", latest_job_id()
    plan = pc.Plan(
        name,
        pc.Chain(
            pc.Step("make", make, SMALL, 4),
            pc.Parallel(
                pc.Step("squares", square_all, SMALL, pc.Result("make")),
                pc.Step.map("tripled", times, [1, 2], SMALL, k=3),
            ),
            pc.Step("total", add, SMALL, pc.Result("squares"), pc.Result("tripled")),
        ),
    )
    run = plan.submit()
    assert run.how == dict.fromkeys(["make", "squares", "tripled", "total"], "submitted")
    results = run.wait(timeout=300)
    assert results == {"make": [0, 1, 2, 3], "squares": [0, 1, 4, 9], "tripled": [3, 6],
                       "total": 14 + 9}  # fmt: skip
    rows = _by_step(name, since, {"make": 1, "squares": 1, "tripled": 2, "total": 1})
    assert all(len(r) == n for r, n in zip(rows.values(), (1, 1, 2, 1), strict=True)), rows
    assert all(row.state == "COMPLETED" for r in rows.values() for row in r)
    start = {s: min(_when(row.start) for row in r) for s, r in rows.items()}
    end = {s: max(_when(row.end) for row in r) for s, r in rows.items()}
    for step, parents in plan.graph.parents.items():
        for parent in parents:
            assert start[step] >= end[parent], (step, parent, start, end)


def test_a_failing_step_stops_its_downstream_and_a_fixed_plan_reruns_only_what_must(
    slurm_workdir: Path,
) -> None:
    """The failing step's child is cancelled by Slurm and wait() names the step, its error
    and what will not run; after the fix, submitting the same plan submits only the failed
    step and its downstream (counted in sacct), the rest is re-used."""
    name, since = f"fix-{_tag()}", latest_job_id()
    marker = slurm_workdir / "fixed"

    def build() -> pc.Plan:
        return pc.Plan(
            name,
            pc.Chain(
                pc.Step("prep", make, SMALL, 2),
                pc.Parallel(
                    pc.Step("bad", fail_until, SMALL, str(marker)),
                    pc.Step("side", make, SMALL, 3),
                ),
                pc.Step("after", noop, SMALL),
            ),
        )

    first = build().submit()
    with pytest.raises(pc.StepFailedError) as raised:
        first.wait(timeout=300)
    error = raised.value
    assert (error.step, error.not_run) == ("bad", ("after",))
    assert (error.exc_type, error.exc_message) == ("builtins.ValueError", "no fixed yet")
    assert "will not run: after" in str(error)
    # Slurm cancels the child, or, when the parent failed before the child's turn to be
    # submitted, the child is never submitted
    cancelled = [r.state for r in jobs_named(f"{name}.after", since)]
    assert cancelled in (["CANCELLED"], [])
    assert first["side"].result(timeout=300) == [0, 1, 2]

    marker.touch()
    second = build().submit()
    assert second.how == {"prep": "reused", "bad": "submitted", "side": "reused",
                          "after": "submitted"}  # fmt: skip
    assert second.wait(timeout=300)["bad"] == "fixed"
    after = len(cancelled) + 1
    rows = _by_step(name, since, {"prep": 1, "bad": 2, "side": 1, "after": after})
    assert {s: len(r) for s, r in rows.items()} == {"prep": 1, "bad": 2, "side": 1, "after": after}
    assert [r.state for r in rows["bad"]] == ["FAILED", "COMPLETED"]
    assert [r.state for r in rows["after"]] == [*cancelled, "COMPLETED"]


def test_a_retried_steps_children_still_run(slurm_workdir: Path) -> None:
    """A step that fails once and is retried: Slurm cancels its child's first job, and the
    child runs once the retry succeeded, after it."""
    name, since = f"retry-{_tag()}", latest_job_id()
    marker = slurm_workdir / "tried"
    flaky = {**SMALL, "retries": 1, "retry_backoff_s": 1}
    plan = pc.Plan(
        name,
        pc.Chain(
            pc.Step("flaky", fail_first_try, flaky, str(marker)),
            pc.Step("child", make, SMALL, 2),
        ),
    )
    results = plan.submit().wait(timeout=300)
    assert results == {"flaky": "second try", "child": [0, 1]}
    rows = _by_step(name, since, {"flaky": 2, "child": 2})
    assert [r.state for r in rows["flaky"]] == ["FAILED", "COMPLETED"]
    assert [r.state for r in rows["child"]] == ["CANCELLED", "COMPLETED"]
    assert _when(rows["child"][-1].start) >= _when(rows["flaky"][-1].end)


def test_a_bad_partition_in_the_last_step_submits_nothing() -> None:
    """Every step is checked against the cluster before any is submitted."""
    name, since = f"bad-{_tag()}", latest_job_id()
    plan = pc.Plan(
        name,
        pc.Chain(
            pc.Step("first", noop, SMALL),
            pc.Step("last", noop, {**SMALL, "partition": "no-such-partition"}),
        ),
    )
    with pytest.raises(pc.SpecError, match="no-such-partition"):
        plan.submit()
    assert jobs_named(f"{name}.first", since, timeout=3) == []


def wait_for_gate(started: str, gate: str) -> str:
    """Leave ``started``, then wait (bounded) until ``gate`` exists."""
    Path(started).touch()
    deadline = time.monotonic() + 240
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} never appeared")
        time.sleep(0.2)
    return "opened"


def test_submitting_again_while_steps_are_in_flight_attaches_to_them(
    slurm_workdir: Path,
) -> None:
    """A second submission of a plan whose steps are running or waiting on their
    dependency re-attaches to them: every step runs exactly once (sacct)."""
    name, since = f"inflight-{_tag()}", latest_job_id()
    started, gate = slurm_workdir / "started", slurm_workdir / "gate"
    plan = pc.Plan(
        name,
        pc.Chain(
            pc.Step("slow", wait_for_gate, SMALL, str(started), str(gate)),
            pc.Parallel(pc.Step("a", make, SMALL, 1), pc.Step("b", make, SMALL, 2)),
        ),
    )
    first = plan.submit()
    deadline = time.monotonic() + 120
    while not started.exists():  # the first step runs on the node
        assert time.monotonic() < deadline, "the first step never started"
        time.sleep(0.2)
    second = plan.submit()
    assert second.how == dict.fromkeys(["slow", "a", "b"], "attached")
    assert second.run_ids == first.run_ids
    gate.touch()
    assert second.wait(timeout=300) == {"slow": "opened", "a": [0], "b": [0, 1]}
    rows = _by_step(name, since, {"slow": 1, "a": 1, "b": 1})
    assert {s: [r.state for r in rs] for s, rs in rows.items()} == {
        "slow": ["COMPLETED"],
        "a": ["COMPLETED"],
        "b": ["COMPLETED"],
    }


KILLED_SUBMITTER = """
import os, signal, sys
import paracore as pc
from tests.workflow_steps import fail_until, noop
SMALL = {"time_min": 5, "mem_gb": 0.25}
name, marker = sys.argv[1], sys.argv[2]
plan = pc.Plan(name, pc.Chain(pc.Step("bad", fail_until, SMALL, marker),
                              pc.Step("after", noop, SMALL)))
plan.submit()
os.kill(os.getpid(), signal.SIGKILL)  # the submitter dies before it sees any outcome
"""


def test_a_killed_submitters_failed_step_is_submitted_again(slurm_workdir: Path) -> None:
    """After the submitter died, the failed step (and its child Slurm cancelled) are submitted
    anew on the next submission, as what the scheduler says now decides; the plan succeeds."""
    import subprocess
    import sys

    name, since = f"killed-{_tag()}", latest_job_id()
    marker = slurm_workdir / "fixed"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), *sys.path])}
    died = subprocess.run(
        [sys.executable, "-c", KILLED_SUBMITTER, name, str(marker)], env=env, check=False
    )
    assert died.returncode == -9
    assert [r.state for r in jobs_named(f"{name}.bad", since, timeout=180)] == ["FAILED"]
    assert [r.state for r in jobs_named(f"{name}.after", since, timeout=180)] == ["CANCELLED"]
    marker.touch()
    # this process asked sacct a moment ago (its poller's next question is seconds away)
    assert pc.run_cmd("true", time_min=2, mem_gb=0.25).result(timeout=120).returncode == 0
    plan = pc.Plan(
        name,
        pc.Chain(pc.Step("bad", fail_until, SMALL, str(marker)), pc.Step("after", noop, SMALL)),
    )
    again = plan.submit()
    assert again.how == {"bad": "submitted", "after": "submitted"}
    assert again.wait(timeout=300) == {"bad": "fixed", "after": None}
