"""JobSpec and its parts: immutable values that say everything about one piece of work.

A spec is data. It holds what runs (a :class:`Command` or a :class:`Call`), where and with
what (:class:`Resources`), in which environment (:class:`EnvPolicy`), under which name
(:class:`Naming`) and with which :class:`~paracore.core.retry.RetryPolicy`. Fields nobody set are
:data:`~paracore.core.sentinel.NOT_GIVEN`, so configuration can fill them without overriding a
caller; ``None`` means "explicitly cleared, let the scheduler decide".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from paracore.core.retry import RetryPolicy
from paracore.core.safe import (
    ENV_NAME,
    MAX_CPUS,
    MAX_GPUS,
    MAX_MEM_MB,
    MAX_TIME_MIN,
    SBATCH_OPTION,
    control_characters,
    is_env_name,
    is_sbatch_option,
    single_line,
)
from paracore.core.sentinel import NOT_GIVEN, NotGiven
from paracore.core.units import parse_memory, parse_walltime
from paracore.errors import SpecError

BACKENDS: tuple[str, ...] = ("auto", "slurm", "local", "inprocess")
"""paracore's own backend names (``auto``: Slurm when it is there, else this machine)."""
BACKEND_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
"""A backend's name: paracore's own, or a plugin's (lower case, digits, ``_`` and ``-``)."""
_BACKEND_NAME = re.compile(BACKEND_NAME_PATTERN)


def backend_name_ok(value: object) -> bool:
    """Whether ``value`` can name a backend (installed or not: that is checked on use)."""
    return isinstance(value, str) and bool(_BACKEND_NAME.match(value))


"""Backend names a spec may ask for (``auto``: ``$PARACORE_BACKEND``, else detect)."""
EnvMerge = Literal["inherit", "replace"]


# ---------------------------------------------------------------- payloads


Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""The shape of an attrs validator."""


def command_problem(cmd: object) -> str | None:
    """Why ``cmd`` cannot be a job's shell command, or None: it must be a non-empty string
    without NUL characters (a NUL cannot pass through ``bash -c``: the job would fail on the
    node, after waiting in the queue)."""
    if not isinstance(cmd, str) or not cmd.strip():
        return "a non-empty shell command string"
    if "\0" in cmd:
        where = cmd.index("\0")
        return f"a shell command without NUL characters (one at position {where})"
    return None


def _non_empty_command(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    problem = command_problem(value)
    if problem is not None:
        raise SpecError("cmd", value, problem)


@attrs.frozen
class Command:
    """A shell command, run with ``bash -c`` inside the job."""

    cmd: str = attrs.field(validator=_non_empty_command)

    @property
    def label(self) -> str:
        """A short human name for the payload: the program's base name."""
        first = self.cmd.strip().split()[0]
        return first.rsplit("/", 1)[-1]


def _callable(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise SpecError("fn", value, "a callable (a top-level function pickles best)")


def _args_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def kwargs_pairs(
    value: Mapping[str, Any] | Iterable[tuple[str, Any]],
) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments as a tuple of ``(name, value)`` pairs sorted by name (a value field
    of a frozen class; equal whatever order they were given in)."""
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(items, key=lambda kv: kv[0]))


@attrs.frozen
class Call:
    """A Python callable with its arguments, pickled with cloudpickle and called in the job.

    Arguments take part in equality but not in the hash, so a call with unhashable arguments
    (lists, arrays) still makes a hashable spec.
    """

    fn: Callable[..., Any] = attrs.field(validator=_callable)
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args_tuple, hash=False)
    kwargs: tuple[tuple[str, Any], ...] = attrs.field(
        default=(), converter=kwargs_pairs, hash=False
    )

    @property
    def label(self) -> str:
        """A short human name for the payload: the function's name."""
        return getattr(self.fn, "__name__", type(self.fn).__name__)


Payload = Command | Call


# ---------------------------------------------------------------- resources


def _optional_str(field: str) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if value is NOT_GIVEN or value is None:
            return
        if (
            not isinstance(value, str)
            or not value.strip()
            or any(c.isspace() for c in value)
            or not single_line(value)
        ):
            raise SpecError(field, value, "a non-empty name without spaces, or None")

    return check


def _optional_int(field: str, minimum: int, maximum: int | None = None) -> Validator:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
        if value is NOT_GIVEN or value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(field, value, f"a whole number >= {minimum}, or None")
        if maximum is not None and value > maximum:
            raise SpecError(field, value, f"at most {maximum} ({_WHY_MAX.get(field, '')})")

    return check


_WHY_MAX = {
    "mem": "1 PB, in MB: more than any node has",
    "time_min": "a year, in minutes: longer than any partition allows",
    "cpus_per_task": "more CPUs than any node has",
    "gpus": "more GPUs than any node has",
}


def _parallelism(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    """A whole number >= 1, or "auto": the partition's idle cores, settled at submit time."""
    if value == "auto":
        return
    try:
        _optional_int("array_parallelism", 1)(inst, attr, value)
    except SpecError as err:
        raise SpecError(err.field, value, "a whole number >= 1, 'auto', or None") from None


def _to_minutes(value: object) -> object:
    if value is NOT_GIVEN or value is None:
        return value
    return parse_walltime(value, field="time_min")  # type: ignore[arg-type]


def _to_mb(value: object) -> object:
    """Memory in MB: ints are already MB here; strings carry their unit."""
    if (
        value is NOT_GIVEN
        or value is None
        or (isinstance(value, int) and not isinstance(value, bool))
    ):
        return value
    if isinstance(value, str):
        return parse_memory(value, field="mem")
    raise SpecError("mem_mb", value, "whole megabytes as an int, or a string such as '16G'")


def _extra_pairs(
    value: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None,
) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for key, val in items:
        name = key.replace("_", "-") if isinstance(key, str) else key
        if not isinstance(name, str) or not is_sbatch_option(name):
            raise SpecError(
                "extra",
                key,
                f"sbatch option names matching {SBATCH_OPTION} (lowercase letters, digits and "
                "dashes, no leading dashes), e.g. {'constraint': 'a100', 'mail-type': 'END'}",
            )
        if val is False or not isinstance(val, str | int | float):
            raise SpecError(
                f"extra[{key!r}]", val, "a string, a number, or True for a flag such as 'hold'"
            )
        if not single_line(str(val)):
            raise SpecError(
                f"extra[{key!r}]",
                val,
                "one line without control characters (found "
                + ", ".join(sorted(set(control_characters(str(val)))))
                + "): a newline would add lines to the batch script",
            )
        pairs.append((name, val))
    return tuple(sorted(pairs))


@attrs.frozen(kw_only=True)
class Resources:
    """What the job asks the scheduler for. Time is in minutes, memory in MB."""

    partition: str | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_optional_str("partition")
    )
    account: str | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_optional_str("account")
    )
    qos: str | NotGiven | None = attrs.field(default=NOT_GIVEN, validator=_optional_str("qos"))
    cpus_per_task: int | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_optional_int("cpus_per_task", 1, MAX_CPUS)
    )
    mem_mb: int | NotGiven | None = attrs.field(
        default=NOT_GIVEN, converter=_to_mb, validator=_optional_int("mem", 1, MAX_MEM_MB)
    )
    time_min: int | NotGiven | None = attrs.field(
        default=NOT_GIVEN,
        converter=_to_minutes,
        validator=_optional_int("time_min", 1, MAX_TIME_MIN),
    )
    gpus: int | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_optional_int("gpus", 0, MAX_GPUS)
    )
    array_parallelism: int | Literal["auto"] | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_parallelism
    )
    max_array_parallelism: int | NotGiven | None = attrs.field(
        default=NOT_GIVEN, validator=_optional_int("max_array_parallelism", 1)
    )
    extra: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=_extra_pairs)


# ---------------------------------------------------------------- environment


def _env_merge(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value not in ("inherit", "replace"):
        raise SpecError(
            "env_merge", value, "'inherit' (overlay the job's environment) or 'replace'"
        )


def env_pairs(
    value: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None,
) -> tuple[tuple[str, str], ...]:
    """Environment variables as sorted (name, value) pairs, names and values checked."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for key, val in items:
        if not isinstance(key, str) or not is_env_name(key):
            raise SpecError(
                "env",
                key,
                f"variable names matching {ENV_NAME} (letters, digits, '_', no digit first)",
            )
        if not isinstance(val, str | int | float) or isinstance(val, bool):
            raise SpecError(f"env[{key!r}]", val, "a string (numbers are converted)")
        if "\0" in str(val):
            raise SpecError(f"env[{key!r}]", val, "a value without NUL characters")
        pairs.append((key, str(val)))
    return tuple(sorted(pairs))


def _optional_setup(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is NOT_GIVEN or value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise SpecError("env_setup", value, "a shell line such as 'module load x', or None")
    if "\0" in value:
        raise SpecError("env_setup", value, "a shell line without NUL characters")


@attrs.frozen(kw_only=True)
class EnvPolicy:
    """How the job's environment is made: inherit or replace, an overlay, and a setup line.

    The overlay is applied inside the job at run time, so the job keeps its own ``SLURM_*``
    variables even when ``merge="replace"``.
    """

    merge: EnvMerge = attrs.field(default="inherit", validator=_env_merge)
    overlay: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=env_pairs)
    setup: str | NotGiven | None = attrs.field(default=NOT_GIVEN, validator=_optional_setup)


# ---------------------------------------------------------------- naming


def _optional_name(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is NOT_GIVEN or value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise SpecError("job_name", value, "a non-empty string (it is sanitised for Slurm)")


def _tag_pairs(
    value: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None,
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    pairs = {}
    for key, val in items:
        if not isinstance(key, str) or not key.isidentifier():
            raise SpecError("tags", key, "tag names that are Python identifiers, e.g. 'project'")
        if val is not None:
            pairs[key] = str(val)
    return tuple(sorted(pairs.items()))


def _max_len(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is NOT_GIVEN:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 1024:
        raise SpecError("naming.max_len", value, "a whole number from 16 to 1024")


@attrs.frozen(kw_only=True)
class Naming:
    """An explicit job name, or a template filled from tags; sanitised and truncated."""

    job_name: str | NotGiven | None = attrs.field(default=NOT_GIVEN, validator=_optional_name)
    template: str | NotGiven | None = attrs.field(default=NOT_GIVEN)
    tags: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_tag_pairs)
    max_len: int | NotGiven = attrs.field(default=NOT_GIVEN, validator=_max_len)


# ---------------------------------------------------------------- the spec


def _payload(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Command | Call):
        raise SpecError(
            "payload", value, "a Command or a Call (use JobSpec.command / JobSpec.call)"
        )


def _backend(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is not NOT_GIVEN and not backend_name_ok(value):
        raise SpecError(
            "backend",
            value,
            f"one of {', '.join(BACKENDS)}, or an installed plugin's name (lower case letters, "
            "digits, '_' and '-'; `paracore backends` lists them)",
        )


def _non_negative_seconds(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is NOT_GIVEN:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise SpecError("jitter_s", value, "a number of seconds >= 0")


def _optional_cluster(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is NOT_GIVEN or value is None:
        return
    if not isinstance(value, str) or not value:
        raise SpecError("cluster", value, "a profile name, or None")


def _optional_log_dir(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if value is not NOT_GIVEN and (
        not isinstance(value, str) or not value or not single_line(value)
    ):
        raise SpecError(
            "log_dir",
            value,
            "a directory path as a non-empty string without control characters (it is written "
            "into the batch script)",
        )


@attrs.frozen(kw_only=True)
class JobSpec:
    """Everything about one piece of work. Build with :meth:`command` or :meth:`call`."""

    payload: Payload = attrs.field(validator=_payload)
    resources: Resources = attrs.field(factory=Resources)
    env: EnvPolicy = attrs.field(factory=EnvPolicy)
    naming: Naming = attrs.field(factory=Naming)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    cluster: str | NotGiven | None = attrs.field(default=NOT_GIVEN, validator=_optional_cluster)
    backend: str | NotGiven = attrs.field(default=NOT_GIVEN, validator=_backend)
    log_dir: str | NotGiven = attrs.field(default=NOT_GIVEN, validator=_optional_log_dir)
    start_jitter_s: float | NotGiven = attrs.field(
        default=NOT_GIVEN, validator=_non_negative_seconds
    )

    @classmethod
    def command(cls, cmd: str, **fields: Any) -> JobSpec:
        """A spec that runs the shell command ``cmd``."""
        return cls(payload=Command(cmd), **fields)

    @classmethod
    def call(cls, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> JobSpec:
        """A spec that calls ``fn(*args, **kwargs)`` inside the job."""
        return cls(payload=Call(fn, args, kwargs))

    def with_payload(self, payload: Payload) -> JobSpec:
        """The same spec running another payload (used to build arrays)."""
        return attrs.evolve(self, payload=payload)
