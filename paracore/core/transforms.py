"""Curried, spec-last transforms: each takes a JobSpec and returns a new, validated one.

None of them does I/O. Give every argument but the spec to get a one-argument transform (a
:class:`Curried` value: it compares equal to another built from equal arguments, and shows
how it was made), then compose with ``toolz.pipe`` or :func:`preset`::

    from toolz import pipe
    spec = pipe(JobSpec.command("python train.py"),
                with_resources(partition="gpu", time="2h", mem="16G"),
                with_env({"OMP_NUM_THREADS": "4"}),
                with_retries(2))

A preset is just a composed transform; see :func:`preset`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

import attrs
from toolz import compose_left

from paracore.core.failures import FailureClass
from paracore.core.keys import CONFIG_KEYS, RESOURCE_FIELDS
from paracore.core.sentinel import NOT_GIVEN, NotGiven
from paracore.core.spec import JobSpec, Resources, env_pairs
from paracore.core.units import parse_memory, parse_walltime
from paracore.errors import SpecError

__all__ = [
    "ConfigFills",
    "Curried",
    "Transform",
    "apply_fills",
    "autotuned",
    "config_fills",
    "preset",
    "resource_changes",
    "with_array",
    "with_backend",
    "with_cluster",
    "with_config",
    "with_env",
    "with_env_setup",
    "with_log_dir",
    "with_name",
    "with_name_template",
    "with_resources",
    "with_retries",
    "with_start_jitter",
    "with_tags",
]

Transform = Callable[[JobSpec], JobSpec]
"""Anything that takes a spec and returns a spec: a curried transform, a preset, a lambda."""


@attrs.frozen(repr=False)
class Curried:
    """A transform with every argument but the spec given: ``fn(*args, spec, **kwargs)``.

    ``shown`` is how it was written (for ``repr``) when ``fn`` is a prepared form of it.
    """

    fn: Callable[..., JobSpec]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    shown: str = attrs.field(default="", eq=False)

    def __call__(self, spec: JobSpec) -> JobSpec:
        return self.fn(*self.args, spec, **dict(self.kwargs))

    def __repr__(self) -> str:
        if self.shown:
            return self.shown
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.fn.__name__}({', '.join(shown)})"


def _curried(fn: Callable[..., JobSpec], *args: Any, **kwargs: Any) -> Curried:
    return Curried(fn, args, tuple(kwargs.items()))


def _written(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


# ---------------------------------------------------------------- resources


def _canonical(key: str, value: Any, source: str) -> tuple[str, Any]:
    """Translate one resource keyword to its canonical field and unit."""
    field = RESOURCE_FIELDS.get(key)
    if field is None:
        known = ", ".join(sorted(RESOURCE_FIELDS))
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


@overload
def with_resources(spec: NotGiven = ..., **changes: Any) -> Curried: ...
@overload
def with_resources(spec: JobSpec, **changes: Any) -> JobSpec: ...
def with_resources(spec: JobSpec | NotGiven = NOT_GIVEN, **changes: Any) -> JobSpec | Curried:
    """Set resources: partition, account, qos, cpus_per_task, mem/mem_gb, time/time_min, gpus,
    array_parallelism, extra. ``extra`` is merged key by key into existing extras."""
    fields = resource_changes(changes, "with_resources")  # parsed once, also when curried
    if "extra" in fields:
        fields["extra"] = Resources(extra=fields["extra"]).extra
    if spec is NOT_GIVEN:
        return Curried(
            _with_fields, (tuple(fields.items()),), shown=_written("with_resources", (), changes)
        )
    return _with_fields(tuple(fields.items()), spec)


def _with_fields(fields: tuple[tuple[str, Any], ...], spec: JobSpec) -> JobSpec:
    """``spec`` with canonical resource fields set (``extra`` merged option by option)."""
    changes = dict(fields)
    if "extra" in changes:
        changes["extra"] = {**dict(spec.resources.extra), **dict(changes["extra"])}
    return _evolve_resources(spec, changes, "with_resources")


@overload
def with_array(parallelism: int | None, spec: NotGiven = ...) -> Curried: ...
@overload
def with_array(parallelism: int | None, spec: JobSpec) -> JobSpec: ...
def with_array(parallelism: int | None, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Run at most ``parallelism`` array tasks at once (``--array=...%N``)."""
    if spec is NOT_GIVEN:
        return _curried(with_array, parallelism)
    return _evolve_resources(spec, {"array_parallelism": parallelism}, "with_array")


# ---------------------------------------------------------------- environment


@overload
def with_env(
    overlay: Mapping[str, str],
    spec: NotGiven = ...,
    *,
    merge: str | None = None,
    setup: str | NotGiven | None = NOT_GIVEN,
) -> Curried: ...
@overload
def with_env(
    overlay: Mapping[str, str],
    spec: JobSpec,
    *,
    merge: str | None = None,
    setup: str | NotGiven | None = NOT_GIVEN,
) -> JobSpec: ...
def with_env(
    overlay: Mapping[str, str],
    spec: JobSpec | NotGiven = NOT_GIVEN,
    *,
    merge: str | None = None,
    setup: str | NotGiven | None = NOT_GIVEN,
) -> JobSpec | Curried:
    """Add variables to the job's environment (later calls win per variable).

    ``merge="replace"`` starts from an empty environment instead of the inherited one (the
    job's own ``SLURM_*`` variables are kept). ``setup`` is a shell line run at task start.
    """
    if spec is NOT_GIVEN:
        return _curried(with_env, overlay, merge=merge, setup=setup)
    env = spec.env
    combined = dict(env.overlay)
    combined.update(dict(env_pairs(overlay)))
    changes: dict[str, Any] = {"overlay": combined}
    if merge is not None:
        changes["merge"] = merge
    if setup is not NOT_GIVEN:
        changes["setup"] = setup
    return attrs.evolve(spec, env=attrs.evolve(env, **changes))


@overload
def with_env_setup(setup: str | None, spec: NotGiven = ...) -> Curried: ...
@overload
def with_env_setup(setup: str | None, spec: JobSpec) -> JobSpec: ...
def with_env_setup(setup: str | None, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Run the shell line ``setup`` (e.g. ``module load x``) at task start, before the payload."""
    if spec is NOT_GIVEN:
        return _curried(with_env_setup, setup)
    return attrs.evolve(spec, env=attrs.evolve(spec.env, setup=setup))


# ---------------------------------------------------------------- naming


@overload
def with_name(name: str | None, spec: NotGiven = ...) -> Curried: ...
@overload
def with_name(name: str | None, spec: JobSpec) -> JobSpec: ...
def with_name(name: str | None, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Give the job an explicit name; it wins over any template."""
    if spec is NOT_GIVEN:
        return _curried(with_name, name)
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, job_name=name))


@overload
def with_name_template(
    template: str, spec: NotGiven = ..., *, max_len: int | None = None
) -> Curried: ...
@overload
def with_name_template(template: str, spec: JobSpec, *, max_len: int | None = None) -> JobSpec: ...
def with_name_template(
    template: str, spec: JobSpec | NotGiven = NOT_GIVEN, *, max_len: int | None = None
) -> JobSpec | Curried:
    """Name jobs from a template such as ``"{project}-{cluster}-{partition}"``."""
    if spec is NOT_GIVEN:
        return _curried(with_name_template, template, max_len=max_len)
    changes: dict[str, Any] = {"template": template}
    if max_len is not None:
        changes["max_len"] = max_len
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, **changes))


@overload
def with_tags(tags: Mapping[str, Any], spec: NotGiven = ...) -> Curried: ...
@overload
def with_tags(tags: Mapping[str, Any], spec: JobSpec) -> JobSpec: ...
def with_tags(tags: Mapping[str, Any], spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Add tags used by name templates (later calls win per tag)."""
    if spec is NOT_GIVEN:
        return _curried(with_tags, tags)
    merged = dict(spec.naming.tags)
    merged.update(dict(attrs.evolve(spec.naming, tags=tags).tags))
    return attrs.evolve(spec, naming=attrs.evolve(spec.naming, tags=merged))


# ---------------------------------------------------------------- retries


@overload
def with_retries(
    retries: int,
    spec: NotGiven = ...,
    *,
    backoff_s: float | None = None,
    multiplier: float | None = None,
    cap_s: float | None = None,
    jitter: float | None = None,
    retry_on: Iterable[FailureClass | str] | None = None,
    user_errors: bool = True,
    mem_factor: float | None = None,
    time_factor: float | None = None,
) -> Curried: ...
@overload
def with_retries(
    retries: int,
    spec: JobSpec,
    *,
    backoff_s: float | None = None,
    multiplier: float | None = None,
    cap_s: float | None = None,
    jitter: float | None = None,
    retry_on: Iterable[FailureClass | str] | None = None,
    user_errors: bool = True,
    mem_factor: float | None = None,
    time_factor: float | None = None,
) -> JobSpec: ...
def with_retries(
    retries: int,
    spec: JobSpec | NotGiven = NOT_GIVEN,
    *,
    backoff_s: float | None = None,
    multiplier: float | None = None,
    cap_s: float | None = None,
    jitter: float | None = None,
    retry_on: Iterable[FailureClass | str] | None = None,
    user_errors: bool = True,
    mem_factor: float | None = None,
    time_factor: float | None = None,
) -> JobSpec | Curried:
    """Resubmit failed work up to ``retries`` times, waiting with exponential backoff.

    Infrastructure failures (timeout, out of memory, node failure, preemption, boot failure,
    scheduler unreachable) are always retried; so are user errors (non-zero exit, Python
    exception) unless ``user_errors=False``, because ``retries=N`` is what users write for
    flaky tasks. ``retry_on`` (failure class names) replaces the set entirely. Cancellations
    and failed dependencies are never retried. ``mem_factor``/``time_factor`` set how much
    more memory/time an attempt asks for after running out of it. See docs/retries.md.
    """
    numbers = {
        "backoff_s": backoff_s,
        "multiplier": multiplier,
        "cap_s": cap_s,
        "jitter": jitter,
        "mem_factor": mem_factor,
        "time_factor": time_factor,
    }
    if spec is NOT_GIVEN:
        return _curried(
            with_retries, retries, retry_on=retry_on, user_errors=user_errors, **numbers
        )
    changes: dict[str, Any] = {"retries": retries}
    changes.update({key: value for key, value in numbers.items() if value is not None})
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


# ---------------------------------------------------------------- where and how it runs


@overload
def with_backend(backend: str, spec: NotGiven = ...) -> Curried: ...
@overload
def with_backend(backend: str, spec: JobSpec) -> JobSpec: ...
def with_backend(backend: str, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Choose where the job runs: ``slurm``, ``local``, ``inprocess`` or ``auto``."""
    if spec is NOT_GIVEN:
        return _curried(with_backend, backend)
    return attrs.evolve(spec, backend=backend)


@overload
def with_cluster(cluster: str | None, spec: NotGiven = ...) -> Curried: ...
@overload
def with_cluster(cluster: str | None, spec: JobSpec) -> JobSpec: ...
def with_cluster(cluster: str | None, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Record which cluster profile the spec is for (used by name templates)."""
    if spec is NOT_GIVEN:
        return _curried(with_cluster, cluster)
    return attrs.evolve(spec, cluster=cluster)


@overload
def with_log_dir(log_dir: str, spec: NotGiven = ...) -> Curried: ...
@overload
def with_log_dir(log_dir: str, spec: JobSpec) -> JobSpec: ...
def with_log_dir(log_dir: str, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Write logs and submitit's pickles under ``log_dir/<job name>/``."""
    if spec is NOT_GIVEN:
        return _curried(with_log_dir, log_dir)
    return attrs.evolve(spec, log_dir=str(log_dir))


@overload
def with_start_jitter(seconds: float, spec: NotGiven = ...) -> Curried: ...
@overload
def with_start_jitter(seconds: float, spec: JobSpec) -> JobSpec: ...
def with_start_jitter(seconds: float, spec: JobSpec | NotGiven = NOT_GIVEN) -> JobSpec | Curried:
    """Sleep a random 0..``seconds`` at task start so many tasks don't hit storage at once."""
    if spec is NOT_GIVEN:
        return _curried(with_start_jitter, seconds)
    return attrs.evolve(spec, start_jitter_s=seconds)


# ---------------------------------------------------------------- configuration


@overload
def with_config(
    config: Mapping[str, Any], spec: NotGiven = ..., *, source: str = "config"
) -> Curried: ...
@overload
def with_config(config: Mapping[str, Any], spec: JobSpec, *, source: str = "config") -> JobSpec: ...
def with_config(
    config: Mapping[str, Any], spec: JobSpec | NotGiven = NOT_GIVEN, *, source: str = "config"
) -> JobSpec | Curried:
    """Fill every field the spec has not set from a flat configuration mapping.

    Configuration never overrides what the caller set (``None`` counts as set: "cleared").
    ``extra`` options merge, the spec's winning per option.
    """
    fills = config_fills(config, source)  # checked and parsed once, also when curried
    if spec is NOT_GIVEN:
        return Curried(
            apply_fills, (fills,), shown=_written("with_config", (config,), {"source": source})
        )
    return apply_fills(fills, spec)


@attrs.frozen
class ConfigFills:
    """A flat configuration mapping, checked and in canonical units, ready to fill specs."""

    resources: tuple[tuple[str, Any], ...]
    extra: tuple[tuple[str, Any], ...]
    other: tuple[tuple[str, Any], ...]  # spec fields: cluster, backend, log_dir, ...
    setup: Any = NOT_GIVEN
    template: Any = NOT_GIVEN
    max_len: Any = NOT_GIVEN
    source: str = "config"


_OTHER_KEYS = ("cluster", "backend", "log_dir", "start_jitter_s")


def config_fills(config: Mapping[str, Any], source: str = "config") -> ConfigFills:
    """Check a flat configuration mapping and put it in canonical units (pure)."""
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise SpecError(
            unknown[0], config[unknown[0]], "known keys: " + ", ".join(CONFIG_KEYS), source
        )
    resources = resource_changes(
        {k: v for k, v in config.items() if k in RESOURCE_FIELDS and k != "extra"}, source
    )
    return ConfigFills(
        resources=tuple(resources.items()),
        extra=Resources(extra=config.get("extra")).extra,
        other=tuple((k, config[k]) for k in _OTHER_KEYS if k in config),
        setup=config.get("default_env", NOT_GIVEN),
        template=config.get("default_job_name", NOT_GIVEN),
        max_len=config.get("max_len", NOT_GIVEN),
        source=source,
    )


def apply_fills(fills: ConfigFills, spec: JobSpec) -> JobSpec:
    """Fill every field ``spec`` has not set from ``fills`` (``extra`` merged, spec wins)."""
    current = spec.resources
    changes = {k: v for k, v in fills.resources if getattr(current, k) is NOT_GIVEN}
    if fills.extra:
        changes["extra"] = {**dict(fills.extra), **dict(current.extra)}
    top: dict[str, Any] = {k: v for k, v in fills.other if getattr(spec, k) is NOT_GIVEN}
    if changes:
        top["resources"] = changes
    if spec.env.setup is NOT_GIVEN and fills.setup is not NOT_GIVEN:
        top["env"] = attrs.evolve(spec.env, setup=fills.setup)
    naming: dict[str, Any] = {}
    if spec.naming.template is NOT_GIVEN and fills.template is not NOT_GIVEN:
        naming["template"] = fills.template
    if spec.naming.max_len is NOT_GIVEN and fills.max_len is not NOT_GIVEN:
        naming["max_len"] = fills.max_len
    try:
        if "resources" in top:
            top["resources"] = attrs.evolve(current, **top["resources"])
        if naming:
            top["naming"] = attrs.evolve(spec.naming, **naming)
        return attrs.evolve(spec, **top) if top else spec
    except SpecError as err:
        raise SpecError(err.field, err.value, err.accepted, err.source or fills.source) from None


# Keys a recommendation may carry, and the resource they set.
_TUNABLE = ("time_min", "mem_gb", "cpus_per_task", "array_parallelism")


@overload
def autotuned(recommendation: Mapping[str, Any] | Any, spec: NotGiven = ...) -> Curried: ...
@overload
def autotuned(recommendation: Mapping[str, Any] | Any, spec: JobSpec) -> JobSpec: ...
def autotuned(
    recommendation: Mapping[str, Any] | Any, spec: JobSpec | NotGiven = NOT_GIVEN
) -> JobSpec | Curried:
    """Apply a pilot's recommendation (time_min, mem_gb, cpus_per_task, array_parallelism).

    Accepts the dict returned by ``autotune_from_pilot`` or any value with an ``as_dict()``.
    """
    if spec is NOT_GIVEN:
        return _curried(autotuned, recommendation)
    values = recommendation.as_dict() if hasattr(recommendation, "as_dict") else recommendation
    if not isinstance(values, Mapping):
        raise SpecError("recommendation", values, "a mapping with " + ", ".join(_TUNABLE))
    unknown = sorted(set(values) - set(_TUNABLE))
    if unknown:
        raise SpecError("recommendation", unknown, "keys among " + ", ".join(_TUNABLE), "autotuned")
    fields = resource_changes({k: v for k, v in values.items() if v is not None}, "autotuned")
    return _evolve_resources(spec, fields, "autotuned")


def _identity(spec: JobSpec) -> JobSpec:
    return spec


def preset(*transforms: Transform) -> Transform:
    """Compose transforms left to right into one: a team preset is just this value."""
    composed: Transform = compose_left(*transforms) if transforms else _identity
    return composed
