"""The documented convenience API: thin wrappers that build a spec, transform it, submit it.

Each function turns its keywords into transforms over a :class:`~paracore.spec.JobSpec` and
hands the result to :func:`~paracore.submit.submit` or :func:`~paracore.submit.submit_map`.
Anything these functions do can be done with the core directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from toolz import pipe

from paracore.handle import SubmitHandle
from paracore.pilot import autotune_from_pilot as autotune_from_pilot
from paracore.spec import Call, Command, JobSpec
from paracore.submit import submit, submit_map
from paracore.transforms import (
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
    array_parallelism: int | None = None,
) -> JobSpec:
    """A spec for ``payload`` with the seed API's keywords applied as transforms.

    ``None`` means "not given" here, so configuration can still fill the field.
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
    env_options: dict[str, Any] = {"merge": env_merge}
    if env_setup is not None:
        env_options["setup"] = env_setup
    steps = [
        with_resources(**resources),
        with_env(dict(env or {}), **env_options),
        with_retries(retries, backoff_s=retry_backoff_s),
    ]
    if job_name is not None:
        steps.append(with_name(job_name))
    if jitter_s:
        steps.append(with_start_jitter(jitter_s))
    if config:
        steps.append(with_config(config))
    spec = JobSpec(payload=payload, **({"backend": backend} if backend else {}))
    return pipe(spec, *steps)


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
) -> SubmitHandle:
    """Submit one shell command as one job; ``handle.result()`` gives a CommandResult."""
    options = dict(locals())
    return submit(_build(Command(options.pop("cmd")), **options))


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
    array_parallelism: int | None = None,
    account: str | None = None,
    qos: str | None = None,
    extra: Mapping[str, Any] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 30.0,
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[SubmitHandle]:
    """Submit shell commands as ONE Slurm array, throttled by ``array_parallelism``.

    Handles come back in input order; each ``result()`` gives a CommandResult.
    """
    options = dict(locals())
    payloads = [Command(c) for c in options.pop("cmds")]
    if not payloads:
        return []
    return submit_map(_build(payloads[0], **options), payloads)


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
    array_parallelism: int | None = None,
    account: str | None = None,
    qos: str | None = None,
    extra: Mapping[str, Any] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 30.0,
    backend: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[SubmitHandle]:
    """Call ``fn(item)`` for every item as ONE Slurm array; handles in input order."""
    options = dict(locals())
    fn, items = options.pop("fn"), options.pop("items")
    payloads = [Call(fn, (item,)) for item in items]
    if not payloads:
        return []
    return submit_map(_build(payloads[0], **options), payloads)
