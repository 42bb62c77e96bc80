"""The spec as it will be submitted: resolved once, then passed down without resolving again.

:func:`resolve_spec` fills what a :class:`~paracore.core.spec.JobSpec` leaves unset from the
built-in defaults, renders its job name and works out what its first attempt asks for. The
:class:`ResolvedSpec` it returns has no "not given" fields, so names, parameters, summaries,
previews and every backend read it directly (``None`` still means "let the scheduler decide").
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from paracore.core.defaults import with_builtin_defaults
from paracore.core.escalation import AttemptResources
from paracore.core.names import render_job_name
from paracore.core.retry import RetryPolicy
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import EnvMerge, JobSpec, Payload

__all__ = ["ResolvedEnv", "ResolvedResources", "ResolvedSpec", "job_name", "resolve_spec"]


def _given(value: Any) -> Any:
    return None if value is NOT_GIVEN else value


@attrs.frozen(kw_only=True)
class ResolvedResources:
    """What the job asks the scheduler for (time in minutes, memory in MB; None: its default)."""

    partition: str | None
    account: str | None
    qos: str | None
    cpus_per_task: int | None
    mem_mb: int | None
    time_min: int | None
    gpus: int | None
    array_parallelism: int | Literal["auto"] | None
    max_array_parallelism: int | None
    extra: tuple[tuple[str, Any], ...]

    def with_extra(self, **options: Any) -> ResolvedResources:
        """The same request with more sbatch options (later ones win; sorted like ``extra``)."""
        merged = {**dict(self.extra), **options}
        return attrs.evolve(self, extra=tuple(sorted(merged.items())))


@attrs.frozen(kw_only=True)
class ResolvedEnv:
    """How the job's environment is made: inherit or replace, an overlay, a setup line."""

    merge: EnvMerge
    overlay: tuple[tuple[str, str], ...]
    setup: str | None


@attrs.frozen(kw_only=True)
class ResolvedSpec:
    """One piece of work with everything settled: resources, environment, rendered name,
    log directory, backend and the first attempt's request."""

    payload: Payload
    resources: ResolvedResources
    env: ResolvedEnv
    name: str
    tags: tuple[tuple[str, str], ...]
    retry: RetryPolicy
    cluster: str | None
    backend: str
    log_dir: str
    start_jitter_s: float

    @property
    def log_folder(self) -> str:
        """Folder for logs and pickles: ``<log_dir>/<job name>``."""
        return f"{self.log_dir}/{self.name}"

    @property
    def attempt(self) -> AttemptResources:
        """What an attempt of this spec asks for (partition, memory, time, excluded nodes)."""
        res = self.resources
        exclude = dict(res.extra).get("exclude")
        return AttemptResources(
            partition=res.partition,
            mem_mb=res.mem_mb,
            time_min=res.time_min,
            exclude=tuple(str(exclude).split(",")) if exclude else (),
        )

    def with_payload(self, payload: Payload) -> ResolvedSpec:
        """The same spec running another payload (an array's elements share the name)."""
        return attrs.evolve(self, payload=payload)

    def with_resources(self, **changes: Any) -> ResolvedSpec:
        """The same spec with some resource fields replaced (already settled values)."""
        return attrs.evolve(self, resources=attrs.evolve(self.resources, **changes))

    def with_attempt(self, attempt: AttemptResources) -> ResolvedSpec:
        """The spec asking for ``attempt`` (an escalated retry's memory, time, excluded nodes)."""
        res = self.resources
        changes: dict[str, Any] = {}
        if attempt.mem_mb is not None:
            changes["mem_mb"] = attempt.mem_mb
        if attempt.time_min is not None:
            changes["time_min"] = attempt.time_min
        if attempt.exclude:
            changes["extra"] = res.with_extra(exclude=",".join(attempt.exclude)).extra
        return self.with_resources(**changes) if changes else self


def resolve_spec(spec: JobSpec | ResolvedSpec) -> ResolvedSpec:
    """``spec`` with the built-in defaults filled in and its name rendered (once per submission;
    a spec already resolved is returned as it is)."""
    if isinstance(spec, ResolvedSpec):
        return spec
    full = with_builtin_defaults(spec)
    res = full.resources
    tags = dict(full.naming.tags)
    for key, value in (("cluster", full.cluster), ("partition", res.partition)):
        if key not in tags and isinstance(value, str):
            tags[key] = value
    return ResolvedSpec(
        payload=full.payload,
        resources=ResolvedResources(
            partition=_given(res.partition),
            account=_given(res.account),
            qos=_given(res.qos),
            cpus_per_task=_given(res.cpus_per_task),
            mem_mb=_given(res.mem_mb),
            time_min=_given(res.time_min),
            gpus=_given(res.gpus),
            array_parallelism=_given(res.array_parallelism),
            max_array_parallelism=_given(res.max_array_parallelism),
            extra=res.extra,
        ),
        env=ResolvedEnv(
            merge=full.env.merge, overlay=full.env.overlay, setup=_given(full.env.setup)
        ),
        name=render_job_name(full.naming, tags, full.payload.label),
        tags=full.naming.tags,
        retry=full.retry,
        cluster=_given(full.cluster),
        backend=str(full.backend),
        log_dir=str(full.log_dir),
        start_jitter_s=float(_given(full.start_jitter_s) or 0.0),
    )


def job_name(spec: JobSpec | ResolvedSpec) -> str:
    """The sanitised name Slurm will show: explicit name, else template, else the payload."""
    return resolve_spec(spec).name
