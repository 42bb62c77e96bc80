"""The runs commands: ``ls``, ``status``, ``logs``, ``cancel``, ``rm``, ``gc``, ``manifest``.

Each reads the run store (``$PARACORE_STORE``, the ``store`` setting, or ``.paracore`` at the
project's root) and, for work still in flight, asks the scheduler once for all the jobs it
shows. ``--json`` prints plain data for scripts; otherwise a rich table for people.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from paracore.errors import RunNotFound, SchedulerUnreachable, SpecError
from paracore.shell.runs import InUse, remove_run_files, unrecorded_jobs
from paracore.shell.session import current_session
from paracore.shell.store import AttemptRow, RunRow, RunStore, TaskRow

__all__ = ["add_runs_commands", "manifest_rows", "non_negative_days", "positive_seconds"]

FINAL_PHASES = ("succeeded", "failed")
MANIFEST_FIELDS = (
    "run_id",
    "task",
    "attempt",
    "job_id",
    "job_name",
    "tags",
    "array_index",
    "partition",
    "mem_mb",
    "time_min",
    "exclude",
    "state",
    "exit_code",
    "failure_class",
    "elapsed_s",
    "max_rss_kb",
    "nodes",
    "start",
    "end",
)
"""One record per attempt; environment variables never appear (not even their names)."""


def _console(out: TextIO) -> Console:
    return Console(file=out, width=None if out.isatty() else 160, soft_wrap=False)


def _store() -> RunStore:
    return current_session().store()


def _run(store: RunStore, run_id: str) -> RunRow:
    run = store.run(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r} in the run store {store.path}")
    return run


def _when(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _live_states(runs: Iterable[RunRow], tasks: Mapping[str, Sequence[TaskRow]]) -> dict[str, str]:
    """The scheduler's state of every unfinished task's job, in one query per backend."""
    wanted: dict[str, list[str]] = {}
    for run in runs:
        for task in tasks.get(run.id, ()):
            if task.job_id and task.phase not in FINAL_PHASES and run.status != "cancelled":
                wanted.setdefault(run.backend, []).append(task.job_id)
    states: dict[str, str] = {}
    for backend_name, job_ids in wanted.items():
        try:
            records = current_session().backend(backend_name).accounting(job_ids)
        except (SchedulerUnreachable, ValueError):
            continue
        states.update({job_id: record.state for job_id, record in records.items()})
    return states


def _task_state(task: TaskRow, live: Mapping[str, str]) -> str:
    """What to show for a task: its outcome, or the scheduler's state of its current job."""
    if task.phase in FINAL_PHASES:
        return task.phase
    if task.phase == "waiting_retry":
        return "waiting to retry"
    if task.phase == "waiting_parents":
        return "waiting for parents"
    return live.get(task.job_id or "", "submitted").lower()


def _status_of(run: RunRow, tasks: Sequence[TaskRow]) -> str:
    """submitting, in flight, finished or cancelled."""
    if run.status in ("cancelled", "submitting"):
        return run.status
    return "finished" if all(t.phase in FINAL_PHASES for t in tasks) else "in flight"


def _counts(states: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- ls


def runs_listing(store: RunStore) -> list[dict[str, Any]]:
    """One record per run, newest first: id, name, created, tasks by state, progress."""
    runs = store.runs()
    tasks = {run.id: store.tasks(run.id) for run in runs}
    live = _live_states(runs, tasks)
    out = []
    for run in runs:
        states = [_task_state(t, live) for t in tasks[run.id]]
        done = sum(s in FINAL_PHASES for s in states)
        out.append(
            {
                "id": run.id,
                "name": run.name,
                "kind": run.kind,
                "backend": run.backend,
                "created": _when(run.created),
                "status": _status_of(run, tasks[run.id]),
                "collected": run.collected is not None,
                "tasks": len(states),
                "done": done,
                "states": _counts(states),
            }
        )
    return out


def _ls(args: argparse.Namespace, out: TextIO) -> int:
    listing = runs_listing(_store())
    if args.json:
        out.write(json.dumps(listing, indent=1) + "\n")
        return 0
    table = Table(title=f"runs in {_store().path}", title_justify="left")
    for column in ("id", "name", "created", "tasks by state", "progress"):
        table.add_column(column, overflow="fold")
    for run in listing:
        states = ", ".join(f"{n} {s}" for s, n in run["states"].items())
        note = " (cancelled)" if run["status"] == "cancelled" else ""
        note += "" if run["collected"] or run["done"] < run["tasks"] else " (not collected)"
        table.add_row(
            run["id"], run["name"], run["created"], states, f"{run['done']}/{run['tasks']}{note}"
        )
    _console(out).print(table)
    return 0


# ---------------------------------------------------------------- status


def run_status(store: RunStore, run_id: str) -> dict[str, Any]:
    """A run in detail: its tasks (state, attempts, last failure) and every attempt."""
    run = _run(store, run_id)
    tasks = store.tasks(run.id)
    live = _live_states([run], {run.id: tasks})
    attempts = store.attempts(run.id)
    by_task: dict[int, list[AttemptRow]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.idx, []).append(attempt)
    last_class = {
        idx: next((a.failure_class for a in reversed(rows) if a.failure_class), None)
        for idx, rows in by_task.items()
    }
    return {
        "id": run.id,
        "name": run.name,
        "kind": run.kind,
        "backend": run.backend,
        "created": _when(run.created),
        "status": _status_of(run, tasks),
        "collected": _when(run.collected),
        "log_folder": run.log_folder,
        "summary": dict(run.summary),
        "tasks": [
            {
                "index": task.idx,
                "label": task.label,
                "job_id": task.job_id,
                "state": _task_state(task, live),
                "attempts": len(by_task.get(task.idx, [])),
                "failure_class": last_class.get(task.idx),
            }
            for task in tasks
        ],
        "attempts": [_attempt_record(run, a) for a in attempts],
    }


def _attempt_record(run: RunRow, attempt: AttemptRow) -> dict[str, Any]:
    return {
        "task": attempt.idx,
        "attempt": attempt.n,
        "job_id": attempt.job_id,
        "state": attempt.state,
        "failure_class": attempt.failure_class,
        "exit_code": attempt.exit_code,
        "partition": attempt.partition,
        "mem_mb": attempt.mem_mb,
        "time_min": attempt.time_min,
        "exclude": attempt.exclude,
        "nodes": attempt.nodes,
    }


def _status(args: argparse.Namespace, out: TextIO) -> int:
    status = run_status(_store(), args.run)
    if args.json:
        out.write(json.dumps(status, indent=1) + "\n")
        return 0
    console = _console(out)
    console.print(
        f"run {status['id']} {status['name']!r} ({status['kind']} on {status['backend']}), "
        f"created {status['created']}, {status['status']}; logs in {status['log_folder']}",
        highlight=False,
    )
    tasks = Table(title="tasks", title_justify="left")
    for column in ("task", "job", "state", "attempts", "last failure", "what"):
        tasks.add_column(column, overflow="fold")
    for task in status["tasks"]:
        tasks.add_row(
            str(task["index"]),
            task["job_id"] or "",
            task["state"],
            str(task["attempts"]),
            task["failure_class"] or "",
            task["label"],
        )
    console.print(tasks)
    attempts = Table(title="attempts", title_justify="left")
    for column in ("task", "#", "job", "state", "class", "exit", "asked for", "node"):
        attempts.add_column(column, overflow="fold")
    for a in status["attempts"]:
        asked = ", ".join(
            text
            for text in (
                f"mem {a['mem_mb']}M" if a["mem_mb"] else "",
                f"time {a['time_min']} min" if a["time_min"] else "",
                f"exclude {a['exclude']}" if a["exclude"] else "",
            )
            if text
        )
        attempts.add_row(
            str(a["task"]),
            str(a["attempt"]),
            a["job_id"],
            a["state"] or "",
            a["failure_class"] or "",
            a["exit_code"] or "",
            asked,
            a["nodes"] or "",
        )
    console.print(attempts)
    return 0


# ---------------------------------------------------------------- logs


def _logs(args: argparse.Namespace, out: TextIO) -> int:
    store = _store()
    run = _run(store, args.run)
    attempts = [a for a in store.attempts(run.id) if a.idx == args.index]
    if not attempts:
        raise RunNotFound(f"run {run.id} has no task {args.index} (or it was never submitted)")
    if args.attempt is not None and not 1 <= args.attempt <= len(attempts):
        raise RunNotFound(
            f"task {args.index} of run {run.id} has no attempt {args.attempt}: its attempts "
            f"are numbered 1 to {len(attempts)}"
        )
    chosen = attempts[-1] if args.attempt is None else attempts[args.attempt - 1]
    streams = {"stdout": chosen.stdout, "stderr": chosen.stderr}
    if args.stream != "both":
        streams = {args.stream: streams[args.stream]}
    for name, path in streams.items():
        out.write(f"==> {name} of run {run.id} task {args.index} attempt {chosen.n} ")
        out.write(f"(job {chosen.job_id}): {path} <==\n")
        try:
            out.write(Path(str(path)).read_text(errors="replace"))
        except OSError as err:
            out.write(f"(not readable: {err.strerror})\n")
    return 0


# ---------------------------------------------------------------- cancel, rm, gc


def _unfinished_jobs(store: RunStore, run: RunRow) -> list[str]:
    return [t.job_id for t in store.tasks(run.id) if t.job_id and t.phase not in FINAL_PHASES]


def cancel_run(store: RunStore, run: RunRow) -> list[str]:
    """Cancel the run's unfinished jobs and mark it cancelled; the job ids cancelled."""
    jobs = _unfinished_jobs(store, run) if run.status != "cancelled" else []
    if jobs:
        current_session().backend(run.backend).cancel(jobs)
    store.set_status(run.id, "cancelled")
    return jobs


def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    store = _store()
    run = _run(store, args.run)
    jobs = cancel_run(store, run)
    if args.json:
        out.write(json.dumps({"run": run.id, "cancelled": jobs}) + "\n")
    else:
        out.write(f"run {run.id}: cancelled {len(jobs)} job(s) {' '.join(jobs)}".rstrip() + "\n")
    return 0


def in_flight(store: RunStore, run: RunRow) -> bool:
    """Whether the run still has work the scheduler may run (a run being submitted: while
    its submitter lives and holds its lease)."""
    if run.status == "cancelled":
        return False
    if run.status == "submitting":
        return store.submission_alive(run)
    tasks = store.tasks(run.id)
    live = _live_states([run], {run.id: tasks})
    return any(
        _task_state(t, live) not in (*FINAL_PHASES, "completed", "failed", "cancelled")
        for t in tasks
    )


def remove_run(store: RunStore, run: RunRow, in_use: InUse | None = None) -> tuple[int, list[str]]:
    """Forget a run: its record, its files in the store, its jobs' files (logs, pickles,
    submission scripts) and its chunked map's folder unless a run that stays uses it
    (``in_use``: by default, what every other run of the store uses). How many files were
    removed, and notes on what was left (and jobs an abandoned submission may have made)."""
    if in_use is None:
        in_use = InUse.of(r for r in store.runs() if r.id != run.id)
    notes = []
    if run.status == "submitting":
        jobs = unrecorded_jobs(store, run)
        if jobs:
            notes.append(
                f"its submitter ({run.owner}) died while submitting; job(s) it may have "
                f"submitted, which no run recorded: {' '.join(jobs)} (cancel them with "
                "scancel if they are not wanted)"
            )
    removed, left = remove_run_files(store, run, in_use)
    store.delete(run.id)
    return removed, notes + left


def _followed_note(run: RunRow) -> str:
    host = (run.owner or "").rpartition(":")[0]
    alive = "is alive" if host == socket.gethostname() else f"may be alive (on {host})"
    return (
        f"run {run.id} is finished but not collected, and the process following it "
        f"({run.owner}) {alive}: it may still want the results"
    )


def _rm(args: argparse.Namespace, out: TextIO) -> int:
    store = _store()
    run = _run(store, args.run)
    message = ""
    if store.followed(run) and not args.force:
        message = f"{_followed_note(run)}; rm --force removes it anyway"
    elif in_flight(store, run):
        if not args.force:
            message = (
                f"run {run.id} is still in flight: `paracore cancel {run.id}` first, or rm "
                "--force (which cancels it)"
            )
        else:
            cancel_run(store, run)
    if message:
        out.write(json.dumps({"run": run.id, "error": message}) if args.json else message)
        out.write("\n")
        return 1
    removed, notes = remove_run(store, run)
    if args.json:
        out.write(json.dumps({"run": run.id, "removed_files": removed, "notes": notes}) + "\n")
    else:
        out.write(f"run {run.id}: removed its record and {removed} file(s)\n")
        out.writelines(f"  {note}\n" for note in notes)
    return 0


def _gc(args: argparse.Namespace, out: TextIO) -> int:
    store = _store()
    cutoff = time.time() - args.older_than * 86400
    runs = store.runs()
    followed = [r for r in runs if r.created < cutoff and store.followed(r)]
    old = [
        r for r in runs if r.created < cutoff and not store.followed(r) and not in_flight(store, r)
    ]
    gone = {r.id for r in old}
    notes: dict[str, list[str]] = {}
    if not args.dry_run:
        in_use = InUse.of(r for r in runs if r.id not in gone)
        for run in old:
            notes[run.id] = remove_run(store, run, in_use)[1]
    verb = "would remove" if args.dry_run else "removed"
    if args.json:
        record = {
            "removed": [r.id for r in old],
            "dry_run": args.dry_run,
            "kept_followed": [r.id for r in followed],
            "notes": {run_id: text for run_id, text in notes.items() if text},
        }
        out.write(json.dumps(record) + "\n")
        return 0
    out.write(f"{verb} {len(old)} finished run(s) older than {args.older_than:g} days\n")
    for run in followed:
        out.write(f"kept {_followed_note(run)}\n")
    for run_id, text in notes.items():
        out.writelines(f"run {run_id}: {note}\n" for note in text)
    return 0


# ---------------------------------------------------------------- manifest


def manifest_rows(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    """One record per attempt of the run, with what sacct says about it (read once, kept)."""
    run = _run(store, run_id)
    attempts = store.attempts(run.id)
    missing = [a.job_id for a in attempts if a.elapsed_s is None]
    if missing:
        try:
            records = current_session().backend(run.backend).accounting(missing)
        except (SchedulerUnreachable, ValueError):
            records = {}
        finished = [
            {
                "job_id": job_id,
                "elapsed_s": getattr(record, "elapsed_s", None),
                "max_rss_kb": getattr(record, "max_rss_kb", None),
                "nodes": record.nodes or None,
                "start": getattr(record, "start", None),
                "end": getattr(record, "end", None),
                "state": record.state,
                "exit_code": f"{record.exit_code}:{record.exit_signal or 0}"
                if record.exit_code is not None
                else None,
            }
            for job_id, record in records.items()
            if record.terminal
        ]
        if finished:
            store.save_accounting(finished)
            attempts = store.attempts(run.id)
    tags = ",".join(f"{k}={v}" for k, v in sorted(run.tags.items()))
    return [
        {
            "run_id": run.id,
            "task": a.idx,
            "attempt": a.n,
            "job_id": a.job_id,
            "job_name": run.name,
            "tags": tags,
            "array_index": a.array_index,
            "partition": a.partition,
            "mem_mb": a.mem_mb,
            "time_min": a.time_min,
            "exclude": a.exclude,
            "state": a.state,
            "exit_code": a.exit_code,
            "failure_class": a.failure_class,
            "elapsed_s": a.elapsed_s,
            "max_rss_kb": a.max_rss_kb,
            "nodes": a.nodes,
            "start": a.start,
            "end": a.end,
        }
        for a in attempts
    ]


def _manifest(args: argparse.Namespace, out: TextIO) -> int:
    rows = manifest_rows(_store(), args.run)
    if args.format == "jsonl":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as err:
            raise SpecError(
                "--output", args.output, f"a file paracore can write ({err.strerror})"
            ) from None
    else:
        out.write(text)
    return 0


# ---------------------------------------------------------------- the parsers


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, not {text!r}")
    return value


def non_negative_days(text: str) -> float:
    """An argparse type: a finite number of days, 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a number of days, 0 or more, not {text!r}")
    return value


def add_runs_commands(commands: Any) -> None:
    """Add the runs commands to the ``paracore`` command's sub-parsers."""
    ls = commands.add_parser("ls", help="list the recorded runs")
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    ls.set_defaults(handler=_ls)

    status = commands.add_parser("status", help="tasks, attempts and failures of a run")
    status.add_argument("run", help="the run id (a unique prefix will do)")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(handler=_status)

    logs = commands.add_parser("logs", help="the stdout and stderr of a task")
    logs.add_argument("run", help="the run id")
    logs.add_argument("index", nargs="?", type=int, default=0, help="the task (default 0)")
    logs.add_argument(
        "--attempt", type=int, help="which attempt, numbered from 1 (default: the last)"
    )
    logs.add_argument("--stream", choices=("both", "stdout", "stderr"), default="both")
    logs.set_defaults(handler=_logs)

    cancel = commands.add_parser("cancel", help="cancel a run's unfinished jobs")
    cancel.add_argument("run", help="the run id")
    cancel.add_argument("--json", action="store_true", help="print JSON for scripts")
    cancel.set_defaults(handler=_cancel)

    rm = commands.add_parser("rm", help="remove a run's record and files")
    rm.add_argument("run", help="the run id")
    rm.add_argument("--force", action="store_true", help="cancel it first if still in flight")
    rm.add_argument("--json", action="store_true", help="print JSON for scripts")
    rm.set_defaults(handler=_rm)

    gc = commands.add_parser("gc", help="remove finished runs older than some days")
    gc.add_argument("--older-than", type=non_negative_days, default=30.0, metavar="DAYS")
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed")
    gc.add_argument("--json", action="store_true", help="print JSON for scripts")
    gc.set_defaults(handler=_gc)

    manifest = commands.add_parser("manifest", help="one record per attempt, for audits")
    manifest.add_argument("run", help="the run id")
    manifest.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    manifest.add_argument("--output", help="write to this file instead of stdout")
    manifest.set_defaults(handler=_manifest)
