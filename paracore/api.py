"""The documented convenience API: thin wrappers that build a spec, transform it, submit it.

Each function turns its keywords into transforms over a :class:`~paracore.spec.JobSpec` and
hands the result to :func:`~paracore.submit.submit` or :func:`~paracore.submit.submit_map`.
Anything these functions do can be done with the core directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from toolz import pipe

from paracore.config import CONFIG_ARG_LAYER, ResolvedConfig
from paracore.config_files import resolve
from paracore.handle import SubmitHandle
from paracore.pilot import autotune_from_pilot as autotune_from_pilot
from paracore.spec import Call, Command, JobSpec
from paracore.submit import submit, submit_map
from paracore.transforms import (
    Transform,
    with_config,
    with_env,
    with_name,
    with_resources,
    with_retries,
    with_start_jitter,
)


def _build(
    payload: Command | Call,
    *,
    job_name: str | None,
    partition: str | None,
    time_min: int | str | None,
    cpus_per_task: int | None,
    mem_gb: float | str | None,
    env_setup: str | None,
    env: Mapping[str, str] | None,
    env_merge: Literal["inherit", "replace"],
    jitter_s: float,
    account: str | None,
    qos: str | None,
    extra: Mapping[str, Any] | None,
    retries: int,
    retry_backoff_s: float,
    config: Mapping[str, Any] | None,
    backend: str | None,
    array_parallelism: int | str | None = None,
    cluster: str | None = None,
    preset: str | Transform | None = None,
) -> tuple[JobSpec, dict[str, Any]]:
    """A spec for ``payload`` with the seed API's keywords applied as transforms, and the
    keywords ``submit`` needs to check it (where each value came from, validate or not).

    ``None`` means "not given" here, so configuration can still fill the field. Precedence,
    highest first: call keywords, the preset, ``config=``, the configuration files
    (``$PARACORE_CONFIG``, ``./paracore.yaml``, ``~/.paracore.yaml``), built-in defaults.
    """
    given = {
        "partition": partition,
        "time_min": time_min,
        "cpus_per_task": cpus_per_task,
        "mem_gb": mem_gb,
        "array_parallelism": array_parallelism,
        "account": account,
        "qos": qos,
    }
    resources = {k: v for k, v in given.items() if v is not None}
    if extra:
        resources["extra"] = extra
    resolved = resolve(cluster, config=config, **resources)  # reads the configuration files
    env_options: dict[str, Any] = {}
    if env_merge != "inherit":
        env_options["merge"] = env_merge
    if env_setup is not None:
        env_options["setup"] = env_setup
    steps = [
        with_resources(**resources),
        with_env(dict(env or {}), **env_options),
    ]
    if preset is None or retries:
        steps.append(with_retries(retries, backoff_s=retry_backoff_s))
    if job_name is not None:
        steps.append(with_name(job_name))
    if jitter_s:
        steps.append(with_start_jitter(jitter_s))
    if config:
        steps.append(with_config(config, source=CONFIG_ARG_LAYER))
    steps.append(with_config(resolved.spec_config(), source="configuration files"))
    spec = JobSpec(payload=payload, **({"backend": backend} if backend else {}))
    first = [_preset_transform(preset, resolved)] if preset is not None else []
    origins = _origins(resolved, preset, resources)
    return pipe(spec, *first, *steps), {"origins": origins, "validate": resolved.validate}


def _preset_transform(preset: str | Transform, resolved: ResolvedConfig) -> Transform:
    return resolved.preset(preset) if isinstance(preset, str) else preset


def _origins(
    resolved: ResolvedConfig, preset: str | Transform | None, given: Mapping[str, Any]
) -> dict[str, str]:
    """Where each value came from, for error messages (a named preset beats the files)."""
    origins = resolved.sources()
    if isinstance(preset, str):
        aliases = {"cpus": "cpus_per_task", "mem": "mem_gb", "time": "time_min"}
        for key in resolved.presets.get(preset, {}):
            flat = aliases.get(key, key)
            if flat not in given:
                where = resolved.preset_origins.get(("presets", preset, key))
                origins[flat] = f"preset {preset!r}" + (f" {where.location}" if where else "")
    return origins


def run_cmd(
    cmd: str,
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    env_setup: str | None = None,
    env: Mapping[str, str] | None = None,
    env_merge: Literal["inherit", "replace"] = "inherit",
    jitter_s: float = 0.0,
    account: str | None = None,
    qos: str | None = None,
    extra: Mapping[str, Any] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 30.0,
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    preset: str | Transform | None = None,
) -> SubmitHandle:
    """Submit one shell command as one job; ``handle.result()`` gives a CommandResult.

    ``cluster`` chooses a profile of the configuration files, ``preset`` a team preset (a
    name from the files' ``presets:``, or a transform).
    """
    options = dict(locals())
    spec, checks = _build(Command(options.pop("cmd")), **options)
    return submit(spec, **checks)


def map_cmds(
    cmds: Iterable[str],
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    env_setup: str | None = None,
    env: Mapping[str, str] | None = None,
    env_merge: Literal["inherit", "replace"] = "inherit",
    jitter_s: float = 0.0,
    array_parallelism: int | str | None = None,
    account: str | None = None,
    qos: str | None = None,
    extra: Mapping[str, Any] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 30.0,
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    preset: str | Transform | None = None,
) -> list[SubmitHandle]:
    """Submit shell commands as ONE Slurm array, throttled by ``array_parallelism``.

    Handles come back in input order; each ``result()`` gives a CommandResult.
    ``array_parallelism="auto"`` takes the partition's idle cores at submit time (capped by
    the profile's ``max_array_parallelism``).
    """
    options = dict(locals())
    payloads = [Command(c) for c in options.pop("cmds")]
    if not payloads:
        return []
    spec, checks = _build(payloads[0], **options)
    return submit_map(spec, payloads, **checks)


def map_func(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    env_setup: str | None = None,
    env: Mapping[str, str] | None = None,
    env_merge: Literal["inherit", "replace"] = "inherit",
    jitter_s: float = 0.0,
    array_parallelism: int | str | None = None,
    account: str | None = None,
    qos: str | None = None,
    extra: Mapping[str, Any] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 30.0,
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    preset: str | Transform | None = None,
) -> list[SubmitHandle]:
    """Call ``fn(item)`` for every item as ONE Slurm array; handles in input order."""
    options = dict(locals())
    fn, items = options.pop("fn"), options.pop("items")
    payloads = [Call(fn, (item,)) for item in items]
    if not payloads:
        return []
    spec, checks = _build(payloads[0], **options)
    return submit_map(spec, payloads, **checks)
