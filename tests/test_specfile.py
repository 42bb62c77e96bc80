"""Spec files: the schema and its messages (file:line, key, did you mean), the documented
examples, {item} substitution that cannot inject, ${VAR} only where allowed, --set, and the
CLI on this machine (run, preview, validate, backends, exit codes)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paracore as pc
from paracore.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, exit_status, main
from paracore.core.specfile_schema import apply_sets, substitute
from paracore.shell.session import Session, current_session, use_session
from paracore.specfile import load_spec_file, spec_file_schema

ROOT = Path(__file__).resolve().parents[1]


def write(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


# ---------------------------------------------------------------- the documented examples


def _documented() -> list[str]:
    text = (ROOT / "docs" / "specfiles.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if b.startswith("name:")]


def test_the_guide_has_examples_of_each_kind() -> None:
    """docs/specfiles.md shows a job, a map and a workflow."""

    def kind(block: str) -> str:
        if "steps:" in block:
            return "workflow"
        return "map" if re.search(r"^(items|items_from|glob):", block, re.M) else "job"

    assert {kind(b) for b in _documented()} == {"job", "map", "workflow"}


@pytest.mark.parametrize("example", _documented())
def test_every_documented_example_validates(example: str, tmp_path: Path) -> None:
    """Each example in the guide passes the schema and the rules between keys."""
    (tmp_path / "inputs.txt").write_text("a.csv\nb.csv\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.json").write_text("{}")
    spec_file = load_spec_file(write(tmp_path, example), environ={"SCRATCH": "/scratch/me"})
    assert spec_file.kind in ("job", "map", "workflow")


def test_the_schema_ships_in_the_package() -> None:
    """The schema is read from the installed package, and is a 2020-12 JSON Schema."""
    import jsonschema

    schema = spec_file_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"name"}


# ---------------------------------------------------------------- errors with file:line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\ncommand: 'true'\nretires: 2\n",
            r"spec.yaml:3\).*unknown key 'retires'; did you mean 'retries'",
        ),
        (
            "name: x\ncommand: 'true'\nresources:\n  partiton: debug\n",
            r"resources.partiton='debug' \(from .*spec.yaml:4\).*did you mean 'partition'",
        ),
        (
            "name: x\ncommand: 'true'\nretries: three\n",
            r"retries='three' \(from .*spec.yaml:3\): a whole number",
        ),
        (
            "name: x\ncommand: 'true'\nresources: {cpus_per_task: 0}\n",
            r"resources.cpus_per_task=0 .*spec.yaml:3\): a whole number >= 1",
        ),
        ("name: x\ncommand: 'echo {item}'\nitems: 'a b'\n", r"items='a b' .*spec.yaml:3\): a list"),
        ("name: x\ncommand: 'true'\ncall: 'm:f'\n", r"exactly one of 'command'.*or 'call'"),
        (
            "name: x\ncommand: 'echo {item}'\nitems: [1]\nglob: '*.txt'\n",
            r"spec.yaml:4\): at most one of 'items', 'items_from', 'glob'",
        ),
        (
            "name: x\ncall: 'm:f'\nitems: [1]\nargs: [2]\n",
            r"args=\[2\] .*spec.yaml:4\): no 'args' in a map",
        ),
        ("command: 'true'\n", r"'name' is a required property"),
        ("name: x\ncall: 'not a function'\n", r"call='not a function'.*matching"),
        ("name: x\ncommand: 'true'\nname2: [\n", r"spec.yaml:\d+: not valid YAML"),
        (
            "name: flow\nsteps:\n  - name: a\n    command: 'true'\n"
            "  - name: b\n    command: 'true'\n    after: [aa]\n",
            r"steps\[1\].after\[0\]='aa' \(from .*spec.yaml:7\): did you mean 'a'\?",
        ),
        (
            "name: flow\nsteps:\n  - name: a\n    command: 'true'\n"
            "  - name: a\n    command: 'true'\n",
            r"steps\[1\].name='a' .*spec.yaml:5\): a name no other step has",
        ),
        ("name: x\ncommand: 'true'\ndefaults: {retries: 1}\n", r"'defaults' only in a workflow"),
    ],
)
def test_mistakes_name_the_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Typos and wrong types fail before anything runs, with file:line, the key, what is
    accepted and the closest key."""
    with pytest.raises(pc.ConfigError, match=message):
        load_spec_file(write(tmp_path, text))


def test_a_call_that_does_not_import_is_named(tmp_path: Path) -> None:
    """call: names a function that must import here (the file's folder is searched)."""
    write(tmp_path, "def twice(x):\n    return 2 * x\n", "helpers.py")
    good = load_spec_file(write(tmp_path, "name: x\ncall: 'helpers:twice'\nargs: [21]\n"))
    assert good.payload(good.data).fn(21) == 42  # type: ignore[union-attr]
    bad = load_spec_file(write(tmp_path, "name: x\ncall: 'helpers:thrice'\n"))
    with pytest.raises(pc.ConfigError, match=r"call='helpers:thrice' \(from .*:2\): an importable"):
        bad.payload(bad.data)


# ---------------------------------------------------------------- values


def test_set_overrides_values_and_makes_sections() -> None:
    """--set key.sub=value reads the value as YAML and leaves the input unchanged."""
    data = {"name": "x", "resources": {"mem": "1G"}}
    changed = apply_sets(data, ["resources.partition=debug", "retries=3", "env.A=1 2"])
    assert changed == {
        "name": "x",
        "resources": {"mem": "1G", "partition": "debug"},
        "retries": 3,
        "env": {"A": "1 2"},
    }
    assert data == {"name": "x", "resources": {"mem": "1G"}}
    with pytest.raises(pc.ConfigError, match="KEY=VALUE"):
        apply_sets(data, ["retries"])


def test_variables_are_expanded_only_where_the_schema_allows(tmp_path: Path) -> None:
    """${VAR} in env values and env_setup is the submitter's; in a command it is left for
    the shell on the node; $${ stays literal; an unset one is named with its line."""
    path = write(
        tmp_path,
        """
        name: x
        command: "echo ${HOME} $${NOT}"
        env: {DATA: "${SCRATCH}/data", LITERAL: "$${SCRATCH}"}
        env_setup: "source ${SCRATCH}/venv/bin/activate"
        """,
    )
    data = load_spec_file(path, environ={"SCRATCH": "/scratch/me"}).data
    assert data["command"] == "echo ${HOME} $${NOT}"
    assert data["env"] == {"DATA": "/scratch/me/data", "LITERAL": "${SCRATCH}"}
    assert data["env_setup"] == "source /scratch/me/venv/bin/activate"
    with pytest.raises(pc.ConfigError, match=r"env.DATA=.*spec.yaml:3\): \$\{SCRATCH\} is not set"):
        load_spec_file(path, environ={})


def test_items_come_from_a_file_or_a_glob_beside_the_spec(tmp_path: Path) -> None:
    """items_from reads one item per line (blank lines skipped); glob matches sorted paths;
    both relative to the spec file, wherever the command runs from."""
    (tmp_path / "list.txt").write_text("b\n\na\n")
    for name in ("2.dat", "1.dat"):
        (tmp_path / name).write_text("")
    listed = load_spec_file(
        write(tmp_path, "name: x\ncommand: 'cat {item}'\nitems_from: list.txt\n")
    )
    assert listed.items(listed.data) == ["b", "a"]
    matched = load_spec_file(write(tmp_path, "name: x\ncommand: 'cat {item}'\nglob: '*.dat'\n"))
    assert matched.items(matched.data) == [str(tmp_path / "1.dat"), str(tmp_path / "2.dat")]
    empty = load_spec_file(write(tmp_path, "name: x\ncommand: 'cat {item}'\nglob: '*.none'\n"))
    with pytest.raises(pc.ConfigError, match=r"glob='\*.none' .*spec.yaml:3\): at least one item"):
        empty.items(empty.data)


_ITEMS = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30
)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        _ITEMS, st.sampled_from(["; rm -rf ~", "a\nb", "$(touch x)", "`id`", "'", '"', "-n", "*"])
    )
)
def test_an_item_is_one_literal_argument_whatever_it_holds(item: str) -> None:
    """{item} reaches the program as exactly one argument equal to the item: no word
    splitting, globbing, expansion, command substitution or second command."""
    command = substitute("printf '%s\\0' {item}; printf 'index=%s' {index}", item, 7)
    done = subprocess.run(["bash", "-c", command], capture_output=True, check=True, cwd="/")
    assert done.stdout == item.encode("utf-8", "surrogateescape") + b"\x00index=7"


def test_other_braces_are_left_alone() -> None:
    """Only {item} and {index} are placeholders: awk programs keep their braces."""
    assert substitute("awk '{print $1}' {item}", "f.txt", 0) == "awk '{print $1}' f.txt"


# ---------------------------------------------------------------- the CLI on this machine


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_a_map_file_with_wait(here: Path) -> None:
    """A map file runs its items and reports them; one failing item makes the exit status 1."""
    path = write(here, "name: sq\ncommand: 'test {item} -lt 3 && echo {index}'\nitems: [1, 2, 3]\n")
    status, out = cli("run", str(path), "--backend", "local", "--wait")
    assert status == EXIT_FAILED, out
    assert "3 items" in out and "2 succeeded, 1 failed" in out and "item 2:" in out
    status, out = cli("run", str(path), "--backend", "local", "--wait", "--set", "items=[0, 1]")
    assert (status, out.splitlines()[-1]) == (EXIT_OK, "sq: 2 succeeded, 0 failed")


def test_run_a_job_and_a_workflow_file(here: Path) -> None:
    """A job file prints its run and job, and its output with --wait; a workflow file runs
    its steps in order, defaults under each step."""
    write(here, "def twice(x):\n    return 2 * x\n", "helpers.py")
    job = write(here, "name: one\ncall: 'helpers:twice'\nargs: [21]\n", "job.yaml")
    status, out = cli("run", str(job), "--backend", "local", "--wait")
    assert status == EXIT_OK, out
    assert re.match(r"one: run [0-9a-f]{8}, job \d+\n", out)
    assert out.splitlines()[-1] == "one: succeeded: 42"
    flow = write(
        here,
        """
        name: flow
        defaults: {env: {WORD: hello}, resources: {time: 5}}
        steps:
          - {name: write, command: "echo $WORD > out.txt"}
          - {name: double, after: [write], call: "helpers:twice", items: [1, 2]}
          - {name: read, after: [write, double], command: "cat out.txt"}
        """,
        "flow.yaml",
    )
    status, out = cli("run", str(flow), "--backend", "local", "--wait")
    assert status == EXIT_OK, out
    assert (here / "out.txt").read_text() == "hello\n"
    assert re.search(r"read\s+succeeded", out)


def test_validate_and_preview_submit_nothing(here: Path) -> None:
    """validate says what the file is; preview prints the batch script with the file's
    resources; neither submits anything."""
    path = write(
        here,
        "name: pv\ncommand: 'echo {item}'\nitems: [a, b, c]\nresources: {time: 7, mem: 300M}\n",
    )
    status, out = cli("validate", str(path), "--backend", "local")
    assert (status, out.strip()) == (EXIT_OK, f"{path}: ok, a map of 3 items; nothing submitted")
    status, out = cli("preview", str(path), "--backend", "local")
    assert status == EXIT_OK
    assert "#SBATCH --time=7\n" in out and "#SBATCH --mem=300MB\n" in out
    assert "#SBATCH --job-name=pv\n" in out
    assert not (here / "paracore_logs").exists()
    assert current_session().store().runs() == []


def test_bad_input_exits_2_and_says_why(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spec file with a typo: exit status 2, the message on stderr."""
    path = write(here, "name: x\ncommand: 'true'\nretires: 1\n")
    status, _out = cli("run", str(path))
    assert status == EXIT_BAD_INPUT
    assert "did you mean 'retries'" in capsys.readouterr().err


def test_a_scheduler_that_does_not_answer_exits_3(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate against a Slurm whose controller does not answer: exit status 3, saying so
    (the checks against the live cluster are not silently skipped)."""
    fake = here / "bin"
    fake.mkdir()
    for command in ("sbatch", "srun", "sinfo", "scontrol", "sacct", "squeue"):
        script = fake / command
        script.write_text(
            f"#!/bin/sh\necho '{command}: error: Unable to contact slurm controller' >&2\nexit 1\n"
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    path = write(here, "name: x\ncommand: 'true'\nresources: {partition: debug}\n")
    with use_session(Session()):
        status, _out = cli("validate", str(path), "--backend", "slurm")
    assert status == EXIT_UNREACHABLE
    assert "Unable to contact slurm controller" in capsys.readouterr().err


def test_exit_statuses_follow_the_error() -> None:
    """Job failures are 1, bad input 2, an unreachable scheduler 3."""
    assert exit_status(pc.SchedulerUnreachable("sacct timed out")) == EXIT_UNREACHABLE
    assert exit_status(pc.JobFailedError("boom")) == EXIT_FAILED
    assert exit_status(pc.JobTimeoutError("late")) == EXIT_FAILED
    assert exit_status(pc.SpecError("partition", "x", "a partition")) == EXIT_BAD_INPUT


def test_version_and_help_read_well(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version; every command's help is plain text (no docstring
    markup) and names the command's purpose."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"paracore {pc.__version__}"
    for command in ("run", "preview", "validate", "backends", "ls", "config"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert text.startswith("usage: paracore " + command)
        assert not re.search(r"``|:func:|:class:|:meth:", text), text


def test_backends_lists_the_built_in_ones() -> None:
    """paracore backends --json names slurm, local and inprocess, from paracore."""
    status, out = cli("backends", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert status == EXIT_OK
    assert {"slurm", "local", "inprocess"} <= set(rows)
    assert rows["local"]["from"] == "paracore"
    assert rows["local"]["entry_point"] == "paracore.backends.local:LocalBackend"


def test_ctrl_c_in_run_wait_says_what_goes_on_and_how_to_cancel(here: Path) -> None:
    """SIGINT while `paracore run --wait` waits: exit 130, one line naming the run and
    `paracore cancel`, no traceback; the job itself goes on until released."""
    import signal
    import sys
    import time

    job = write(
        here,
        "name: held\ncommand: 'touch started; while [ ! -e go ]; do sleep 0.2; done'\n",
        "held.yaml",
    )
    command = [sys.executable, "-m", "paracore.cli", "run", str(job), "--backend", "local"]
    # files, not pipes: the job's own process inherits them and would hold a pipe open
    with open(here / "out.txt", "w") as stdout, open(here / "err.txt", "w") as stderr:
        proc = subprocess.Popen(
            [*command, "--wait"],
            cwd=here,
            stdout=stdout,
            stderr=stderr,
            # Ctrl-C as at a terminal, even if this suite was started with SIGINT ignored
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 120
        while not (here / "started").exists():  # the job runs: the CLI is waiting on it
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        (here / "go").touch()  # release the job
        proc.kill()
    out, err = (here / "out.txt").read_text(), (here / "err.txt").read_text()
    run_id = re.search(r"held: run ([0-9a-f]{8})", out)
    assert proc.returncode == 130, (out, err)
    assert run_id is not None, out
    assert f"held (run {run_id.group(1)}) goes on running" in err
    assert f"`paracore cancel {run_id.group(1)}` cancels it" in err
    assert "Traceback" not in err
