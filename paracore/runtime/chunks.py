"""One chunk of a map, run inside one array task: its items in series, each outcome kept.

The map's function is pickled once (``fn.pkl`` in the map's folder), each chunk's items are
one file (their input positions and the items), and each item's outcome is appended to the chunk's
results file as soon as it is known, so a chunk killed half-way (out of memory, out of time)
keeps what it finished, and its next attempt skips those items. An item that raises fails
alone: its record holds the error, and the rest of the chunk still runs.

Each record of a results file is framed on its own (a marker, its length and a checksum,
then the pickle of ``(position, status, pickled value)``), and the value is a pickle of its
own inside it: a record cut short by a kill, or a value or exception that cannot be rebuilt
where it is read, costs that record (or only that value), never the records after it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.runtime.environment import applied_environment
from paracore.runtime.safe_files import append_private, read_private, write_private
from paracore.runtime.tasks import (
    TaskFailure,
    clear_failure,
    run_shell,
    start_task,
    task_failure,
    unpicklable_result,
    write_failure,
)

__all__ = [
    "FUNCTION_FILE",
    "ChunkTask",
    "frame",
    "items_blob",
    "items_path",
    "read_items",
    "read_results",
    "read_statuses",
    "results_path",
    "write_items",
]

FUNCTION_FILE = "fn.pkl"
OK = "ok"
ERR = "err"

MARK = b"\x00PCR"
"""Starts every record of a results file."""
_HEADER = struct.Struct(">4sQI")  # the mark, the payload's length, its CRC-32


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


def frame(position: int, status: str, value: Any) -> tuple[str, bytes]:
    """One record of a results file: the item's outcome, framed on its own, and its status.

    A value that cannot be pickled becomes the item's failure (status ``"err"``), naming the
    value's type.
    """
    try:
        blob: bytes = cloudpickle.dumps(value)
    except Exception as err:  # the value does not pickle (a TaskFailure always does)
        error = unpicklable_result(value, err)
        status = ERR
        blob = cloudpickle.dumps(dataclasses.replace(task_failure(error), kind="result"))
    payload = pickle.dumps((position, status, blob), protocol=pickle.HIGHEST_PROTOCOL)
    return status, _HEADER.pack(MARK, len(payload), zlib.crc32(payload)) + payload


def _raw_records(data: bytes) -> Iterator[tuple[int, str, bytes | None, Any]]:
    """``(position, status, pickled value, value)`` of each record that reads, in order.

    Framed records carry the value pickled (loaded by the caller); records of older versions
    (plain pickles one after another) carry it loaded. A damaged record is skipped: reading
    goes on at the next mark.
    """
    at, end = 0, len(data)
    while at < end:
        if data.startswith(MARK, at) and at + _HEADER.size <= end:
            _mark, size, crc = _HEADER.unpack_from(data, at)
            start, stop = at + _HEADER.size, at + _HEADER.size + size
            if stop <= end and zlib.crc32(data[start:stop]) == crc:
                try:
                    position, status, blob = pickle.loads(data[start:stop])
                except Exception:
                    pass
                else:
                    yield int(position), str(status), bytes(blob), None
                at = stop
                continue
        elif data[at] == pickle.PROTO[0]:  # a record of an older version: a bare pickle
            stream = io.BytesIO(data)
            stream.seek(at)
            try:
                position, status, value = pickle.load(stream)
            except Exception:
                pass
            else:
                yield int(position), str(status), None, value
                at = stream.tell()
                continue
        following = data.find(MARK, at + 1)
        if following < 0:
            return
        at = following


def _load(position: int, status: str, blob: bytes | None, value: Any) -> tuple[str, Any]:
    if blob is None:
        return status, value
    try:
        return status, cloudpickle.loads(blob)
    except Exception as err:
        what = "its failure record" if status == ERR else "its result"
        return ERR, TaskFailure(
            kind="call" if status == ERR else "result",
            exc_type=f"{type(err).__module__}.{type(err).__qualname__}",
            exc_message=f"{what} (item {position}) could not be rebuilt here: "
            f"{type(err).__name__}: {err}",
        )


def _read(path: Path) -> bytes:
    try:
        return read_private(path)
    except FileNotFoundError:
        return b""


def read_results(path: Path) -> dict[int, tuple[str, Any]]:
    """Each item's latest outcome in a chunk's results: ``("ok", value)`` or ``("err",
    TaskFailure)``; items without a record are absent. A value that cannot be rebuilt here is
    the item's failure, saying so.

    Raises UntrustedFile when the file (or its folder) is not one only you could have written.
    """
    return {
        position: _load(position, status, blob, value)
        for position, status, blob, value in _raw_records(_read(path))
    }


def read_statuses(path: Path) -> dict[int, str]:
    """Each item's latest status in a chunk's results, without loading the values."""
    return {position: status for position, status, _b, _v in _raw_records(_read(path))}


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
        try:  # e.g. the function's module cannot be imported here: the chunk's failure
            counts = self._run(env)
        except Exception as err:
            write_failure(task_failure(err), self.record_key)
            raise
        clear_failure(self.record_key)
        return counts

    def _run(self, env: dict[str, str]) -> dict[str, int]:
        folder = Path(self.folder)
        statuses = read_statuses(results_path(folder, self.chunk))
        done = {position for position, status in statuses.items() if status == OK}
        fn: Any = None
        if self.kind == "call":
            sys.path.extend(p for p in self.sys_path if p not in sys.path)
            fn = cloudpickle.loads(read_private(folder / FUNCTION_FILE))
        counts = {OK: 0, ERR: 0}
        with (
            applied_environment(env),  # once for the chunk: items run in series
            append_private(results_path(folder, self.chunk)) as out,
        ):
            for position, item in read_items(items_path(folder, self.chunk)):
                if position in done:
                    continue
                status, record = frame(position, *self._one(fn, item, env))
                counts[status] += 1
                out.write(record)
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
