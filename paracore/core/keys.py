"""The names users may give settings under, and the one field or key each spelling means.

Users arrive from sbatch, submitit and the seed API, so several spellings are accepted
(``mem``/``mem_gb``/``mem_mb``, ``time``/``time_min``, ``cpus``/``cpus_per_task``); each is
translated here, once, for transforms, configuration files and error messages alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

__all__ = ["CONFIG_KEYS", "FLAT_ALIASES", "KEYWORD_DOCS", "RESOURCE_FIELDS", "Keywords"]

RESOURCE_FIELDS: Mapping[str, str] = {
    "partition": "partition",
    "account": "account",
    "qos": "qos",
    "cpus_per_task": "cpus_per_task",
    "cpus": "cpus_per_task",
    "mem": "mem_mb",
    "mem_gb": "mem_mb",
    "mem_mb": "mem_mb",
    "time": "time_min",
    "time_min": "time_min",
    "gpus": "gpus",
    "array_parallelism": "array_parallelism",
    "max_array_parallelism": "max_array_parallelism",
    "extra": "extra",
}
"""Resource keyword -> the :class:`~paracore.core.spec.Resources` field it sets."""

FLAT_ALIASES: Mapping[str, str] = {"cpus": "cpus_per_task", "time": "time_min", "mem": "mem_gb"}
"""Short spellings -> the flat configuration key they stand for."""

CONFIG_KEYS: tuple[str, ...] = (
    *sorted(RESOURCE_FIELDS),
    "backend",
    "cluster",
    "default_env",
    "default_job_name",
    "log_dir",
    "max_len",
    "start_jitter_s",
)
"""Flat configuration keys :func:`~paracore.core.transforms.with_config` reads."""


@attrs.frozen(kw_only=True)
class Keywords:
    """The convenience keywords, defined once: ``run_cmd``, ``map_cmds``, ``map_func``,
    ``Pool`` and a workflow step's resources take them (a parity test checks each signature
    against this table); ``None`` means "not given", so configuration can fill the field."""

    job_name: str | None = attrs.field(
        default=None, metadata={"doc": "the job's name (sanitised for Slurm)"}
    )
    partition: str | None = attrs.field(default=None, metadata={"doc": "the Slurm partition"})
    time_min: int | str | None = attrs.field(
        default=None, metadata={"doc": "walltime: minutes, or '1:30:00', '2h', '1d'"}
    )
    cpus_per_task: int | None = attrs.field(default=None, metadata={"doc": "CPUs of each task"})
    mem_gb: float | str | None = attrs.field(
        default=None, metadata={"doc": "memory: GB, or a string such as '500M'"}
    )
    gpus: int | None = attrs.field(
        default=None, metadata={"doc": "GPUs of each task (--gpus-per-node)"}
    )
    env_setup: str | None = attrs.field(
        default=None, metadata={"doc": "a shell line run before the work, e.g. 'module load x'"}
    )
    env: Mapping[str, str] | None = attrs.field(
        default=None, metadata={"doc": "environment variables overlaid in the job"}
    )
    env_merge: Literal["inherit", "replace"] = attrs.field(
        default="inherit",
        metadata={"doc": "'inherit' the submitter's environment, or 'replace' it"},
    )
    jitter_s: float = attrs.field(
        default=0.0, metadata={"doc": "a random 0..jitter_s sleep at task start"}
    )
    array_parallelism: int | str | None = attrs.field(
        default=None,
        metadata={"doc": "array tasks running at once (a number, or 'auto': the idle cores)"},
    )
    account: str | None = attrs.field(default=None, metadata={"doc": "the account charged"})
    qos: str | None = attrs.field(default=None, metadata={"doc": "the quality of service"})
    extra: Mapping[str, Any] | None = attrs.field(
        default=None, metadata={"doc": "raw #SBATCH options, e.g. {'constraint': 'a100'}"}
    )
    retries: int = attrs.field(default=0, metadata={"doc": "how often failed work is resubmitted"})
    retry_backoff_s: float = attrs.field(
        default=30.0, metadata={"doc": "the first wait before a retry (it doubles)"}
    )
    backend: str | None = attrs.field(
        default=None, metadata={"doc": "'slurm', 'local', 'inprocess', a plugin's name, or 'auto'"}
    )
    config: Mapping[str, Any] | None = attrs.field(
        default=None, metadata={"doc": "flat configuration values for this call"}
    )
    cluster: str | None = attrs.field(
        default=None, metadata={"doc": "a cluster profile of the configuration files"}
    )
    preset: str | Callable[..., Any] | None = attrs.field(
        default=None,
        metadata={"doc": "a team preset: a name from the files' presets:, or a transform"},
    )
    resume: str | None = attrs.field(
        default=None,
        metadata={
            "doc": "'auto', 'cache' or 'never': re-attach to identical work recorded earlier"
        },
    )


KEYWORD_DOCS: Mapping[str, str] = {f.name: f.metadata["doc"] for f in attrs.fields(Keywords)}
"""Each convenience keyword's one-line description."""
