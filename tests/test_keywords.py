"""One keyword table: every entry point's signature agrees with ``Keywords`` (names, defaults,
docs), and ``gpus`` works wherever it is documented."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import paracore as pc
from paracore.core.keys import KEYWORD_DOCS, Keywords
from paracore.workflow import STEP_KEYWORDS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TABLE = {field.name: field.default for field in attrs.fields(Keywords)}

# Where an entry point leaves a keyword out on purpose, and why.
LEFT_OUT: dict[str, set[str]] = {
    "run_cmd": {"array_parallelism"},  # one job is no array
    "map_cmds": set(),
    "map_func": set(),
    "Pool": set(),
}
ENTRY_POINTS: dict[str, Callable[..., Any]] = {
    "run_cmd": pc.run_cmd,
    "map_cmds": pc.map_cmds,
    "map_func": pc.map_func,
    "Pool": pc.Pool.__init__,
}


def keyword_parameters(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only parameters of ``fn`` and their defaults."""
    signature = inspect.signature(fn)
    return {name: p.default for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}


def parity_problems(fn: Callable[..., Any], left_out: set[str]) -> list[str]:
    """How ``fn``'s keywords differ from the table (missing, or another default)."""
    params = keyword_parameters(fn)
    problems = [f"missing {name}" for name in TABLE if name not in params and name not in left_out]
    problems += [
        f"{name}: default {params[name]!r}, the table says {default!r}"
        for name, default in TABLE.items()
        if name in params and params[name] != default
    ]
    return problems


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_takes_the_table_s_keywords(name: str) -> None:
    """Each entry point has every keyword of the table, with the table's default."""
    assert parity_problems(ENTRY_POINTS[name], LEFT_OUT[name]) == []


def test_the_parity_check_catches_a_drift() -> None:
    """A signature with a missing keyword or another default is reported."""

    def drifted(*, job_name: str | None = "x", partition: str | None = None) -> None: ...

    problems = parity_problems(drifted, set())
    assert "missing gpus" in problems
    assert "job_name: default 'x', the table says None" in problems


def test_a_step_takes_the_table_s_keywords_but_the_plan_level_ones() -> None:
    """A step's resources take every keyword but backend and resume (given to the plan)."""
    assert set(TABLE) - {"backend", "resume"} <= set(STEP_KEYWORDS)
    assert {"backend", "resume"}.isdisjoint(STEP_KEYWORDS)


def test_the_pilot_s_keywords_mean_what_the_table_says() -> None:
    """autotune_from_pilot's keywords named like the table's are the table's (its job name
    defaults to 'pilot' on purpose)."""
    params = keyword_parameters(pc.autotune_from_pilot)
    shared = set(params) & set(TABLE)
    assert {"partition", "env_setup", "array_parallelism", "backend", "config"} <= shared
    differs = {name for name in shared if params[name] != TABLE[name]}
    assert differs == {"job_name"}


def test_every_keyword_is_documented_with_its_default() -> None:
    """docs/api.md lists every keyword with its default and its one-line description."""
    text = DOCS.read_text()
    for name, default in TABLE.items():
        assert f"| `{name}` | `{default!r}` | {KEYWORD_DOCS[name]} |" in text


def test_gpus_works_everywhere_it_is_documented(tmp_path: Path) -> None:
    """run_cmd, map_cmds, map_func, Pool and a step accept gpus (0 here: no GPU needed)."""
    assert pc.run_cmd("true", gpus=0, backend="inprocess").result(timeout=30).returncode == 0
    (h,) = pc.map_cmds(["true"], gpus=0, backend="inprocess")
    assert h.result(timeout=30).returncode == 0
    assert [h.result(timeout=30) for h in pc.map_func(abs, [-1], gpus=0, backend="inprocess")] == [
        1
    ]
    with pc.Pool(1, gpus=0, backend="inprocess") as pool:
        assert pool.map(abs, [-2]) == [2]
    plan = pc.Plan("g", pc.Step("s", abs, {"gpus": 2}, -3))
    assert plan.specs()["s"].resources.gpus == 2
