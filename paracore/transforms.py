"""Curried, spec-last transforms: each takes a JobSpec and returns a new, validated one.

None of them does I/O. Give every argument but the spec to get a one-argument transform,
then compose with ``toolz.pipe`` or ``toolz.compose_left``::

    from toolz import pipe
    spec = pipe(JobSpec.command("python train.py"),
                with_resources(partition="gpu", time="2h", mem="16G"),
                with_env({"OMP_NUM_THREADS": "4"}),
                with_retries(2))

A preset is just a composed transform; see :func:`preset`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from toolz import compose_left, curry

from paracore.exceptions import SpecError
from paracore.failures import FailureClass
from paracore.sentinel import NOT_GIVEN
from paracore.spec import JobSpec, Resources
from paracore.units import parse_memory, parse_walltime

Transform = Callable[[JobSpec], JobSpec]

# Resource keywords accepted by with_resources and with_config, and the canonical field each
# one sets. Several spellings are accepted because users arrive from sbatch, submitit and the
# seed API; each is converted to one canonical unit.
_RESOURCE_ALIASES: dict[str, str] = {
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


def _canonical(key: str, value: Any, source: str) -> tuple[str, Any]:
    """Translate one resource keyword to its canonical field and unit."""
    field = _RESOURCE_ALIASES.get(key)
    if field is None:
        known = ", ".join(sorted(_RESOURCE_ALIASES))
        raise SpecError(key, value, f"not a resource; known resources: {known}", source)
    if value is None or value is NOT_GIVEN:
        return field, value
    if key in ("mem", "mem_gb"):
        return field, parse_memory(value, field=key, source=source)
    if key in ("time", "time_min"):
        return field, parse_walltime(value, field=key, source=source)
    return field, value


def resource_changes(changes: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Canonical ``Resources`` fields for user keywords; unknown keywords raise SpecError."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        field, canonical = _canonical(key, value, source)
        out[field] = canonical
    return out


def _evolve_resources(spec: JobSpec, fields: Mapping[str, Any], source: str) -> JobSpec:
    try:
        return attrs.evolve(spec, resources=attrs.evolve(spec.resources, **fields))
    except SpecError as err:
        raise SpecError(err.field, err.value, err.accepted, err.source or source) from None


@curry
def with_resources(spec: JobSpec, **changes: Any) -> JobSpec:
    """Set resources: partition, account, qos, cpus_per_task, mem/mem_gb, time/time_min, gpus,
    array_parallelism, extra. ``extra`` is merged key by key into existing extras."""
    fields = resource_changes(changes, "with_resources")
    if "extra" in fields:
        merged = dict(spec.resources.extra)
        merged.update(Resources(extra=fields["extra"]).extra)
        fields["extra"] = merged
    return _evolve_resources(spec, fields, "with_resources")


@curry
def with_array(parallelism: int | None, spec: JobSpec) -> JobSpec:
    """Run at most ``parallelism`` array tasks at once (``--array=...%N``)."""
    return _evolve_resources(spec, {"array_parallelism": parallelism}, "with_array")


@curry
def with_env(
    overlay: Mapping[str, str],
    spec: JobSpec,
    *,
    merge: str | None = None,
    setup: str | None = NOT_GIVEN,  # type: ignore[assignment]
) -> JobSpec:
    """Add variables to the job's environment (later calls win per variable).

    ``merge="replace"`` starts from an empty environment instead of the inherited one (the
    job's own ``SLURM_*`` variables are kept). ``setup`` is a shell line run at task start.
    """
    env = spec.env
    combined = dict(env.overlay)
    combined.update(dict(attrs.evolve(env, overlay=overlay).overlay))
    changes: dict[str, Any] = {"overlay": combined}
    if merge is not None:
        changes["merge"] = merge
    if setup is not NOT_GIVEN:
        changes["setup"] = setup
    return attrs.evolve(spec, env=attrs.evolve(env, **changes))


@curry
def with_env_setup(setup: str | None, spec: JobSpec) -> JobSpec:
    """Run the shell line ``setup`` (e.g. ``module load x``) at task start, before the payload."""
    return attrs.evolve(spec, env=attrs.evolve(spec.env, setup=setup))


@curry
def with_name(name: str | None, spec: JobSpec) -> JobSpec:
    """Give the job an explicit name; it wins over any template."""
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, job_name=name))


@curry
def with_name_template(template: str, spec: JobSpec, *, max_len: int | None = None) -> JobSpec:
    """Name jobs from a template such as ``"{project}-{cluster}-{partition}"``."""
    changes: dict[str, Any] = {"template": template}
    if max_len is not None:
        changes["max_len"] = max_len
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, **changes))


@curry
def with_tags(tags: Mapping[str, Any], spec: JobSpec) -> JobSpec:
    """Add tags used by name templates (later calls win per tag)."""
    merged = dict(spec.naming.tags)
    merged.update(dict(attrs.evolve(spec.naming, tags=tags).tags))
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, tags=merged))


@curry
def with_retries(
    retries: int,
    spec: JobSpec,
    *,
    backoff_s: float | None = None,
    multiplier: float | None = None,
    cap_s: float | None = None,
    jitter: float | None = None,
    retry_on: Any = None,
    user_errors: bool = True,
    mem_factor: float | None = None,
    time_factor: float | None = None,
) -> JobSpec:
    """Resubmit failed work up to ``retries`` times, waiting with exponential backoff.

    Infrastructure failures (timeout, out of memory, node failure, preemption, boot failure,
    scheduler unreachable) are always retried; so are user errors (non-zero exit, Python
    exception) unless ``user_errors=False``, because ``retries=N`` is what users write for
    flaky tasks. ``retry_on`` (failure class names) replaces the set entirely. Cancellations
    and failed dependencies are never retried. ``mem_factor``/``time_factor`` set how much
    more memory/time an attempt asks for after running out of it. See docs/retries.md.
    """
    changes: dict[str, Any] = {"retries": retries}
    for key, value in (
        ("backoff_s", backoff_s),
        ("multiplier", multiplier),
        ("cap_s", cap_s),
        ("jitter", jitter),
        ("mem_factor", mem_factor),
        ("time_factor", time_factor),
    ):
        if value is not None:
            changes[key] = value
    if retry_on is not None:
        changes["retry_on"] = retry_on
    else:
        current = set(spec.retry.retry_on)
        if user_errors:
            current.add(FailureClass.USER_ERROR)
        else:
            current.discard(FailureClass.USER_ERROR)
        changes["retry_on"] = frozenset(current)
    return attrs.evolve(spec, retry=attrs.evolve(spec.retry, **changes))


@curry
def with_backend(backend: str, spec: JobSpec) -> JobSpec:
    """Choose where the job runs: ``slurm``, ``local``, ``inprocess`` or ``auto``."""
    return attrs.evolve(spec, backend=backend)


@curry
def with_cluster(cluster: str | None, spec: JobSpec) -> JobSpec:
    """Record which cluster profile the spec is for (used by name templates)."""
    return attrs.evolve(spec, cluster=cluster)


@curry
def with_log_dir(log_dir: str, spec: JobSpec) -> JobSpec:
    """Write logs and submitit's pickles under ``log_dir/<job name>/``."""
    return attrs.evolve(spec, log_dir=str(log_dir))


@curry
def with_start_jitter(seconds: float, spec: JobSpec) -> JobSpec:
    """Sleep a random 0..``seconds`` at task start so many tasks don't hit storage at once."""
    return attrs.evolve(spec, start_jitter_s=seconds)


# Flat configuration keys (as returned by configuration resolution) that with_config reads,
# beyond the resource keywords above.
CONFIG_KEYS: tuple[str, ...] = (
    *sorted(_RESOURCE_ALIASES),
    "backend",
    "cluster",
    "default_env",
    "default_job_name",
    "log_dir",
    "max_len",
    "start_jitter_s",
)

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


def _fill(current: Any, value: Any) -> Any:
    return value if current is NOT_GIVEN else current


@curry
def with_config(config: Mapping[str, Any], spec: JobSpec, *, source: str = "config") -> JobSpec:
    """Fill every field the spec has not set from a flat configuration mapping.

    Configuration never overrides what the caller set (``None`` counts as set: "cleared").
    ``extra`` options merge, the spec's winning per option.
    """
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise SpecError(
            unknown[0], config[unknown[0]], "known keys: " + ", ".join(CONFIG_KEYS), source
        )
    resources = resource_changes(
        {k: v for k, v in config.items() if k in _RESOURCE_ALIASES and k != "extra"}, source
    )
    current = spec.resources
    fills = {k: _fill(getattr(current, k), v) for k, v in resources.items()}
    fills["extra"] = {**dict(Resources(extra=config.get("extra")).extra), **dict(current.extra)}
    spec = _evolve_resources(spec, fills, source)
    try:
        return attrs.evolve(
            spec,
            env=attrs.evolve(
                spec.env, setup=_fill(spec.env.setup, config.get("default_env", NOT_GIVEN))
            ),
            naming=attrs.evolve(
                spec.naming,
                template=_fill(spec.naming.template, config.get("default_job_name", NOT_GIVEN)),
                max_len=_fill(spec.naming.max_len, config.get("max_len", NOT_GIVEN)),
            ),
            cluster=_fill(spec.cluster, config.get("cluster", NOT_GIVEN)),
            backend=_fill(spec.backend, config.get("backend", NOT_GIVEN)),
            log_dir=_fill(spec.log_dir, config.get("log_dir", NOT_GIVEN)),
            start_jitter_s=_fill(spec.start_jitter_s, config.get("start_jitter_s", NOT_GIVEN)),
        )
    except SpecError as err:
        raise SpecError(err.field, err.value, err.accepted, err.source or source) from None


# Keys a recommendation may carry, and the resource they set.
_TUNABLE = ("time_min", "mem_gb", "cpus_per_task", "array_parallelism")


@curry
def autotuned(recommendation: Mapping[str, Any] | Any, spec: JobSpec) -> JobSpec:
    """Apply a pilot's recommendation (time_min, mem_gb, cpus_per_task, array_parallelism).

    Accepts the dict returned by ``autotune_from_pilot`` or any value with an ``as_dict()``.
    """
    values = recommendation.as_dict() if hasattr(recommendation, "as_dict") else recommendation
    if not isinstance(values, Mapping):
        raise SpecError("recommendation", values, "a mapping with " + ", ".join(_TUNABLE))
    unknown = sorted(set(values) - set(_TUNABLE))
    if unknown:
        raise SpecError("recommendation", unknown, "keys among " + ", ".join(_TUNABLE), "autotuned")
    fields = resource_changes({k: v for k, v in values.items() if v is not None}, "autotuned")
    return _evolve_resources(spec, fields, "autotuned")


def preset(*transforms: Transform) -> Transform:
    """Compose transforms left to right into one: a team preset is just this value."""
    return compose_left(*transforms) if transforms else (lambda spec: spec)
