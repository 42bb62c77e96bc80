"""The lowest configuration layer, and the spec as it will be submitted (pure).

:data:`BUILTIN_DEFAULTS` are safe values for a shared cluster; :func:`with_builtin_defaults`
fills whatever a spec still leaves unset from them, so everything downstream (names, params,
previews, the run summary) sees one resolved spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import JobSpec
from paracore.core.transforms import apply_fills, config_fills

__all__ = ["BUILTIN_DEFAULTS", "BUILTIN_SOURCE", "with_builtin_defaults"]

BUILTIN_DEFAULTS: Mapping[str, Any] = {
    "backend": "auto",
    "cpus_per_task": 1,
    "mem_gb": 2,
    "time_min": 60,
    "log_dir": "paracore_logs",
    "max_len": 80,
    "start_jitter_s": 0.0,
}
"""The lowest configuration layer: safe values for a shared cluster."""

BUILTIN_SOURCE = "built-in defaults"
_BUILTIN_FILLS = config_fills(BUILTIN_DEFAULTS, BUILTIN_SOURCE)  # an immutable value


def _resolved(spec: JobSpec) -> bool:
    """Whether every field the built-in defaults set is already set (nothing to fill)."""
    res = spec.resources
    return NOT_GIVEN not in (
        spec.backend,
        res.cpus_per_task,
        res.mem_mb,
        res.time_min,
        spec.log_dir,
        spec.naming.max_len,
        spec.start_jitter_s,
    )


def with_builtin_defaults(spec: JobSpec) -> JobSpec:
    """Fill whatever is still unset from the built-in defaults, the lowest layer."""
    if _resolved(spec):
        return spec
    return apply_fills(_BUILTIN_FILLS, spec)
