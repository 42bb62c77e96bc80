"""The local backend: submitit's local executor, one process per task on this machine.

submitit's local executor ignores memory, cpus, names and array throttling, and runs every
task at once; paracore says so rather than pretending otherwise. It has no scheduler to
validate against, and after_ok parents are waited for at submission.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import submitit
from submitit.local.local import LocalJob as SubmititLocalJob

from paracore.backends.base import RunningJob, Task
from paracore.backends.machine import ThisMachine
from paracore.backends.outcomes import failure_error, read_result, refused, unreadable
from paracore.backends.slurm.params import to_submitit_params
from paracore.backends.submission import submit_through
from paracore.core.resolved import ResolvedSpec
from paracore.runtime.safe_files import UntrustedFile
from paracore.runtime.tasks import read_failure

__all__ = ["LocalBackend", "LocalJob"]


class LocalJob:
    """A job of submitit's local executor: state and completion from submitit itself."""

    def __init__(
        self, job: submitit.Job[Any], array_index: int | None, describe: str, record_key: str
    ) -> None:
        self._job = job
        self._record_key = record_key
        self.job_id = str(job.job_id)
        self.array_index = array_index
        self.stdout_path: str | None = str(job.paths.stdout)
        self.stderr_path: str | None = str(job.paths.stderr)
        self._describe = describe

    @property
    def state(self) -> str:
        """submitit's view of the process: RUNNING, FINISHED, FAILED, ..."""
        return str(self._job.state)

    def done(self) -> bool:
        """True once the process ended."""
        return bool(self._job.done())

    def outcome(self) -> Any:
        """The task's value, or raise the error its failure record (or state) describes.

        Its files are read only through :mod:`paracore.runtime.safe_files`; the process has
        ended, so a missing result is not waited for: it is not coming.
        """
        result, value = read_result(self._job.paths.result_pickle)
        if result == "success":
            return value
        if result == "refused":
            raise refused(value, self, self._describe)
        if result == "unreadable":
            raise unreadable(value, self, self._describe)
        try:
            failure = read_failure(self._job.paths.result_pickle, self._record_key)
        except UntrustedFile as err:
            raise refused(err, self, self._describe) from None
        state = str(self._job.state)
        raise failure_error(
            failure,
            job_id=self.job_id,
            state="FAILED" if state == "FINISHED" else state,  # finished without a value
            describe=self._describe,
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
        )

    def cancel(self) -> None:
        """Stop the process if it still runs."""
        self._job.cancel(check=False)


class ReattachedLocalJob(LocalJob):
    """A local job started by another (perhaps dead) process: its pid and files tell."""

    @property
    def state(self) -> str:
        """RUNNING while the process lives, else FINISHED."""
        return "RUNNING" if self._alive() else "FINISHED"

    def _alive(self) -> bool:
        if self._job.paths.result_pickle.exists():
            return False
        try:
            os.kill(int(self.job_id), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
        return True

    def done(self) -> bool:
        """True once its result is there or its process is gone."""
        return not self._alive()


class LocalBackend(ThisMachine):
    """Runs tasks as processes on this machine through submitit's local executor."""

    name = "local"

    def __init__(self, session: Any = None) -> None:
        # weakly held: a job nobody waits on any more is let go (and cleaned up) as usual
        self._jobs: weakref.WeakValueDictionary[str, LocalJob] = weakref.WeakValueDictionary()

    def submit(
        self,
        spec: ResolvedSpec,
        tasks: Sequence[Task],
        describes: Sequence[str],
        *,
        after: Sequence[str] = (),
    ) -> list[RunningJob]:
        """Start one process per task (a fresh executor per submission)."""
        throttle = spec.resources.array_parallelism
        if len(tasks) > 1 and isinstance(throttle, int) and throttle < len(tasks):
            warnings.warn(
                f"the local backend starts all {len(tasks)} tasks at once: "
                f"array_parallelism={throttle} is not applied here (it is on Slurm)",
                stacklevel=3,
            )
        executor = submitit.AutoExecutor(folder=spec.log_folder, cluster="local")
        executor.update_parameters(**to_submitit_params(spec, "local"))
        jobs = submit_through(executor, spec, tasks)
        array = len(tasks) > 1
        out: list[RunningJob] = []
        for i, (job, task, describe) in enumerate(zip(jobs, tasks, describes, strict=True)):
            local = LocalJob(job, i if array else None, describe, task.record_key)
            self._jobs[local.job_id] = local
            out.append(local)
        return out

    def reattach(
        self,
        spec: ResolvedSpec,
        job_id: str,
        *,
        array_index: int | None,
        record_key: str,
        describe: str,
    ) -> RunningJob:
        """A process started earlier, followed by its pid and its files."""
        job: SubmititLocalJob[Any] = SubmititLocalJob(folder=spec.log_folder, job_id=job_id)
        reattached = ReattachedLocalJob(job, array_index, describe, record_key)
        self._jobs[reattached.job_id] = reattached
        return reattached

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Stop these processes (those this backend started)."""
        for job_id in job_ids:
            job = self._jobs.get(str(job_id))
            if job is not None:
                job.cancel()

    def preview(
        self, spec: ResolvedSpec, *, array_size: int | None = None, token: str | None = None
    ) -> str:
        """Local tasks have no batch script; say what runs them."""
        return f"# local backend: {spec.payload.label} runs as a process of this machine\n"
