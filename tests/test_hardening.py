"""Hardening: what could inject into a batch script, or fail only on the node, is refused first.

Each test names the defect it guards against; the real-Slurm side (sbatch --test-only on the
produced script, preview equal to what is submitted) is in ``test_hardening_slurm.py``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import paracore as pc
from paracore.core.config import Layer, check_layer, layer_from_yaml
from paracore.errors import ConfigError, KeywordError, SpecError

INJECTION = "x\n#SBATCH --mem=999G\ntouch /tmp/pwn"


# ---------------------------------------------------------------- the batch script


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"constraint": INJECTION}, "extra['constraint']"),
        ({"constraint": "a\rb"}, "extra['constraint']"),
        ({"comment": "tab\there"}, "extra['comment']"),
        ({"partition=evil --mem=999G": 1}, "extra"),
        ({"--mem": "1G"}, "extra"),
        ({"Mem": "1G"}, "extra"),
        ({"mem gb": "1G"}, "extra"),
    ],
)
def test_extra_cannot_add_lines_or_options(extra: dict, field: str) -> None:
    """An extra option name or value that could add #SBATCH lines or options is refused."""
    with pytest.raises(SpecError) as info:
        pc.with_resources(pc.JobSpec.command("true"), extra=extra)
    assert info.value.field == field


def test_extra_refusal_says_where_and_what() -> None:
    """The message names the control characters and why they matter."""
    with pytest.raises(SpecError, match=r"control characters \(found '\\n'\).*batch script"):
        pc.with_resources(pc.JobSpec.command("true"), extra={"constraint": INJECTION})


def test_plain_extra_options_still_pass() -> None:
    """Ordinary options, with underscores or dashes, numbers and spaces, are accepted."""
    spec = pc.with_resources(
        pc.JobSpec.command("true"),
        extra={"mail_type": "END,FAIL", "nice": 10, "comment": "a b c", "constraint": "a100|h100"},
    )
    assert dict(spec.resources.extra)["mail-type"] == "END,FAIL"


def test_yaml_extra_with_a_newline_names_the_file_and_line(tmp_path: Path) -> None:
    """The same refusal through a configuration file, with its file and line."""
    text = 'clusters:\n  c:\n    slurm:\n      extra:\n        constraint: "x\\n#SBATCH --mem=9G"\n'
    layer = layer_from_yaml(text, "project file", str(tmp_path / "paracore.yaml"))
    with pytest.raises(ConfigError, match=r"paracore.yaml:5\): a string or a number on one line"):
        check_layer(layer)


def test_yaml_extra_key_with_spaces_is_refused() -> None:
    """A key that is not an sbatch option name is refused in the file check."""
    layer = Layer("project file", {"presets": {"p": {"extra": {"qos=x --mem": 1}}}}, "/p.yaml")
    with pytest.raises(ConfigError, match="sbatch option names"):
        check_layer(layer)


def test_log_dir_with_a_newline_is_refused() -> None:
    """log_dir lands in --output, --error and the srun line: no control characters."""
    with pytest.raises(SpecError, match="log_dir"):
        pc.with_log_dir("logs\n#SBATCH --mem=999G", pc.JobSpec.command("true"))


# ---------------------------------------------------------------- the job's environment


@pytest.mark.parametrize("name", ["A B", "1A", "A\nB", "A=B", "", "É"])
def test_env_names_must_be_shell_names(name: str) -> None:
    """Names the shell would not accept fail here, not on the node."""
    with pytest.raises(SpecError, match="variable names matching"):
        pc.with_env({name: "1"}, pc.JobSpec.command("true"))


def test_env_values_without_nul() -> None:
    """A NUL cannot be passed in an environment: refused at once."""
    with pytest.raises(SpecError, match="NUL"):
        pc.with_env({"A": "x\0y"}, pc.JobSpec.command("true"))


def test_env_setup_fails_on_its_first_failing_line() -> None:
    """Several setup lines run with set -e: a failing first line fails the task."""
    handle = pc.run_cmd("echo ran", env_setup="false\ntrue", backend="inprocess")
    with pytest.raises(pc.RemoteError, match="env_setup failed"):
        handle.result(timeout=30)


# ---------------------------------------------------------------- the convenience API


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: pc.map_cmds("echo hi", backend="inprocess"), "cmds"),
        (lambda: pc.map_func(abs, "abc", backend="inprocess"), "items"),
    ],
)
def test_a_single_string_is_not_a_list(call, field: str) -> None:
    """map_cmds("echo") would run once per character: refused, pointing at run_cmd."""
    with pytest.raises(SpecError, match="not one string") as info:
        call()
    assert info.value.field == field


def test_an_unknown_keyword_names_the_closest_one() -> None:
    """run_cmd(partiton=...) says 'did you mean partition'; it is also a TypeError."""
    with pytest.raises(KeywordError, match="did you mean 'partition'") as info:
        pc.run_cmd("true", partiton="debug")
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match="did you mean 'array_parallelism'"):
        pc.map_func(abs, [1], array_paralelism=2)


@pytest.mark.parametrize(
    "keywords",
    [{"mem_gb": 1e9}, {"mem_gb": "2P"}, {"time_min": "400d"}, {"cpus_per_task": 10**6}],
)
def test_absurd_requests_are_refused_before_submission(keywords: dict) -> None:
    """Beyond any machine: refused by the pure checks, nothing runs."""
    with pytest.raises(SpecError):
        pc.run_cmd("true", backend="inprocess", **keywords)


def test_the_local_backend_says_it_does_not_throttle(tmp_path: Path) -> None:
    """array_parallelism on the local backend is not silently ignored."""
    with pytest.warns(UserWarning, match="starts all 3 tasks at once: array_parallelism=1"):
        handles = pc.map_cmds(
            ["true"] * 3,
            backend="local",
            array_parallelism=1,
            config={"log_dir": str(tmp_path / "logs")},
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [r.returncode for r in pc.gather(handles, timeout=120)] == [0, 0, 0]


# ---------------------------------------------------------------- configuration files

PLANTED = "clusters:\n  evil:\n    default_env: touch /tmp/pwn\nactive_cluster: evil\n"


def _tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """tmp/home/work/project/src as cwd; HOME is tmp/home."""
    home = tmp_path / "home"
    project = home / "work" / "project"
    (project / "src").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("PARACORE_CONFIG", "PARACORE_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(project / "src")
    return home, project


def test_a_file_above_the_project_root_is_not_read(tmp_path: Path, monkeypatch) -> None:
    """The search stops at the project's root (.git / pyproject.toml)."""
    home, project = _tree(tmp_path, monkeypatch)
    (project / ".git").mkdir()
    (home / "work" / "paracore.yaml").write_text(PLANTED)
    assert pc.resolve().cluster is None
    (project / "paracore.yaml").write_text("validate: false\n")
    assert pc.resolve().files == (str(project / "paracore.yaml"),)


def test_a_file_above_home_is_not_read(tmp_path: Path, monkeypatch) -> None:
    """Without a project root the search stops at $HOME, never above it."""
    _home, _project = _tree(tmp_path, monkeypatch)
    (tmp_path / "paracore.yaml").write_text(PLANTED)
    assert pc.resolve().cluster is None


def test_a_file_in_a_folder_others_can_write_is_not_read(tmp_path: Path, monkeypatch) -> None:
    """A shared, world-writable folder such as /tmp ends the search before it is read."""
    shared = tmp_path / "shared"
    (shared / "me" / "run").mkdir(parents=True)
    shared.chmod(0o1777)
    (shared / "paracore.yaml").write_text(PLANTED)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.delenv("PARACORE_CONFIG", raising=False)
    monkeypatch.chdir(shared / "me" / "run")
    assert pc.resolve().cluster is None


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_a_config_file_others_can_write_is_refused(tmp_path: Path, monkeypatch, mode: int) -> None:
    """Group- or world-writable: refused with the file and how to fix it."""
    _home, project = _tree(tmp_path, monkeypatch)
    (project / "paracore.yaml").write_text("validate: false\n")
    (project / "paracore.yaml").chmod(mode)
    with pytest.raises(ConfigError, match=rf"mode is {mode:04o}; run 'chmod go-w"):
        pc.resolve()


def test_user_and_named_files_are_checked_too(tmp_path: Path, monkeypatch) -> None:
    """~/.paracore.yaml and $PARACORE_CONFIG get the same check."""
    home, _project = _tree(tmp_path, monkeypatch)
    user = home / ".paracore.yaml"
    user.write_text("validate: false\n")
    user.chmod(0o622)
    with pytest.raises(ConfigError, match="user file"):
        pc.resolve()
    user.chmod(0o600)
    named = tmp_path / "team.yaml"
    named.write_text("validate: false\n")
    named.chmod(0o666)
    monkeypatch.setenv("PARACORE_CONFIG", str(named))
    with pytest.raises(ConfigError, match="PARACORE_CONFIG file"):
        pc.resolve()


def test_a_config_file_owned_by_someone_else_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A file of another user (not root) is refused, whatever its mode."""
    import os

    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root (the CI runs as root)")
    _home, project = _tree(tmp_path, monkeypatch)
    (project / "paracore.yaml").write_text("validate: false\n")
    os.chown(project / "paracore.yaml", 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to uid 65534"):
        pc.resolve()


def test_config_show_hides_environment_values(tmp_path: Path, monkeypatch) -> None:
    """Preset env values are masked unless --show-values; names stay visible."""
    import io

    from paracore.cli import main

    _home, project = _tree(tmp_path, monkeypatch)
    (project / "paracore.yaml").write_text("presets:\n  p:\n    env: {API_TOKEN: s3cret}\n")
    hidden, shown = io.StringIO(), io.StringIO()
    assert main(["config", "show"], out=hidden) == 0
    assert "API_TOKEN" in hidden.getvalue() and "s3cret" not in hidden.getvalue()
    assert main(["config", "show", "--show-values"], out=shown) == 0
    assert "s3cret" in shown.getvalue()


# ---------------------------------------------------------------- private files


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir() if not p.is_symlink()}


def test_logs_pickles_and_records_are_owner_only(tmp_path: Path) -> None:
    """Whatever the umask, paracore's folders are 0700 and its files 0600 (local backend)."""
    import os

    previous = os.umask(0o022)
    try:
        handle = pc.run_cmd(
            "echo secret-$API_TOKEN >&2; exit 3",
            env={"API_TOKEN": "s3cret"},
            backend="local",
            job_name="private",
            config={"log_dir": str(tmp_path / "logs")},
        )
        with pytest.raises(pc.CommandFailedError):
            handle.result(timeout=120)
    finally:
        os.umask(previous)
    folder = tmp_path / "logs" / "private"
    assert folder.stat().st_mode & 0o777 == 0o700
    modes = _modes(folder)
    assert any(name.endswith("_failure.pkl") for name in modes)  # the failure record
    assert any(name.endswith(".err") for name in modes)
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_log_folder_is_tightened(tmp_path: Path) -> None:
    """A log folder left world-readable by an older run is made 0700 before submitting."""
    folder = tmp_path / "logs" / "again"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    handle = pc.run_cmd(
        "true", backend="local", job_name="again", config={"log_dir": str(tmp_path / "logs")}
    )
    assert handle.result(timeout=120).returncode == 0
    assert folder.stat().st_mode & 0o777 == 0o700


# ---------------------------------------------------------------- all or recorded


@pytest.mark.usefixtures("ctrl_c")
def test_an_interrupt_during_submission_waits_for_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT while the backend submits is held until the submission is recorded."""
    monkeypatch.chdir(tmp_path)  # a store of its own: nothing recorded earlier to re-attach
    import json
    import os
    import signal

    from paracore.backends.local import LocalBackend

    class InterruptedLocal(LocalBackend):
        """The local backend, interrupted by Ctrl-C in the middle of submitting."""

        def submit(self, spec, tasks, describes, *, after=()):
            os.kill(os.getpid(), signal.SIGINT)  # arrives while sbatch would be running
            return super().submit(spec, tasks, describes, after=after)

    session = pc.Session(backends={"local": InterruptedLocal()})
    with pc.use_session(session), pytest.raises(KeyboardInterrupt):
        pc.map_cmds(
            ["echo a", "echo b"],
            backend="local",
            job_name="interrupted",
            config={"log_dir": str(tmp_path / "logs")},
        )
    store = session.store()
    (run,) = store.runs()
    assert (run.status, run.backend) == ("active", "local")
    assert all(task.job_id for task in store.tasks(run.id))
    assert json.dumps(run.summary)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
