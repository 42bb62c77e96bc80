"""The run store: every submission, its tasks and their attempts, in one SQLite file.

One run is one ``submit`` or ``submit_map`` (or ``run_cmd``/``map_cmds``/``map_func``) call: a
row in ``runs``, one row per task in ``tasks`` (its lifecycle state as JSON, its current job,
a version that counts changes, a lease) and one row per attempt in ``attempts`` (job id,
resources asked, how it ended, and accounting once read). Pickles and results stay on disk,
where the rows point. The store is the only place paracore persists its state.

SQLite in WAL mode with a busy timeout lets several processes (two terminals, the CLI and a
script) use one store at once; a submission claims its run inside ``BEGIN IMMEDIATE``, so two
processes calling the identical work at the same moment make one submission. The schema
version is SQLite's ``user_version``; :data:`MIGRATIONS` brings an older file up to date, and
a file written by a newer paracore is refused with what to do.

The store is trusted only when it is private: its folder (and a link to it) must be yours and
writable by nobody else, and so must ``runs.db`` and its journal, since the rows say which
files are unpickled and which are deleted. A store someone else could have planted (the
default ``.paracore`` in a shared folder such as ``/tmp``) is refused with what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from paracore.errors import RunNotFound, StoreError
from paracore.shell.private import OWNER_ONLY_UMASK, distrust, folder_distrust, private_folder

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRow",
    "PlanRow",
    "PlanStepRow",
    "RunRow",
    "RunStore",
    "TaskRow",
    "this_process",
]

STORE_FILE = "runs.db"
STORE_FILES = (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm")
"""The database and the journal files SQLite keeps beside it."""
BUSY_TIMEOUT_MS = 30_000


MIGRATIONS: tuple[str, ...] = (
    # 1: runs, tasks, attempts
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        content_key TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        backend TEXT NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL,
        collected REAL,
        owner TEXT,
        owner_until REAL,
        log_folder TEXT NOT NULL,
        files TEXT NOT NULL,
        summary TEXT NOT NULL,
        tags TEXT NOT NULL
    );
    CREATE INDEX runs_by_key ON runs (content_key);
    CREATE TABLE tasks (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        label TEXT NOT NULL,
        record_key TEXT NOT NULL,
        job_id TEXT,
        array_index INTEGER,
        stdout TEXT,
        stderr TEXT,
        phase TEXT NOT NULL,
        state TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        collected INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, idx)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        n INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        array_index INTEGER,
        submitted REAL NOT NULL,
        partition TEXT,
        mem_mb INTEGER,
        time_min INTEGER,
        exclude TEXT,
        state TEXT,
        failure_class TEXT,
        exit_code TEXT,
        nodes TEXT,
        elapsed_s INTEGER,
        max_rss_kb INTEGER,
        start TEXT,
        end TEXT,
        stdout TEXT,
        stderr TEXT,
        PRIMARY KEY (run_id, idx, n)
    );
    """,
    # 2: workflow plans, and which run carries each of their steps
    """
    CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        backend TEXT NOT NULL,
        created REAL NOT NULL,
        graph TEXT NOT NULL
    );
    CREATE INDEX plans_by_name ON plans (name, backend, created);
    CREATE TABLE plan_steps (
        plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        step_key TEXT NOT NULL,
        run_id TEXT,
        how TEXT NOT NULL,
        PRIMARY KEY (plan_id, step)
    );
    """,
)
"""One script per schema version; applying scripts ``k..`` brings version ``k`` up to date."""

SCHEMA_VERSION = len(MIGRATIONS)


def this_process() -> str:
    """``host:pid``: who holds a lease, so a lease of a process that died can be taken over."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process that wrote ``owner`` still runs (only knowable on this host)."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: trust its lease until it expires
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@attrs.frozen
class RunRow:
    """One run as stored."""

    id: str
    content_key: str
    name: str
    kind: str
    backend: str
    created: float
    status: str
    collected: float | None
    owner: str | None
    owner_until: float | None
    log_folder: str
    files: str
    summary: Mapping[str, Any] = attrs.field(eq=False)
    tags: Mapping[str, str] = attrs.field(eq=False)


@attrs.frozen
class TaskRow:
    """One task of a run: its current job and its lifecycle state (JSON, wall-clock times)."""

    run_id: str
    idx: int
    label: str
    record_key: str
    job_id: str | None
    array_index: int | None
    stdout: str | None
    stderr: str | None
    phase: str
    state: Mapping[str, Any] = attrs.field(eq=False)
    version: int
    lease_owner: str | None
    lease_until: float | None
    collected: bool


@attrs.frozen
class AttemptRow:
    """One attempt of a task: the job, what it asked for, how it ended, what it used."""

    run_id: str
    idx: int
    n: int
    job_id: str
    array_index: int | None
    submitted: float
    partition: str | None
    mem_mb: int | None
    time_min: int | None
    exclude: str | None
    state: str | None
    failure_class: str | None
    exit_code: str | None
    nodes: str | None
    elapsed_s: int | None
    max_rss_kb: int | None
    start: str | None
    end: str | None
    stdout: str | None
    stderr: str | None


@attrs.frozen
class PlanStepRow:
    """One step of a recorded plan: its definition's key, the run carrying it (None until
    submitted) and how this submission got it (``submitted``, ``reused``, ``attached``)."""

    plan_id: str
    step: str
    step_key: str
    run_id: str | None
    how: str


@attrs.frozen
class PlanRow:
    """One submission of a workflow plan: its name, backend, graph and steps."""

    id: str
    name: str
    backend: str
    created: float
    graph: Mapping[str, Any] = attrs.field(eq=False)
    steps: tuple[PlanStepRow, ...] = ()


def _text(cache: dict[int, str], state: Mapping[str, Any]) -> str:
    """The state as JSON, written once per distinct state object."""
    if id(state) not in cache:
        cache[id(state)] = json.dumps(state)
    return cache[id(state)]


def _run(row: sqlite3.Row) -> RunRow:
    values = dict(row)
    values["summary"] = json.loads(values["summary"])
    values["tags"] = json.loads(values["tags"])
    return RunRow(**values)


def _task(row: sqlite3.Row) -> TaskRow:
    values = dict(row)
    values["state"] = json.loads(values["state"])
    values["collected"] = bool(values["collected"])
    return TaskRow(**values)


class RunStore:
    """The SQLite store in ``folder`` (``runs.db``, and ``runs/<id>/`` for each run's files).

    Connections are short-lived and per call, so one ``RunStore`` serves any thread.
    """

    def __init__(self, folder: Path, *, clock: Any = time.time) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STORE_FILE
        self._clock = clock
        self._ready = False

    # -------------------------------------------------------------- the file

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self._trust()
        old = os.umask(OWNER_ONLY_UMASK)
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as err:
            raise self._error(err) from err
        finally:
            os.umask(old)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                self._migrate(conn)
                self._ready = True
        except sqlite3.Error as err:
            conn.close()
            raise self._error(err) from err
        return conn

    def _trust(self) -> None:
        """Make the folder (0700) if it is missing, then refuse a store that is not private."""
        try:
            private_folder(self.folder)
            reason = folder_distrust(self.folder)
        except OSError as err:
            raise StoreError(
                f"the run store folder {self.folder} cannot be used ({err.strerror}): set "
                "`store:` in paracore.yaml or $PARACORE_STORE to a folder of yours"
            ) from None
        if reason is not None:
            raise StoreError(
                f"the run store folder {self.folder} is not private: {reason}. paracore "
                "unpickles the files of the runs recorded there and deletes what they name, "
                "so it uses only a folder of yours that nobody else may write: set `store:` "
                "in paracore.yaml or $PARACORE_STORE to such a folder (e.g. ~/.paracore-store)"
            )
        for name in STORE_FILES:
            path = self.folder / name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            reason = distrust(info)
            if reason is None and not stat.S_ISREG(info.st_mode):
                reason = "it is not a regular file"
            if reason is not None:
                raise StoreError(
                    f"the run store file {path} is not private: {reason}. Its rows say what "
                    "paracore unpickles and deletes, so it must be a file of yours that "
                    f"nobody else may write: move the store aside, or run 'chmod go-w {path}' "
                    "if you made it"
                )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the run store {self.path} was written by a newer paracore (schema "
                f"{version}, this one knows {SCHEMA_VERSION}): upgrade paracore, or point "
                "PARACORE_STORE at another folder"
            )
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process?
            for script in MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _error(self, err: sqlite3.Error) -> StoreError:
        text = str(err)
        if "locked" in text or "busy" in text:
            what = (
                f"another process held it for more than {BUSY_TIMEOUT_MS // 1000} s; try "
                "again, or see which process has it open (fuser)"
            )
        elif "malformed" in text or "not a database" in text:
            what = (
                "the file is damaged; move it aside (your logs and results stay where they "
                "are) and paracore starts a new one"
            )
        else:
            what = "check that the folder exists and is yours"
        return StoreError(f"the run store {self.path} cannot be used ({text}): {what}")

    @contextlib.contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise self._error(err) from err
        finally:
            conn.close()

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._connect()
        try:
            return list(conn.execute(sql, args))
        except sqlite3.Error as err:
            raise self._error(err) from err
        finally:
            conn.close()

    # -------------------------------------------------------------- runs

    def new_run_id(self) -> str:
        """A fresh run id: 8 hex characters (the store is checked first: a run's files are
        written in it before its row)."""
        if not self._ready:
            self._trust()
        return uuid.uuid4().hex[:8]

    @contextlib.contextmanager
    def claim(
        self,
        content_key: str,
        *,
        reuse: str,
        accept: Callable[[RunRow], bool] | None = None,
    ) -> Iterator[tuple[Any, RunRow | None]]:
        """Inside one write transaction: the run to re-attach to, or None to submit anew.

        ``reuse`` is ``"auto"`` (a run still in flight, or finished but its outcome never
        collected: its submitter was interrupted), ``"cache"`` (also a collected run whose
        every task succeeded, and that ``accept`` takes, when given: a failure is never
        re-used) or ``"never"``. A run whose outcome was collected is otherwise never
        re-attached: the identical work runs again. The caller inserts its new run in the
        same transaction (with :meth:`insert_run`), so two processes never both submit.
        """
        with self._transaction() as conn:
            found: RunRow | None = None
            if reuse != "never":
                rows = conn.execute(
                    "SELECT * FROM runs WHERE content_key = ? AND status != 'cancelled' "
                    "ORDER BY created DESC",
                    (content_key,),
                ).fetchall()
                for row in map(_run, rows):
                    if row.status == "submitting" and not self._lease_holds(row):
                        continue  # its submitter died before recording any job
                    if row.collected is None or (
                        reuse == "cache"
                        and self._succeeded(conn, row.id)
                        and (accept is None or accept(row))
                    ):
                        found = row
                        break
            yield conn, found

    @staticmethod
    def _succeeded(conn: Any, run_id: str) -> bool:
        """Whether every task of the run succeeded."""
        left = conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE run_id = ? AND phase != 'succeeded'", (run_id,)
        ).fetchone()[0]
        return bool(left == 0)

    def _lease_holds(self, run: RunRow) -> bool:
        return owner_alive(run.owner) and (run.owner_until or 0) > self._clock()

    def submission_alive(self, run: RunRow) -> bool:
        """Whether a ``submitting`` run's submitter may still record its jobs: its lease has
        not expired, or its process still runs on this machine (of a process on another
        machine only the lease is known)."""
        if run.status != "submitting":
            return False
        if (run.owner_until or 0) > self._clock():
            return True
        host = (run.owner or "").rpartition(":")[0]
        return host == socket.gethostname() and owner_alive(run.owner)

    @staticmethod
    def followed(run: RunRow) -> bool:
        """Whether a process that submitted or attached to this (submitted) run, and may
        still collect its results, is alive (on another machine it is assumed to be)."""
        return run.status != "submitting" and run.collected is None and owner_alive(run.owner)

    def follow(self, run_id: str) -> None:
        """Record this process as the one following an uncollected run (unless another live
        process already is), so ``paracore gc`` leaves the run to it."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT owner FROM runs WHERE id = ? AND collected IS NULL "
                "AND status != 'submitting'",
                (run_id,),
            ).fetchone()
            if row is not None and not owner_alive(row["owner"]):
                conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (this_process(), run_id))

    def _require(self, conn: Any, run_id: str) -> None:
        """Raise RunNotFound when the run was removed while this process followed it."""
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFound(
                f"run {run_id} was removed from the run store {self.path} (by `paracore rm` "
                "or `paracore gc`, or its submission failed) while this process followed it: "
                "its state cannot be recorded, and the files of its jobs may be gone"
            )

    def insert_run(
        self,
        conn: Any,
        *,
        run_id: str,
        content_key: str,
        name: str,
        kind: str,
        backend: str,
        log_folder: str,
        files: str,
        summary: Mapping[str, Any],
        tags: Mapping[str, str],
        labels: Sequence[str],
        record_keys: Sequence[str],
        states: Sequence[Mapping[str, Any]],
        lease_s: float,
    ) -> None:
        """A new run in the ``submitting`` status, held by this process for ``lease_s``."""
        now = self._clock()
        conn.execute(
            "INSERT INTO runs (id, content_key, name, kind, backend, created, status, "
            "owner, owner_until, log_folder, files, summary, tags) "
            "VALUES (?, ?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                content_key,
                name,
                kind,
                backend,
                now,
                this_process(),
                now + lease_s,
                log_folder,
                files,
                json.dumps(summary),
                json.dumps(dict(tags)),
            ),
        )
        texts: dict[int, str] = {}  # the tasks of a run mostly share one starting state
        conn.executemany(
            "INSERT INTO tasks (run_id, idx, label, record_key, phase, state) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (run_id, i, label, key, state["phase"], _text(texts, state))
                for i, (label, key, state) in enumerate(
                    zip(labels, record_keys, states, strict=True)
                )
            ],
        )

    def submitted(self, run_id: str, jobs: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Record the first attempt of each task ``(idx, job fields)`` and make the run active."""
        now = self._clock()
        with self._transaction() as conn:
            self._require(conn, run_id)
            self._record_attempts(conn, run_id, jobs, now)
            # the submitter stays the run's owner (without a lease): it follows the run
            conn.execute(
                "UPDATE runs SET status = 'active', owner_until = NULL WHERE id = ?", (run_id,)
            )

    def _record_attempts(
        self, conn: Any, run_id: str, jobs: Sequence[tuple[int, Mapping[str, Any]]], now: float
    ) -> None:
        made = dict(
            conn.execute(
                "SELECT idx, COUNT(*) FROM attempts WHERE run_id = ? GROUP BY idx", (run_id,)
            ).fetchall()
        )
        conn.executemany(
            "INSERT INTO attempts (run_id, idx, n, job_id, array_index, submitted, "
            "partition, mem_mb, time_min, exclude, stdout, stderr) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    idx,
                    made.get(idx, 0) + 1,
                    job["job_id"],
                    job.get("array_index"),
                    now,
                    job.get("partition"),
                    job.get("mem_mb"),
                    job.get("time_min"),
                    job.get("exclude"),
                    job.get("stdout"),
                    job.get("stderr"),
                )
                for idx, job in jobs
            ],
        )
        conn.executemany(
            "UPDATE tasks SET job_id = ?, array_index = ?, stdout = ?, stderr = ?, "
            "version = version + 1 WHERE run_id = ? AND idx = ?",
            [
                (
                    job["job_id"],
                    job.get("array_index"),
                    job.get("stdout"),
                    job.get("stderr"),
                    run_id,
                    idx,
                )
                for idx, job in jobs
            ],
        )

    def resubmitted(
        self, run_id: str, jobs: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> dict[int, int]:
        """Record a new attempt of each task ``(idx, job fields)``, release its lease; the
        tasks' new versions."""
        with self._transaction() as conn:
            self._require(conn, run_id)
            self._record_attempts(conn, run_id, jobs, self._clock())
            conn.executemany(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL "
                "WHERE run_id = ? AND idx = ?",
                [(run_id, idx) for idx, _ in jobs],
            )
            return self._versions(conn, run_id, [idx for idx, _ in jobs])

    @staticmethod
    def _versions(conn: Any, run_id: str, indices: Sequence[int]) -> dict[int, int]:
        return {
            idx: conn.execute(
                "SELECT version FROM tasks WHERE run_id = ? AND idx = ?", (run_id, idx)
            ).fetchone()[0]
            for idx in dict.fromkeys(indices)
        }

    def save_states(
        self,
        run_id: str,
        states: Sequence[tuple[int, Mapping[str, Any], Mapping[str, Any] | None]],
        known: Mapping[int, int] | None = None,
    ) -> dict[int, int]:
        """Write tasks' lifecycle states and, for an attempt that ended, how it ended; the
        new versions of the tasks written.

        With ``known`` (each task's version as the writer last saw it) a state is written only
        when the task's version is still that one (compare-and-set): a task another process
        changed meanwhile keeps that process's state, and the writer reloads it.
        """
        if not states:
            return {}
        expected = dict(known) if known is not None else None
        written: dict[int, int] = {}
        with self._transaction() as conn:
            self._require(conn, run_id)
            for idx, state, ended in states:
                if ended is not None:  # how a job ended is a fact, whoever saw it
                    conn.execute(
                        "UPDATE attempts SET state = ?, failure_class = ?, exit_code = ?, "
                        "nodes = ? WHERE run_id = ? AND idx = ? AND job_id = ?",
                        (
                            ended.get("state"),
                            ended.get("failure_class"),
                            ended.get("exit_code"),
                            ended.get("nodes"),
                            run_id,
                            idx,
                            ended["job_id"],
                        ),
                    )
                sql = (
                    "UPDATE tasks SET phase = ?, state = ?, version = version + 1 "
                    "WHERE run_id = ? AND idx = ?"
                )
                args: tuple[Any, ...] = (state["phase"], json.dumps(state), run_id, idx)
                if expected is not None:
                    sql += " AND version = ?"
                    args += (expected.get(idx, -1),)
                if conn.execute(sql, args).rowcount:
                    written[idx] = self._versions(conn, run_id, [idx])[idx]
                    if expected is not None:
                        expected[idx] = written[idx]
        return written

    def lease(self, run_id: str, known: Mapping[int, int], seconds: float) -> dict[int, int]:
        """Take the resubmission lease of these tasks; the ones this process now holds, with
        their new versions.

        ``known`` is each task's version as this process last saw it: a task whose version
        moved on since (another process resubmitted it, or wrote what it saw) is not taken,
        so a decision made from a stale view never resubmits. A task leased by another live
        process within its lease is not taken either: that process resubmits it, and this one
        follows the store. Taking the lease is a change of the task (its version moves), so
        nobody else decides from the view the lease was taken on.
        """
        now = self._clock()
        me = this_process()
        taken: dict[int, int] = {}
        with self._transaction() as conn:
            self._require(conn, run_id)
            for idx, version in known.items():
                row = conn.execute(
                    "SELECT lease_owner, lease_until, version FROM tasks "
                    "WHERE run_id = ? AND idx = ?",
                    (run_id, idx),
                ).fetchone()
                if row is None or row["version"] != version:
                    continue
                owner, until = row["lease_owner"], row["lease_until"]
                if owner not in (None, me) and (until or 0) > now and owner_alive(owner):
                    continue
                conn.execute(
                    "UPDATE tasks SET lease_owner = ?, lease_until = ?, version = version + 1 "
                    "WHERE run_id = ? AND idx = ?",
                    (me, now + seconds, run_id, idx),
                )
                taken[idx] = version + 1
        return taken

    def release(self, run_id: str, indices: Iterable[int]) -> None:
        """Give up this process's leases on these tasks."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL "
                "WHERE run_id = ? AND idx = ? AND lease_owner = ?",
                [(run_id, idx, this_process()) for idx in indices],
            )

    def collected(self, run_id: str, indices: Iterable[int]) -> None:
        """These tasks' outcomes were handed to the user; the run is collected once all are
        (nothing to mark, and no error, when the run was removed: the outcomes are in hand)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE tasks SET collected = 1 WHERE run_id = ? AND idx = ?",
                [(run_id, idx) for idx in indices],
            )
            left = conn.execute(
                "SELECT COUNT(*) FROM tasks WHERE run_id = ? AND collected = 0", (run_id,)
            ).fetchone()[0]
            if left == 0:
                conn.execute(
                    "UPDATE runs SET collected = ? WHERE id = ? AND collected IS NULL",
                    (self._clock(), run_id),
                )

    def set_status(self, run_id: str, status: str) -> None:
        """Mark a run ``active`` or ``cancelled``."""
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def save_accounting(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Cache what sacct said about finished attempts (elapsed, MaxRSS, node, times)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE attempts SET elapsed_s = :elapsed_s, max_rss_kb = :max_rss_kb, "
                "nodes = COALESCE(nodes, :nodes), start = :start, end = :end, "
                "state = COALESCE(state, :state), exit_code = COALESCE(exit_code, :exit_code) "
                "WHERE job_id = :job_id",
                rows,
            )

    def delete(self, run_id: str) -> None:
        """Forget a run (its rows; the caller removes its files)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -------------------------------------------------------------- plans

    def insert_plan(
        self,
        plan_id: str,
        *,
        name: str,
        backend: str,
        graph: Mapping[str, Any],
        steps: Sequence[tuple[str, str, str | None, str]],
    ) -> None:
        """Record a plan's submission: ``steps`` are ``(step, key, run id, how)``."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO plans (id, name, backend, created, graph) VALUES (?, ?, ?, ?, ?)",
                (plan_id, name, backend, self._clock(), json.dumps(dict(graph))),
            )
            conn.executemany(
                "INSERT INTO plan_steps (plan_id, step, step_key, run_id, how) "
                "VALUES (?, ?, ?, ?, ?)",
                [(plan_id, *row) for row in steps],
            )

    def plan_step_run(self, plan_id: str, step: str, run_id: str, how: str) -> None:
        """Record the run that carries a step submitted later (a local plan's waiting step)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE plan_steps SET run_id = ?, how = ? WHERE plan_id = ? AND step = ?",
                (run_id, how, plan_id, step),
            )

    def latest_plan(self, name: str, backend: str) -> PlanRow | None:
        """The newest recorded submission of the plan ``name`` on ``backend``."""
        rows = self._read(
            "SELECT * FROM plans WHERE name = ? AND backend = ? ORDER BY created DESC LIMIT 1",
            (name, backend),
        )
        return self._plan(rows[0]) if rows else None

    def plan(self, plan_id: str) -> PlanRow | None:
        """The plan submission ``plan_id``."""
        rows = self._read("SELECT * FROM plans WHERE id = ?", (plan_id,))
        return self._plan(rows[0]) if rows else None

    def _plan(self, row: sqlite3.Row) -> PlanRow:
        steps = self._read("SELECT * FROM plan_steps WHERE plan_id = ?", (row["id"],))
        return PlanRow(
            id=row["id"],
            name=row["name"],
            backend=row["backend"],
            created=row["created"],
            graph=json.loads(row["graph"]),
            steps=tuple(PlanStepRow(**dict(r)) for r in steps),
        )

    # -------------------------------------------------------------- reading

    def run(self, run_id: str) -> RunRow | None:
        """The run whose id is ``run_id`` or starts with it (unique prefixes work).

        The prefix is literal: ``%``, ``_`` and ``\\`` are characters of an id, never
        patterns, and an empty id names no run.
        """
        if not run_id:
            return None
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._read(
            "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created", (f"{escaped}%",)
        )
        rows = [r for r in rows if r["id"].startswith(run_id)]  # LIKE ignores ASCII case
        exact = [r for r in rows if r["id"] == run_id]
        if exact:
            return _run(exact[0])
        if len(rows) == 1:
            return _run(rows[0])
        if len(rows) > 1:
            ids = ", ".join(r["id"] for r in rows)
            raise StoreError(f"run id {run_id!r} is ambiguous: it starts {ids}")
        return None

    def runs(self) -> list[RunRow]:
        """Every run, newest first."""
        return [_run(r) for r in self._read("SELECT * FROM runs ORDER BY created DESC")]

    def tasks(self, run_id: str) -> list[TaskRow]:
        """The run's tasks in input order."""
        rows = self._read("SELECT * FROM tasks WHERE run_id = ? ORDER BY idx", (run_id,))
        return [_task(r) for r in rows]

    def versions(self, run_id: str) -> dict[int, int]:
        """Each task's change counter: a handle reloads a task whose counter moved."""
        rows = self._read("SELECT idx, version FROM tasks WHERE run_id = ?", (run_id,))
        return {r["idx"]: r["version"] for r in rows}

    def attempts(self, run_id: str) -> list[AttemptRow]:
        """Every attempt of the run, by task and attempt number."""
        rows = self._read("SELECT * FROM attempts WHERE run_id = ? ORDER BY idx, n", (run_id,))
        return [AttemptRow(**dict(r)) for r in rows]

    def recorded_jobs(self, job_ids: Iterable[str]) -> set[str]:
        """Which of these job ids an attempt of some run recorded."""
        wanted = list(dict.fromkeys(job_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ", ".join("?" * len(part))
            rows = self._read(
                f"SELECT DISTINCT job_id FROM attempts WHERE job_id IN ({marks})", part
            )
            found.update(r["job_id"] for r in rows)
        return found

    def phase_counts(self) -> dict[str, dict[str, int]]:
        """Per run, how many tasks are in each phase (one query for ``paracore ls``)."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._read("SELECT run_id, phase, COUNT(*) AS n FROM tasks GROUP BY 1, 2"):
            counts.setdefault(row["run_id"], {})[row["phase"]] = row["n"]
        return counts
