"""What a backend is: the interface every place that runs work implements.

paracore's shell (:mod:`paracore.shell.submit`, handles, the pilot) talks to a scheduler only
through a :class:`Backend`, and to one submitted attempt only through a :class:`RunningJob`.
``slurm``, ``local`` and ``inprocess`` implement them; a site can add its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from paracore.core.cluster import PartitionLimits
from paracore.core.resolved import ResolvedSpec

__all__ = ["Backend", "JobState", "RunningJob", "Task"]


class Task(Protocol):
    """What runs inside the job: a picklable callable (:mod:`paracore.runtime.tasks`).

    ``record_key`` names the failure record it leaves when its payload fails.
    """

    @property
    def record_key(self) -> str: ...

    def __call__(self) -> Any: ...


class JobState(Protocol):
    """What a backend knows about a job: its state and, once it ended, how."""

    @property
    def job_id(self) -> str: ...

    @property
    def state(self) -> str:
        """The state's first word (``CANCELLED by 0`` -> ``CANCELLED``)."""
        ...

    @property
    def state_raw(self) -> str: ...

    @property
    def exit_code(self) -> int | None: ...

    @property
    def exit_signal(self) -> int | None: ...

    @property
    def reason(self) -> str: ...

    @property
    def nodes(self) -> str: ...

    @property
    def terminal(self) -> bool:
        """True once the job will not change state again."""
        ...


@runtime_checkable
class RunningJob(Protocol):
    """One submitted attempt on some backend, as a SubmitHandle sees it.

    A job may also offer ``record()`` returning its scheduler record (a :class:`JobState`,
    e.g. :class:`~paracore.backends.slurm.accounting.JobRecord`) for exit codes and nodes,
    and ``scheduler_note()`` returning the scheduler's current complaint (for messages).
    """

    job_id: str
    array_index: int | None
    stdout_path: str | None
    stderr_path: str | None

    @property
    def state(self) -> str: ...

    def done(self) -> bool: ...

    def outcome(self) -> Any:
        """The value, or raise JobFailedError; only called once ``done()`` is true."""
        ...

    def cancel(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A place that runs work: Slurm, this machine, this process, or a site's own.

    ``name`` is how specs and ``$PARACORE_BACKEND`` choose it. ``schedules_dependencies``
    says whether the scheduler itself holds a job until its ``after_ok`` parents succeeded
    (otherwise submission waits for them). ``measures_in_task`` says a pilot must measure
    inside the task (no accounting to read time and memory from). ``keeps_files`` says it
    writes logs and pickles under the spec's log folder.
    """

    name: str
    schedules_dependencies: bool
    measures_in_task: bool
    keeps_files: bool

    def check(
        self, spec: ResolvedSpec, *, origins: Mapping[str, str] | None, validate: bool | None
    ) -> ResolvedSpec:
        """The spec checked against what the backend allows (raise SpecError), settled."""
        ...

    def submit(
        self,
        spec: ResolvedSpec,
        tasks: Sequence[Task],
        describes: Sequence[str],
        *,
        after: Sequence[str] = (),
    ) -> list[RunningJob]:
        """Submit the tasks sharing ``spec``: one job, or one array when there are several."""
        ...

    def reattach(
        self,
        spec: ResolvedSpec,
        job_id: str,
        *,
        array_index: int | None,
        record_key: str,
        describe: str,
    ) -> RunningJob:
        """The running job ``job_id`` submitted earlier (perhaps by another process) for
        ``spec``: its state and outcome come from the scheduler and its files."""
        ...

    def accounting(self, job_ids: Sequence[str]) -> Mapping[str, JobState]:
        """State and usage of these jobs, in one bulk query; jobs not known yet are absent."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel these jobs (already finished ones are left alone)."""
        ...

    def limits(self, partition: str | None) -> PartitionLimits | None:
        """What one task may ask for on ``partition`` (None: unknown)."""
        ...

    def preview(
        self, spec: ResolvedSpec, *, array_size: int | None = None, token: str | None = None
    ) -> str:
        """The exact submission script for ``spec`` (as the submission carrying ``token``)."""
        ...
