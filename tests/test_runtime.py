"""Tests for paracore.runtime.tasks: the environment policy and the tasks that run inside a job."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paracore.runtime.tasks import (
    CallTask,
    CommandFailed,
    CommandResult,
    CommandTask,
    SetupFailed,
    compose_environment,
    run_setup,
)
from tests.strategies import env_names, env_values

_KEPT = ("SLURM_", "SUBMITIT_")


def environments() -> st.SearchStrategy[dict[str, str]]:
    """Process environments: ordinary variables mixed with the job's SLURM_/SUBMITIT_ ones."""
    names = st.one_of(
        env_names(),
        env_names().map(lambda n: "SLURM_" + n),
        env_names().map(lambda n: "SUBMITIT_" + n),
    )
    return st.dictionaries(names, env_values(), max_size=8)


@pytest.fixture(autouse=True)
def _outside_submitit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run tasks as if outside a submitit job (so they write no failure records)."""
    monkeypatch.delenv("SUBMITIT_FOLDER", raising=False)


# --- compose_environment ------------------------------------------------------------------


def after_setup(
    current: dict[str, str], changes: dict[str, str], unset: set[str]
) -> dict[str, str]:
    """The environment a setup line leaves when it ran in ``current``."""
    return {**{k: v for k, v in current.items() if k not in unset}, **changes}


def setups() -> st.SearchStrategy[tuple[dict[str, str], set[str]]]:
    """What a setup line does: variables it sets, and names it unsets."""
    return st.tuples(environments(), st.sets(env_names(), max_size=3))


@given(environments(), environments())
def test_without_setup_inherit_keeps_everything_and_overlay_wins(current, overlay) -> None:
    """inherit keeps every variable and the overlay wins."""
    assert compose_environment(current, "inherit", overlay) == {**current, **overlay}


@given(environments(), environments(), setups())
def test_inherit_with_setup_is_the_setup_result_plus_overlay(current, overlay, setup) -> None:
    """inherit gives exactly what the setup line left, then the overlay on top."""
    changes, unset = setup
    setup_env = after_setup(current, changes, unset)
    env = compose_environment(current, "inherit", overlay, setup_env)
    assert env == {**setup_env, **overlay}


@given(environments(), environments(), setups())
def test_replace_keeps_job_variables_setup_changes_and_overlay(current, overlay, setup) -> None:
    """replace keeps SLURM_*/SUBMITIT_*, what the setup changed, and the overlay; no more."""
    changes, unset = setup
    setup_env = after_setup(current, changes, unset)
    env = compose_environment(current, "replace", overlay, setup_env)
    kept = {k: v for k, v in current.items() if k.startswith(_KEPT) and k in setup_env}
    changed = {k: v for k, v in setup_env.items() if current.get(k) != v}
    assert env == {**kept, **changed, **overlay}
    inherited_only = {k for k in current if not k.startswith(_KEPT)} - changed.keys()
    assert not (inherited_only - overlay.keys()) & env.keys()


@given(environments(), environments(), setups())
def test_setup_is_applied_before_overlay(current, overlay, setup) -> None:
    """Where setup and overlay set the same variable, the overlay's value is the one used."""
    changes, unset = setup
    setup_env = after_setup(current, changes, unset)
    for merge in ("inherit", "replace"):
        env = compose_environment(current, merge, overlay, setup_env)
        for key, value in changes.items():
            if merge == "replace" and current.get(key) == value:
                continue  # setting a variable to its inherited value is no visible change
            assert env[key] == overlay.get(key, value)


@given(environments(), environments())
def test_compose_does_not_mutate_inputs(current, overlay) -> None:
    """compose_environment returns a new mapping and leaves its inputs alone."""
    before = (dict(current), dict(overlay))
    env = compose_environment(current, "inherit", overlay)
    env["__NEW__"] = "x"
    assert (current, overlay) == before


# --- run_setup ----------------------------------------------------------------------------


def test_run_setup_returns_exported_variables() -> None:
    """Variables exported by the setup line appear in the returned environment."""
    env = run_setup("export FOO=1; export BAR='a b'", {"PATH": os.environ["PATH"], "KEEP": "k"})
    assert env["FOO"] == "1"
    assert env["BAR"] == "a b"
    assert env["KEEP"] == "k"
    assert "__rc" not in env


def test_run_setup_sees_the_given_environment() -> None:
    """The setup line runs in the environment it is given, not in os.environ."""
    env = run_setup('export OUT="$IN-x"', {"PATH": os.environ["PATH"], "IN": "given"})
    assert env["OUT"] == "given-x"


@pytest.mark.parametrize("line", ["false", "exit 3", "no_such_command_paracore_xyz"])
def test_run_setup_raises_on_failing_line(line: str) -> None:
    """A failing setup line raises SetupFailed with its exit code."""
    with pytest.raises(SetupFailed, match="exit code"):
        run_setup(line, dict(os.environ))


# --- CommandTask --------------------------------------------------------------------------


def test_command_task_returns_output() -> None:
    """A command returns its stdout, stderr and exit code 0."""
    result = CommandTask("echo out; echo err >&2")()
    assert result == CommandResult(0, "out\n", "err\n")
    assert result.ok


def test_command_task_raises_on_nonzero_exit() -> None:
    """A non-zero exit raises CommandFailed carrying the result (code and stderr)."""
    with pytest.raises(CommandFailed) as info:
        CommandTask("echo partial; echo broken >&2; exit 7")()
    result = info.value.result
    assert (result.returncode, result.stdout, result.stderr) == (7, "partial\n", "broken\n")
    assert not result.ok
    assert "7" in str(info.value)


def test_command_task_sees_overlay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlay variables are visible to the command and win over inherited ones."""
    monkeypatch.setenv("FOO", "inherited")
    monkeypatch.setenv("OTHER", "kept")
    result = CommandTask('echo "$FOO $OTHER"', overlay=(("FOO", "overlay"),))()
    assert result.stdout == "overlay kept\n"


def test_command_task_replace_drops_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """With replace the command sees the overlay and SLURM_* variables, not the rest."""
    monkeypatch.setenv("FOO", "inherited")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    task = CommandTask(
        'echo "[$FOO] [$BAR] [$SLURM_JOB_ID]"', merge="replace", overlay=(("BAR", "b"),)
    )
    assert task().stdout == "[] [b] [4242]\n"


def test_command_task_runs_setup_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables exported by the setup line are visible, and the overlay still wins."""
    monkeypatch.delenv("FOO", raising=False)
    task = CommandTask(
        'echo "$FOO $BAR"', setup="export FOO=1 BAR=setup", overlay=(("BAR", "overlay"),)
    )
    assert task().stdout == "1 overlay\n"


def test_command_task_failing_setup_raises() -> None:
    """A failing setup line stops the task with SetupFailed before the command runs."""
    with pytest.raises(SetupFailed):
        CommandTask("echo never", setup="exit 5")()


def test_command_task_replace_with_setup_drops_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """With replace and a setup line the command still does not see inherited variables."""
    monkeypatch.setenv("FOO", "inherited")
    task = CommandTask('echo "[$FOO] [$SET]"', merge="replace", setup="export SET=s")
    assert task().stdout == "[] [s]\n"


def test_setup_line_can_unset_an_inherited_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable the setup line unsets is gone for the payload too."""
    monkeypatch.setenv("FOO", "inherited")
    task = CommandTask('echo "[${FOO-gone}]"', setup="unset FOO")
    assert task().stdout == "[gone]\n"


# --- CallTask -----------------------------------------------------------------------------


def read_env(*names: str) -> dict[str, str | None]:
    """Top-level helper: the values of ``names`` in os.environ at call time."""
    return {name: os.environ.get(name) for name in names}


def raise_key_error(key: str) -> None:
    """Top-level helper that raises KeyError."""
    raise KeyError(key)


def test_call_task_applies_env_during_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The overlay is in os.environ during the call, and os.environ is restored afterwards."""
    monkeypatch.setenv("FOO", "before")
    monkeypatch.delenv("BAR", raising=False)
    before = dict(os.environ)
    task = CallTask.pack(read_env, ("FOO", "BAR"), overlay=(("FOO", "during"), ("BAR", "b")))
    assert task() == {"FOO": "during", "BAR": "b"}
    assert dict(os.environ) == before


def test_call_task_replace_hides_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    """With replace the call sees only SLURM_* variables and the overlay."""
    monkeypatch.setenv("FOO", "inherited")
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    before = dict(os.environ)
    task = CallTask.pack(
        read_env, ("FOO", "SLURM_JOB_ID", "BAR"), merge="replace", overlay=(("BAR", "b"),)
    )
    assert task() == {"FOO": None, "SLURM_JOB_ID": "1", "BAR": "b"}
    assert dict(os.environ) == before


def test_call_task_restores_env_when_call_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raising call propagates its exception and still restores os.environ."""
    before = dict(os.environ)
    with pytest.raises(KeyError, match="missing"):
        CallTask.pack(raise_key_error, ("missing",), overlay=(("FOO", "during"),))()
    assert dict(os.environ) == before


def echo_args(*args: object, **kwargs: object) -> tuple:
    """Top-level helper returning what it was called with."""
    return args, kwargs


def test_call_task_passes_args_and_kwargs() -> None:
    """Positional arguments and keyword pairs reach the function as given."""
    task = CallTask.pack(echo_args, (1, [2]), (("a", 3), ("b", None)))
    assert task() == ((1, [2]), {"a": 3, "b": None})
