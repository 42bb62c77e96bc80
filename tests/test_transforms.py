"""Laws of paracore.core.transforms: purity, locality, precedence, currying and composition."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toolz import pipe

import paracore
from paracore.core.config import ResolvedConfig
from paracore.core.defaults import BUILTIN_DEFAULTS
from paracore.core.failures import DEFAULT_RETRY_ON, FailureClass
from paracore.core.keys import CONFIG_KEYS
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import JobSpec, Resources
from paracore.core.transforms import (
    autotuned,
    preset,
    with_array,
    with_backend,
    with_cluster,
    with_config,
    with_env,
    with_env_setup,
    with_log_dir,
    with_name,
    with_name_template,
    with_resources,
    with_retries,
    with_start_jitter,
    with_tags,
)
from paracore.errors import SpecError
from tests.strategies import (
    configs,
    env_overlays,
    extras,
    job_specs,
    resource_keywords,
    retry_policies,
    slurm_words,
    tag_maps,
    templates,
    walltime_values,
)

# --- helpers --------------------------------------------------------------------------------


def _restore(out: JobSpec, spec: JobSpec, path: str) -> JobSpec:
    """``out`` with the (dotted) field ``path`` put back to its value in ``spec``."""
    head, _, rest = path.partition(".")
    if not rest:
        return attrs.evolve(out, **{head: getattr(spec, head)})
    inner_out, inner_spec = getattr(out, head), getattr(spec, head)
    return attrs.evolve(out, **{head: attrs.evolve(inner_out, **{rest: getattr(inner_spec, rest)})})


def _only_touches(out: JobSpec, spec: JobSpec, paths: tuple[str, ...]) -> bool:
    """True when ``out`` equals ``spec`` once the fields in ``paths`` are put back."""
    for path in paths:
        out = _restore(out, spec, path)
    return out == spec


def _seconds() -> st.SearchStrategy[float]:
    return st.floats(0, 1e4, allow_nan=False)


# Each public transform, a strategy for its (non-spec) arguments, and the fields it may touch.
def _presets(definition: dict) -> ResolvedConfig:
    """A resolved configuration holding one preset "p" (no files read)."""
    from paracore.core.config import Layer, resolve_layers

    return resolve_layers([Layer("test", {"presets": {"p": definition}})])


_TRANSFORMS: dict[str, tuple[Callable[[st.DataObject], Callable], tuple[str, ...]]] = {
    "with_resources": (
        lambda d: with_resources(**d.draw(resource_keywords())),
        ("resources",),
    ),
    "with_array": (
        lambda d: with_array(d.draw(st.one_of(st.none(), st.integers(1, 100)))),
        ("resources.array_parallelism",),
    ),
    "with_env": (
        lambda d: with_env(
            d.draw(env_overlays()),
            merge=d.draw(st.sampled_from([None, "inherit", "replace"])),
            setup=d.draw(st.sampled_from([NOT_GIVEN, None, "module load x"])),
        ),
        ("env",),
    ),
    "with_env_setup": (
        lambda d: with_env_setup(d.draw(st.sampled_from([None, "source a.sh"]))),
        ("env.setup",),
    ),
    "with_name": (
        lambda d: with_name(d.draw(st.one_of(st.none(), st.text(min_size=1).filter(str.strip)))),
        ("naming.job_name",),
    ),
    "with_name_template": (
        lambda d: with_name_template(
            d.draw(templates()), max_len=d.draw(st.one_of(st.none(), st.integers(16, 200)))
        ),
        ("naming.template", "naming.max_len"),
    ),
    "with_tags": (lambda d: with_tags(d.draw(tag_maps())), ("naming.tags",)),
    "with_preset": (
        lambda d: paracore.with_preset(
            "p", presets=_presets({"time": d.draw(walltime_values()), "tags": {"team": "a"}})
        ),
        ("resources.time_min", "naming.tags"),
    ),
    "with_retries": (
        lambda d: with_retries(
            d.draw(st.integers(0, 10)),
            backoff_s=d.draw(st.one_of(st.none(), _seconds())),
            jitter=d.draw(st.one_of(st.none(), st.floats(0, 0.5))),
        ),
        ("retry",),
    ),
    "with_backend": (
        lambda d: with_backend(d.draw(st.sampled_from(["auto", "slurm", "local", "inprocess"]))),
        ("backend",),
    ),
    "with_cluster": (
        lambda d: with_cluster(d.draw(st.one_of(st.none(), slurm_words()))),
        ("cluster",),
    ),
    "with_log_dir": (
        lambda d: with_log_dir(d.draw(st.sampled_from(["logs", "/x/y"]))),
        ("log_dir",),
    ),
    "with_start_jitter": (lambda d: with_start_jitter(d.draw(_seconds())), ("start_jitter_s",)),
    "autotuned": (
        lambda d: autotuned(
            d.draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "time_min": st.integers(1, 1000),
                        "mem_gb": st.floats(0.01, 64),
                        "cpus_per_task": st.integers(1, 64),
                        "array_parallelism": st.integers(1, 100),
                    },
                )
            )
        ),
        ("resources",),
    ),
}


# --- purity and locality ------------------------------------------------------------------


def test_every_public_transform_has_a_locality_law() -> None:
    """The locality table covers every public with_* transform and autotuned."""
    public = {n for n in paracore.__all__ if n.startswith("with_")} - {"with_config"}
    assert public | {"autotuned"} == set(_TRANSFORMS)


@pytest.mark.parametrize("name", sorted(_TRANSFORMS))
@settings(max_examples=40)
@given(spec=job_specs(), data=st.data())
def test_transform_is_pure_and_local(name: str, spec: JobSpec, data: st.DataObject) -> None:
    """Each transform leaves its input unchanged and only touches its own fields."""
    make, paths = _TRANSFORMS[name]
    transform = make(data)
    before = copy.deepcopy(spec)
    out = transform(spec)
    assert spec == before
    assert isinstance(out, JobSpec)
    assert _only_touches(out, spec, paths)


@settings(max_examples=60)
@given(job_specs(), configs())
def test_with_config_leaves_input_unchanged(spec: JobSpec, config: dict) -> None:
    """with_config does not mutate the spec nor the configuration mapping."""
    before, config_before = copy.deepcopy(spec), copy.deepcopy(config)
    with_config(config, spec)
    assert spec == before
    assert config == config_before


@given(job_specs(), st.one_of(st.none(), st.text(min_size=1).filter(str.strip)))
def test_with_name_sets_job_name(spec: JobSpec, name: str | None) -> None:
    """with_name sets naming.job_name to exactly the given value."""
    assert with_name(name, spec).naming.job_name == name


@given(job_specs(), retry_policies())
def test_with_retries_sets_policy(spec: JobSpec, policy) -> None:
    """with_retries with every option given reproduces that policy exactly."""
    out = with_retries(
        policy.retries,
        spec,
        backoff_s=policy.backoff_s,
        multiplier=policy.multiplier,
        cap_s=policy.cap_s,
        jitter=policy.jitter,
        retry_on=policy.retry_on,
        mem_factor=policy.mem_factor,
        time_factor=policy.time_factor,
    )
    assert out.retry == policy


@given(job_specs(), st.integers(0, 5))
def test_with_retries_retries_user_errors_unless_told_not_to(spec: JobSpec, n: int) -> None:
    """with_retries(n) adds user errors to the retried classes; user_errors=False removes them."""
    assert FailureClass.USER_ERROR in with_retries(n, spec).retry.retry_on
    infra_only = with_retries(n, spec, user_errors=False).retry.retry_on
    assert FailureClass.USER_ERROR not in infra_only
    assert with_retries(n, spec).retry.retry_on >= DEFAULT_RETRY_ON


# --- precedence ---------------------------------------------------------------------------


@given(job_specs(), resource_keywords(), resource_keywords())
def test_with_resources_last_call_wins_per_field(spec: JobSpec, first: dict, second: dict) -> None:
    """Two with_resources calls equal one call with the second's keywords winning per field."""
    twice = pipe(spec, with_resources(**first), with_resources(**second))
    assert twice == with_resources(spec, **{**first, **second})
    only_first = {k: v for k, v in first.items() if k not in second}
    fresh = JobSpec.command("x")
    expected_second = with_resources(fresh, **second).resources
    expected_first = with_resources(fresh, **only_first).resources
    for field in set(attrs.fields_dict(Resources)) - {"extra"}:
        value = getattr(twice.resources, field)
        if getattr(expected_second, field) is not NOT_GIVEN:
            assert value == getattr(expected_second, field)
        elif getattr(expected_first, field) is not NOT_GIVEN:
            assert value == getattr(expected_first, field)


@given(job_specs(), extras(), extras())
def test_with_resources_merges_extra_per_option(spec: JobSpec, first: dict, second: dict) -> None:
    """``extra`` merges option by option across calls, later calls winning."""
    out = pipe(spec, with_resources(extra=first), with_resources(extra=second))
    expected = {**dict(spec.resources.extra), **dict(Resources(extra={**first, **second}).extra)}
    assert dict(out.resources.extra) == expected


@given(job_specs(), env_overlays(), env_overlays())
def test_with_env_later_overlay_wins(spec: JobSpec, first: dict, second: dict) -> None:
    """Overlays accumulate; for a variable set twice the later call wins."""
    out = pipe(spec, with_env(first), with_env(second))
    assert dict(out.env.overlay) == {**dict(spec.env.overlay), **first, **second}
    assert out.env.merge == spec.env.merge


@given(job_specs(), tag_maps(), tag_maps())
def test_with_tags_later_tag_wins(spec: JobSpec, first: dict, second: dict) -> None:
    """Tags accumulate; for a tag set twice the later call wins."""
    out = pipe(spec, with_tags(first), with_tags(second))
    assert dict(out.naming.tags) == {**dict(spec.naming.tags), **first, **second}


# Non-resource config keys and the spec field each one fills.
_CONFIG_FIELDS = {
    "backend": ("backend",),
    "cluster": ("cluster",),
    "log_dir": ("log_dir",),
    "start_jitter_s": ("start_jitter_s",),
    "default_env": ("env", "setup"),
    "default_job_name": ("naming", "template"),
    "max_len": ("naming", "max_len"),
}


_TOP_LEVEL_CONFIG_FIELDS = tuple(p[0] for p in _CONFIG_FIELDS.values() if len(p) == 1)


def _get(spec: JobSpec, path: tuple[str, ...]) -> Any:
    value: Any = spec
    for part in path:
        value = getattr(value, part)
    return value


@settings(max_examples=150)
@given(job_specs(), configs())
def test_with_config_fills_only_what_is_not_given(spec: JobSpec, config: dict) -> None:
    """with_config never overrides a given field (None included) and fills NOT_GIVEN ones."""
    out = with_config(config, spec)
    resource_keys = {k: v for k, v in config.items() if k not in _CONFIG_FIELDS and k != "extra"}
    from_config = with_resources(JobSpec.command("x"), **resource_keys).resources
    for field in attrs.fields_dict(Resources):
        if field == "extra":
            continue
        mine, filled = getattr(spec.resources, field), getattr(out.resources, field)
        assert filled == (getattr(from_config, field) if mine is NOT_GIVEN else mine)
    config_extra = dict(Resources(extra=config.get("extra")).extra)
    assert dict(out.resources.extra) == {**config_extra, **dict(spec.resources.extra)}
    for key, path in _CONFIG_FIELDS.items():
        mine = _get(spec, path)
        expected = config.get(key, NOT_GIVEN) if mine is NOT_GIVEN else mine
        assert _get(out, path) == expected
    assert _only_touches(
        out,
        spec,
        ("resources", "env.setup", "naming.template", "naming.max_len", *_TOP_LEVEL_CONFIG_FIELDS),
    )


def test_with_config_keeps_cleared_fields() -> None:
    """A field cleared with None stays None even when the configuration has a value."""
    spec = with_resources(JobSpec.command("x"), partition=None, time=None)
    out = with_config({"partition": "gpu", "time_min": 30, "cpus": 2}, spec)
    assert out.resources.partition is None
    assert out.resources.time_min is None
    assert out.resources.cpus_per_task == 2


@given(job_specs())
def test_builtin_defaults_are_idempotent(spec: JobSpec) -> None:
    """Applying the built-in defaults twice equals applying them once."""
    once = with_config(BUILTIN_DEFAULTS, spec)
    assert with_config(BUILTIN_DEFAULTS, once) == once


@given(job_specs(), configs())
def test_with_config_is_idempotent(spec: JobSpec, config: dict) -> None:
    """Applying any configuration twice equals applying it once."""
    once = with_config(config, spec)
    assert with_config(config, once) == once


@settings(max_examples=150)
@given(job_specs(), configs(with_extra=False), configs(with_extra=False))
def test_config_layers_compose(spec: JobSpec, a: dict, b: dict) -> None:
    """with_config(a) then with_config(b) equals with_config({**b, **a}): earlier fills first."""
    assert pipe(spec, with_config(a), with_config(b)) == with_config({**b, **a}, spec)


@settings(max_examples=150)
@given(job_specs(), configs(), configs())
def test_config_layers_compose_with_extra_merged(spec: JobSpec, a: dict, b: dict) -> None:
    """With ``extra`` in both layers the law holds when the extras are merged option by option."""
    merged = {**b, **a}
    if "extra" in a or "extra" in b:
        merged["extra"] = {**b.get("extra", {}), **a.get("extra", {})}
    assert pipe(spec, with_config(a), with_config(b)) == with_config(merged, spec)


def test_config_layers_shallow_merge_loses_later_extra() -> None:
    """A plain ``{**b, **a}`` replaces b's extras wholesale, while applying b after a keeps them.

    So ``extra`` is the one key where sequential layers and a shallow dict merge differ.
    """
    spec = JobSpec.command("x")
    a, b = {"extra": {"constraint": "a100"}}, {"extra": {"mail_type": "END"}}
    sequential = pipe(spec, with_config(a), with_config(b))
    assert dict(sequential.resources.extra) == {"constraint": "a100", "mail-type": "END"}
    assert dict(with_config({**b, **a}, spec).resources.extra) == {"constraint": "a100"}


def test_with_config_rejects_unknown_keys() -> None:
    """An unknown configuration key raises SpecError naming it and listing the known keys."""
    with pytest.raises(SpecError) as info:
        with_config({"partitions": "gpu"}, JobSpec.command("x"), source="team.yaml")
    assert info.value.field == "partitions"
    assert info.value.source == "team.yaml"
    assert all(key in str(info.value) for key in CONFIG_KEYS)


def test_with_config_error_names_source() -> None:
    """An invalid configured value raises SpecError that says which layer it came from."""
    with pytest.raises(SpecError) as info:
        with_config({"cpus": 0}, JobSpec.command("x"), source="~/.paracore.yaml")
    assert info.value.source == "~/.paracore.yaml"


# --- currying and composition -------------------------------------------------------------

_CURRY_ARGS: dict[str, tuple[tuple, dict]] = {
    "with_array": ((4,), {}),
    "with_backend": (("inprocess",), {}),
    "with_cluster": (("c1",), {}),
    "with_config": (({"partition": "cpu", "time": "1h"},), {}),
    "with_env": (({"A": "1"},), {"merge": "replace"}),
    "with_env_setup": (("module load x",), {}),
    "with_log_dir": (("logs",), {}),
    "with_name": (("train",), {}),
    "with_name_template": (("{project}-{cluster}",), {"max_len": 40}),
    "with_resources": ((), {"partition": "gpu", "mem": "4G"}),
    "with_retries": ((3,), {"backoff_s": 1.0}),
    "with_start_jitter": ((5.0,), {}),
    "with_tags": (({"project": "demo"},), {}),
    "with_preset": (("p",), {"presets": _presets({"time": "5m"})}),
    "autotuned": (({"time_min": 30, "cpus_per_task": 2},), {}),
}


def test_every_public_transform_works_curried() -> None:
    """Every public transform given all arguments but the spec returns a spec transform."""
    names = sorted({n for n in paracore.__all__ if n.startswith("with_")} | {"autotuned"})
    assert names == sorted(_CURRY_ARGS)
    spec = JobSpec.command("echo hi")
    for name in names:
        transform = getattr(paracore, name)
        args, kwargs = _CURRY_ARGS[name]
        curried = transform(*args, **kwargs)
        out = curried(spec)
        assert isinstance(out, JobSpec), name
        assert out != spec, name
        if name == "with_resources":
            assert out == transform(spec, **kwargs)
        else:
            assert out == transform(*args, spec, **kwargs), name


@given(job_specs(), resource_keywords(), env_overlays(), st.integers(0, 5))
def test_preset_equals_pipe(spec: JobSpec, res: dict, overlay: dict, retries: int) -> None:
    """preset(f, g, h)(spec) equals pipe(spec, f, g, h)."""
    steps = (with_resources(**res), with_env(overlay), with_retries(retries))
    assert preset(*steps)(spec) == pipe(spec, *steps)


def test_preset_composes_left_to_right() -> None:
    """In a preset later transforms win, as in a pipe."""
    spec = JobSpec.command("x")
    assert preset(with_name("first"), with_name("second"))(spec).naming.job_name == "second"
    assert preset(with_resources(cpus=2), with_resources(cpus=8))(spec).resources.cpus_per_task == 8


@given(job_specs())
def test_empty_preset_is_identity(spec: JobSpec) -> None:
    """preset() with no transforms returns the spec unchanged."""
    assert preset()(spec) == spec


# --- autotuned ----------------------------------------------------------------------------


def test_autotuned_applies_recommendation() -> None:
    """autotuned sets time, memory, cpus and array throttle in canonical units."""
    rec = {"time_min": 90, "mem_gb": 1.5, "cpus_per_task": 4, "array_parallelism": 20}
    res = autotuned(rec, JobSpec.command("x")).resources
    assert (res.time_min, res.mem_mb, res.cpus_per_task, res.array_parallelism) == (
        90,
        1536,
        4,
        20,
    )


def test_autotuned_accepts_as_dict_and_skips_none() -> None:
    """autotuned takes any value with as_dict(), and None recommendations change nothing."""

    class Recommendation:
        def as_dict(self) -> dict:
            return {"time_min": 15, "mem_gb": None}

    spec = with_resources(JobSpec.command("x"), mem="8G")
    res = autotuned(Recommendation(), spec).resources
    assert (res.time_min, res.mem_mb) == (15, 8192)


@pytest.mark.parametrize("rec", [{"partition": "gpu"}, {"time_min": 5, "walltime": 5}, [1, 2]])
def test_autotuned_rejects_unknown_keys(rec: Any) -> None:
    """A recommendation with keys autotuned does not know (or not a mapping) raises SpecError."""
    with pytest.raises(SpecError):
        autotuned(rec, JobSpec.command("x"))


# --- keywords and units -------------------------------------------------------------------


def test_unknown_resource_keyword_names_it() -> None:
    """with_resources(cpu=4) raises SpecError naming 'cpu' and listing the known resources."""
    with pytest.raises(SpecError) as info:
        with_resources(JobSpec.command("x"), cpu=4)
    assert info.value.field == "cpu"
    assert "cpus_per_task" in str(info.value)
    assert "with_resources" in str(info.value)


@pytest.mark.parametrize(
    ("keywords", "field", "expected"),
    [
        ({"mem": "500M"}, "mem_mb", 500),
        ({"mem": "16G"}, "mem_mb", 16 * 1024),
        ({"mem": 16}, "mem_mb", 16 * 1024),
        ({"mem_gb": 0.5}, "mem_mb", 512),
        ({"mem_gb": 2}, "mem_mb", 2048),
        ({"mem_mb": 300}, "mem_mb", 300),
        ({"mem_mb": "1G"}, "mem_mb", 1024),
        ({"time": "2h"}, "time_min", 120),
        ({"time": "01:30:00"}, "time_min", 90),
        ({"time_min": 90}, "time_min", 90),
        ({"time_min": "1-0"}, "time_min", 1440),
        ({"cpus": 4}, "cpus_per_task", 4),
    ],
)
def test_resource_aliases_give_canonical_units(keywords: dict, field: str, expected: int) -> None:
    """Memory and time aliases convert to MB and minutes; cpus is cpus_per_task."""
    assert getattr(with_resources(JobSpec.command("x"), **keywords).resources, field) == expected


def test_invalid_resource_value_names_transform() -> None:
    """A bad value passed to with_resources raises SpecError whose source is with_resources."""
    with pytest.raises(SpecError) as info:
        with_resources(JobSpec.command("x"), cpus_per_task=0)
    assert info.value.source == "with_resources"
