"""The names users may give settings under, and the one field or key each spelling means.

Users arrive from sbatch, submitit and the seed API, so several spellings are accepted
(``mem``/``mem_gb``/``mem_mb``, ``time``/``time_min``, ``cpus``/``cpus_per_task``); each is
translated here, once, for transforms, configuration files and error messages alike.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CONFIG_KEYS", "FLAT_ALIASES", "RESOURCE_FIELDS"]

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
