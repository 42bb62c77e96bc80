"""One chunk of a map, run inside one array task: its items in series, each outcome kept.

The map's function is pickled once (``fn.pkl`` in the map's folder), each chunk's items are
one file (their input positions and the items), and each item's outcome is appended to the chunk's
results file as soon as it is known, so a chunk killed half-way (out of memory, out of time)
keeps what it finished, and its next attempt skips those items. An item that raises fails
alone: its record holds the error, and the rest of the chunk still runs.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.runtime.environment import applied_environment
from paracore.runtime.safe_files import append_private, read_private, write_private
from paracore.runtime.tasks import (
    TaskFailure,
    run_shell,
    start_task,
    task_failure,
    write_failure,
)

__all__ = [
    "FUNCTION_FILE",
    "ChunkTask",
    "items_blob",
    "items_path",
    "read_items",
    "read_results",
    "results_path",
    "write_items",
]

FUNCTION_FILE = "fn.pkl"
OK = "ok"
ERR = "err"


def items_path(folder: Path, chunk: int) -> Path:
    """Where chunk ``chunk`` of a map keeps its ``(position, item)`` pairs."""
    return folder / f"items-{chunk}.pkl"


def results_path(folder: Path, chunk: int) -> Path:
    """Where chunk ``chunk`` of a map appends its items' outcomes."""
    return folder / f"results-{chunk}.pkl"


def items_blob(positions: Sequence[int], items: Sequence[Any]) -> bytes:
    """A chunk's items file: their input positions (a ``range`` stays small) and the items."""
    blob: bytes = cloudpickle.dumps((positions, list(items)))
    return blob


def write_items(path: Path, blob: bytes) -> None:
    """Write a chunk's items file (replaced atomically: a running chunk never reads half)."""
    write_private(path, blob)


def read_items(path: Path) -> Iterator[tuple[int, Any]]:
    """A chunk's ``(position, item)`` pairs."""
    positions, items = cloudpickle.loads(read_private(path))
    return zip(positions, items, strict=True)


def _records(path: Path) -> Iterator[tuple[int, str, Any]]:
    try:
        stream = io.BytesIO(read_private(path))
    except FileNotFoundError:
        return
    while True:
        try:
            record = pickle.load(stream)
        except EOFError:
            return
        except Exception:  # a record cut short by a kill: what came before stands
            return
        yield record


def read_results(path: Path) -> dict[int, tuple[str, Any]]:
    """Each item's latest outcome in a chunk's results: ``("ok", value)`` or ``("err",
    TaskFailure)``; items without a record are absent.

    Raises UntrustedFile when the file (or its folder) is not one only you could have written.
    """
    return {position: (status, value) for position, status, value in _records(path)}


@dataclasses.dataclass(frozen=True)
class ChunkTask:
    """Run the items of one chunk in series; return how many succeeded and failed.

    ``kind`` is ``"call"`` (each item is the function's argument) or ``"command"`` (each
    item is a shell command). Items whose outcome an earlier attempt already recorded as a
    success are skipped.
    """

    folder: str
    chunk: int
    kind: str
    sys_path: tuple[str, ...] = ()
    merge: str = "inherit"
    overlay: tuple[tuple[str, str], ...] = ()
    setup: str | None = None
    start_jitter_s: float = 0.0
    record_key: str = "task"

    def __call__(self) -> dict[str, int]:
        env = start_task(self.start_jitter_s, self.merge, self.overlay, self.setup, self.record_key)
        folder = Path(self.folder)
        done = {p for p, (status, _v) in read_results(results_path(folder, self.chunk)).items()
                if status == OK}  # fmt: skip
        fn: Any = None
        if self.kind == "call":
            sys.path.extend(p for p in self.sys_path if p not in sys.path)
            try:  # e.g. the function's module cannot be imported here: the chunk's failure
                fn = cloudpickle.loads(read_private(folder / FUNCTION_FILE))
            except Exception as err:
                write_failure(task_failure(err), self.record_key)
                raise
        counts = {OK: 0, ERR: 0}
        with (
            applied_environment(env),  # once for the chunk: items run in series
            append_private(results_path(folder, self.chunk)) as out,
        ):
            for position, item in read_items(items_path(folder, self.chunk)):
                if position in done:
                    continue
                status, value = self._one(fn, item, env)
                counts[status] += 1
                out.write(_record(position, status, value))
                out.flush()
            os.fsync(out.fileno())
        return counts

    def _one(self, fn: Any, item: Any, env: dict[str, str]) -> tuple[str, Any]:
        try:
            if self.kind == "command":
                return OK, run_shell(str(item), env)
            return OK, fn(item)
        except Exception as err:
            return ERR, task_failure(err)


def _record(position: int, status: str, value: Any) -> bytes:
    record: tuple[int, str, Any] = (position, status, value)
    try:
        blob: bytes = cloudpickle.dumps(record)
    except Exception as err:  # the value (or the exception) does not pickle: keep its text
        if isinstance(value, TaskFailure):
            record = (position, status, dataclasses.replace(value, exception=None))
        else:
            failure = task_failure(
                TypeError(f"the result of item {position} cannot be sent: {err}")
            )
            record = (position, ERR, dataclasses.replace(failure, exception=None))
        blob = cloudpickle.dumps(record)
    return blob
