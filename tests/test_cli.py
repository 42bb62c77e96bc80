"""The `paracore` command: `paracore config show [--explain] [--cluster NAME]`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paracore.cli import main

SEED_EXAMPLE = """\
active_cluster: hpc1
naming:
  default_job_name: "{project}-{cluster}-{partition}"
  max_len: 80
clusters:
  hpc1:
    default_env: "envy prod"
    io_scratch: "$TMPDIR"
    slurm:
      partition: "compute"
      account: "paracore"
      qos: null
      cpus_per_task: 4
      mem_gb: 16
      time_min: 60
      max_array_parallelism: 200
      start_jitter_s: 0
      extra: {}
  dev:
    default_env: "envy test"
    slurm:
      partition: "short"
      time_min: 3
      max_array_parallelism: 40
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seed's example file as ./paracore.yaml, an empty HOME, no config variables."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("PARACORE_CONFIG", "PARACORE_CLUSTER", "PARACORE_VALIDATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paracore.yaml").write_text(SEED_EXAMPLE)
    return tmp_path


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_config_show_explain_names_file_and_line(project: Path) -> None:
    """--explain prints each value with its layer and file:line."""
    text = _run("config", "show", "--explain")
    path = project / "paracore.yaml"
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 4}
    assert "'compute'" in rows["partition"] and f"{path}:10" in rows["partition"]
    assert "project file" in rows["time_min"] and f"{path}:15" in rows["time_min"]
    assert "null (cleared)" in rows["qos"]
    assert "built-in defaults" in rows["log_dir"]
    assert f"{path}:1" in rows["cluster"]


def test_config_show_cluster_option_and_environment(project: Path, monkeypatch) -> None:
    """--cluster picks a profile; $PARACORE_CLUSTER is shown as its origin otherwise."""
    assert "cluster profile: dev" in _run("config", "show", "--cluster", "dev")
    monkeypatch.setenv("PARACORE_CLUSTER", "dev")
    text = _run("config", "show", "--explain")
    assert "environment" in text and "$PARACORE_CLUSTER" in text


def test_config_show_reports_a_typo_with_a_fix(project: Path, capsys) -> None:
    """A mistyped key exits 2 with file:line and a did-you-mean on stderr."""
    (project / "paracore.yaml").write_text(
        SEED_EXAMPLE.replace('partition: "short"', "partiton: x")
    )
    assert main(["config", "show"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert f"{project / 'paracore.yaml'}:22" in err and "did you mean 'partition'?" in err


def test_the_paracore_script_runs(project: Path) -> None:
    """The installed entry point (python -m paracore.cli) prints the table."""
    proc = subprocess.run(
        [sys.executable, "-m", "paracore.cli", "config", "show", "--explain"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    assert f"{project / 'paracore.yaml'}:10" in proc.stdout
