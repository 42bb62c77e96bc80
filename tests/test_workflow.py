"""Workflow plans: the DAG's laws, what building a plan refuses, describe, and plans run on
this machine (the local and in-process backends) with failures, resume and results."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import time
from pathlib import Path

import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paracore as pc
from paracore.core.plan_graph import (
    Cost,
    critical_path,
    downstream,
    format_minutes,
    graph_of,
    node_minutes,
    topological_order,
    total_cost,
)
from paracore.shell import config_files
from paracore.shell.session import current_session
from paracore.workflow import resolve_plan
from tests.strategies import plan_trees
from tests.workflow_steps import add, fail_until, make, noop, square_all, times


def meet(mine: str, other: str) -> bool:
    """Leave a mark, then wait (bounded) for the other branch's: only runs at once pass."""
    Path(mine).touch()
    deadline = time.monotonic() + 60
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never appeared: the branches did not run at once")
        time.sleep(0.05)
    return True


def _minutes(graph: object) -> dict[str, float]:
    return {s.name: float(dict(s.resources)["time_min"]) for s in graph.steps}  # type: ignore[attr-defined]


def _paths(graph: object) -> list[list[str]]:
    """Every path from a step without parents to a step without children (brute force)."""
    out: list[list[str]] = []

    def walk(path: list[str]) -> None:
        children = graph.children(path[-1])  # type: ignore[attr-defined]
        if not children:
            out.append(path)
        for child in children:
            walk([*path, child])

    for name in graph.order:  # type: ignore[attr-defined]
        if not graph.parents[name]:  # type: ignore[attr-defined]
            walk([name])
    return out


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the test's own folder, so logs and result files land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- laws


@given(plan_trees())
def test_topological_order_respects_every_edge(tree: object) -> None:
    """Every step comes after all of its parents, and every step comes exactly once."""
    graph = graph_of("p", tree)  # type: ignore[arg-type]
    position = {name: i for i, name in enumerate(graph.order)}
    assert sorted(graph.order) == sorted(s.name for s in graph.steps)
    for child, parents in graph.parents.items():
        assert all(position[p] < position[child] for p in parents)


@given(plan_trees())
def test_critical_path_is_the_longest_path(tree: object) -> None:
    """The critical path's total is the longest path found by walking every path, and the
    path itself follows edges from a root."""
    graph = graph_of("p", tree)  # type: ignore[arg-type]
    minutes = _minutes(graph)
    total, path = critical_path(graph, minutes)
    assert total == max(sum(minutes[n] for n in p) for p in _paths(graph))
    assert sum(minutes[n] for n in path) == total
    assert not graph.parents[path[0]]
    assert all(a in graph.parents[b] for a, b in itertools.pairwise(path))


@given(plan_trees(with_after=False))
def test_tree_estimate_equals_critical_path_without_extra_edges(tree: object) -> None:
    """For a pure Chain/Parallel tree, planit's estimate (chains add, groups take their
    longest child) is the critical path."""
    graph = graph_of("p", tree)  # type: ignore[arg-type]
    minutes = _minutes(graph)
    assert node_minutes(tree, minutes) == critical_path(graph, minutes)[0]  # type: ignore[arg-type]


@given(plan_trees(), st.integers(min_value=1, max_value=50))
def test_costs_add_up(tree: object, tasks: int) -> None:
    """The plan's cost is the sum of its steps'; the critical path's is part of it; a map of
    n tasks costs n single tasks."""
    graph = graph_of("p", tree)  # type: ignore[arg-type]
    minutes = _minutes(graph)
    costs = {
        s.name: Cost.of(
            1, minutes[s.name], dict(s.resources)["cpus_per_task"], dict(s.resources)["gpus"]
        )
        for s in graph.steps
    }
    whole = total_cost(costs, costs)
    assert whole.core_hours == pytest.approx(sum(c.core_hours for c in costs.values()))
    assert whole.gpu_hours == pytest.approx(sum(c.gpu_hours for c in costs.values()))
    on_path = total_cost(costs, critical_path(graph, minutes)[1])
    assert on_path.core_hours <= whole.core_hours + 1e-9
    one = Cost.of(1, 90, 4, 1)
    assert Cost.of(tasks, 90, 4, 1).core_hours == pytest.approx(tasks * one.core_hours)
    assert Cost.of(tasks, 90, 4, 1).gpu_hours == pytest.approx(tasks * one.gpu_hours)


@settings(max_examples=15, deadline=None)
@given(plan_trees(max_steps=5))
def test_describe_and_submit_leave_the_plan_unchanged(tree: object) -> None:
    """A plan is a value: describing and running it changes neither it nor its pickle."""
    plan = pc.Plan("p", tree)  # type: ignore[arg-type]
    before = cloudpickle.dumps(plan)
    plan.describe(show=False)
    plan.submit(backend="inprocess").wait(timeout=60)
    assert plan == pc.Plan("p", tree)  # type: ignore[arg-type]
    assert cloudpickle.dumps(plan) == before


def test_downstream_is_everything_that_waits_on_a_step() -> None:
    """downstream() follows chains, groups and extra edges, in topological order."""
    tree = pc.Chain(
        pc.Step("a", noop),
        pc.Parallel(pc.Step("b", noop), pc.Step("c", noop)),
        pc.Step("d", noop),
    )
    graph = graph_of("p", pc.Parallel(tree, pc.Step("e", noop).with_after("b")))
    assert downstream(graph, ["b"]) == ("d", "e")
    assert downstream(graph, ["a"]) == ("b", "c", "d", "e")
    assert downstream(graph, ["d"]) == ()


def test_topological_order_breaks_ties_by_written_order() -> None:
    """Independent steps keep the order they were written in."""
    assert topological_order(["x", "y", "z"], {"x": (), "y": (), "z": ("x",)}) == ("x", "y", "z")
    assert format_minutes(90) == "01:30:00"
    assert format_minutes(25 * 60) == "1-01:00:00"


# ---------------------------------------------------------------- building a plan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: pc.Plan("p", pc.Chain(pc.Step("a", noop), pc.Step("a", noop))),
            "two steps are called 'a'",
        ),
        (lambda: pc.Chain(), r"empty Chain\(\)"),
        (lambda: pc.Parallel(), r"empty Parallel\(\)"),
        (
            lambda: pc.Plan(
                "p", pc.Chain(pc.Step("train", noop), pc.Step("x", noop).with_after("trian"))
            ),
            "no step 'trian'; did you mean 'train'",
        ),
        (
            lambda: pc.Plan(
                "p",
                pc.Parallel(pc.Step("a", noop).with_after("b"), pc.Step("b", noop).with_after("a")),
            ),
            "cycle: (a -> b -> a|b -> a -> b)",
        ),
        (
            lambda: pc.Plan(
                "p",
                pc.Chain(
                    pc.Step.command("fetch", "true"), pc.Step("use", noop, None, pc.Result("fetch"))
                ),
            ),
            "'fetch' is a shell command and returns nothing",
        ),
        (
            lambda: pc.Plan("p", pc.Step("use", noop, None, pc.Result("trian"))),
            "no step 'trian'",
        ),
        (lambda: pc.Step("x", "not callable"), "is not callable"),
        (lambda: pc.Step.map("m", times, []), "at least one item"),
        (lambda: pc.Step.map("m", times, "abc"), "not one string"),
        (lambda: pc.Step("x", noop, 42), "expected a mapping of keywords"),
        (lambda: pc.Step.command("x", "  "), "non-empty shell command"),
        (lambda: pc.Plan("", pc.Step("x", noop)), "plan name"),
    ],
)
def test_bad_plans_are_refused_when_built(build: object, message: str) -> None:
    """Duplicate or unknown names, cycles, empty groups and bad steps fail at once, saying
    what is wrong."""
    with pytest.raises(pc.PlanError, match=message):
        build()  # type: ignore[operator]


def test_a_result_argument_makes_its_step_wait() -> None:
    """A step taking Result('a') waits for 'a' even when written beside it."""
    plan = pc.Plan(
        "p",
        pc.Parallel(pc.Step("a", make, None, 3), pc.Step("b", square_all, None, pc.Result("a"))),
    )
    assert plan.graph.parents == {"a": (), "b": ("a",)}


def test_resources_take_the_seed_keywords_and_planits_spellings() -> None:
    """planit's time string and gpus_per_node, and the seed API's keywords, set the spec; a
    misspelt keyword names the closest one."""
    gpu = {"time": "02:00:00", "partition": "gpu", "gpus_per_node": 1, "cpus_per_task": 18}
    plan = pc.Plan("p", pc.Chain(pc.Step("train", noop, gpu), pc.Step("eval", noop, {"mem_gb": 3})))
    specs = plan.specs()
    assert specs["train"].resources.time_min == 120
    assert specs["train"].resources.gpus == 1
    assert specs["train"].resources.partition == "gpu"
    assert specs["train"].name == "p.train"
    assert specs["eval"].resources.mem_mb == 3 * 1024
    assert specs["eval"].resources.time_min == 60  # the built-in default shows
    bad = pc.Plan("p", pc.Step("x", noop, {"partiton": "gpu"}))
    with pytest.raises(pc.KeywordError, match="did you mean 'partition'"):
        bad.describe(show=False)


def test_resources_may_be_a_preset_or_a_jobspec() -> None:
    """A transform and a JobSpec give a step its settings; the step's name still applies."""
    preset = pc.preset(pc.with_resources(time_min=15, cpus_per_task=2))
    spec = pc.with_resources(time_min=45, mem="3G", spec=pc.JobSpec.command("true"))
    plan = pc.Plan("p", pc.Chain(pc.Step("a", noop, preset), pc.Step("b", noop, spec)))
    specs = plan.specs()
    assert (specs["a"].resources.time_min, specs["a"].resources.cpus_per_task) == (15, 2)
    assert (specs["b"].resources.time_min, specs["b"].resources.mem_mb) == (45, 3072)
    assert specs["b"].name == "p.b"


# ---------------------------------------------------------------- describe

CPU = {"time": "01:00:00", "cpus_per_task": 8}
GPU = {"time": "02:00:00", "gpus_per_node": 1, "cpus_per_task": 18}

THESIS = pc.Plan(
    "thesis",
    pc.Chain(
        pc.Step("download_data", noop, CPU),
        pc.Parallel(
            pc.Chain(
                pc.Step("preprocess_en", noop, CPU, "en"),
                pc.Parallel(
                    pc.Step("train_bert", noop, GPU, "bert", epochs=10, lr=3e-5),
                    pc.Step("train_roberta", noop, GPU, "roberta", epochs=5),
                    pc.Chain(
                        pc.Step("hyperparam_search", noop, GPU, "xlm-r"),
                        pc.Step("train_xlm-r", noop, GPU, "xlm-r"),
                    ),
                ),
            ),
            pc.Chain(
                pc.Step("preprocess_nl", noop, CPU, "nl"),
                pc.Step("train_nl", noop, GPU, "nl"),
            ),
        ),
        pc.Step("evaluate_all", noop, CPU),
        pc.Step("generate_plots", noop, CPU),
    ),
)


def test_describe_shows_planits_thesis_example_with_its_critical_path_and_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """planit's thesis plan: 8 hours on the critical path, which is marked; 220 core-hours
    and 10 GPU-hours requested, 104 and 4 of them on the critical path."""
    found = THESIS.describe()
    printed = capsys.readouterr().out
    assert printed.strip() == found.text
    lines = found.text.splitlines()
    assert lines[:3] == [
        "Plan: thesis",
        "└── ▼ Chain [08:00:00]",
        "    ├── ● download_data [01:00:00]  8 cpus, 2G *",
    ]
    assert "    ├── ⇉ Parallel [05:00:00]" in lines
    assert "    │   │       ├── ● train_bert [02:00:00]  18 cpus, 1 gpu, 2G" in lines
    assert "    │   │           └── ● train_xlm-r [02:00:00]  18 cpus, 1 gpu, 2G *" in lines
    assert found.critical_path == (
        "download_data",
        "preprocess_en",
        "hyperparam_search",
        "train_xlm-r",
        "evaluate_all",
        "generate_plots",
    )
    assert found.total_minutes == 8 * 60
    assert "Time Estimate (not taking queuing into account): 08:00:00" in lines
    assert (found.cost.core_hours, found.cost.gpu_hours) == (220, 10)
    assert (found.critical_cost.core_hours, found.critical_cost.gpu_hours) == (104, 4)
    assert lines[-1] == (
        "Requested: 220.0 core-hours, 10.0 GPU-hours; "
        "on the critical path: 104.0 core-hours, 4.0 GPU-hours"
    )


def test_describe_takes_a_profiles_defaults(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values come from the resolved configuration: a project file's walltime shows."""
    (here / "paracore.yaml").write_text(
        "active_cluster: lab\nclusters:\n  lab:\n    slurm:\n      time_min: 30\n"
        "      cpus_per_task: 2\n"
    )
    plan = pc.Plan("p", pc.Chain(pc.Step("a", noop), pc.Step("b", noop, {"time_min": 90})))
    found = plan.describe(show=False)
    assert found.minutes == {"a": 30, "b": 90}
    assert found.total_minutes == 120
    assert found.cost.core_hours == pytest.approx(2 * 2)


def test_a_plan_reads_the_configuration_only_through_resolve_plan(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given resolve_plan's reading, describe, specs and checked read no file; without it,
    each reads the files as they are now."""
    project = here / "paracore.yaml"
    project.write_text("active_cluster: lab\nclusters:\n  lab:\n    slurm:\n      time_min: 30\n")
    plan = pc.Plan("p", pc.Chain(pc.Step("a", noop), pc.Step("b", noop, {"time_min": 90})))
    resolved = resolve_plan(plan)
    project.write_text("active_cluster: lab\nclusters:\n  lab:\n    slurm:\n      time_min: 45\n")
    assert plan.describe(show=False).minutes == {"a": 45, "b": 90}

    def unread(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a configuration file was read")

    monkeypatch.setattr(config_files, "load_layers", unread)
    assert plan.describe(show=False, resolved=resolved).minutes == {"a": 30, "b": 90}
    assert plan.specs(resolved=resolved)["a"].resources.time_min == 30
    checked = plan.checked(backend="inprocess", validate=False, resolved=resolved)
    assert {name: b.name for name, (_s, b) in checked.items()} == {
        "a": "inprocess",
        "b": "inprocess",
    }
    assert checked["a"][0].resources.time_min == 30


# ---------------------------------------------------------------- runs on this machine

SMALL = {"time_min": 5, "mem_gb": 0.5}


def _results_plan() -> pc.Plan:
    return pc.Plan(
        "results",
        pc.Chain(
            pc.Step("make", make, SMALL, 4),
            pc.Parallel(
                pc.Step("squares", square_all, SMALL, pc.Result("make")),
                pc.Step.map("tripled", times, [1, 2, 3], SMALL, k=3),
                pc.Step.command("hello", "echo hello", SMALL),
            ),
            pc.Step("total", add, SMALL, pc.Result("squares"), *[pc.Result("tripled")]),
            pc.Step(
                "nested",
                lambda d: d["m"][0] + len(d["t"]),
                SMALL,
                {"m": [pc.Result("total")], "t": pc.Result("tripled")},
            ),
        ),
    )


@pytest.mark.parametrize("backend", ["local", "inprocess"])
def test_results_pass_between_steps(here: Path, backend: str) -> None:
    """A step gets upstream return values (a list for a map step, inside lists and dicts
    too); wait() returns every step's result."""
    results = _results_plan().submit(backend=backend).wait(timeout=120)
    assert results["make"] == [0, 1, 2, 3]
    assert results["squares"] == [0, 1, 4, 9]
    assert results["tripled"] == [3, 6, 9]
    assert results["hello"].stdout == "hello\n"
    assert results["total"] == 14 + 18
    assert results["nested"] == 32 + 3


def test_parallel_branches_run_at_once_on_this_machine(here: Path) -> None:
    """On the local backend, the two branches of a Parallel run at the same time (each
    waits for the other's mark), after their common parent."""
    a, b = str(here / "a.mark"), str(here / "b.mark")
    plan = pc.Plan(
        "meet",
        pc.Chain(
            pc.Step("start", noop, SMALL),
            pc.Parallel(pc.Step("left", meet, SMALL, a, b), pc.Step("right", meet, SMALL, b, a)),
        ),
    )
    run = plan.submit(backend="local")
    assert run.how == {"start": "submitted", "left": "waiting", "right": "waiting"}
    assert run.wait(timeout=120) == {"start": None, "left": True, "right": True}


def _failing_plan(marker: Path, time_min: int = 5) -> pc.Plan:
    small = {"time_min": 5, "mem_gb": 0.5}
    return pc.Plan(
        "failing",
        pc.Chain(
            pc.Step("prep", make, small, 2),
            pc.Parallel(
                pc.Step("bad", fail_until, {**small, "time_min": time_min}, str(marker)),
                pc.Step("side", make, small, 3),
            ),
            pc.Step("after", noop, small),
            pc.Step("last", noop, small),
        ),
    )


def test_a_failed_step_names_itself_and_what_will_not_run(here: Path) -> None:
    """wait() raises StepFailedError naming the step, with its own exception type and
    message, listing the steps downstream; they are never submitted, the others finish."""
    run = _failing_plan(here / "fixed").submit(backend="local")
    with pytest.raises(pc.StepFailedError) as raised:
        run.wait(timeout=120)
    error = raised.value
    assert error.step == "bad"
    assert error.not_run == ("after", "last")
    assert error.exc_type == "builtins.ValueError"
    assert error.exc_message == "no fixed yet"
    assert isinstance(error.__cause__, pc.RemoteError)
    assert "step 'bad' failed" in str(error)
    assert "will not run: after, last" in str(error)
    assert run["side"].result(timeout=60) == [0, 1, 2]
    status = {row.step: row.state for row in run.status().rows}
    assert status == {
        "prep": "succeeded",
        "bad": "failed",
        "side": "succeeded",
        "after": "not run",
        "last": "not run",
    }
    assert run.run_ids["after"] is None


def test_resubmitting_runs_only_the_failed_step_and_its_downstream(here: Path) -> None:
    """After the fix, the same plan again re-uses what completed and submits the failed
    step and everything after it; once more, nothing is submitted."""
    marker = here / "fixed"
    first = _failing_plan(marker).submit(backend="local")
    with pytest.raises(pc.StepFailedError):
        first.wait(timeout=120)
    assert first["side"].result(timeout=120) == [0, 1, 2]  # the branch beside bad has ended
    store = current_session().store()
    runs_before = len(store.runs())
    marker.touch()
    second = _failing_plan(marker).submit(backend="local")
    assert second.wait(timeout=120)["bad"] == "fixed"
    assert second.how["prep"] == "reused" and second.how["side"] == "reused"
    assert second.how["bad"] == "submitted"
    assert second.run_ids["prep"] == first.run_ids["prep"]
    assert len(store.runs()) == runs_before + 3  # bad, after, last
    third = _failing_plan(marker).submit(backend="local")
    assert set(third.how.values()) == {"reused"}
    assert len(store.runs()) == runs_before + 3
    assert third.wait(timeout=60)["side"] == [0, 1, 2]


def test_a_changed_step_runs_again_with_its_downstream(here: Path) -> None:
    """A step whose definition changed does not count as completed, nor does anything after
    it; resume='never' submits everything."""
    marker = here / "fixed"
    marker.touch()
    _failing_plan(marker).submit(backend="local").wait(timeout=120)
    changed = _failing_plan(marker, time_min=7).submit(backend="local")
    changed.wait(timeout=120)
    assert changed.how == {
        "prep": "reused",
        "bad": "submitted",
        "side": "reused",
        "after": "submitted",
        "last": "submitted",
    }
    fresh = _failing_plan(marker).submit(backend="local", resume="never")
    assert set(fresh.how.values()) <= {"submitted", "waiting"}
    fresh.wait(timeout=120)
    recorded = current_session().store().latest_plan("failing", "local")
    assert recorded is not None and recorded.id == fresh.plan_id
    assert {row.step: row.run_id for row in recorded.steps} == fresh.run_ids


def test_cancel_stops_the_plan_and_its_waiting_steps(here: Path) -> None:
    """cancel() cancels what runs and keeps what waits from ever being submitted; wait()
    then says which steps did not run."""
    gate = here / "never"
    plan = pc.Plan(
        "cancelled",
        pc.Chain(
            pc.Step("blocked", meet, SMALL, str(here / "mine"), str(gate)),
            pc.Step("after", noop, SMALL),
        ),
    )
    run = plan.submit(backend="local")
    deadline = time.monotonic() + 60
    while not (here / "mine").exists():  # the step has started
        assert time.monotonic() < deadline, "the first step never started"
        time.sleep(0.05)
    run.cancel()
    with pytest.raises(pc.StepFailedError, match="was cancelled") as raised:
        run.wait(timeout=60)
    assert raised.value.not_run == ("blocked", "after")
    assert run.run_ids["after"] is None
    assert {row.step: row.state for row in run.status().rows} == {
        "blocked": "failed",
        "after": "not run",
    }
    assert not os.path.exists(gate)


def test_submitting_again_while_a_step_runs_attaches_to_it(here: Path) -> None:
    """A plan submitted again while its first step still runs re-attaches to that step
    (no second job); the steps after it are submitted once, when it succeeded."""
    gate = here / "gate"
    plan = pc.Plan(
        "inflight",
        pc.Chain(
            pc.Step("slow", meet, SMALL, str(here / "started"), str(gate)),
            pc.Step("after", make, SMALL, 2),
        ),
    )
    first = plan.submit(backend="local")
    deadline = time.monotonic() + 60
    while not (here / "started").exists():  # the step has started
        assert time.monotonic() < deadline, "the first step never started"
        time.sleep(0.05)
    second = plan.submit(backend="local")
    assert second.how == {"slow": "attached", "after": "waiting"}
    assert second.run_ids["slow"] == first.run_ids["slow"]
    gate.touch()
    assert second.wait(timeout=120) == {"slow": True, "after": [0, 1]}
    names = sorted(r.name for r in current_session().store().runs())
    assert names == ["inflight.after", "inflight.slow"]


# ---------------------------------------------------------------- planit's ways


class MailType(enum.Enum):
    """As planit's MailType."""

    BEGIN = "BEGIN"
    END = "END"
    FAIL = "FAIL"


@dataclasses.dataclass
class SlurmArgs:
    """The fields of planit's SlurmArgs (a dataclass), for porting its plans."""

    time: str
    partition: str
    gpus_per_node: int = 0
    nodes: int = 1
    cpus_per_task: int | None = None
    cpus_per_gpu: int | None = None
    mem_gb: int | None = None
    account: str | None = None
    mail_type: list[MailType] = dataclasses.field(default_factory=list)
    mail_user: str | None = None


def test_a_step_with_a_bad_time_fails_when_built_naming_the_step() -> None:
    """planit's 'not-a-time' fails at Step(...), naming the step and what is accepted."""
    with pytest.raises(pc.PlanError, match=r"step 'train': resources\['time'\]='not-a-time'"):
        pc.Step("train", noop, {"time": "not-a-time"})
    with pytest.raises(pc.PlanError, match="step 'raw'"):
        pc.Step("raw", noop, {"slurm_time": "soon"})


def test_planits_slurmargs_fields_reach_the_batch_script() -> None:
    """mail_type, mail_user, nodes and cpus_per_gpu of a SlurmArgs become #SBATCH lines."""
    args = SlurmArgs(
        time="03:00:00",
        partition="gpu",
        gpus_per_node=1,
        nodes=2,
        cpus_per_gpu=18,
        mail_type=[MailType.BEGIN, MailType.END, MailType.FAIL],
        mail_user="me@university.edu",
    )
    spec = pc.Plan("p", pc.Step("train", noop, args)).specs()["train"]
    assert (spec.resources.time_min, spec.resources.gpus, spec.resources.partition) == (
        180,
        1,
        "gpu",
    )
    script = pc.preview(spec)
    for line in (
        "--mail-type=BEGIN,END,FAIL",
        "--mail-user=me@university.edu",
        "--nodes=2",
        "--cpus-per-gpu=18",
    ):
        assert f"#SBATCH {line}" in script


def test_planits_raw_submitit_dict_is_a_steps_resources() -> None:
    """slurm_time, slurm_partition, gpus_per_node and slurm_additional_parameters are read as
    planit passes them to submitit; durations come from slurm_time."""
    raw = {
        "slurm_time": "02:00:00",
        "slurm_partition": "gpu_v100",
        "gpus_per_node": 1,
        "slurm_additional_parameters": {"account": "my-account", "cpus_per_gpu": 4},
    }
    plan = pc.Plan("p", pc.Step("train", noop, raw))
    spec = plan.specs()["train"]
    assert (spec.resources.time_min, spec.resources.partition, spec.resources.gpus) == (
        120,
        "gpu_v100",
        1,
    )
    assert dict(spec.resources.extra) == {"account": "my-account", "cpus-per-gpu": 4}
    assert plan.describe(show=False).total_minutes == 120


def test_an_empty_group_is_refused_saying_why() -> None:
    """An empty Chain() or Parallel() is refused with the reason (planit counts it as 0)."""
    with pytest.raises(pc.PlanError, match="planit does"):
        pc.Plan("p", pc.Chain(pc.Step("a", noop), pc.Parallel()))


def test_plan_submit_takes_a_submitit_executor(here: Path) -> None:
    """plan.submit(executor), as in planit: cluster='debug' runs in this process, and the
    executor's folder holds the logs."""
    import submitit

    plan = pc.Plan("ported", pc.Chain(pc.Step("one", times, None, 2, 3), pc.Step("two", noop)))
    debug = submitit.AutoExecutor(folder=str(here / "debug_logs"), cluster="debug")
    assert plan.submit(debug).wait(timeout=60) == {"one": 6, "two": None}
    local = submitit.AutoExecutor(folder=str(here / "slurm_logs"), cluster="local")
    run = plan.submit(local, resume="never")
    assert run.wait(timeout=120) == {"one": 6, "two": None}
    assert (here / "slurm_logs" / "ported.one").is_dir()
    with pytest.raises(pc.PlanError, match="not both"):
        plan.submit(local, backend="local")
