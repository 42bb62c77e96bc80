"""A plain summary of a resolved spec, for manifests, previews and error messages (pure)."""

from __future__ import annotations

from typing import Any

import attrs

from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.spec import JobSpec

__all__ = ["describe"]


def describe(spec: JobSpec | ResolvedSpec) -> dict[str, Any]:
    """A plain summary of the resolved spec, for manifests, previews and error messages (a
    :class:`JobSpec` is resolved first, as :func:`~paracore.submit` would)."""
    if not isinstance(spec, ResolvedSpec):  # a user's JobSpec: resolved as submit would
        spec = resolve_spec(spec)
    return {
        "job_name": spec.name,
        "payload": spec.payload.label,
        "backend": spec.backend,
        **attrs.asdict(spec.resources, recurse=False),
        "env_merge": spec.env.merge,
        "env": dict(spec.env.overlay),
        "env_setup": spec.env.setup,
        "retries": spec.retry.retries,
    }
