"""The documented convenience API: thin wrappers that build a spec, transform it, submit it.

Each function turns its keywords into transforms over a :class:`~paracore.core.spec.JobSpec`
and hands the result to :func:`~paracore.shell.submit.submit` or
:func:`~paracore.shell.submit.submit_map`. Anything these functions do can be done with the
core directly.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

from toolz import pipe

from paracore.core.config import CONFIG_ARG_LAYER, ResolvedConfig, did_you_mean
from paracore.core.keys import FLAT_ALIASES, Keywords
from paracore.core.options import SubmitOptions
from paracore.core.spec import Call, Command, JobSpec
from paracore.core.transforms import (
    Transform,
    with_backend,
    with_config,
    with_env,
    with_name,
    with_resources,
    with_retries,
    with_start_jitter,
)
from paracore.errors import KeywordError, SpecError
from paracore.shell.chunked_map import ItemHandle
from paracore.shell.config_files import resolve, settle_options
from paracore.shell.handle import SubmitHandle
from paracore.shell.maps import submit_items
from paracore.shell.pilot import autotune_from_pilot as autotune_from_pilot
from paracore.shell.submit import submit

__all__ = ["Keywords", "autotune_from_pilot", "map_cmds", "map_func", "run_cmd"]

P = ParamSpec("P")
R = TypeVar("R")


def build_spec(payload: Command | Call, kw: Keywords) -> tuple[JobSpec, SubmitOptions]:
    """A spec for ``payload`` with the seed API's keywords applied as transforms, and the
    submission's options settled from the keywords and the same configuration (read once).

    ``None`` means "not given" here, so configuration can still fill the field. Precedence,
    highest first: call keywords, the preset, ``config=``, the configuration files
    (``$PARACORE_CONFIG``, ``./paracore.yaml``, ``~/.paracore.yaml``), built-in defaults.
    """
    given = {
        "partition": kw.partition,
        "time_min": kw.time_min,
        "cpus_per_task": kw.cpus_per_task,
        "mem_gb": kw.mem_gb,
        "gpus": kw.gpus,
        "array_parallelism": kw.array_parallelism,
        "account": kw.account,
        "qos": kw.qos,
    }
    resources: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if kw.extra:
        resources["extra"] = kw.extra
    resolved = resolve(kw.cluster, config=kw.config, **resources)  # reads the configuration files
    env_options: dict[str, Any] = {}
    if kw.env_merge != "inherit":
        env_options["merge"] = kw.env_merge
    if kw.env_setup is not None:
        env_options["setup"] = kw.env_setup
    steps: list[Transform] = [
        with_resources(**resources),
        with_env(dict(kw.env or {}), **env_options),
    ]
    if kw.preset is None or kw.retries:
        steps.append(with_retries(kw.retries, backoff_s=kw.retry_backoff_s))
    if kw.job_name is not None:
        steps.append(with_name(kw.job_name))
    if kw.jitter_s:
        steps.append(with_start_jitter(kw.jitter_s))
    if kw.config:
        steps.append(with_config(kw.config, source=CONFIG_ARG_LAYER))
    steps.append(with_config(resolved.spec_config(), source="configuration files"))
    spec = JobSpec(payload=payload)
    if kw.backend:
        spec = with_backend(kw.backend, spec)
    first = [_preset_transform(kw.preset, resolved)] if kw.preset is not None else []
    options = settle_options(
        resume=kw.resume, origins=_origins(resolved, kw.preset, resources), config=resolved
    )
    return pipe(spec, *first, *steps), options


def listed(values: Iterable[Any], field: str, what: str) -> list[Any]:
    """The values as a list; a single string (which would map over its characters) is refused."""
    if isinstance(values, str | bytes):
        raise SpecError(
            field,
            values,
            f"{what}, not one string (it would run once per character); for one command use "
            "run_cmd, or wrap it in a list",
        )
    return list(values)


def _with_keyword_check(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` raising a SpecError (also a TypeError) naming an unknown keyword and the closest
    known one, instead of Python's bare TypeError."""
    signature = inspect.signature(fn)
    known = [name for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY]

    @functools.wraps(fn)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        unknown = [k for k in kwargs if k not in signature.parameters]
        if unknown:
            guess = did_you_mean(unknown[0], known)
            hint = f"did you mean {guess!r}? " if guess else ""
            raise KeywordError(
                unknown[0],
                kwargs[unknown[0]],
                f"not a keyword of {fn.__name__}; {hint}keywords: {', '.join(known)}",
            )
        return fn(*args, **kwargs)

    return checked


def _preset_transform(preset: str | Transform, resolved: ResolvedConfig) -> Transform:
    return resolved.preset(preset) if isinstance(preset, str) else preset


def _origins(
    resolved: ResolvedConfig, preset: str | Transform | None, given: Mapping[str, Any]
) -> dict[str, str]:
    """Where each value came from, for error messages (a named preset beats the files)."""
    origins = resolved.sources()
    if isinstance(preset, str):
        for key in resolved.presets.get(preset, {}):
            flat = FLAT_ALIASES.get(key, key)
            if flat not in given:
                where = resolved.preset_origins.get(("presets", preset, key))
                origins[flat] = f"preset {preset!r}" + (f" {where.location}" if where else "")
    return origins


@_with_keyword_check
def run_cmd(
    cmd: str,
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    gpus: int | None = None,
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
    resume: str | None = None,
) -> SubmitHandle:
    """Submit one shell command as one job; ``handle.result()`` gives a CommandResult.

    ``cluster`` chooses a profile of the configuration files, ``preset`` a team preset (a
    name from the files' ``presets:``, or a transform). ``resume`` (``auto``, ``cache``,
    ``never``) decides whether identical work recorded earlier is re-attached (docs/runs.md).
    """
    keywords = Keywords(
        job_name=job_name,
        partition=partition,
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        gpus=gpus,
        env_setup=env_setup,
        env=env,
        env_merge=env_merge,
        jitter_s=jitter_s,
        account=account,
        qos=qos,
        extra=extra,
        retries=retries,
        retry_backoff_s=retry_backoff_s,
        backend=backend,
        config=config,
        cluster=cluster,
        preset=preset,
        resume=resume,
    )
    spec, options = build_spec(Command(cmd), keywords)
    return submit(spec, options=options)


@_with_keyword_check
def map_cmds(
    cmds: Iterable[str],
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    gpus: int | None = None,
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
    resume: str | None = None,
    chunk_size: int | str = "auto",
    pilot: Any = None,
) -> Sequence[SubmitHandle | ItemHandle]:
    """Run shell commands as ONE Slurm array, throttled by ``array_parallelism``.

    Handles come back in input order; each ``result()`` gives a CommandResult.
    ``array_parallelism="auto"`` takes the partition's idle cores at submit time (capped by
    the profile's ``max_array_parallelism``). Many commands are packed ``chunk_size`` per
    array task (``"auto"``: from the cluster's size and ``pilot``'s durations; docs/maps.md).
    """
    commands = listed(cmds, "cmds", "a list of shell commands")
    if not commands:
        return []
    keywords = Keywords(
        job_name=job_name,
        partition=partition,
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        gpus=gpus,
        env_setup=env_setup,
        env=env,
        env_merge=env_merge,
        jitter_s=jitter_s,
        array_parallelism=array_parallelism,
        account=account,
        qos=qos,
        extra=extra,
        retries=retries,
        retry_backoff_s=retry_backoff_s,
        backend=backend,
        config=config,
        cluster=cluster,
        preset=preset,
        resume=resume,
    )
    spec, options = build_spec(Command(str(commands[0])), keywords)
    return submit_items(spec, commands, chunk_size=chunk_size, pilot=pilot, options=options)


@_with_keyword_check
def map_func(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    job_name: str | None = None,
    partition: str | None = None,
    time_min: int | str | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | str | None = None,
    gpus: int | None = None,
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
    resume: str | None = None,
    chunk_size: int | str = "auto",
    pilot: Any = None,
) -> Sequence[SubmitHandle | ItemHandle]:
    """Call ``fn(item)`` for every item as ONE Slurm array; handles in input order.

    Many items are packed ``chunk_size`` per array task (``"auto"``: from the number of items,
    the cluster's size and ``pilot``'s durations), each item keeping its own handle, result
    and error (docs/maps.md).
    """
    values = listed(items, "items", "a list of items")
    if not values:
        return []
    keywords = Keywords(
        job_name=job_name,
        partition=partition,
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        gpus=gpus,
        env_setup=env_setup,
        env=env,
        env_merge=env_merge,
        jitter_s=jitter_s,
        array_parallelism=array_parallelism,
        account=account,
        qos=qos,
        extra=extra,
        retries=retries,
        retry_backoff_s=retry_backoff_s,
        backend=backend,
        config=config,
        cluster=cluster,
        preset=preset,
        resume=resume,
    )
    spec, options = build_spec(Call(fn, (values[0],)), keywords)
    return submit_items(spec, values, fn=fn, chunk_size=chunk_size, pilot=pilot, options=options)
