"""The documentation covers the public API and the README's commands are what CI runs."""

from __future__ import annotations

from pathlib import Path

import paracore

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_is_in_the_api_reference() -> None:
    """Each name in paracore.__all__ appears, quoted as code, in docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text()
    missing = [name for name in paracore.__all__ if f"`{name}" not in text]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    """Every command in .ci/run is shown in the README, so CI runs what users are told."""
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands, ".ci/run runs nothing"
    for command in commands:
        assert command.removeprefix("exec ") in readme
