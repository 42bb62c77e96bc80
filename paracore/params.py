"""Translate a JobSpec into submitit's parameters (pure).

``to_submitit_params`` is the one place that knows submitit's parameter names; the names it
may emit are listed in :data:`SLURM_PARAM_NAMES` and :data:`LOCAL_PARAM_NAMES`, and the test
suite checks both against what submitit accepts.
"""

from __future__ import annotations

import string
from typing import Any, Literal

import attrs

from paracore.names import render_name, sanitize, template_fields
from paracore.sentinel import NOT_GIVEN
from paracore.spec import JobSpec
from paracore.transforms import BUILTIN_DEFAULTS, with_config

ExecutorKind = Literal["slurm", "local"]

SLURM_PARAM_NAMES: frozenset[str] = frozenset(
    {
        "name",
        "timeout_min",
        "mem_gb",
        "cpus_per_task",
        "gpus_per_node",
        "slurm_partition",
        "slurm_account",
        "slurm_qos",
        "slurm_array_parallelism",
        "slurm_additional_parameters",
    }
)
LOCAL_PARAM_NAMES: frozenset[str] = frozenset({"name", "timeout_min", "cpus_per_task", "mem_gb"})


WARNING_SIGNAL = "URG@60"
"""The pre-timeout warning paracore asks Slurm for: one that processes ignore by default.

submitit asks for USR2 90 s before the time limit and, in a task that cannot checkpoint,
answers it by ending the job as FAILED, up to 150 s early (Slurm may signal 60 s early).
paracore's tasks run to their limit instead, and one that overruns ends TIMEOUT, as sbatch
users expect. An explicit ``extra={"signal": ...}`` wins.
"""


def with_builtin_defaults(spec: JobSpec) -> JobSpec:
    """Fill whatever is still unset from the built-in defaults, the lowest layer."""
    return with_config(BUILTIN_DEFAULTS, spec, source="built-in defaults")


def name_tags(spec: JobSpec) -> dict[str, str]:
    """Tags available to name templates: the spec's own, plus cluster and partition."""
    tags = dict(spec.naming.tags)
    for key, value in (("cluster", spec.cluster), ("partition", spec.resources.partition)):
        if key not in tags and isinstance(value, str):
            tags[key] = value
    return tags


def job_name(spec: JobSpec) -> str:
    """The sanitised name Slurm will show: explicit name, else template, else the payload."""
    naming = with_builtin_defaults(spec).naming
    max_len = int(naming.max_len)  # type: ignore[arg-type]
    if isinstance(naming.job_name, str):
        return sanitize(naming.job_name, max_len)
    if isinstance(naming.template, str):
        tags = name_tags(spec)
        if any(tags.get(field) for field in template_fields(naming.template)) or any(
            c.isalnum() for c in _literal_text(naming.template)
        ):
            return render_name(naming.template, tags, max_len)
    return sanitize(spec.payload.label, max_len)


def _literal_text(template: str) -> str:
    """The template's own text, placeholders left out."""
    return "".join(literal for literal, *_ in string.Formatter().parse(template))


def log_folder(spec: JobSpec) -> str:
    """Folder for logs and pickles: ``<log_dir>/<job name>``; array logs use ``%A_%a``."""
    return f"{with_builtin_defaults(spec).log_dir}/{job_name(spec)}"


def effective_parallelism(spec: JobSpec) -> tuple[int | None, str | None]:
    """The array throttle to use, and a warning when the profile's cap lowered it."""
    res = spec.resources
    wanted = res.array_parallelism if isinstance(res.array_parallelism, int) else None
    cap = res.max_array_parallelism if isinstance(res.max_array_parallelism, int) else None
    if wanted is None:
        return cap, None
    if cap is not None and wanted > cap:
        return cap, (
            f"array_parallelism={wanted} is above the profile's max_array_parallelism={cap}; "
            f"using {cap}"
        )
    return wanted, None


def to_submitit_params(spec: JobSpec, kind: ExecutorKind) -> dict[str, Any]:
    """submitit ``AutoExecutor.update_parameters`` keywords for ``spec`` on ``kind``."""
    spec = with_builtin_defaults(spec)
    res = spec.resources
    params: dict[str, Any] = {"name": job_name(spec)}
    if isinstance(res.time_min, int):
        params["timeout_min"] = res.time_min
    if isinstance(res.cpus_per_task, int):
        params["cpus_per_task"] = res.cpus_per_task
    if isinstance(res.mem_mb, int):
        params["mem_gb"] = res.mem_mb / 1024  # exact: 1024 is a power of two
    if kind == "local":
        return params
    if isinstance(res.gpus, int) and res.gpus > 0:
        params["gpus_per_node"] = res.gpus
    for field in ("partition", "account", "qos"):
        value = getattr(res, field)
        if isinstance(value, str):
            params[f"slurm_{field}"] = value
    parallelism, _warning = effective_parallelism(spec)
    if parallelism is not None:
        params["slurm_array_parallelism"] = parallelism
    params["slurm_additional_parameters"] = {"signal": WARNING_SIGNAL, **dict(res.extra)}
    return params


def describe(spec: JobSpec) -> dict[str, Any]:
    """A plain summary of the resolved spec, for manifests, previews and error messages."""
    spec = with_builtin_defaults(spec)
    res = attrs.asdict(spec.resources, recurse=False)
    return {
        "job_name": job_name(spec),
        "payload": spec.payload.label,
        "backend": spec.backend,
        **{k: (None if v is NOT_GIVEN else v) for k, v in res.items()},
        "env_merge": spec.env.merge,
        "env": dict(spec.env.overlay),
        "env_setup": None if spec.env.setup is NOT_GIVEN else spec.env.setup,
        "retries": spec.retry.retries,
    }
