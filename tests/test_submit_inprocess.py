"""End-to-end submission without Slurm: the inprocess backend and submitit's local executor."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from toolz import pipe

from paracore import (
    CommandFailedError,
    JobSpec,
    RemoteError,
    SpecError,
    map_cmds,
    map_func,
    run_cmd,
    submit,
    submit_map,
    with_backend,
    with_env,
    with_log_dir,
    with_retries,
)
from paracore.core.resolved import resolve_spec
from paracore.core.spec import Call
from paracore.shell.checks import prepare_task
from paracore.shell.session import Session, use_session
from paracore.shell.submit import backend_for, detect_backend
from tests.strategies import double

TIMEOUT = 120  # seconds; a bound for local-executor waits, never reached when things work


def lookup(key: str) -> str:
    """Top-level function that raises KeyError for any key but 'known'."""
    return {"known": "value"}[key]


def flaky(counter: str) -> str:
    """Top-level function that fails on its first call and succeeds afterwards.

    The call count lives in the file ``counter``, so it survives across attempts.
    """
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls == 1:
        raise RuntimeError("first call fails")
    return f"ok after {calls} calls"


def _results(handles: list) -> list:
    return [h.result(timeout=TIMEOUT) for h in handles]


@pytest.fixture
def local_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path and return the log directory local-backend tests should use."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARACORE_BACKEND", raising=False)
    return tmp_path / "logs"


def _nothing_under(path: Path) -> bool:
    return not path.exists() or not any(path.rglob("*"))


# --- inprocess backend --------------------------------------------------------------------


def test_run_cmd_inprocess() -> None:
    """run_cmd returns the command's CommandResult."""
    result = run_cmd("echo hello; echo there >&2", backend="inprocess").result(timeout=TIMEOUT)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "there\n")


def test_map_cmds_inprocess_in_input_order() -> None:
    """map_cmds results come back in input order."""
    handles = map_cmds([f"echo {i}" for i in range(5)], backend="inprocess")
    assert [r.stdout for r in _results(handles)] == [f"{i}\n" for i in range(5)]
    assert [h.array_index for h in handles] == list(range(5))


def test_map_func_inprocess_in_input_order() -> None:
    """map_func calls fn(item) for every item; results in input order."""
    items = [3, -1, 10, 0]
    assert _results(map_func(double, items, backend="inprocess")) == [2 * i for i in items]


def test_empty_maps_submit_nothing() -> None:
    """Mapping over nothing returns no handles."""
    assert map_cmds([], backend="inprocess") == []
    assert map_func(double, [], backend="inprocess") == []


def test_core_submit_with_backend_transform() -> None:
    """submit(with_backend('inprocess')) runs the spec's call and applies its env overlay."""
    spec = pipe(
        JobSpec.command("echo $GREETING"), with_backend("inprocess"), with_env({"GREETING": "hi"})
    )
    assert submit(spec).result(timeout=TIMEOUT).stdout == "hi\n"
    calls = submit_map(with_backend("inprocess", JobSpec.call(double, 0)), [Call(double, (4,))])
    assert _results(calls) == [8]


def test_failing_command_inprocess() -> None:
    """A failing command raises CommandFailedError with its exit code and stderr tail."""
    handle = run_cmd("echo to-stdout; echo went wrong >&2; exit 3", backend="inprocess")
    with pytest.raises(CommandFailedError) as info:
        handle.result(timeout=TIMEOUT)
    assert info.value.returncode == 3
    assert "went wrong" in info.value.stderr_tail
    assert "went wrong" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_failing_call_inprocess_keeps_type_message_and_cause() -> None:
    """A raising call gives RemoteError with the original type, message and __cause__."""
    [handle] = map_func(lookup, ["missing"], backend="inprocess")
    with pytest.raises(RemoteError) as info:
        handle.result(timeout=TIMEOUT)
    err = info.value
    assert err.exc_type is not None
    assert err.exc_type.endswith("KeyError")
    assert "missing" in err.exc_message
    assert "KeyError" in str(err)
    assert isinstance(err.__cause__, KeyError)
    assert err.__cause__.args == ("missing",)


def test_map_func_partial_failure_keeps_other_results() -> None:
    """One raising item fails only its own handle."""
    handles = map_func(lookup, ["known", "missing", "known"], backend="inprocess")
    assert handles[0].result(timeout=TIMEOUT) == "value"
    assert isinstance(handles[1].exception(timeout=TIMEOUT), RemoteError)
    assert handles[2].result(timeout=TIMEOUT) == "value"


def test_retries_inprocess_with_flaky_function(tmp_path: Path) -> None:
    """A call that fails once succeeds on the retry; it ran exactly twice."""
    counter = tmp_path / "calls"
    [handle] = map_func(flaky, [str(counter)], backend="inprocess", retries=2, retry_backoff_s=0)
    assert handle.result(timeout=TIMEOUT) == "ok after 2 calls"
    assert counter.read_text() == "2"
    assert [a.state for a in handle.attempts] == ["FAILED", "COMPLETED"]


def test_retries_exhausted_inprocess(tmp_path: Path) -> None:
    """Without enough retries the failure is raised, listing every attempt."""
    spec = pipe(
        JobSpec.command("exit 4", backend="inprocess"), with_retries(1, backoff_s=0, jitter=0)
    )
    with pytest.raises(CommandFailedError) as info:
        submit(spec).result(timeout=TIMEOUT)
    assert len(info.value.attempts) == 2


# --- checks before submission -------------------------------------------------------------


def test_unpicklable_argument_rejected_before_submission(local_logs: Path) -> None:
    """An argument cloudpickle cannot send raises SpecError and nothing is submitted."""
    with pytest.raises(SpecError) as info:
        map_func(
            double, [1, threading.Lock()], backend="local", config={"log_dir": str(local_logs)}
        )
    assert info.value.field == "args[0]"
    assert _nothing_under(local_logs)
    assert _nothing_under(local_logs.parent / "paracore_logs")


def test_missing_program_rejected_before_submission(local_logs: Path) -> None:
    """A command whose program is not on PATH raises SpecError and nothing is submitted."""
    with pytest.raises(SpecError, match="not found on PATH"):
        map_cmds(
            ["echo fine", "no_such_program_paracore_xyz --flag"],
            backend="local",
            config={"log_dir": str(local_logs)},
        )
    assert _nothing_under(local_logs)
    with pytest.raises(SpecError):
        run_cmd("/no/such/dir/tool", backend="local", config={"log_dir": str(local_logs)})
    assert _nothing_under(local_logs)


@pytest.mark.parametrize(
    "cmd",
    [
        "export A=1; echo $A",
        "source env.sh && run",
        "module load gcc; gcc --version",
        "PATH=/opt/x/bin:$PATH; x_tool",
        "  # just a comment",
        "for i in 1 2; do echo $i; done",
        "echo 'unbalanced",
    ],
)
def test_shell_builtins_are_not_rejected(cmd: str) -> None:
    """Commands starting with shell builtins, keywords or assignments pass the check."""
    prepare_task(resolve_spec(JobSpec.command(cmd)), which=lambda _name: None)


def _which_all_but_missing(name: str) -> str | None:
    return None if name == "missing_tool" else f"/usr/bin/{name}"


@pytest.mark.parametrize(
    "cmd",
    [
        "FOO=1 missing_tool",
        "time missing_tool --x",
        "env A=1 B=2 missing_tool",
        "echo hi | missing_tool",
        "true && missing_tool",
        "cd /tmp; missing_tool",
    ],
)
def test_the_real_program_is_checked(cmd: str) -> None:
    """Assignments, time/env prefixes and pipelines do not hide a program missing from PATH."""
    with pytest.raises(SpecError, match="'missing_tool' was not found on PATH"):
        prepare_task(resolve_spec(JobSpec.command(cmd)), which=_which_all_but_missing)


@pytest.mark.parametrize(
    "cmd", ["cd /tmp && ls", "cd build && ./run_tests", "FOO=1 ls | sort", "(cd x; missing_tool)"]
)
def test_commands_whose_programs_exist_pass(cmd: str) -> None:
    """Found programs pass; a relative path after a cd and a subshell are not second-guessed."""
    prepare_task(resolve_spec(JobSpec.command(cmd)), which=_which_all_but_missing)


def test_commands_with_env_setup_are_not_rejected() -> None:
    """With env_setup the program may be provided by the setup line, so it is not checked."""
    spec = with_env({}, JobSpec.command("tool_from_module --x"), setup="module load tool")
    prepare_task(resolve_spec(spec), which=lambda _name: None)
    with pytest.raises(SpecError):
        prepare_task(
            resolve_spec(JobSpec.command("tool_from_module --x")), which=lambda _name: None
        )


def test_found_program_passes() -> None:
    """A program the injected which() finds passes the check."""
    prepare_task(
        resolve_spec(JobSpec.command("sometool -v")), which=lambda name: f"/opt/bin/{name}"
    )


@pytest.mark.parametrize(
    ("found", "expected"),
    [({"sbatch", "srun"}, "slurm"), ({"sbatch"}, "local"), ({"srun"}, "local"), (set(), "local")],
)
def test_detect_backend_with_fake_which(found: set[str], expected: str) -> None:
    """slurm only when both sbatch and srun are on PATH, else local."""
    which = lambda name: f"/usr/bin/{name}" if name in found else None  # noqa: E731
    with use_session(Session(which=which)):
        assert detect_backend() == expected


def test_backend_for_resolves_auto() -> None:
    """auto defers to $PARACORE_BACKEND, then to detection; explicit backends win."""
    slurm = lambda name: f"/usr/bin/{name}"  # noqa: E731
    auto = JobSpec.command("echo")

    def name(spec: JobSpec, environ: dict[str, str]) -> str:
        with use_session(Session(which=slurm, environ=environ)):
            return backend_for(spec)

    assert name(auto, {}) == "slurm"
    assert name(auto, {"PARACORE_BACKEND": "inprocess"}) == "inprocess"
    assert name(with_backend("local", auto), {}) == "local"
    with pytest.raises(SpecError, match="PARACORE_BACKEND"):
        name(auto, {"PARACORE_BACKEND": "K8S!"})
    assert name(auto, {"PARACORE_BACKEND": "k8s"}) == "k8s"  # a plugin's name: found on use
    k8s = Session(which=slurm, environ={"PARACORE_BACKEND": "k8s"})
    with use_session(k8s), pytest.raises(SpecError, match="installed backends"):
        k8s.backend_for(resolve_spec(auto))


# --- submitit's local executor (spawns processes: keep these few) -------------------------


def test_local_map_func_and_logs(local_logs: Path) -> None:
    """map_func on the local executor returns values in order and writes logs under log_dir."""
    handles = map_func(
        double, [1, 2, 3], backend="local", job_name="dbl", config={"log_dir": str(local_logs)}
    )
    assert _results(handles) == [2, 4, 6]
    assert (local_logs / "dbl").is_dir()
    assert all(str(local_logs / "dbl") in h.stdout_path for h in handles)


def test_local_commands_and_failure(local_logs: Path) -> None:
    """Local map_cmds keeps input order; a failing command raises CommandFailedError."""
    handles = map_cmds(
        ["echo a", "echo b; echo bad >&2; exit 5", "echo c"],
        backend="local",
        config={"log_dir": str(local_logs)},
    )
    assert handles[0].result(timeout=TIMEOUT).stdout == "a\n"
    assert handles[2].result(timeout=TIMEOUT).stdout == "c\n"
    with pytest.raises(CommandFailedError) as info:
        handles[1].result(timeout=TIMEOUT)
    assert info.value.returncode == 5
    assert "bad" in info.value.stderr_tail


def test_local_failing_call_keeps_type(local_logs: Path) -> None:
    """A call raising on the local executor gives RemoteError with the original type and message."""
    handle = submit(
        pipe(JobSpec.call(lookup, "missing"), with_backend("local"), with_log_dir(str(local_logs)))
    )
    with pytest.raises(RemoteError) as info:
        handle.result(timeout=TIMEOUT)
    assert info.value.exc_type.endswith("KeyError")
    assert "missing" in info.value.exc_message
