"""Laws of failure classification, escalation and the retry budget (all pure)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paracore.backends.slurm.sbatch import is_transient, parse_squeue_tokens, submit_once
from paracore.core.cluster import PartitionLimits
from paracore.core.escalation import AttemptResources, Refused, escalate
from paracore.core.failures import DEFAULT_RETRY_ON, NEVER_RETRIED, FailureClass, classify
from paracore.core.retry import RetryPolicy, may_retry
from paracore.errors import SpecError
from tests.strategies import (
    attempt_resources,
    escalating_policies,
    failure_evidence,
    retry_limits,
    retry_policies,
    sacct_states,
    slurm_words,
)

# --- classification -----------------------------------------------------------------------


@given(sacct_states(), failure_evidence())
def test_classification_is_total(state: str, evidence: dict) -> None:
    """Every state string (and any evidence) maps to exactly one FailureClass."""
    assert isinstance(classify(state, **evidence), FailureClass)


@given(st.text(max_size=30).filter(lambda s: s.split()[:1] not in (["CANCELLED"],)))
def test_unknown_states_map_to_the_safe_default(state: str) -> None:
    """A state paracore does not know is UNKNOWN, which no default policy retries."""
    known = {"TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "FAILED"}
    known |= {"COMPLETED", "SPECIAL_EXIT", "PENDING"}
    word = state.split()[0].upper() if state.split() else ""
    if word not in known:
        assert classify(state) is FailureClass.UNKNOWN
        assert FailureClass.UNKNOWN not in RetryPolicy().retry_on


@pytest.mark.parametrize(
    ("state", "evidence", "expected"),
    [
        ("OUT_OF_MEMORY", {"exit_code": 0, "exit_signal": 125}, FailureClass.OUT_OF_MEMORY),
        (
            "FAILED",
            {"exit_code": 0, "exit_signal": 9, "stderr_tail": "error: Exceeded job memory limit"},
            FailureClass.OUT_OF_MEMORY,
        ),
        ("FAILED", {"exit_code": 0, "exit_signal": 9}, FailureClass.USER_ERROR),
        (
            "FAILED",
            {"exit_code": 1, "exit_signal": 0, "step_states": ("FAILED", "OUT_OF_MEMORY")},
            FailureClass.OUT_OF_MEMORY,
        ),
        ("TIMEOUT", {"exit_code": 0, "exit_signal": 0}, FailureClass.TIMEOUT),
        ("NODE_FAIL", {}, FailureClass.NODE_FAILURE),
        ("PREEMPTED", {}, FailureClass.PREEMPTION),
        ("BOOT_FAIL", {}, FailureClass.BOOT_FAILURE),
        ("CANCELLED by 0", {}, FailureClass.CANCELLED),
        ("CANCELLED by 1000", {"reason": "Dependency"}, FailureClass.CANCELLED),
        ("CANCELLED", {"reason": "Dependency"}, FailureClass.DEPENDENCY),
        ("PENDING", {"reason": "DependencyNeverSatisfied"}, FailureClass.DEPENDENCY),
        ("FAILED", {"exit_code": 3, "exit_signal": 0}, FailureClass.USER_ERROR),
        ("DEADLINE", {}, FailureClass.UNKNOWN),
        ("", {}, FailureClass.UNKNOWN),
    ],
)
def test_measured_slurm_facts_classify_as_documented(
    state: str, evidence: dict, expected: FailureClass
) -> None:
    """The states measured on Slurm 22.05 map to their documented classes."""
    assert classify(state, **evidence) is expected


def test_default_policy_retries_infrastructure_not_people() -> None:
    """Defaults retry timeout, OOM, node, preemption, boot; never cancellation or dependency."""
    policy = RetryPolicy(retries=3)
    for failure in FailureClass:
        expected = failure in DEFAULT_RETRY_ON
        assert policy.retries_class(failure) is expected
    everything = RetryPolicy(retries=3, retry_on=list(FailureClass))
    assert not any(everything.retries_class(f) for f in NEVER_RETRIED)


def test_retry_on_accepts_names_and_rejects_unknown() -> None:
    """retry_on takes class names; an unknown name is a SpecError listing the classes."""
    assert RetryPolicy(retry_on=["timeout"]).retry_on == {FailureClass.TIMEOUT}
    with pytest.raises(SpecError, match="out_of_memory"):
        RetryPolicy(retry_on=["tiemout"])


# --- the retry budget ---------------------------------------------------------------------


@given(retry_policies(), st.lists(st.sampled_from(list(FailureClass)), max_size=40))
def test_attempts_never_exceed_the_maximum(policy: RetryPolicy, failures: list) -> None:
    """However failures arrive, at most max_attempts attempts are made."""
    attempts = 1
    for failure in failures:
        if not may_retry(policy, failure, attempts - 1):
            break
        attempts += 1
    assert attempts <= policy.max_attempts


# --- escalation ---------------------------------------------------------------------------


def _within(resources: AttemptResources, limits: PartitionLimits) -> bool:
    mem_ok = (
        resources.mem_mb is None
        or limits.node_mem_mb is None
        or resources.mem_mb <= limits.node_mem_mb
    )
    time_ok = (
        resources.time_min is None
        or limits.max_time_min is None
        or resources.time_min <= limits.max_time_min
    )
    return mem_ok and time_ok


@given(
    escalating_policies(),
    attempt_resources(),
    retry_limits(),
    st.lists(st.sampled_from(list(FailureClass)), max_size=12),
    st.lists(slurm_words(), min_size=1, max_size=3),
)
def test_escalated_resources_never_decrease_nor_exceed_caps(
    policy: RetryPolicy,
    start: AttemptResources,
    limits: PartitionLimits,
    failures: list,
    nodes: list,
) -> None:
    """Along any run of failures, memory and time never shrink and never pass the caps."""
    if not _within(start, limits):
        return  # the cluster would refuse the first attempt; validation catches that
    current = start
    for failure in failures:
        nxt = escalate(policy, failure, current, nodes=nodes, limits=limits)
        if isinstance(nxt, Refused):
            assert failure in (FailureClass.OUT_OF_MEMORY, FailureClass.TIMEOUT)
            break
        for field in ("mem_mb", "time_min"):
            before, after = getattr(current, field), getattr(nxt, field)
            assert (before is None) == (after is None)
            assert before is None or after >= before
        assert set(current.exclude) <= set(nxt.exclude)
        assert _within(nxt, limits)
        if failure is FailureClass.OUT_OF_MEMORY and policy.mem_factor > 1:
            assert nxt.mem_mb > current.mem_mb  # a retry after OOM always has more memory
        if failure is FailureClass.TIMEOUT and policy.time_factor > 1:
            assert nxt.time_min > current.time_min
        current = nxt


def test_oom_escalation_default_factor_and_refusal_at_the_cap() -> None:
    """256M -> 384M -> 576M; clipped to the cap; refused once at the cap, with a reason."""
    policy = RetryPolicy()
    limits = PartitionLimits(node_mem_mb=500)
    first = AttemptResources(mem_mb=256, partition="debug")
    second = escalate(policy, FailureClass.OUT_OF_MEMORY, first)
    assert second.mem_mb == 384
    assert escalate(policy, FailureClass.OUT_OF_MEMORY, second, limits=limits).mem_mb == 500
    refused = escalate(
        policy, FailureClass.OUT_OF_MEMORY, AttemptResources(mem_mb=500, partition="debug"),
        limits=limits,
    )  # fmt: skip
    assert isinstance(refused, Refused)
    assert "500M" in refused.reason and "debug" in refused.reason


def test_timeout_escalation_rounds_up_and_node_failure_excludes() -> None:
    """1 min -> 2 min (rounded up); a node failure excludes the node, once."""
    policy = RetryPolicy()
    one = AttemptResources(time_min=1)
    assert escalate(policy, FailureClass.TIMEOUT, one).time_min == 2
    nodes = escalate(policy, FailureClass.NODE_FAILURE, one, nodes=["n7"])
    assert nodes.exclude == ("n7",)
    again = escalate(policy, FailureClass.NODE_FAILURE, nodes, nodes=["n7", "n8"])
    assert again.exclude == ("n7", "n8")
    assert escalate(policy, FailureClass.USER_ERROR, one) == one


# --- sbatch that survives an unreachable controller ---------------------------------------


def test_transient_sbatch_errors_are_recognised() -> None:
    """Timeouts and an unreachable controller are transient; a bad partition is not."""
    assert is_transient("sbatch: error: Batch job submission failed: Socket timed out on send")
    assert is_transient("sbatch: error: Unable to contact slurm controller (connect failure)")
    assert not is_transient("sbatch: error: invalid partition specified: nope")


def test_squeue_token_lookup() -> None:
    """The job carrying our comment token is found in squeue's %F|%k output."""
    text = "101|other\n202|paracore-abc\n"
    assert parse_squeue_tokens(text, "paracore-abc") == "202"
    assert parse_squeue_tokens(text, "paracore-zzz") is None


class _FakeSlurm:
    """sbatch that times out N times, optionally having created the job anyway; squeue that
    does not answer its first ``squeue_down`` calls."""

    def __init__(self, failures: int, created: bool, squeue_down: int = 0) -> None:
        self.failures = failures
        self.created = created
        self.squeue_down = squeue_down
        self.sbatch_calls = 0
        self.jobs: list[str] = []

    def run(self, command, timeout_s):
        if command[0] == "squeue":
            if self.squeue_down > 0:
                self.squeue_down -= 1
                return 1, "", "squeue: error: Socket timed out on send/recv operation"
            return 0, "".join(f"{j}|tok\n" for j in self.jobs), ""
        self.sbatch_calls += 1
        if self.sbatch_calls <= self.failures:
            if self.created:
                self.jobs.append(str(500 + self.sbatch_calls))
            return 1, "", "sbatch: error: Socket timed out on send/recv operation"
        self.jobs.append(str(500 + self.sbatch_calls))
        return 0, f"Submitted batch job {self.jobs[-1]}\n", ""


@given(st.integers(0, 4), st.booleans(), st.integers(0, 2**16), st.integers(0, 4))
def test_sbatch_retry_never_duplicates(
    failures: int, created: bool, seed: int, squeue_down: int
) -> None:
    """Transient failures are retried after the given delays; a created job is never doubled,
    even when squeue does not answer either."""
    slurm = _FakeSlurm(failures, created, squeue_down)
    sleeps: list[float] = []
    rng = random.Random(seed)
    delays = [rng.uniform(0, 5) for _ in range(3)]
    code, out, err = submit_once(
        ["sbatch", "x.sh"], "tok", delays, run=slurm.run, sleep=sleeps.append, log=lambda _: None
    )
    assert len(slurm.jobs) <= 1
    if code == 0:
        assert out == f"Submitted batch job {slurm.jobs[0]}\n"
    else:
        assert "controller unreachable after" in err
    if failures == 0:
        assert code == 0 and not sleeps
    if failures <= 3 and squeue_down == 0:
        assert code == 0
    assert sleeps == list(itertools.islice(delays, len(sleeps)))


def test_sbatch_timeout_after_creating_with_squeue_down_makes_one_job() -> None:
    """The audit's case: sbatch times out having created the job, squeue fails once."""
    slurm = _FakeSlurm(failures=1, created=True, squeue_down=1)
    code, out, _err = submit_once(
        ["sbatch", "x.sh"], "tok", [1, 2, 4], run=slurm.run, sleep=lambda _: None, log=print
    )
    assert (code, out) == (0, "Submitted batch job 501\n")
    assert slurm.sbatch_calls == 1 and slurm.jobs == ["501"]


def test_sbatch_gives_up_without_submitting_blind() -> None:
    """When squeue never answers, no second sbatch is made and the error says how to look."""
    slurm = _FakeSlurm(failures=5, created=True, squeue_down=10)
    code, _out, err = submit_once(
        ["sbatch", "x.sh"], "tok", [1, 2], run=slurm.run, sleep=lambda _: None, log=print
    )
    assert code == 1 and slurm.sbatch_calls == 1
    assert "cannot be told" in err and "grep tok" in err


def test_sacct_records_keep_step_states_for_classification() -> None:
    """A job row FAILED 1:0 whose srun step ended OUT_OF_MEMORY (measured) is out of memory."""
    from paracore.backends.slurm.accounting import parse_sacct

    text = "\n".join(
        [
            "1321|retry-oom|FAILED|1:0|None|00:00:01||256M|00:05:00|debug|vm|1|s|e",
            "1321.batch|batch|FAILED|1:0||00:00:01|1088K||||vm|1|s|e",
            "1321.0|python3|OUT_OF_MEMORY|0:125||00:00:01|812K||||vm|1|s|e",
        ]
    )
    record = parse_sacct(text)["1321"]
    assert record.step_states == ("FAILED", "OUT_OF_MEMORY")
    assert record.max_rss_kb == 1088
    found = classify(
        record.state_raw,
        exit_code=record.exit_code,
        exit_signal=record.exit_signal,
        step_states=record.step_states,
    )
    assert found is FailureClass.OUT_OF_MEMORY
