"""A plain summary of a resolved spec, for manifests, previews and error messages (pure)."""

from __future__ import annotations

from typing import Any

import attrs

from paracore.core.defaults import with_builtin_defaults
from paracore.core.names import job_name
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import JobSpec

__all__ = ["describe"]


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
