"""One batched status query per interval for every job being waited on.

A :class:`Poller` holds the scheduler records of the jobs it watches. Asking it about a job
refreshes at most once per interval, with ONE ``sacct`` call for all watched jobs that are not
finished yet (array tasks are asked for by their array id), never one call per job. The
interval starts at ``min_interval_s`` and grows by ``factor`` after every call up to
``max_interval_s``; a newly watched job (a first submission or a retry) resets it, so fresh
jobs are seen quickly and long waits stay cheap. ``calls`` counts the queries.

A job can take a few seconds to appear in ``sacct`` after ``sbatch``: absence is "not known
yet", never "lost" at once. When ``sacct`` does not answer, the last known records stay and
``failures`` counts it. After ``silence_s`` of ``sacct`` not answering, or not knowing a job,
the poller asks ``squeue`` (one call listing the user's jobs): a job it lists is still
queued or running; a job neither knows is :meth:`gone`, and its own files decide how it
ended. :meth:`note` gives the scheduler's last complaint for error messages.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

from paracore.backends.slurm.accounting import JobRecord
from paracore.errors import SchedulerUnreachable

__all__ = ["Poller"]

Query = Callable[[Sequence[str]], Mapping[str, JobRecord]]
QueueQuery = Callable[[], Mapping[str, str]]
"""Job id -> state of every job of the user still in the queue (``squeue``)."""

SILENCE_S = 120.0
"""How long sacct may fail, or not know a job, before squeue and the job's files decide."""


class Poller:
    """Batched, backing-off status queries shared by many handles.

    ``query`` answers for many jobs at once (the Slurm backend's ``accounting``: one
    ``sacct``); ``queue`` lists the user's queued jobs (``squeue``), asked only after
    ``silence_s`` of sacct silence; ``last_error`` keeps the scheduler's last complaint.
    """

    def __init__(
        self,
        query: Query,
        *,
        queue: QueueQuery | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 2.0,
        max_interval_s: float = 20.0,
        factor: float = 1.5,
        silence_s: float = SILENCE_S,
    ) -> None:
        self._query = query
        self._queue = queue
        self._clock = clock
        self.silence_s = silence_s
        self._since: dict[str, float] = {}
        self._failing_since: float | None = None
        self._queued: dict[str, str] = {}
        self._gone: set[str] = set()
        self.queue_calls = 0
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.factor = factor
        self._interval = min_interval_s
        self._last = -math.inf
        self._asap = False
        self._watched: set[str] = set()
        self._records: dict[str, JobRecord] = {}
        self.calls = 0
        self.failures = 0
        self.last_error: str | None = None

    def watch(self, job_id: str) -> None:
        """Start watching a job; the next question about it asks sacct at once (what a job
        found again, e.g. a re-attached one, is judged by what the scheduler says now, not by
        the poller's rhythm; many jobs watched together still make one query)."""
        if job_id not in self._watched:
            self._watched.add(job_id)
            self._since[job_id] = self._clock()
            self._interval = self.min_interval_s
            self._asap = True

    def _unfinished(self) -> list[str]:
        return [j for j in self._watched if not (j in self._records and self._records[j].terminal)]

    def refresh(self, force: bool = False) -> bool:
        """Query once if the interval has passed (or ``force``); True if a query was made."""
        now = self._clock()
        if not force and not self._asap and now - self._last < self._interval:
            return False
        self._asap = False
        wanted = self._unfinished()
        if not wanted:
            return False
        self.calls += 1
        self._last = now
        self._interval = min(self.max_interval_s, self._interval * self.factor)
        try:
            records = self._query(wanted)
        except SchedulerUnreachable as err:
            self.failures += 1
            self.last_error = str(err)
            if self._failing_since is None:
                self._failing_since = now
            records = {}
        else:
            self._failing_since = None
        for job_id in wanted:
            if job_id in records:
                self._records[job_id] = records[job_id]
                self._queued.pop(job_id, None)
                self._gone.discard(job_id)
        self._ask_the_queue(wanted, now)
        return True

    def _silent(self, job_id: str, now: float) -> bool:
        """sacct has told nothing useful about the job for longer than the silence period."""
        record = self._records.get(job_id)
        if record is not None and record.terminal:
            return False
        failing = self._failing_since is not None and now - self._failing_since > self.silence_s
        unknown = record is None and now - self._since.get(job_id, now) > self.silence_s
        return failing or unknown

    def _ask_the_queue(self, wanted: Sequence[str], now: float) -> None:
        silent = [j for j in wanted if self._silent(j, now)]
        if not silent or self._queue is None:
            return
        self.queue_calls += 1
        try:
            queued = self._queue()
        except SchedulerUnreachable as err:
            self.last_error = str(err)
            return
        for job_id in silent:
            if job_id in queued:
                self._queued[job_id] = queued[job_id]
                self._gone.discard(job_id)
            else:
                self._queued.pop(job_id, None)
                self._gone.add(job_id)

    def gone(self, job_id: str) -> bool:
        """Neither sacct nor squeue knows the job after the silence period: it has ended."""
        return job_id in self._gone

    def queued_state(self, job_id: str) -> str | None:
        """squeue's state of a job sacct is silent about (None when squeue was not asked)."""
        return self._queued.get(job_id)

    def note(self) -> str | None:
        """The scheduler's complaint while it lasts, for error messages; None when all is well."""
        if self._failing_since is None:
            return None
        silent = self._clock() - self._failing_since
        return (
            f"sacct has not answered for {silent:.0f} s ({self.failures} failed calls): "
            f"{self.last_error}"
        )

    def record(self, job_id: str, *, refresh: bool = True) -> JobRecord | None:
        """The latest record of a watched job (None while sacct does not know it yet)."""
        if job_id not in self._watched:
            self.watch(job_id)
        if refresh:
            self.refresh()
        return self._records.get(job_id)
