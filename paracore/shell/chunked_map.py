"""Chunked maps: many items per array task, and still one handle and one outcome per item.

A scheduler starts only a few array tasks a second, so a map of many small items packs them
into chunks (:mod:`paracore.core.chunking`), one chunk per array task, run in series by
:class:`~paracore.runtime.chunks.ChunkTask`. The chunks of one submission are a normal run
(a "wave"): the run store records it, and its :class:`~paracore.shell.handle.RetryGroup`
retries a chunk that ran out of memory or time with escalated resources, the next attempt
skipping the items already done. An item that raised fails alone; when the retry policy
retries user errors, the failed items of all chunks are packed into a new wave.

:class:`ChunkedMap` keeps the per-item state in flat arrays (a byte of status and of tries
per item), so a million items cost a few megabytes; :class:`ItemHandle` is two slots.
"""

from __future__ import annotations

import copy
import random
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import attrs

from paracore.backends.outcomes import failure_error, refused
from paracore.core.chunking import pack
from paracore.core.failures import FailureClass
from paracore.core.lifecycle import Attempt
from paracore.core.retry import RetryPolicy, base_delay, jittered, may_retry
from paracore.errors import JobFailedError, JobTimeoutError
from paracore.runtime.chunks import ERR, OK, read_results, results_path
from paracore.runtime.safe_files import UntrustedFile
from paracore.runtime.tasks import TaskFailure
from paracore.shell.handle import SubmitHandle, collected
from paracore.shell.protocols import Handle
from paracore.shell.session import current_session
from paracore.shell.waiting import MAX_POLL_S, wait_until

__all__ = ["ChunkedMap", "ItemHandle", "ItemHandles"]

PENDING, DONE, FAILED, RETRYING, CANCELLED = range(5)
_FINAL = frozenset({DONE, FAILED, CANCELLED})
_STATE_WORDS = {DONE: "COMPLETED", FAILED: "FAILED", CANCELLED: "CANCELLED"}

Launch = Callable[[int, int, list[Sequence[int]]], list[SubmitHandle]]
"""Submit one wave: ``(wave number, first chunk number, positions per chunk) -> handles``."""


@attrs.define
class _Wave:
    """One submission of chunks: which positions each chunk holds, and the chunks' handles."""

    number: int
    first_chunk: int
    chunks: list[Sequence[int]]
    handles: list[SubmitHandle]
    settled: bytearray

    @property
    def live(self) -> bool:
        return not all(self.settled)


class ChunkedMap:
    """The items of one chunked map: their waves of chunks and each item's outcome.

    ``launch`` submits a wave (the first at construction); ``size_for`` picks the chunk size
    of a retry wave from its number of items; ``label`` names item ``i`` in errors.
    """

    def __init__(
        self,
        count: int,
        *,
        folder: Path,
        size: int,
        launch: Launch,
        size_for: Callable[[int], int],
        label: Callable[[int], str],
        retry: RetryPolicy,
        job_name: str,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        session = current_session()
        self.count = count
        self.folder = folder
        self.job_name = job_name
        self._launch = launch
        self._size_for = size_for
        self._label = label
        self._retry = retry
        self._rng = rng if rng is not None else session.rng
        self._clock = clock if clock is not None else session.clock
        self._sleep = sleep if sleep is not None else session.sleep
        self._status = bytearray(count)
        self._tries = bytearray(count)
        self._chunk_of = array("q", bytes(8 * count))
        self._values: list[Any] = [None] * count
        self._failures: dict[int, TaskFailure] = {}
        self._broken: dict[int, JobFailedError] = {}
        self._chunks: list[SubmitHandle] = []
        self._waves: list[_Wave] = []
        self._retrying: list[int] = []
        self._retry_at: float | None = None
        self._collected: set[int] = set()
        self._earlier: dict[int, list[int]] = {}  # a retried item's chunks before its current
        self._unfinished = count
        self._add_wave(pack(range(count), size))

    # -------------------------------------------------------------- waves

    def _add_wave(self, chunks: list[Sequence[int]]) -> None:
        first = len(self._chunks)
        retry = bool(self._waves)
        handles = self._launch(len(self._waves) + 1, first, chunks)
        wave = _Wave(len(self._waves) + 1, first, chunks, handles, bytearray(len(chunks)))
        self._waves.append(wave)
        self._chunks.extend(handles)
        for offset, positions in enumerate(chunks):
            for position in positions:
                if retry:
                    self._earlier.setdefault(position, []).append(self._chunk_of[position])
                self._chunk_of[position] = first + offset

    @property
    def waves(self) -> int:
        """How many submissions of chunks this map made (1 + its retry waves)."""
        return len(self._waves)

    @property
    def chunks(self) -> tuple[SubmitHandle, ...]:
        """The handles of every chunk submitted, in chunk-number order."""
        return tuple(self._chunks)

    # -------------------------------------------------------------- driving

    def drive(self) -> None:
        """One round: advance every live wave, take the finished chunks' outcomes, retry."""
        for wave in self._waves:
            if not wave.live:
                continue
            wave.handles[0].driver().drive()
            for offset, handle in enumerate(wave.handles):
                if not wave.settled[offset] and handle.final:
                    self._settle(wave.first_chunk + offset, wave.chunks[offset], handle)
                    wave.settled[offset] = 1
        if self._retrying and self._retry_at is not None and self._clock() >= self._retry_at:
            positions = sorted(p for p in self._retrying if self._status[p] == RETRYING)
            self._retrying, self._retry_at = [], None
            if positions:
                self._add_wave(pack(positions, self._size_for(len(positions))))
                for position in positions:
                    self._status[position] = PENDING

    def _settle(self, chunk: int, positions: Sequence[int], handle: SubmitHandle) -> None:
        """Take a finished chunk's outcomes: each item done, failed, or due for a retry."""
        try:
            results = read_results(results_path(self.folder, chunk))
        except UntrustedFile as err:  # someone else could have written it: none is read
            results = {}
            self._broken[chunk] = refused(err, handle, f"{self.job_name}: chunk {chunk}")
        if handle.failed and chunk not in self._broken:
            try:
                handle.outcome()
            except JobFailedError as error:
                self._broken[chunk] = error
        now = self._clock()
        for position in positions:
            if self._status[position] in _FINAL:
                continue
            status, value = results.get(position, (None, None))
            if status == OK:
                self._values[position] = value
                self._finish(position, DONE)
            elif status == ERR:
                self._failures[position] = value if isinstance(value, TaskFailure) else _odd(value)
                used = self._tries[position]
                self._tries[position] = min(255, used + 1)
                if may_retry(self._retry, FailureClass.USER_ERROR, used):
                    self._status[position] = RETRYING
                    self._retrying.append(position)
                    delay = jittered(self._retry, base_delay(self._retry, used + 1), self._rng)
                    due = now + delay
                    self._retry_at = due if self._retry_at is None else min(self._retry_at, due)
                else:
                    self._finish(position, FAILED)
            else:  # no record: the chunk failed before reaching the item
                if chunk not in self._broken:
                    self._broken[chunk] = JobFailedError(
                        f"{self.job_name}: chunk {chunk} finished without a result for item "
                        f"{position}; its results file {results_path(self.folder, chunk)} may "
                        "have been removed",
                        job_id=handle.job_id,
                        state="LOST",
                        failure_class=FailureClass.LOST,
                        stdout_path=handle.stdout_path,
                        stderr_path=handle.stderr_path,
                    )
                self._finish(position, FAILED)

    def _finish(self, position: int, status: int) -> None:
        self._status[position] = status
        self._unfinished -= 1
        if self._unfinished == 0 and self._status.count(DONE) == self.count:
            mark_succeeded(self.folder)

    def due(self) -> float | None:
        """When the next chunk or item retry falls due, or None."""
        waves = [w.handles[0].driver().due() for w in self._waves if w.live]
        due = [d for d in waves if d is not None]
        if self._retry_at is not None:
            due.append(self._retry_at)
        return min(due) if due else None

    def bound(self) -> float:
        """How long waiting on the whole map may take: its live waves, then its item retries."""
        live = [w.handles[0].driver().bound() for w in self._waves if w.live]
        first = self._waves[0].handles[0].driver().bound() if self._waves else 0.0
        bound = max(live, default=0.0)
        if self._retry.retries_class(FailureClass.USER_ERROR):
            used = min((self._tries[p] for p in self._retrying), default=0)
            for retry in range(used + 1, self._retry.retries + 1):
                bound += base_delay(self._retry, retry) * (1 + self._retry.jitter) + first
        return bound

    def handed(self, items: Sequence[Handle]) -> None:
        """Outcomes that reached the caller: their chunks are marked collected in the store."""
        fresh: dict[int, SubmitHandle] = {}
        for item in items:
            if not isinstance(item, ItemHandle) or self._status[item._position] not in _FINAL:
                continue
            position = item._position
            # the chunks that ran it before a retry wave count too: their outcome was used
            for chunk in (*self._earlier.get(position, ()), self._chunk_of[position]):
                if chunk not in self._collected:
                    fresh[chunk] = self._chunks[chunk]
        if fresh:
            self._collected.update(fresh)
            collected(list(fresh.values()))

    @property
    def broken(self) -> dict[int, JobFailedError]:
        """The chunks that failed for good (not an item raising), by chunk number."""
        return dict(self._broken)

    @property
    def finished(self) -> bool:
        """True once every item has a final outcome."""
        return self._unfinished == 0

    def counts(self) -> dict[str, int]:
        """How many items are done, failed, running (their chunk started) and pending."""
        done = self._status.count(DONE)
        failed = self._status.count(FAILED) + self._status.count(CANCELLED)
        running = 0
        for wave in self._waves:
            for offset, handle in enumerate(wave.handles):
                if not wave.settled[offset] and handle.state == "RUNNING":
                    running += sum(1 for p in wave.chunks[offset] if self._status[p] == PENDING)
        pending = self.count - done - failed - running
        return {"done": done, "failed": failed, "running": running, "pending": pending}

    def cancel(self) -> None:
        """Cancel every unfinished item and its chunk."""
        for position in range(self.count):
            if self._status[position] not in _FINAL:
                self._finish(position, CANCELLED)
        self._retrying, self._retry_at = [], None
        for handle in self._chunks:
            if not handle.final:
                handle.cancel()

    # -------------------------------------------------------------- one item

    def _cancel_item(self, position: int) -> None:
        if self._status[position] in _FINAL:
            return
        self._finish(position, CANCELLED)
        chunk = self._chunk_of[position]
        wave = next(
            w for w in self._waves if w.first_chunk <= chunk < w.first_chunk + len(w.chunks)
        )
        if all(self._status[p] in _FINAL for p in wave.chunks[chunk - wave.first_chunk]):
            self._chunks[chunk].cancel()

    def _outcome(self, position: int) -> Any:
        status = self._status[position]
        if status == DONE:
            return self._values[position]
        raise self._error(position)

    def _error(self, position: int) -> JobFailedError:
        """The error of a failed item: its own exception, or its chunk's failure."""
        chunk = self._chunk_of[position]
        handle = self._chunks[chunk]
        label = self._label(position)
        if self._status[position] == CANCELLED:
            return JobFailedError(
                f"{label}: cancelled",
                job_id=handle.job_id,
                state="CANCELLED",
                failure_class=FailureClass.CANCELLED,
            )
        failure = self._failures.get(position)
        if failure is not None:
            error = failure_error(
                failure,
                job_id=handle.job_id,
                state="FAILED",
                describe=label,
                stdout_path=handle.stdout_path,
                stderr_path=handle.stderr_path,
            )
            tries = self._tries[position]
            if tries > 1:
                error.args = (f"{error.args[0]}\n(the item was tried {tries} times)",)
            return error
        broken = self._broken.get(chunk)
        if broken is None:
            raise RuntimeError(f"item {position} has no outcome yet")
        error = copy.copy(broken)
        error.args = (f"{label}: not finished because its chunk failed: {broken.args[0]}",)
        error.__cause__ = broken.__cause__  # the node's own exception, when there is one
        return error


class ItemHandle:
    """One item of a chunked map: its result, its error, and the chunk running it.

    Works like a :class:`~paracore.shell.handle.SubmitHandle` for the common calls
    (``result``, ``exception``, ``done``, ``cancel``, ``job_id``, the log paths), and with
    :func:`~paracore.shell.handle.gather`: both are a :class:`~paracore.shell.protocols.Handle`.
    """

    __slots__ = ("_map", "_position")

    def __init__(self, chunked: ChunkedMap, position: int) -> None:
        self._map = chunked
        self._position = position

    def __repr__(self) -> str:
        return f"ItemHandle(index={self._position}, job_id={self.job_id!r})"

    @property
    def index(self) -> int:
        """The item's position in the input."""
        return self._position

    @property
    def _chunk(self) -> SubmitHandle:
        return self._map._chunks[self._map._chunk_of[self._position]]

    @property
    def chunk(self) -> SubmitHandle:
        """The handle of the chunk (array task) that runs, or ran, this item."""
        return self._chunk

    @property
    def job_id(self) -> str:
        """The scheduler's id of the array task running the item's chunk."""
        return self._chunk.job_id

    @property
    def job_name(self) -> str:
        """The map's job name."""
        return self._map.job_name

    @property
    def array_index(self) -> int | None:
        """The index of the item's chunk in its array."""
        return self._chunk.array_index

    @property
    def stdout_path(self) -> str | None:
        """The stdout log of the item's chunk (shared by the chunk's items)."""
        return self._chunk.stdout_path

    @property
    def stderr_path(self) -> str | None:
        """The stderr log of the item's chunk (shared by the chunk's items)."""
        return self._chunk.stderr_path

    @property
    def state(self) -> str:
        """COMPLETED, FAILED or CANCELLED once final; else its chunk's scheduler state."""
        word = _STATE_WORDS.get(self._map._status[self._position])
        return word if word is not None else self._chunk.state

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """The finished attempts of the item's current chunk."""
        return self._chunk.attempts

    @property
    def tries(self) -> int:
        """How often the item raised (each raise may be retried in a new wave)."""
        return self._map._tries[self._position]

    @property
    def final(self) -> bool:
        """True once the item has a final outcome (without advancing the map)."""
        return self._map._status[self._position] in _FINAL

    @property
    def failed(self) -> bool:
        """True once the item failed for good or was cancelled (without advancing the map)."""
        return self._map._status[self._position] in (FAILED, CANCELLED)

    def driver(self) -> ChunkedMap:
        """What advances the item: its whole map."""
        return self._map

    def outcome(self) -> Any:
        """The item's value, or raise its error; only once :attr:`final` (never waits)."""
        return self._map._outcome(self._position)

    def done(self) -> bool:
        """True once the item has a final outcome (advancing the map if needed)."""
        if not self.final:
            self._map.drive()
        return self.final

    def wait_bound(self) -> float:
        """How long :meth:`result` waits without a ``timeout`` (the whole map's bound)."""
        return self._map.bound()

    def scheduler_note(self) -> str | None:
        """The scheduler's complaint about the item's chunk, if any."""
        return self._chunk.scheduler_note()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the item and return its value; raise its error, or JobTimeoutError."""
        if not self.final:
            limit = self.wait_bound() if timeout is None else timeout
            chunked = self._map
            wait_until(
                self.done,
                timeout=limit,
                clock=chunked._clock,
                sleep=chunked._sleep,
                poll_s=1.0,
                max_poll_s=MAX_POLL_S,
                next_due=chunked.due,
                timed_out=lambda: JobTimeoutError(
                    f"item {self._position} of {self.job_name} (job {self.job_id}) still "
                    f"{self.state} after {limit:.0f} s"
                    + (" (the default bound; pass timeout=)" if timeout is None else "")
                    + f"; logs: {self.stdout_path}"
                ),
            )
        try:
            return self.outcome()
        finally:
            self._map.handed([self])

    def exception(self, timeout: float | None = None) -> JobFailedError | None:
        """Wait like :meth:`result` and return the failure instead of raising it."""
        try:
            self.result(timeout)
        except JobFailedError as error:
            return error
        return None

    def cancel(self) -> None:
        """Give up on the item (its chunk is cancelled once none of its items is wanted)."""
        self._map._cancel_item(self._position)


class ItemHandles(Sequence[ItemHandle]):
    """The handles of a chunked map, in input order, made on demand (a million cost nothing)."""

    def __init__(self, chunked: ChunkedMap) -> None:
        self.map = chunked

    def __len__(self) -> int:
        return self.map.count

    @overload
    def __getitem__(self, index: int) -> ItemHandle: ...
    @overload
    def __getitem__(self, index: slice) -> list[ItemHandle]: ...
    def __getitem__(self, index: int | slice) -> ItemHandle | list[ItemHandle]:
        if isinstance(index, slice):
            return [ItemHandle(self.map, i) for i in range(self.map.count)[index]]
        position = range(self.map.count)[index]  # negative indices, IndexError
        return ItemHandle(self.map, position)

    def __iter__(self) -> Iterator[ItemHandle]:
        chunked = self.map
        return (ItemHandle(chunked, i) for i in range(chunked.count))

    def __repr__(self) -> str:
        return f"ItemHandles({self.map.count} items in {len(self.map._chunks)} chunks)"


def _odd(value: Any) -> TaskFailure:
    """A failure record that is not one (a results file from another version): say so."""
    return TaskFailure(
        kind="call", exc_type="RuntimeError", exc_message=f"unreadable failure record: {value!r}"
    )


SUCCEEDED_FILE = "succeeded"
"""Written into a chunked map's folder once every item of it succeeded."""


def map_folder(log_folder: str, key: str, run_id: str) -> Path:
    """Where a chunked map keeps its function, items and results: named by its content key
    and by the run id of its first wave, so a new run never reads an earlier run's results
    (a re-attached run reads its own folder, which its recorded tasks name)."""
    return Path(log_folder) / f"map-{key[:16]}-{run_id}"


def mark_succeeded(folder: Path) -> None:
    """Record that every item of the map in ``folder`` succeeded (what ``cache`` re-uses)."""
    (folder / SUCCEEDED_FILE).touch(mode=0o600)


def map_succeeded(folder: Path) -> bool:
    """Whether every item of the map in ``folder`` succeeded."""
    return (folder / SUCCEEDED_FILE).exists()
