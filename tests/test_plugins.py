"""Backends as plugins: a backend shipped in its own package (tests/plugins), installed with
pip, is listed by ``paracore backends`` and runs a spec file chosen by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "paracore-echo-backend"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed with pip into a folder of its own (built from a copy, so
    the source tree stays clean)."""
    base = tmp_path_factory.mktemp("plugin")
    source = base / "src"
    shutil.copytree(PLUGIN, source)
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


def paracore(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "ECHO_BACKEND_LOG": str(cwd / "echo.log"),
    }
    return subprocess.run(
        [sys.executable, "-m", "paracore.cli", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_an_installed_plugin_is_listed(site: Path, tmp_path: Path) -> None:
    """paracore backends names the plugin, the package it came from and its entry point."""
    done = paracore(site, tmp_path, "backends", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["echo"]["from"] == "paracore-echo-backend"
    assert rows["echo"]["entry_point"] == "paracore_echo_backend:EchoBackend"
    assert rows["echo"]["description"].startswith("Runs each task at once in this process")
    assert {"slurm", "local", "inprocess", "echo"} == set(rows)


def test_a_spec_file_runs_through_the_plugin(site: Path, tmp_path: Path) -> None:
    """A map file naming the plugin's backend runs every item through it: the plugin's own
    log shows the check, one submission of 3 tasks and each task run."""
    spec = tmp_path / "squares.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: plugin-squares
            backend: echo
            command: "test {item} -gt 0 && echo $(( {item} * {item} ))"
            items: [1, 2, 3]
            """
        )
    )
    done = paracore(site, tmp_path, "run", str(spec), "--wait")
    assert done.returncode == 0, done.stderr
    assert "plugin-squares: 3 succeeded, 0 failed" in done.stdout
    events = [json.loads(line) for line in (tmp_path / "echo.log").read_text().splitlines()]
    assert [e["event"] for e in events] == ["check", "submit", "ran", "ran", "ran"]
    assert events[1]["tasks"] == 3
    assert {e["state"] for e in events[2:]} == {"COMPLETED"}
    failing = paracore(site, tmp_path, "run", str(spec), "--wait", "--set", "items=[0, 1]")
    assert failing.returncode == 1
    assert "1 succeeded, 1 failed" in failing.stdout


def test_a_backend_nobody_installed_is_bad_input(site: Path, tmp_path: Path) -> None:
    """An unknown backend name: exit status 2, naming the installed ones and the closest."""
    spec = tmp_path / "one.yaml"
    spec.write_text("name: one\ncommand: 'true'\n")
    done = paracore(site, tmp_path, "run", str(spec), "--backend", "ecko")
    assert done.returncode == 2
    assert "did you mean 'echo'?" in done.stderr
    assert "installed backends: slurm, local, inprocess, echo" in done.stderr
