"""The documentation covers the public API and the README's commands are what CI runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

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


def doc_signature(name: str, obj: object) -> str:
    """``name(params)`` as the API reference writes it: inspect's form, no annotations."""
    signature = inspect.signature(obj)  # type: ignore[arg-type]
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    bare = signature.replace(parameters=params, return_annotation=inspect.Signature.empty)
    return f"`{name}{bare}`"


def _public_functions() -> list[str]:
    return [n for n in paracore.__all__ if inspect.isfunction(getattr(paracore, n))]


@pytest.mark.parametrize("name", _public_functions())
def test_api_reference_signatures_match_the_code(name: str) -> None:
    """docs/api.md writes each public function's signature exactly as the code has it."""
    text = (ROOT / "docs" / "api.md").read_text()
    assert doc_signature(name, getattr(paracore, name)) in text


def test_the_signature_check_notices_a_stale_signature() -> None:
    """A signature that lost a parameter is not found in the reference."""

    def submit(spec, *, origins=None):  # an older, shorter signature
        """Stand-in."""

    text = (ROOT / "docs" / "api.md").read_text()
    assert doc_signature("submit", submit) not in text
