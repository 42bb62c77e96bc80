"""Every script in examples/ runs, on the real Slurm and (where quick) on the local backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(
    p.name for p in EXAMPLES.glob("*.py") if p.stem[0].isdigit() or p.stem == "quickstart"
)


def run_example(name: str, cwd: Path, backend: str, *args: str) -> str:
    """Run one example in ``cwd`` with the backend forced; return its stdout or fail loudly."""
    env = {**os.environ, "PARACORE_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# What each example must print, whatever the backend.
EXPECTED = {
    "quickstart.py": ["squares: [0, 1, 4, 9, 16]", "says: hello from"],
    "01_single_job.py": ['"result": 2', "exited 0"],
    "02_throttled_array.py": ["tasks 6", "exit 0, processed"],
    "03_map_func.py": ["100 results", "'result': 247.5"],
    "04_autotune_pilot.py": [
        "pilot measured 4 tasks",
        "suggest: {'time_min': ",
        "full run: 6 of 6 tasks completed",
    ],
    "05_env_policies.py": [
        "inherit  APP_MODE=from-submitter",
        "overlay  APP_MODE=production",
        "replace  APP_MODE=clean HOME=unset",
        "setup    APP_MODE=from-submitter HOME=/",
    ],
    "06_team_preset.py": ["job name: lab-compute-align", "sample 2 with 1 thread", "--array=0-2"],
    "07_team_preset_file.py": [
        "partition = 'short'  (project file ",
        "paracore.yaml:7)",
        "job name: lab-short-qc, tasks 3",
        "shard 2 with 1 thread",
        "preset time: 2 min, retries: 1",
    ],
    "08_pool.py": ["2000 scores, best item ", "starmap: [6, 20], imap_unordered: [1, 2, 3]"],
    "09_workflow.py": [
        "Critical path (*): download -> preprocess -> train_a -> evaluate",
        "Time Estimate (not taking queuing into account): 00:25:00",
        "evaluate: best model_b (loss 6.7)",
        "submitted again: ['reused']",
    ],
}


def test_every_example_has_expectations() -> None:
    """No example escapes the tests: each script in examples/ has expected output here."""
    assert set(SCRIPTS) == set(EXPECTED)


@pytest.mark.slurm
@pytest.mark.parametrize("name", SCRIPTS)
def test_example_on_slurm(name: str, tmp_path: Path) -> None:
    """The example runs unchanged against the real Slurm and prints its results."""
    out = run_example(name, tmp_path, "slurm")
    for expected in EXPECTED[name]:
        assert expected in out, out
    if name == "quickstart.py":
        assert "backend: slurm" in out


@pytest.mark.parametrize(
    "name",
    ["quickstart.py", "05_env_policies.py", "01_single_job.py", "08_pool.py", "09_workflow.py"],
)
def test_example_on_local_backend(name: str, tmp_path: Path) -> None:
    """Without Slurm the same examples run on this machine through submitit's local executor."""
    out = run_example(name, tmp_path, "local")
    for expected in EXPECTED[name]:
        assert expected in out, out


SPEC_FILES = {
    "hello.yaml": ["hello: succeeded: exit 0; stdout: 'hello from", "with a spec file"],
    "squares.yaml": ["squares: 4 succeeded, 0 failed"],
    "pipeline.yaml": ["pipeline: plan ", "report   succeeded", "count    succeeded"],
}


def test_every_spec_file_example_has_expectations() -> None:
    """No spec file in examples/specs escapes the tests."""
    assert {p.name for p in (EXAMPLES / "specs").glob("*.yaml")} == set(SPEC_FILES)


def run_spec_file(name: str, cwd: Path, backend: str) -> str:
    """``paracore run examples/specs/NAME --wait`` in ``cwd``; its stdout, or fail loudly."""
    env = {**os.environ, "PARACORE_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-m", "paracore.cli", "run", str(EXAMPLES / "specs" / name), "--wait"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("backend", [pytest.param("slurm", marks=pytest.mark.slurm), "local"])
@pytest.mark.parametrize("name", sorted(SPEC_FILES))
def test_spec_file_example_runs(name: str, backend: str, tmp_path: Path) -> None:
    """Each example spec file runs with paracore run --wait and prints its results."""
    out = run_spec_file(name, tmp_path, backend)
    for expected in SPEC_FILES[name]:
        assert expected in out, out
