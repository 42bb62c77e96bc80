"""The run store and content keys: schema, concurrency rules, errors, and the key's laws."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paracore as pc
from paracore.core.digest import content_key
from paracore.errors import StoreError
from paracore.shell.store import MIGRATIONS, SCHEMA_VERSION, RunStore, this_process

REPO = Path(__file__).resolve().parents[1]


def _insert(store: RunStore, key: str, *, tasks: int = 2, lease_s: float = 60.0) -> str:
    run_id = store.new_run_id()
    with store.claim(key, reuse="never") as (conn, _found):
        store.insert_run(
            conn, run_id=run_id, content_key=key, name="n", kind="map", backend="slurm",
            log_folder="/l", files="/f", summary={}, tags={}, labels=["a"] * tasks,
            record_keys=["k"] * tasks, states=[{"phase": "running"}] * tasks, lease_s=lease_s,
        )  # fmt: skip
    return run_id


def test_a_new_store_is_private_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    """runs.db is created owner-only, journaled with WAL, and at the schema this code knows."""
    store = RunStore(tmp_path / "store")
    assert store.runs() == []
    assert (tmp_path / "store").stat().st_mode & 0o777 == 0o700
    assert store.path.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_a_newer_paracore_is_refused(tmp_path: Path) -> None:
    """A higher schema version: a clear error naming the file, nothing changed."""
    RunStore(tmp_path).runs()
    conn = sqlite3.connect(tmp_path / "runs.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"runs.db was written by a newer paracore"):
        RunStore(tmp_path).runs()


def test_a_store_of_the_first_schema_gains_the_plans_and_keeps_its_runs(tmp_path: Path) -> None:
    """A version-1 file (before workflows) is brought up to date in place: its runs stay,
    and plans can be recorded and read back."""
    conn = sqlite3.connect(tmp_path / "runs.db")
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO runs (id, content_key, name, kind, backend, created, status, log_folder, "
        "files, summary, tags) VALUES ('r1', 'k', 'n', 'job', 'slurm', 1.0, 'active', '/l', "
        "'/f', '{}', '{}')"
    )
    conn.commit()
    conn.close()
    store = RunStore(tmp_path)
    run_id = "r1"
    store.insert_plan(
        "p1", name="exp", backend="slurm", graph={"order": ["a"]},
        steps=[("a", "key-a", run_id, "submitted")],
    )  # fmt: skip
    assert [r.id for r in store.runs()] == [run_id]
    plan = store.latest_plan("exp", "slurm")
    assert plan is not None and plan.graph == {"order": ["a"]}
    assert [(s.step, s.step_key, s.run_id, s.how) for s in plan.steps] == [
        ("a", "key-a", run_id, "submitted")
    ]
    assert store.latest_plan("exp", "local") is None
    assert sqlite3.connect(store.path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_damaged_store_says_what_to_do(tmp_path: Path) -> None:
    """A file that is not SQLite: the error names it and says to move it aside."""
    (tmp_path / "runs.db").write_bytes(b"not a database, " * 100)
    with pytest.raises(StoreError, match=r"runs.db cannot be used .*move it aside"):
        RunStore(tmp_path).runs()


def test_claim_follows_the_resume_mode(tmp_path: Path) -> None:
    """auto finds an uncollected run, never finds none, cache also finds a collected one
    whose tasks all succeeded (never a collected failure)."""
    store = RunStore(tmp_path)
    run_id = _insert(store, "key")
    store.submitted(run_id, [(0, {"job_id": "1_0"}), (1, {"job_id": "1_1"})])
    for mode, expected in (("auto", run_id), ("never", None), ("cache", run_id)):
        with store.claim("key", reuse=mode) as (_conn, found):
            assert (found.id if found else None) == expected, mode
    store.save_states(run_id, [(0, {"phase": "succeeded"}, None), (1, {"phase": "failed"}, None)])
    store.collected(run_id, [0, 1])
    assert store.run(run_id).collected is not None
    for mode in ("auto", "cache"):
        with store.claim("key", reuse=mode) as (_conn, found):
            assert found is None, mode
    store.save_states(run_id, [(1, {"phase": "succeeded"}, None)])
    for mode, expected in (("auto", None), ("cache", run_id)):
        with store.claim("key", reuse=mode) as (_conn, found):
            assert (found.id if found else None) == expected, mode
    with store.claim("key", reuse="cache", accept=lambda run: False) as (_conn, found):
        assert found is None


def test_a_submission_whose_process_died_is_not_attached_to(tmp_path: Path) -> None:
    """'submitting' held by a dead process (no job recorded) is passed over."""
    store = RunStore(tmp_path)
    run_id = _insert(store, "key")
    with store.claim("key", reuse="auto") as (_conn, found):
        assert found is not None and found.id == run_id  # held by this live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE runs SET owner = ?", (f"{this_process().rsplit(':', 1)[0]}:{dead}",))
    conn.commit()
    with store.claim("key", reuse="auto") as (_conn, found):
        assert found is None


def test_only_one_live_process_holds_a_task_lease(tmp_path: Path) -> None:
    """A lease of another live process is respected; a dead one's is taken over."""
    store = RunStore(tmp_path)
    run_id = _insert(store, "key")
    host = this_process().rsplit(":", 1)[0]
    conn = sqlite3.connect(store.path)
    conn.execute(
        "UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE idx = 0",
        (f"{host}:{os.getppid()}", 1e12),
    )
    conn.commit()
    assert store.lease(run_id, {0: 0, 1: 0}, 60) == {1: 1}
    conn.execute("UPDATE tasks SET lease_owner = ? WHERE idx = 0", (f"{host}:999999999",))
    conn.commit()
    assert store.lease(run_id, {0: 0}, 60) == {0: 1}


def test_an_unknown_or_ambiguous_run_id(tmp_path: Path) -> None:
    """A unique prefix finds its run; an unknown id finds none; an ambiguous one says so."""
    store = RunStore(tmp_path)
    first, second = _insert(store, "a"), _insert(store, "b")
    assert store.run(first[:6]).id == first
    assert store.run("zzzzzzzz") is None
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE runs SET id = 'abc1' WHERE id = ?", (first,))
    conn.execute("UPDATE runs SET id = 'abc2' WHERE id = ?", (second,))
    conn.commit()
    with pytest.raises(StoreError, match="ambiguous"):
        store.run("abc")


# ---------------------------------------------------------------- content keys

FIELDS = {"partition": "debug", "mem_mb": 1024, "time_min": 10, "env": {"A": "1"}}


@settings(max_examples=50)
@given(st.permutations(list(FIELDS)))
def test_the_key_ignores_keyword_order(order: list[str]) -> None:
    """The same fields given in any order give the same key."""
    shuffled = {k: FIELDS[k] for k in order}
    assert content_key("map", shuffled, [b"x", b"y"]) == content_key("map", FIELDS, [b"x", b"y"])


@given(st.sampled_from(sorted(FIELDS)), st.integers(0, 2), st.binary(max_size=8))
def test_any_change_gives_another_key(field: str, which: int, extra: bytes) -> None:
    """Changing a field, a payload, or the payloads' split changes the key."""
    base = content_key("map", FIELDS, [b"ab", b"c"])
    changed = dict(FIELDS, **{field: "other"})
    assert content_key("map", changed, [b"ab", b"c"]) != base
    parts = [[b"ab", b"c" + extra + b"!"], [b"a", b"bc"], [b"ab", b"c", b""]][which]
    assert content_key("map", FIELDS, parts) != base
    assert content_key("job", FIELDS, [b"ab", b"c"]) != base


KEY_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import paracore as pc
from paracore.shell.submit import key_fields, _task_bytes
from paracore.shell.checks import prepare_task
from paracore.core.digest import content_key
from tests.test_store import simulate

spec = pc.with_resources(pc.JobSpec.call(simulate, 0), partition="debug", mem="1G", time="10m")
spec = pc.with_env({"B": "2", "A": "1"}, spec)
backend = pc.Session().backend("local")
tasks = [prepare_task(spec.with_payload(pc.Call(simulate, (i,), {"scale": 2})), lambda n: n)
         for i in range(3)]
tasks.append(prepare_task(pc.JobSpec.command("echo 'a b'"), lambda n: n))
print(content_key("map", key_fields(spec, backend), [_task_bytes(t) for t in tasks]))
"""


def simulate(x: int, scale: int = 1) -> int:
    """A module-level function: pickled by reference."""
    return x * scale


def test_content_keys_are_stable_across_processes(tmp_path: Path) -> None:
    """Two fresh interpreters (different hash seeds) compute the same key for the same work."""
    script = tmp_path / "key.py"
    script.write_text(KEY_SCRIPT)
    keys = {
        subprocess.run(
            [sys.executable, str(script), str(REPO)],
            capture_output=True, text=True, check=True, cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in (1, 2, 3)
    }  # fmt: skip
    assert len(keys) == 1 and len(next(iter(keys))) == 32


def test_the_store_summary_never_holds_environment_values(tmp_path: Path) -> None:
    """A run's record keeps variable names, not their values (the pickles a retry needs
    hold them, owner-only)."""
    handle = pc.run_cmd(
        "true", env={"API_TOKEN": "s3cret"}, backend="local",
        config={"log_dir": str(tmp_path / "logs")},
    )  # fmt: skip
    handle.result(timeout=60)
    store = pc.Session().store()
    (run,) = store.runs()
    assert run.summary["env"] == ["API_TOKEN"]
    database = [f for f in store.folder.glob("runs.db*") if f.is_file()]
    assert database and all(b"s3cret" not in f.read_bytes() for f in database)
    pickles = list(store.folder.glob("runs/*/*.pkl"))  # what a retry needs: owner-only
    assert pickles and {f.stat().st_mode & 0o777 for f in pickles} == {0o600}
    assert json.loads(json.dumps(run.summary))
