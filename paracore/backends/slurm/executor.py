"""submitit's Slurm executor, made fresh per submission, submitting through a robust sbatch.

submitit's parameters accumulate on an executor, so one is never reused. The executor runs
``sbatch`` through :mod:`paracore.backends.slurm.sbatch`, which retries a transient failure
after the retry policy's delays without ever creating a duplicate job.

This module is the one place that uses submitit's private API (its array submission, its
parameter conversion and its batch-script writer); :data:`SUBMITIT_ARRAY_CODE_DIGEST` pins
the version of submitit's array code copied here, and a test fails when submitit changes it.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import submitit
from submitit.core import utils as submitit_utils
from submitit.slurm import slurm as submitit_slurm

from paracore.backends.slurm.params import to_submitit_params
from paracore.core.resolved import ResolvedSpec
from paracore.core.retry import RetryPolicy, schedule

__all__ = [
    "SUBMITIT_ARRAY_CODE_DIGEST",
    "SUBMITIT_SINGLE_CODE_DIGEST",
    "executor_for",
    "sbatch_script",
]

SUBMITIT_ARRAY_CODE_DIGEST = "5a97f9bca045c4ba"
"""BLAKE2b (8 bytes) of the source of ``submitit.SlurmExecutor._internal_process_submissions``
(submitit 1.5.4), whose array code ``_RobustSlurmExecutor`` copies."""
SUBMITIT_SINGLE_CODE_DIGEST = "9bba6c81388d5f59"
"""The same for ``submitit.core.core.PicklingExecutor._internal_process_submissions``, whose
one-job code ``_RobustSlurmExecutor`` copies."""


class _RobustSlurmExecutor(submitit.SlurmExecutor):
    """submitit's Slurm executor whose ``sbatch`` runs through :mod:`.sbatch`.

    That wrapper retries an ``sbatch`` that timed out or found the controller unreachable,
    after the retry policy's delays, and first looks in ``squeue`` for the submission's
    unique ``--comment`` token so a job that did get created is never submitted twice.
    """

    sbatch_options: tuple[str, ...] = ()

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "paracore.backends.slurm.sbatch",
            *self.sbatch_options,
            "--",
            "sbatch",
            str(submission_file_path),
        ]

    def _internal_process_submissions(self, delayed_submissions: list[Any]) -> list[Any]:
        # submitit's own code for one job and for an array (pinned by the digests above),
        # with two changes: the array executor is of this class (submitit's builds a plain
        # SlurmExecutor, which would bypass the robust sbatch), and the pickles are removed
        # when the submission fails, so nothing is left behind that no job will read.
        folder = submitit_utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("time", 5)
        pickle_paths: list[Path] = []
        try:
            for delayed in delayed_submissions:
                pickle_path = folder / f"{uuid.uuid4().hex}.pkl"
                delayed.set_timeout(timeout_min, self.max_num_timeout)
                delayed.dump(pickle_path)
                pickle_paths.append(pickle_path)
            count = len(delayed_submissions)
            size_gb = pickle_paths[0].stat().st_size / 1024**3
            if count * size_gb > self.max_pickle_size_gb:
                raise RuntimeError(
                    f"Submitting an estimated {count} x {size_gb:.2f} > "
                    f"{self.max_pickle_size_gb}GB of objects (function and arguments) through "
                    "pickle: pass file paths instead of large objects"
                )
            if count == 1:
                self._throttle()
                self._last_job_submitted = time.time()
                jobs: list[Any] = [self._submit_command(self._submitit_command_str)]
            else:
                array_ex = _RobustSlurmExecutor(self.folder, self.max_num_timeout)
                array_ex.sbatch_options = self.sbatch_options
                array_ex.update_parameters(**self.parameters)
                array_ex.parameters["map_count"] = count
                self._throttle()
                first_job = array_ex._submit_command(self._submitit_command_str)
                tasks_ids = list(range(first_job.num_tasks))
                jobs = [
                    submitit_slurm.SlurmJob(
                        folder=self.folder, job_id=f"{first_job.job_id}_{a}", tasks=tasks_ids
                    )
                    for a in range(count)
                ]
        except BaseException:
            for pickle_path in pickle_paths:
                pickle_path.unlink(missing_ok=True)
            raise
        for job, pickle_path in zip(jobs, pickle_paths, strict=True):
            job.paths.move_temporary_file(pickle_path, "submitted_pickle")
        return jobs


def _sbatch_delays(policy: RetryPolicy, rng: random.Random) -> tuple[float, ...]:
    """Delays between tries of one sbatch: the policy's own backoff schedule."""
    return schedule(attrs.evolve(policy, retries=policy.submit_attempts - 1), rng)


def executor_for(spec: ResolvedSpec, sbatch_timeout_s: float) -> submitit.AutoExecutor:
    """A fresh Slurm executor for ``spec`` whose sbatch is the robust one."""
    executor = submitit.AutoExecutor(folder=spec.log_folder, cluster="slurm")
    executor.update_parameters(**to_submitit_params(spec, "slurm"))
    inner = executor._executor
    assert isinstance(inner, submitit.SlurmExecutor)
    robust = _RobustSlurmExecutor(inner.folder, inner.max_num_timeout)
    robust.update_parameters(**inner.parameters)
    token = dict(spec.resources.extra).get("comment", "")
    delays = _sbatch_delays(spec.retry, random.Random())
    robust.sbatch_options = (
        "--token",
        str(token),
        "--delays",
        ",".join(f"{d:.3f}" for d in delays),
        "--timeout",
        f"{sbatch_timeout_s:g}",
    )
    executor._executor = robust
    return executor


def sbatch_script(spec: ResolvedSpec, *, array_size: int | None = None) -> str:
    """The batch script the executor for ``spec`` writes: the very text sbatch is given."""
    robust = executor_for(spec, sbatch_timeout_s=0)._executor
    assert isinstance(robust, _RobustSlurmExecutor)
    if array_size is not None and array_size > 1:  # as _internal_process_submissions does
        array_ex = _RobustSlurmExecutor(robust.folder, robust.max_num_timeout)
        array_ex.update_parameters(**robust.parameters)
        array_ex.parameters["map_count"] = array_size
        robust = array_ex
    text: str = robust._make_submission_file_text(robust._submitit_command_str, "preview")
    return text
