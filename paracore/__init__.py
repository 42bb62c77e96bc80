"""paracore: boring, safe and fast submission of compute work to HPC clusters, over submitit.

Describe work as an immutable :class:`JobSpec`, shape it with pure curried transforms, and
hand it to :func:`submit`, the one place that touches the scheduler. The convenience API
(:func:`run_cmd`, :func:`map_cmds`, :func:`map_func`) wraps exactly that.

Names are imported on first use, so ``import paracore`` (and a job unpickling one of its
tasks on a node) pays only for what it uses.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

_WHERE: dict[str, str] = {
    "Chain": "paracore.workflow",
    "Parallel": "paracore.workflow",
    "Plan": "paracore.workflow",
    "PlanRun": "paracore.shell.plan_run",
    "Result": "paracore.workflow",
    "Step": "paracore.workflow",
    "PlanError": "paracore.errors",
    "StepFailedError": "paracore.errors",
    "NOT_GIVEN": "paracore.core.sentinel",
    "Call": "paracore.core.spec",
    "Command": "paracore.core.spec",
    "CommandFailedError": "paracore.errors",
    "CommandResult": "paracore.runtime.tasks",
    "ConfigError": "paracore.errors",
    "DependencyError": "paracore.errors",
    "EnvPolicy": "paracore.core.spec",
    "FailureClass": "paracore.core.failures",
    "JobFailedError": "paracore.errors",
    "JobSpec": "paracore.core.spec",
    "JobTimeoutError": "paracore.errors",
    "KeywordError": "paracore.errors",
    "Naming": "paracore.core.spec",
    "ParacoreError": "paracore.errors",
    "PilotError": "paracore.errors",
    "Pool": "paracore.pool",
    "Recommendation": "paracore.core.autotune",
    "RemoteError": "paracore.errors",
    "RemoteTraceback": "paracore.errors",
    "Resources": "paracore.core.spec",
    "ItemHandle": "paracore.shell.chunked_map",
    "RetryPolicy": "paracore.core.retry",
    "RunNotFound": "paracore.errors",
    "SchedulerUnreachable": "paracore.errors",
    "Session": "paracore.shell.session",
    "SpecError": "paracore.errors",
    "StoreError": "paracore.errors",
    "SubmissionError": "paracore.errors",
    "WrongTypeError": "paracore.errors",
    "UnpicklableError": "paracore.errors",
    "SubmitHandle": "paracore.shell.handle",
    "SubmitOptions": "paracore.core.options",
    "Suggestion": "paracore.core.autotune",
    "autotune_from_pilot": "paracore.shell.pilot",
    "attach": "paracore.shell.submit",
    "autotuned": "paracore.core.transforms",
    "backend_for": "paracore.shell.submit",
    "describe": "paracore.core.summary",
    "gather": "paracore.shell.handle",
    "job_name": "paracore.core.resolved",
    "map_cmds": "paracore.api",
    "map_func": "paracore.api",
    "plot_report": "paracore.shell.report",
    "preset": "paracore.core.transforms",
    "preview": "paracore.shell.submit",
    "resolve": "paracore.shell.config_files",
    "run_cmd": "paracore.api",
    "show_report": "paracore.shell.report",
    "submit": "paracore.shell.submit",
    "submit_map": "paracore.shell.submit",
    "use_session": "paracore.shell.session",
    "with_array": "paracore.core.transforms",
    "with_backend": "paracore.core.transforms",
    "with_cluster": "paracore.core.transforms",
    "with_config": "paracore.core.transforms",
    "with_env": "paracore.core.transforms",
    "with_env_setup": "paracore.core.transforms",
    "with_log_dir": "paracore.core.transforms",
    "with_name": "paracore.core.transforms",
    "with_name_template": "paracore.core.transforms",
    "with_preset": "paracore.shell.config_files",
    "with_resources": "paracore.core.transforms",
    "with_retries": "paracore.core.transforms",
    "with_start_jitter": "paracore.core.transforms",
    "with_tags": "paracore.core.transforms",
}

__all__ = [
    "NOT_GIVEN",
    "Call",
    "Chain",
    "Command",
    "CommandFailedError",
    "CommandResult",
    "ConfigError",
    "DependencyError",
    "EnvPolicy",
    "FailureClass",
    "ItemHandle",
    "JobFailedError",
    "JobSpec",
    "JobTimeoutError",
    "KeywordError",
    "Naming",
    "ParacoreError",
    "Parallel",
    "PilotError",
    "Plan",
    "PlanError",
    "PlanRun",
    "Pool",
    "Recommendation",
    "RemoteError",
    "RemoteTraceback",
    "Resources",
    "Result",
    "RetryPolicy",
    "RunNotFound",
    "SchedulerUnreachable",
    "Session",
    "SpecError",
    "Step",
    "StepFailedError",
    "StoreError",
    "SubmissionError",
    "SubmitHandle",
    "SubmitOptions",
    "Suggestion",
    "UnpicklableError",
    "WrongTypeError",
    "attach",
    "autotune_from_pilot",
    "autotuned",
    "backend_for",
    "describe",
    "gather",
    "job_name",
    "map_cmds",
    "map_func",
    "plot_report",
    "preset",
    "preview",
    "resolve",
    "run_cmd",
    "show_report",
    "submit",
    "submit_map",
    "use_session",
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


def __getattr__(name: str) -> object:
    """Import a public name from the module that defines it, on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paracore' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _typing.TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from paracore.api import map_cmds, map_func, run_cmd
    from paracore.core.autotune import Recommendation, Suggestion
    from paracore.core.failures import FailureClass
    from paracore.core.options import SubmitOptions
    from paracore.core.resolved import job_name
    from paracore.core.retry import RetryPolicy
    from paracore.core.sentinel import NOT_GIVEN
    from paracore.core.spec import Call, Command, EnvPolicy, JobSpec, Naming, Resources
    from paracore.core.summary import describe
    from paracore.core.transforms import (
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
    from paracore.errors import (
        CommandFailedError,
        ConfigError,
        DependencyError,
        JobFailedError,
        JobTimeoutError,
        KeywordError,
        ParacoreError,
        PilotError,
        PlanError,
        RemoteError,
        RemoteTraceback,
        RunNotFound,
        SchedulerUnreachable,
        SpecError,
        StepFailedError,
        StoreError,
        SubmissionError,
        UnpicklableError,
        WrongTypeError,
    )
    from paracore.pool import Pool
    from paracore.runtime.tasks import CommandResult
    from paracore.shell.chunked_map import ItemHandle
    from paracore.shell.config_files import resolve, with_preset
    from paracore.shell.handle import SubmitHandle, gather
    from paracore.shell.pilot import autotune_from_pilot
    from paracore.shell.plan_run import PlanRun
    from paracore.shell.report import plot_report, show_report
    from paracore.shell.session import Session, use_session
    from paracore.shell.submit import attach, backend_for, preview, submit, submit_map
    from paracore.workflow import Chain, Parallel, Plan, Result, Step
