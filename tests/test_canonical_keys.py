"""Content keys of Python calls are the same in every process for the same call: set and
frozenset arguments (ordered by the hash seed) and equal dicts filled in another order no
longer give another key, so a restarted submitter re-attaches instead of submitting again."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import paracore as pc
from paracore.core.digest import canonical_digest
from paracore.shell.call_content import call_content

REPO = Path(__file__).resolve().parents[1]


def digest(value: object) -> bytes:
    return canonical_digest(value, pickle.dumps)


# ---------------------------------------------------------------- the pure digest

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    | st.frozensets(st.text(max_size=3) | st.integers(), max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(plain)
def test_equal_plain_values_digest_alike_however_they_were_built(value: object) -> None:
    """A copy rebuilt in reverse order (dict items, set members) gives the same digest."""

    def rebuilt(v: object) -> object:
        if isinstance(v, dict):
            return {k: rebuilt(v[k]) for k in reversed(list(v))}
        if isinstance(v, frozenset):
            return frozenset(reversed([rebuilt(x) for x in v]))
        if isinstance(v, list | tuple):
            return type(v)(rebuilt(x) for x in v)
        return v

    assert digest(rebuilt(value)) == digest(value)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ([1, 2], (1, 2)),
        ([1, 2], [2, 1]),
        ({1}, frozenset({1})),
        ([1], [1.0]),
        ([True], [1]),
        ({"a": 1}, {"a": "1"}),
        ({"a": 1}, collections.OrderedDict(a=1)),  # another type: digested by its pickle
        (["a", "b"], ["ab"]),
        ([["a"], "b"], [["a", "b"]]),
        (0.0, -0.0),
        (b"x", "x"),
    ],
)
def test_different_values_digest_differently(one: object, other: object) -> None:
    assert digest(one) != digest(other)


def test_shared_parts_are_digested_once() -> None:
    """Sixty levels of a list holding its child twice: 2**60 leaves if walked naively."""
    value: list[object] = []
    for _ in range(60):
        value = [value, value]
    start = time.process_time()
    assert len(digest(value)) == 32
    assert time.process_time() - start < 0.5


def test_a_value_that_contains_itself_is_digested_by_its_pickle() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert digest(loop) == digest(loop) and len(digest(loop)) == 32


def test_a_huge_int_has_a_digest() -> None:
    """repr refuses ints past 4300 digits; the digest does not need it."""
    assert digest([10**5000]) != digest([10**5000 + 1])


# ---------------------------------------------------------------- across processes

KEY_SCRIPT = """
import sys
from tests.test_canonical_keys import call_spec
from paracore.core.digest import content_key
from paracore.shell.checks import prepare_task
from paracore.shell.submit import _task_bytes, key_fields
import paracore as pc

spec = call_spec()
task = prepare_task(spec, lambda n: n)
print(content_key("job", key_fields(spec, pc.Session().backend("local")), [_task_bytes(task)]))
"""


def tally(items: object, weights: dict[str, int], *, labels: frozenset[str]) -> int:
    """A module-level function: pickled by reference."""
    return len(str(items)) + sum(weights.values()) + len(labels)


def call_spec() -> pc.JobSpec:
    """The same call, built as a script would build it: sets of strings, and a dict filled
    by walking a set (so its order follows the hash seed too)."""
    names = {"alpha", "beta", "gamma", "delta", "epsilon"}
    weights = {name: len(name) for name in names}
    items = [{"tags": set(names), "nested": ({"x", "y"}, frozenset({"p", "q"}))}]
    spec = pc.JobSpec.call(tally, items, weights, labels=frozenset(names))
    return pc.with_resources(spec, partition="debug", mem="1G", time="10m")


def run_python(script: str, seed: int, cwd: Path) -> str:
    """``script`` in a fresh interpreter with this hash seed, importing this checkout."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_key_of_a_call_with_sets_and_dicts_is_the_same_in_every_process(
    tmp_path: Path,
) -> None:
    """Four interpreters, four hash seeds: one key (it was one per seed)."""
    keys = {run_python(KEY_SCRIPT, seed, tmp_path) for seed in (0, 1, 2, 3)}
    assert len(keys) == 1 and len(next(iter(keys))) == 32


SUBMIT_SCRIPT = """
import json
from tests.test_canonical_keys import call_spec
import paracore as pc

handle = pc.submit(pc.with_backend("local", call_spec()), resume="cache")
print(json.dumps({"result": handle.result(timeout=60), "job": handle.job_id}))
"""


def test_a_restarted_submitter_with_another_hash_seed_reuses_the_run(tmp_path: Path) -> None:
    """The second process (another seed) finds the first one's run: nothing submitted again."""
    first = json.loads(run_python(SUBMIT_SCRIPT, 1, tmp_path))
    second = json.loads(run_python(SUBMIT_SCRIPT, 2, tmp_path))
    assert second == first
    assert len(pc.Session().store().runs()) == 1


MAP_SCRIPT = """
import json
from tests.test_canonical_keys import size_of
import paracore as pc

names = {"alpha", "beta", "gamma", "delta", "epsilon"}
items = [set(names), frozenset(names), {n: len(n) for n in names}, [names], "plain", 7]
handles = pc.map_func(size_of, items, chunk_size=2, backend="local", resume="cache")
print(json.dumps(pc.gather(handles, timeout=60)))
"""


def size_of(item: object) -> int:
    return len(str(sorted(map(str, item)))) if not isinstance(item, int) else item


def test_a_restarted_chunked_map_with_set_items_reuses_its_chunks(tmp_path: Path) -> None:
    """A chunked map's key is made of its items the same way (it was their pickles)."""
    first = run_python(MAP_SCRIPT, 1, tmp_path)
    runs = len(pc.Session().store().runs())
    assert run_python(MAP_SCRIPT, 2, tmp_path) == first
    assert len(pc.Session().store().runs()) == runs


# ---------------------------------------------------------------- what cannot be made canonical


@dataclasses.dataclass
class Settings:
    """An object paracore does not look inside: digested by its pickle."""

    names: set[str]


def test_an_object_holding_a_set_is_named_in_a_warning() -> None:
    """Its pickle may differ in another process: the warning says what to pass instead."""
    blob = pickle.dumps((tally, (Settings({"a", "b"}), {}), (("labels", frozenset()),)))
    with pytest.warns(UserWarning, match=r"Settings object holds a set.*re-attaching"):
        call_content(blob)


def test_plain_arguments_give_no_warning() -> None:
    import warnings

    blob = pickle.dumps((tally, ({"a", "b"}, {"w": 1}), (("labels", frozenset({"x"})),)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(call_content(blob)) == 32
