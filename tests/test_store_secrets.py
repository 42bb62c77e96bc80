"""Secrets stay out of the run store and the runs commands' output.

A spec file's ``${VAR}`` puts the submitting shell's values into ``env`` and ``env_setup``;
the store keeps the variables' names and whether there is a setup line, never the values or
the line (docs/security.md).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import main
from paracore.shell.store import RunStore

SECRET = "s3cret-4f9a2c-token"


@pytest.fixture
def secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A secret in the submitting shell's environment, and a folder to run in."""
    monkeypatch.setenv("SECRET_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def store_files_without_secret(store: RunStore) -> list[Path]:
    """Every file of the store, after checking the secret is in none but the pickles a retry
    needs (owner-only, as docs/security.md says)."""
    files = [f for f in store.folder.rglob("*") if f.is_file()]
    assert files
    for f in files:
        if f.suffix == ".pkl":
            assert f.stat().st_mode & 0o777 == 0o600
        else:
            assert SECRET.encode() not in f.read_bytes(), f
    return files


def test_a_spec_files_expanded_secret_is_not_in_the_store_or_the_output(
    secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """env_setup was stored after ${VAR} expansion and printed by `paracore status --json`."""
    file = secret / "job.yaml"
    file.write_text(
        "name: secretive\n"
        "backend: local\n"
        'command: \'test "$TOKEN" = "$API_KEY"\'\n'
        "env: {API_KEY: '${SECRET_TOKEN}'}\n"
        "env_setup: 'export TOKEN=${SECRET_TOKEN}'\n"
    )
    status, out = run_cli("run", str(file), "--wait")
    assert status == 0  # the job got the values: the setup line and env were expanded
    store = pc.Session().store()
    (run,) = store.runs()
    assert run.summary["env"] == ["API_KEY"]
    assert run.summary["env_setup"] is True
    outputs = [out]
    for argv in (("status", run.id, "--json"), ("status", run.id), ("ls", "--json"),
                 ("manifest", run.id), ("manifest", run.id, "--format", "csv")):  # fmt: skip
        status, printed = run_cli(*argv)
        assert status == 0
        outputs.append(printed)
    assert json.loads(outputs[1])["summary"]["env_setup"] is True
    captured = capsys.readouterr()
    for printed in [*outputs, captured.out, captured.err]:
        assert SECRET not in printed
    store_files_without_secret(store)


def test_a_setup_line_given_in_python_is_not_stored(secret: Path) -> None:
    """The rule does not depend on where the line came from: a value written into it by the
    caller (an f-string of a token) stays out of the store too."""
    handle = pc.run_cmd("true", env_setup=f"export TOKEN={SECRET}", backend="local")
    handle.result(timeout=60)
    store = pc.Session().store()
    (run,) = store.runs()
    assert run.summary["env_setup"] is True
    store_files_without_secret(store)


def test_a_run_without_a_setup_line_says_so(secret: Path) -> None:
    pc.run_cmd("true", backend="local").result(timeout=60)
    (run,) = pc.Session().store().runs()
    assert run.summary["env_setup"] is False
