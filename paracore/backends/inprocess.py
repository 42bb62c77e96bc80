"""The in-process backend: runs each task at once, in this process (tests and debugging).

Unlike submitit's DebugExecutor it never opens a debugger on failure. It has no scheduler:
nothing to validate, throttle, cancel or account for.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from paracore.backends.base import RunningJob, Task
from paracore.backends.machine import ThisMachine
from paracore.backends.outcomes import failure_error
from paracore.core.resolved import ResolvedSpec
from paracore.errors import JobFailedError, SpecError
from paracore.runtime.tasks import task_failure

__all__ = ["InProcessBackend", "InProcessJob"]


class InProcessJob:
    """A task already run in this process: its value or its error."""

    def __init__(self, job_id: str, task: Task, array_index: int | None, describe: str) -> None:
        self.job_id = job_id
        self.array_index = array_index
        self.stdout_path: str | None = None
        self.stderr_path: str | None = None
        self._value: Any = None
        self._error: JobFailedError | None = None
        try:
            self._value = task()
            self.state = "COMPLETED"
        except Exception as err:
            self.state = "FAILED"
            self._error = failure_error(
                task_failure(err),
                job_id=self.job_id,
                state="FAILED",
                describe=describe,
                stdout_path=None,
                stderr_path=None,
            )

    def done(self) -> bool:
        """Always True: the task ran when it was submitted."""
        return True

    def outcome(self) -> Any:
        """The task's value, or raise its error."""
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        """Nothing to cancel: the task already ran."""


class InProcessBackend(ThisMachine):
    """Runs tasks at submission, in this process, one after another."""

    name = "inprocess"
    keeps_files = False

    def __init__(self, session: Any = None) -> None:
        self._ids = itertools.count(1)

    def submit(
        self,
        spec: ResolvedSpec,
        tasks: Sequence[Task],
        describes: Sequence[str],
        *,
        after: Sequence[str] = (),
    ) -> list[RunningJob]:
        """Run every task now; array tasks get their index."""
        array = len(tasks) > 1
        return [
            InProcessJob(f"inprocess-{next(self._ids)}", task, i if array else None, describe)
            for i, (task, describe) in enumerate(zip(tasks, describes, strict=True))
        ]

    def reattach(
        self,
        spec: ResolvedSpec,
        job_id: str,
        *,
        array_index: int | None,
        record_key: str,
        describe: str,
    ) -> RunningJob:
        """In-process results live only in the process that ran them."""
        raise SpecError(
            "backend",
            self.name,
            f"a backend that keeps results: job {job_id} ran in-process, in another process",
        )

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Nothing to cancel: tasks run at submission."""

    def preview(
        self, spec: ResolvedSpec, *, array_size: int | None = None, token: str | None = None
    ) -> str:
        """In-process tasks have no script; say so."""
        return f"# in-process backend: {spec.payload.label} runs in this Python process\n"
