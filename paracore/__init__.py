"""paracore: boring, safe and fast submission of compute work to HPC clusters, over submitit.

Describe work as an immutable :class:`JobSpec`, shape it with pure curried transforms, and
hand it to :func:`submit`, the one place that touches the scheduler. The convenience API
(:func:`run_cmd`, :func:`map_cmds`, :func:`map_func`) wraps exactly that.
"""

from paracore.api import map_cmds, map_func, run_cmd
from paracore.autotune import PilotError, Recommendation, Suggestion, TaskMeasurement, recommend
from paracore.backoff import AttemptResources, RetryPolicy, escalate, schedule
from paracore.config import ConfigError, Origin, ResolvedConfig, Setting
from paracore.config_files import resolve, with_preset
from paracore.exceptions import (
    CommandFailedError,
    DependencyError,
    JobFailedError,
    JobTimeoutError,
    ParacoreError,
    RemoteError,
    SpecError,
    SubmissionError,
)
from paracore.failures import FailureClass, classify
from paracore.handle import Attempt, RetryGroup, SubmitHandle, gather
from paracore.params import describe, job_name, to_submitit_params
from paracore.pilot import autotune_from_pilot
from paracore.report import plot_report, show_report
from paracore.runtime import CommandResult
from paracore.sentinel import NOT_GIVEN
from paracore.spec import Call, Command, EnvPolicy, JobSpec, Naming, Resources
from paracore.submit import backend_for, detect_backend, preview, submit, submit_map
from paracore.transforms import (
    autotuned,
    preset,
    with_array,
    with_backend,
    with_cluster,
    with_config,
    with_env,
    with_env_setup,
    with_log_dir,
    with_name,
    with_name_template,
    with_resources,
    with_retries,
    with_start_jitter,
    with_tags,
)

__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "Attempt",
    "AttemptResources",
    "Call",
    "Command",
    "CommandFailedError",
    "CommandResult",
    "ConfigError",
    "DependencyError",
    "EnvPolicy",
    "FailureClass",
    "JobFailedError",
    "JobSpec",
    "JobTimeoutError",
    "Naming",
    "Origin",
    "ParacoreError",
    "PilotError",
    "Recommendation",
    "RemoteError",
    "ResolvedConfig",
    "Resources",
    "RetryGroup",
    "RetryPolicy",
    "Setting",
    "SpecError",
    "SubmissionError",
    "SubmitHandle",
    "Suggestion",
    "TaskMeasurement",
    "autotune_from_pilot",
    "autotuned",
    "backend_for",
    "classify",
    "describe",
    "detect_backend",
    "escalate",
    "gather",
    "job_name",
    "map_cmds",
    "map_func",
    "plot_report",
    "preset",
    "preview",
    "recommend",
    "resolve",
    "run_cmd",
    "schedule",
    "show_report",
    "submit",
    "submit_map",
    "to_submitit_params",
    "with_array",
    "with_backend",
    "with_cluster",
    "with_config",
    "with_env",
    "with_env_setup",
    "with_log_dir",
    "with_name",
    "with_name_template",
    "with_preset",
    "with_resources",
    "with_retries",
    "with_start_jitter",
    "with_tags",
]
