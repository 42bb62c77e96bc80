"""Types: mypy --strict is clean on the whole package; curried transforms are typed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_mypy_strict_is_clean() -> None:
    """mypy with the project's settings (strict, everywhere) finds nothing."""
    proc = _mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_curried_transforms_have_precise_types(tmp_path: Path) -> None:
    """with_x(args) is a transform, with_x(args, spec) a spec; mixing them up is an error."""
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent(
            """
            from toolz import pipe
            from paracore import JobSpec, with_name, with_resources, with_retries
            from paracore.core.transforms import Curried

            spec: JobSpec = JobSpec.command("echo hi")
            named: JobSpec = with_name("x", spec)
            transform: Curried = with_retries(2, backoff_s=1.0)
            applied: JobSpec = transform(spec)
            sized: JobSpec = with_resources(spec, partition="debug")
            later: Curried = with_resources(partition="debug")
            """
        )
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            from paracore import JobSpec, with_name

            wrong: JobSpec = with_name("x")
            """
        )
    )
    ok = _mypy("--no-incremental", "--follow-imports=silent", str(good))
    assert ok.returncode == 0, ok.stdout
    refused = _mypy("--no-incremental", "--follow-imports=silent", str(bad))
    assert refused.returncode == 1
    assert 'expression has type "Curried", variable has type "JobSpec"' in refused.stdout
