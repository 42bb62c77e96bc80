"""One batched status query per interval for every job being waited on.

A :class:`Poller` holds the scheduler records of the jobs it watches. Asking it about a job
refreshes at most once per interval, with ONE ``sacct`` call for all watched jobs that are not
finished yet (array tasks are asked for by their array id), never one call per job. The
interval starts at ``min_interval_s`` and grows by ``factor`` after every call up to
``max_interval_s``; a newly watched job (a first submission or a retry) resets it, so fresh
jobs are seen quickly and long waits stay cheap. ``calls`` counts the queries.

A job can take a few seconds to appear in ``sacct`` after ``sbatch``: absence is "not known
yet", never "lost". When ``sacct`` does not answer, the last known records stay and
``failures`` counts it; waits stay bounded by the caller's timeout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

from paracore.backends.slurm.accounting import JobRecord
from paracore.errors import SchedulerUnreachable

__all__ = ["Poller"]

Query = Callable[[Sequence[str]], Mapping[str, JobRecord]]


class Poller:
    """Batched, backing-off status queries shared by many handles.

    ``query`` answers for many jobs at once (the Slurm backend's ``accounting``: one
    ``sacct``); ``last_error`` keeps the scheduler's last complaint for error messages.
    """

    def __init__(
        self,
        query: Query,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 2.0,
        max_interval_s: float = 20.0,
        factor: float = 1.5,
    ) -> None:
        self._query = query
        self._clock = clock
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.factor = factor
        self._interval = min_interval_s
        self._last = -math.inf
        self._watched: set[str] = set()
        self._records: dict[str, JobRecord] = {}
        self.calls = 0
        self.failures = 0
        self.last_error: str | None = None

    def watch(self, job_id: str) -> None:
        """Start watching a job; the next question about it queries soon."""
        if job_id not in self._watched:
            self._watched.add(job_id)
            self._interval = self.min_interval_s

    def _unfinished(self) -> list[str]:
        return [j for j in self._watched if not (j in self._records and self._records[j].terminal)]

    def refresh(self, force: bool = False) -> bool:
        """Query once if the interval has passed (or ``force``); True if a query was made."""
        now = self._clock()
        if not force and now - self._last < self._interval:
            return False
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
            return True
        for job_id in wanted:
            if job_id in records:
                self._records[job_id] = records[job_id]
        return True

    def record(self, job_id: str, *, refresh: bool = True) -> JobRecord | None:
        """The latest record of a watched job (None while sacct does not know it yet)."""
        if job_id not in self._watched:
            self.watch(job_id)
        if refresh:
            self.refresh()
        return self._records.get(job_id)
