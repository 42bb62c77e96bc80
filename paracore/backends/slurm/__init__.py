"""The Slurm backend: sbatch through submitit, one batched sacct for status, scontrol limits.

Everything paracore knows about Slurm lives under this package: the translation of a spec to
submitit's parameters (:mod:`.params`), the executor with its robust sbatch
(:mod:`.executor`, :mod:`.sbatch`), accounting (:mod:`.accounting`), the cluster's partitions
and nodes (:mod:`.cluster`) and the shared status poller (:mod:`.polling`).
"""

from __future__ import annotations

import getpass
import subprocess
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import submitit

from paracore.backends.base import RunningJob, Task
from paracore.backends.slurm.accounting import JobRecord, query_jobs, query_queue
from paracore.backends.slurm.cluster_queries import ClusterQueries
from paracore.backends.slurm.commands import run_command
from paracore.backends.slurm.executor import executor_for, sbatch_script
from paracore.backends.slurm.jobs import SubmititJob
from paracore.backends.slurm.polling import Poller
from paracore.backends.slurm.sbatch import is_transient
from paracore.backends.submission import submit_through
from paracore.core.cluster import ClusterInfo, PartitionLimits
from paracore.core.resolved import ResolvedSpec
from paracore.core.rules import (
    choose_parallelism,
    effective_parallelism,
    first_error,
    validation_enabled,
)
from paracore.core.rules import validate as validate_spec
from paracore.errors import SchedulerUnreachable, SpecError

__all__ = ["SlurmBackend"]

DEFAULT_SBATCH_TIMEOUT_S = 60.0


class SlurmBackend:
    """Submits to Slurm; one per session, holding its poller and cluster cache.

    ``runner`` runs the query commands (``sacct``, ``scontrol``, ``sinfo``, ``scancel``);
    ``environ`` is read for ``PARACORE_VALIDATE`` and ``PARACORE_SBATCH_TIMEOUT``.
    """

    name = "slurm"
    schedules_dependencies = True
    measures_in_task = False
    keeps_files = True

    def __init__(self, session: Any) -> None:
        self._runner = session.runner or run_command
        self._environ: Mapping[str, str] = session.environ
        self._clock = session.clock
        self.cluster = ClusterQueries(
            self._runner, clock=session.clock, ttl_s=session.cluster_ttl_s
        )
        user = self._environ.get("USER") or getpass.getuser()
        self.poller = Poller(
            self.accounting,
            queue=lambda: query_queue(user, self._runner),
            clock=session.clock,
            silence_s=session.status_silence_s,
        )

    # -------------------------------------------------------------- before submitting

    def _info(self) -> ClusterInfo | None:
        try:
            return self.cluster.info()
        except SchedulerUnreachable:
            return None

    def check(
        self, spec: ResolvedSpec, *, origins: Mapping[str, str] | None, validate: bool | None
    ) -> ResolvedSpec:
        """Check ``spec`` against the live cluster and settle ``array_parallelism="auto"``.

        Raises SpecError for the first problem (naming field, value, origin and what the
        cluster accepts). Skipped when validation is off or Slurm does not answer. Notes
        (a lowered throttle) are shown as warnings.
        """
        enabled = validation_enabled(validate, self._environ)
        auto = spec.resources.array_parallelism == "auto"
        if not enabled and not auto:
            return spec
        info = self._info()
        if enabled and info is not None:
            problems = validate_spec(spec, info, origins)
            if problems:
                raise first_error(problems)
        if auto:
            spec, note = self._settle_auto_parallelism(spec, info)
            if note:
                warnings.warn(note, stacklevel=4)
        return spec

    def _settle_auto_parallelism(
        self, spec: ResolvedSpec, info: ClusterInfo | None
    ) -> tuple[ResolvedSpec, str | None]:
        """Replace ``array_parallelism="auto"`` by the partition's idle cores, capped."""
        res = spec.resources
        partition = res.partition
        if partition is None and info is not None and info.default_partition is not None:
            partition = info.default_partition.name
        capped = spec.with_resources(array_parallelism=None)
        cap, _ = effective_parallelism(capped)
        if partition is None:
            return capped, "array_parallelism='auto': no partition to ask sinfo about; not set"
        try:
            idle = self.cluster.idle_cpus(partition)
        except SchedulerUnreachable as err:
            return capped, f"array_parallelism='auto': sinfo did not answer ({err}); not set"
        cpus = res.cpus_per_task or 1
        return spec.with_resources(array_parallelism=choose_parallelism(idle, cpus, cap)), None

    # -------------------------------------------------------------- submitting

    def submit(
        self,
        spec: ResolvedSpec,
        tasks: Sequence[Task],
        describes: Sequence[str],
        *,
        after: Sequence[str] = (),
    ) -> list[RunningJob]:
        """One sbatch: a job, or an array of ``len(tasks)`` tasks, after ``after`` succeeded."""
        spec = _tagged(spec, after, new_token())
        timeout = float(self._environ.get("PARACORE_SBATCH_TIMEOUT", DEFAULT_SBATCH_TIMEOUT_S))
        started = time.time()
        jobs = submit_through(executor_for(spec, timeout), spec, tasks)
        array = len(tasks) > 1
        out: list[RunningJob] = []
        for i, (job, task, describe) in enumerate(zip(jobs, tasks, describes, strict=True)):
            _drop_stale_result(job.paths.result_pickle, started)
            out.append(
                SubmititJob(
                    job, i if array else None, describe, self.poller, self._clock, task.record_key
                )
            )
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
        """A job submitted earlier, followed through this backend's poller and its files."""
        job: submitit.SlurmJob[Any] = submitit.SlurmJob(folder=spec.log_folder, job_id=job_id)
        return SubmititJob(job, array_index, describe, self.poller, self._clock, record_key)

    # -------------------------------------------------------------- after submitting

    def accounting(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        """Records for the given jobs from one sacct call; jobs sacct does not know are absent."""
        return query_jobs(list(job_ids), self._runner)

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``scancel`` the jobs (one call)."""
        if job_ids:
            self._runner(["scancel", *map(str, job_ids)])

    def limits(self, partition: str | None) -> PartitionLimits | None:
        """MaxTime and largest node of ``partition`` (None: the default partition).

        Raises SpecError for a partition the cluster does not have, and SchedulerUnreachable
        when scontrol does not answer.
        """
        info = self.cluster.info()
        limits = info.limits(partition)
        if limits is None and partition is not None:
            known = ", ".join(p.name for p in info.partitions) or "none"
            raise SpecError("partition", partition, f"a partition of this cluster: {known}")
        return limits

    def max_array_size(self) -> int | None:
        """Tasks one array may hold (``MaxArraySize``); None when scontrol does not say."""
        return self.cluster.max_array_size()

    def test_submission(self, spec: ResolvedSpec, *, array_size: int | None = None) -> None:
        """Ask ``sbatch --test-only`` whether the cluster would take the exact script (what
        the live limits do not show: ``--nodes``, ``--constraint``, ... passed in ``extra``);
        raise SpecError with sbatch's answer if not. Nothing is submitted."""
        script = self.preview(spec, array_size=array_size)
        timeout = float(self._environ.get("PARACORE_SBATCH_TIMEOUT", DEFAULT_SBATCH_TIMEOUT_S))
        try:
            done = subprocess.run(
                ["sbatch", "--test-only"],
                input=script,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SchedulerUnreachable(f"sbatch --test-only did not answer: {err}") from None
        if done.returncode == 0:
            return
        answer = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        if is_transient(answer):
            raise SchedulerUnreachable(f"sbatch --test-only: {answer}")
        options = " ".join(f"--{k}={v}" for k, v in spec.resources.extra) or "(none in extra)"
        raise SpecError(
            "sbatch options",
            options,
            f"options this cluster can run; sbatch --test-only refused the job: {answer}",
        )

    def preview(
        self, spec: ResolvedSpec, *, array_size: int | None = None, token: str | None = None
    ) -> str:
        """The exact sbatch script paracore would submit for ``spec``.

        Each submission carries a fresh ``--comment`` token; give ``token`` to see the script
        of the submission that carried it (else a new one is drawn).
        """
        tagged = _tagged(spec, (), token or new_token())
        return sbatch_script(tagged, array_size=array_size)


STALE_AFTER_S = 60.0
"""A result pickle older than this before its job was submitted belongs to an older job."""


def _drop_stale_result(result_pickle: Path, submitted_at: float) -> None:
    """Remove a result left by an older job with the same id (Slurm reuses ids after a reset).

    The new job cannot have written a file dated well before it was submitted.
    """
    try:
        if result_pickle.stat().st_mtime < submitted_at - STALE_AFTER_S:
            result_pickle.unlink()
    except FileNotFoundError:
        pass


def new_token() -> str:
    """A token unique to one submission: it finds the job in squeue if sbatch's answer is lost."""
    return f"paracore-{uuid.uuid4().hex[:16]}"


def _tagged(spec: ResolvedSpec, after: Sequence[str], token: str) -> ResolvedSpec:
    """The spec with this submission's ``--comment`` token and its dependencies."""
    extra = dict(spec.resources.extra)
    extra["comment"] = f"{extra['comment']}-{token}" if extra.get("comment") else token
    if after:
        extra["dependency"] = "afterok:" + ":".join(after)
        extra["kill-on-invalid-dep"] = "yes"
    return spec.with_resources(extra=spec.resources.with_extra(**extra).extra)
