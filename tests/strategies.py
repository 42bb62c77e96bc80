"""Shared Hypothesis strategies for paracore's tests (one small, documented function each)."""

from __future__ import annotations

import itertools
import string

from hypothesis import strategies as st

from paracore.core.keys import CONFIG_KEYS
from paracore.core.retry import RetryPolicy
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import BACKENDS, Call, Command, EnvPolicy, JobSpec, Naming, Resources

_NAME_FIRST = string.ascii_letters + string.digits
_NAME_REST = _NAME_FIRST + "._-"
_AWKWARD = " /\\%'\"`$*?:;,!@#&()[]{}<>|~^=+\t\n.-_éüßæ日本語🚀😀\u0301\u200b\x00"

MAX_WALLTIME_MINUTES = 366 * 24 * 60
MAX_MEMORY_MB = 64 * 1024 * 1024


def walltime_minutes(max_value: int = MAX_WALLTIME_MINUTES) -> st.SearchStrategy[int]:
    """Positive walltimes in whole minutes (default: up to a year), the canonical unit."""
    return st.integers(min_value=1, max_value=max_value)


def memory_mb(max_value: int = MAX_MEMORY_MB) -> st.SearchStrategy[int]:
    """Positive memory sizes in whole MB, biased to include exact G and T multiples."""
    return st.one_of(
        st.integers(min_value=1, max_value=max_value),
        st.integers(min_value=1, max_value=max(1, max_value // 1024)).map(lambda g: g * 1024),
        st.integers(min_value=1, max_value=max(1, max_value // 1024**2)).map(lambda t: t * 1024**2),
    )


def job_names(max_len: int = 80) -> st.SearchStrategy[str]:
    """Valid job names (matching ``paracore.names.ALLOWED_PATTERN``) of at most ``max_len``."""
    return st.builds(
        str.__add__,
        st.sampled_from(_NAME_FIRST),
        st.text(alphabet=_NAME_REST, max_size=max_len - 1),
    )


def any_text_names() -> st.SearchStrategy[str]:
    """Arbitrary text a user might pass as a name: unicode, spaces, slashes, ``%``, very long."""
    return st.one_of(
        st.text(),
        st.text(alphabet=st.sampled_from(_AWKWARD + _NAME_REST), max_size=60),
        st.text(alphabet=st.sampled_from(_AWKWARD + _NAME_REST), min_size=70, max_size=300),
        job_names(max_len=300),
    )


# --- specs and their parts ----------------------------------------------------------------

_ENV_NAME_FIRST = string.ascii_uppercase + "_"
_ENV_NAME_REST = string.ascii_uppercase + string.digits + "_"
_TAG_NAMES = ("project", "user", "stage", "cluster", "partition", "run")
_MEMORY_UNITS = ("K", "M", "G", "T", "MB", "GB", "GiB")


def double(x: int, factor: int = 2) -> int:
    """A top-level (hence picklable) function that Call payloads in these strategies use."""
    return factor * x


def _given_or_cleared(values: st.SearchStrategy) -> st.SearchStrategy:
    """``values``, plus NOT_GIVEN ("nobody set it") and None ("explicitly cleared")."""
    return st.one_of(st.just(NOT_GIVEN), st.none(), values)


def slurm_words() -> st.SearchStrategy[str]:
    """Partition, account and qos names: short non-empty words without whitespace."""
    return st.text(alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=12)


def memory_values() -> st.SearchStrategy[int | float | str]:
    """Memory as paracore's user keywords take it: GB numbers, or strings with a unit."""
    return st.one_of(
        st.integers(1, 4096),
        st.sampled_from([0.25, 0.5, 1.5, 2.0]),
        st.builds(
            lambda n, unit: f"{n}{unit}", st.integers(1, 1024), st.sampled_from(_MEMORY_UNITS)
        ),
    )


def walltime_values() -> st.SearchStrategy[int | str]:
    """Walltimes as user keywords take them: int minutes, or Slurm/unit strings."""
    return st.one_of(
        walltime_minutes(10_000),
        st.integers(1, 48).map(lambda h: f"{h}h"),
        st.integers(1, 600).map(lambda m: f"{m}m"),
        st.builds(lambda h, m: f"{h:02d}:{m:02d}:00", st.integers(0, 23), st.integers(1, 59)),
    )


def extras() -> st.SearchStrategy[dict[str, str]]:
    """sbatch options without leading dashes, as ``extra`` takes them."""
    return st.dictionaries(
        st.sampled_from(["constraint", "exclusive", "mail_type", "comment", "gres", "reservation"]),
        st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8),
        max_size=3,
    )


def resource_kwargs() -> st.SearchStrategy[dict]:
    """Valid keywords for ``Resources(**kw)`` (canonical fields), NOT_GIVEN and None included."""
    return st.fixed_dictionaries(
        {},
        optional={
            "partition": _given_or_cleared(slurm_words()),
            "account": _given_or_cleared(slurm_words()),
            "qos": _given_or_cleared(slurm_words()),
            "cpus_per_task": _given_or_cleared(st.integers(1, 128)),
            "mem_mb": _given_or_cleared(st.one_of(memory_mb(1024 * 1024), st.just("16G"))),
            "time_min": _given_or_cleared(st.one_of(walltime_minutes(10_000), st.just("2h"))),
            "gpus": _given_or_cleared(st.integers(0, 8)),
            "array_parallelism": _given_or_cleared(st.integers(1, 500)),
            "max_array_parallelism": _given_or_cleared(st.integers(1, 500)),
            "extra": extras(),
        },
    )


def resources() -> st.SearchStrategy[Resources]:
    """Valid Resources instances, with any mix of given, NOT_GIVEN and None fields."""
    return resource_kwargs().map(lambda kw: Resources(**kw))


def resource_keywords() -> st.SearchStrategy[dict]:
    """Keywords for ``with_resources``: canonical names and aliases (mem, mem_gb, time, cpus).

    At most one spelling per canonical field, so the keywords are unambiguous.
    """
    return st.fixed_dictionaries(
        {},
        optional={
            "partition": st.one_of(st.none(), slurm_words()),
            "account": st.one_of(st.none(), slurm_words()),
            "qos": st.one_of(st.none(), slurm_words()),
            "cpus_per_task": st.one_of(st.none(), st.integers(1, 128)),
            "mem": st.one_of(st.none(), memory_values()),
            "time": st.one_of(st.none(), walltime_values()),
            "gpus": st.one_of(st.none(), st.integers(0, 8)),
            "array_parallelism": st.one_of(st.none(), st.integers(1, 500)),
        },
    )


# Names the job's own shell sets, so an overlay must not: Slurm's and submitit's variables, and
# bash's own.
_RESERVED_ENV_PREFIXES = ("SLURM_", "SUBMITIT_")
_RESERVED_ENV_NAMES = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "__rc"})


def _unreserved(name: str) -> str:
    """``name``, or ``name`` with an ``X`` in front if the job's shell sets it (no rejection)."""
    reserved = name.startswith(_RESERVED_ENV_PREFIXES) or name in _RESERVED_ENV_NAMES
    return f"X{name}" if reserved else name


def env_names() -> st.SearchStrategy[str]:
    """Environment variable names (shell-style identifiers), none that the job's shell sets."""
    return st.builds(
        str.__add__,
        st.sampled_from(_ENV_NAME_FIRST),
        st.text(alphabet=_ENV_NAME_REST, max_size=10),
    ).map(_unreserved)


def env_values() -> st.SearchStrategy[str]:
    """Environment values: any text without NUL (which no environment can hold)."""
    return st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=20,
    )


def env_overlays(max_size: int = 5) -> st.SearchStrategy[dict[str, str]]:
    """Overlays of environment variables, as ``with_env`` takes them."""
    return st.dictionaries(env_names(), env_values(), max_size=max_size)


def env_policies() -> st.SearchStrategy[EnvPolicy]:
    """Valid EnvPolicy values: inherit or replace, an overlay, and a setup line or not."""
    return st.builds(
        EnvPolicy,
        merge=st.sampled_from(["inherit", "replace"]),
        overlay=env_overlays(),
        setup=_given_or_cleared(st.sampled_from(["module load x", "source env.sh", "true"])),
    )


def templates() -> st.SearchStrategy[str]:
    """Valid job-name templates built from the tag names these strategies use."""
    return st.lists(st.sampled_from(_TAG_NAMES), min_size=1, max_size=3).map(
        lambda names: "-".join("{" + n + "}" for n in names)
    )


def tag_maps() -> st.SearchStrategy[dict[str, str]]:
    """Tags for name templates: identifier keys, short text values."""
    return st.dictionaries(st.sampled_from(_TAG_NAMES), st.text(max_size=12), max_size=4)


def _not_blank(name: str) -> str:
    """``name``, or ``name`` with an ``x`` added if it is only whitespace (no rejection)."""
    return name if name.strip() else f"{name}x"


def namings() -> st.SearchStrategy[Naming]:
    """Valid Naming values: explicit name, template, tags and max_len in any combination."""
    return st.builds(
        Naming,
        job_name=_given_or_cleared(any_text_names().map(_not_blank)),
        template=_given_or_cleared(templates()),
        tags=tag_maps(),
        max_len=st.one_of(st.just(NOT_GIVEN), st.integers(16, 1024)),
    )


def retry_policies(max_retries: int = 10) -> st.SearchStrategy[RetryPolicy]:
    """Valid RetryPolicy values (jitter in [0, 1), multiplier >= 1)."""
    seconds = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)
    return st.builds(
        RetryPolicy,
        retries=st.integers(0, max_retries),
        backoff_s=seconds,
        multiplier=st.floats(1, 10, allow_nan=False),
        cap_s=seconds,
        jitter=st.floats(0, 0.99, allow_nan=False),
    )


def payloads() -> st.SearchStrategy[Command | Call]:
    """Command and Call payloads; Calls use :func:`double`, sometimes with unhashable args."""
    commands = st.builds(
        Command,
        st.sampled_from(["echo hi", "python train.py --lr 0.1", "/bin/true", "ls -l /tmp"]),
    )
    calls = st.one_of(
        st.builds(lambda x: Call(double, (x,)), st.integers()),
        st.builds(
            lambda xs: Call(double, (xs,), {"scale": 2}), st.lists(st.integers(), max_size=3)
        ),
    )
    return st.one_of(commands, calls)


def job_specs() -> st.SearchStrategy[JobSpec]:
    """Valid JobSpecs of every shape: any payload, resources, env, naming, retry and options."""
    return st.builds(
        JobSpec,
        payload=payloads(),
        resources=resources(),
        env=env_policies(),
        naming=namings(),
        retry=retry_policies(),
        cluster=_given_or_cleared(slurm_words()),
        backend=st.one_of(st.just(NOT_GIVEN), st.sampled_from(BACKENDS)),
        log_dir=st.one_of(st.just(NOT_GIVEN), st.sampled_from(["logs", "/tmp/paracore"])),
        start_jitter_s=st.one_of(st.just(NOT_GIVEN), st.floats(0, 60, allow_nan=False)),
    )


# One spelling per canonical field, so a generated config is never ambiguous.
_CONFIG_SPELLINGS: dict[str, tuple[str, ...]] = {
    "cpus_per_task": ("cpus", "cpus_per_task"),
    "mem_mb": ("mem", "mem_gb", "mem_mb"),
    "time_min": ("time", "time_min"),
}


def _config_value(key: str) -> st.SearchStrategy:
    resource_values: dict[str, st.SearchStrategy] = {
        "partition": slurm_words(),
        "account": slurm_words(),
        "qos": slurm_words(),
        "cpus": st.integers(1, 128),
        "cpus_per_task": st.integers(1, 128),
        "mem": memory_values(),
        "mem_gb": memory_values(),
        "mem_mb": st.one_of(memory_mb(1024 * 1024), st.just("500M")),
        "time": walltime_values(),
        "time_min": walltime_values(),
        "gpus": st.integers(0, 8),
        "array_parallelism": st.integers(1, 500),
        "max_array_parallelism": st.integers(1, 500),
    }
    if key in resource_values:
        return st.one_of(st.none(), resource_values[key])
    return {
        "extra": extras(),
        "backend": st.sampled_from(BACKENDS),
        "cluster": st.one_of(st.none(), slurm_words()),
        "default_env": st.one_of(st.none(), st.sampled_from(["module load x", "true"])),
        "default_job_name": st.one_of(st.none(), templates()),
        "log_dir": st.sampled_from(["logs", "/scratch/logs"]),
        "max_len": st.integers(16, 1024),
        "start_jitter_s": st.floats(0, 60, allow_nan=False),
    }[key]


@st.composite
def configs(draw: st.DrawFn, *, with_extra: bool = True) -> dict:
    """Flat configuration mappings (keys from ``transforms.CONFIG_KEYS``) with valid values.

    Each canonical resource appears under at most one of its spellings.
    """
    spelled = {s for spellings in _CONFIG_SPELLINGS.values() for s in spellings}
    keys = [k for k in CONFIG_KEYS if k not in spelled and (with_extra or k != "extra")]
    keys += [draw(st.sampled_from(spellings)) for spellings in _CONFIG_SPELLINGS.values()]
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=len(keys)))
    return {key: draw(_config_value(key)) for key in chosen}


# --- autotune pilots ----------------------------------------------------------------------

MAX_PILOT_SECONDS = 7 * 24 * 3600.0
MAX_PILOT_PEAK_MB = 4 * 1024 * 1024.0


def pilot_durations() -> st.SearchStrategy[float]:
    """Measured wall times of pilot tasks in seconds: zero to a week, floats."""
    return st.floats(0, MAX_PILOT_SECONDS, allow_nan=False, allow_infinity=False)


def pilot_peaks() -> st.SearchStrategy[float]:
    """Measured peak memory of pilot tasks in MB: zero to 4 TB."""
    return st.floats(0, MAX_PILOT_PEAK_MB, allow_nan=False, allow_infinity=False)


@st.composite
def pilot_tasks(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 30) -> list:
    """Successful pilot measurements (``TaskMeasurement``), one per sampled item."""
    from paracore.core.autotune import TaskMeasurement

    n = draw(st.integers(min_size, max_size))
    return [
        TaskMeasurement(
            index=i, label=f"task {i}", duration_s=draw(pilot_durations()),
            max_rss_mb=draw(pilot_peaks()),
        )
        for i in range(n)
    ]  # fmt: skip


def partition_limits() -> st.SearchStrategy:
    """What a partition allows (``PartitionLimits``); any limit may be unknown (None)."""
    from paracore.core.cluster import PartitionLimits

    return st.builds(
        PartitionLimits,
        name=slurm_words(),
        max_time_min=st.one_of(st.none(), st.integers(1, 366 * 24 * 60)),
        node_mem_mb=st.one_of(st.none(), st.integers(1024, 4 * 1024 * 1024)),
        node_cpus=st.one_of(st.none(), st.integers(1, 256)),
        total_cpus=st.one_of(st.none(), st.integers(1, 100_000)),
    )


# --- layered configuration (paracore.core.config) ------------------------------------------------

_PROFILE_NAMES = ("hpc1", "dev")
_CONFIG_LEAF_VALUES: dict[tuple[str, ...], st.SearchStrategy] = {
    ("active_cluster",): st.sampled_from(_PROFILE_NAMES),
    ("validate",): st.booleans(),
    ("naming", "default_job_name"): st.one_of(st.none(), templates()),
    ("naming", "max_len"): st.integers(16, 1024),
    **{
        path: values
        for name in _PROFILE_NAMES
        for path, values in {
            ("clusters", name, "default_env"): st.one_of(st.none(), st.just("module load x")),
            ("clusters", name, "io_scratch"): st.one_of(st.none(), st.just("$TMPDIR")),
            ("clusters", name, "slurm", "partition"): st.one_of(st.none(), slurm_words()),
            ("clusters", name, "slurm", "account"): st.one_of(st.none(), slurm_words()),
            ("clusters", name, "slurm", "qos"): st.one_of(st.none(), slurm_words()),
            ("clusters", name, "slurm", "cpus_per_task"): st.one_of(st.none(), st.integers(1, 64)),
            ("clusters", name, "slurm", "mem_gb"): st.one_of(st.none(), memory_values()),
            ("clusters", name, "slurm", "time_min"): st.one_of(st.none(), walltime_values()),
            ("clusters", name, "slurm", "max_array_parallelism"): st.integers(1, 500),
            ("clusters", name, "slurm", "array_parallelism"): st.one_of(
                st.integers(1, 500), st.just("auto")
            ),
            ("clusters", name, "slurm", "start_jitter_s"): st.integers(0, 60),
            ("clusters", name, "slurm", "extra", "constraint"): st.one_of(
                st.none(), st.sampled_from(["a100", "skylake"])
            ),
            ("clusters", name, "slurm", "extra", "comment"): st.sampled_from(["x", "y"]),
        }.items()
    },
    ("presets", "quick", "time"): walltime_values(),
    ("presets", "quick", "retries"): st.integers(0, 5),
    ("presets", "quick", "env", "OMP_NUM_THREADS"): st.sampled_from(["1", "4"]),
}
CONFIG_LEAF_PATHS: tuple[tuple[str, ...], ...] = tuple(_CONFIG_LEAF_VALUES)
"""Every leaf a generated configuration may hold; no path is a prefix of another."""


def nest(flat: dict[tuple[str, ...], object]) -> dict:
    """A nested mapping from leaf paths, e.g. {("a", "b"): 1} -> {"a": {"b": 1}}."""
    out: dict = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def config_leaf_maps() -> st.SearchStrategy[dict[tuple[str, ...], object]]:
    """Valid configuration layers as leaf maps (path -> value, ``None`` meaning "cleared")."""
    return st.fixed_dictionaries({}, optional=_CONFIG_LEAF_VALUES)


def config_layers() -> st.SearchStrategy[dict]:
    """Valid configuration layers in the file format (nested sections, same shape everywhere)."""
    return config_leaf_maps().map(nest)


def wild_values() -> st.SearchStrategy[object]:
    """Any value a YAML file might hold where a setting goes: text, numbers, bools, lists."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        memory_values(),
        walltime_values(),
        st.lists(st.integers(), max_size=2),
        st.just("auto"),
    )


# --- retries: scheduler states, failure evidence, attempt resources, partition limits ------

SACCT_STATES = (
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "COMPLETING",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PENDING",
    "PREEMPTED",
    "REQUEUED",
    "RESIZING",
    "REVOKED",
    "RUNNING",
    "SPECIAL_EXIT",
    "SUSPENDED",
    "TIMEOUT",
)


def sacct_states() -> st.SearchStrategy[str]:
    """State strings as sacct prints them (``CANCELLED by 1000`` too), plus arbitrary text."""
    known = st.sampled_from(SACCT_STATES)
    cancelled_by = st.integers(0, 65535).map(lambda uid: f"CANCELLED by {uid}")
    return st.one_of(known, cancelled_by, st.text(max_size=30))


def failure_evidence() -> st.SearchStrategy[dict]:
    """Keyword arguments for ``failures.classify``: exit code/signal, reason, stderr tail."""
    return st.fixed_dictionaries(
        {
            "exit_code": st.one_of(st.none(), st.integers(0, 255)),
            "exit_signal": st.one_of(st.none(), st.integers(0, 128)),
            "reason": st.one_of(
                st.sampled_from(["", "None", "Dependency", "DependencyNeverSatisfied"]),
                st.text(max_size=20),
            ),
            "stderr_tail": st.one_of(
                st.just(""),
                st.sampled_from(
                    [
                        "slurmstepd: error: Exceeded job memory limit",
                        "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=5.batch",
                        "Traceback (most recent call last):",
                    ]
                ),
                st.text(max_size=40),
            ),
        }
    )


def attempt_resources() -> st.SearchStrategy:
    """What an attempt asks for: memory (MB), walltime (min), a partition, excluded nodes."""
    from paracore.core.escalation import AttemptResources

    return st.builds(
        AttemptResources,
        partition=st.one_of(st.none(), slurm_words()),
        mem_mb=st.one_of(st.none(), st.integers(1, 4 * 1024 * 1024)),
        time_min=st.one_of(st.none(), st.integers(1, MAX_WALLTIME_MINUTES)),
        exclude=st.lists(slurm_words(), max_size=3),
    )


def retry_limits() -> st.SearchStrategy:
    """A partition's caps: most memory per node and MaxTime, either possibly unknown."""
    from paracore.core.cluster import PartitionLimits

    return st.builds(
        PartitionLimits,
        node_mem_mb=st.one_of(st.none(), st.integers(1, 4 * 1024 * 1024)),
        max_time_min=st.one_of(st.none(), st.integers(1, MAX_WALLTIME_MINUTES)),
    )


def escalating_policies() -> st.SearchStrategy[RetryPolicy]:
    """Retry policies with any valid memory and time factors."""
    return st.builds(
        RetryPolicy,
        retries=st.integers(0, 10),
        mem_factor=st.floats(1, 4, allow_nan=False),
        time_factor=st.floats(1, 4, allow_nan=False),
        exclude_failed_nodes=st.booleans(),
    )


def _noop() -> None:
    """The function every generated plan step calls."""


@st.composite
def plan_trees(draw: st.DrawFn, max_steps: int = 8, with_after: bool = True) -> object:
    """Chain/Parallel trees of uniquely named steps (s0, s1, ...), some with ``after`` edges
    to earlier-written steps (so no cycle) unless ``with_after`` is False, and per-step
    walltimes and resources."""
    from paracore.core.plan_graph import Chain, Parallel, Step

    count = draw(st.integers(min_value=1, max_value=max_steps))
    names = [f"s{i}" for i in range(count)]

    def resources() -> dict:
        return {
            "time_min": draw(st.integers(min_value=1, max_value=600)),
            "cpus_per_task": draw(st.integers(min_value=1, max_value=64)),
            "gpus": draw(st.integers(min_value=0, max_value=8)),
        }

    def step(i: int) -> Step:
        made = Step(names[i], _noop, resources())
        earlier = draw(st.lists(st.sampled_from(names[:i]), max_size=2)) if i and with_after else []
        return made.with_after(*earlier) if earlier else made

    def build(lo: int, hi: int) -> object:
        if hi - lo == 1:
            return step(lo)
        cuts = sorted(draw(st.sets(st.integers(lo + 1, hi - 1), min_size=1, max_size=3)))
        bounds = [lo, *cuts, hi]
        parts = [build(a, b) for a, b in itertools.pairwise(bounds)]
        return draw(st.sampled_from([Chain, Parallel]))(*parts)

    return build(0, count)


@st.composite
def plan_dags(draw: st.DrawFn, max_steps: int = 7) -> tuple[tuple[str, ...], dict[str, tuple]]:
    """A plan's DAG as (topological order, parents by step): steps s0, s1, ..., each after
    any of the steps before it (so any DAG, not only Chain/Parallel trees)."""
    count = draw(st.integers(min_value=1, max_value=max_steps))
    names = tuple(f"s{i}" for i in range(count))
    parents = {
        name: tuple(sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3)), key=names.index))
        if i
        else ()
        for i, name in enumerate(names)
    }
    return names, parents
