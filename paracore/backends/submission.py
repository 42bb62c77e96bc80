"""Submitting tasks through a submitit executor: shared by the Slurm and local backends."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from submitit.core.utils import FailedJobError, FailedSubmissionError

from paracore.backends.base import Task
from paracore.core.resolved import ResolvedSpec
from paracore.errors import SchedulerUnreachable, SubmissionError

__all__ = ["submission_error", "submit_through"]


def submission_error(err: Exception, spec: ResolvedSpec) -> SubmissionError:
    """The error users see when the scheduler refused (or never answered) a submission."""
    detail: object = err
    if isinstance(err, subprocess.CalledProcessError):
        output = (
            err.output.decode(errors="replace") if isinstance(err.output, bytes) else err.output
        )
        detail = (output or "").strip() or err
    if "controller unreachable after" in str(detail):
        return SchedulerUnreachable(f"sbatch could not submit job {spec.name!r}: {detail}")
    return SubmissionError(f"sbatch refused job {spec.name!r}: {detail}")


def submit_through(executor: Any, spec: ResolvedSpec, tasks: Sequence[Task]) -> list[Any]:
    """Submit ``tasks`` with ``executor``: one job, or one array (``executor.batch()``)."""
    try:
        if len(tasks) == 1:
            return [executor.submit(tasks[0])]
        with executor.batch():
            return [executor.submit(task) for task in tasks]
    except (subprocess.CalledProcessError, FailedSubmissionError, FailedJobError, OSError) as err:
        raise submission_error(err, spec) from err
