"""Tests for paracore.core.spec: validators, immutability, hashing and named constructors."""

from __future__ import annotations

import copy

import attrs
import pytest
from hypothesis import given

from paracore.core.retry import RetryPolicy
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import Call, Command, EnvPolicy, JobSpec, Naming, Resources
from paracore.errors import ParacoreError, SpecError
from tests.strategies import double, job_specs

# --- validators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Resources(cpus_per_task=-1), "cpus_per_task"),
        (lambda: Resources(cpus_per_task=0), "cpus_per_task"),
        (lambda: Resources(cpus_per_task=2.5), "cpus_per_task"),
        (lambda: Resources(cpus_per_task=True), "cpus_per_task"),
        (lambda: Resources(mem_mb=0), "mem"),
        (lambda: Resources(mem_mb=-5), "mem"),
        (lambda: Resources(mem_mb="0G"), "mem"),
        (lambda: Resources(mem_mb=1.5), "mem_mb"),
        (lambda: Resources(time_min=0), "time_min"),
        (lambda: Resources(time_min="-1h"), "time_min"),
        (lambda: Resources(gpus=-1), "gpus"),
        (lambda: Resources(array_parallelism=0), "array_parallelism"),
        (lambda: Resources(max_array_parallelism=0), "max_array_parallelism"),
        (lambda: Resources(partition="gpu nodes"), "partition"),
        (lambda: Resources(partition=""), "partition"),
        (lambda: Resources(account=7), "account"),
        (lambda: Resources(qos=" "), "qos"),
        (lambda: Resources(extra={"--constraint": "x"}), "extra"),
        (lambda: Resources(extra={"": "x"}), "extra"),
        (lambda: Command(""), "cmd"),
        (lambda: Command("   \t\n"), "cmd"),
        (lambda: Command(None), "cmd"),
        (lambda: Call(42), "fn"),
        (lambda: Call("print"), "fn"),
        (lambda: EnvPolicy(merge="merge"), "env_merge"),
        (lambda: EnvPolicy(merge=None), "env_merge"),
        (lambda: EnvPolicy(overlay={"A=B": "1"}), "env"),
        (lambda: EnvPolicy(overlay={"": "1"}), "env"),
        (lambda: EnvPolicy(overlay={"A": None}), "env['A']"),
        (lambda: EnvPolicy(overlay={"A": True}), "env['A']"),
        (lambda: EnvPolicy(setup="  "), "env_setup"),
        (lambda: Naming(job_name=""), "job_name"),
        (lambda: Naming(tags={"not an identifier": "x"}), "tags"),
        (lambda: Naming(tags={"1st": "x"}), "tags"),
        (lambda: Naming(tags={3: "x"}), "tags"),
        (lambda: Naming(max_len=15), "naming.max_len"),
        (lambda: Naming(max_len=1025), "naming.max_len"),
        (lambda: Naming(max_len=True), "naming.max_len"),
        (lambda: JobSpec.command("echo", backend="Kube rnetes!"), "backend"),
        (lambda: JobSpec.command("echo", backend=None), "backend"),
        (lambda: JobSpec.command("echo", start_jitter_s=-1), "jitter_s"),
        (lambda: JobSpec.command("echo", log_dir=""), "log_dir"),
        (lambda: JobSpec.command("echo", cluster=""), "cluster"),
        (lambda: JobSpec(payload="echo hi"), "payload"),
    ],
)
def test_validators_reject_impossible_values(build, field: str) -> None:
    """Impossible values raise SpecError naming the offending field."""
    with pytest.raises(SpecError) as info:
        build()
    assert info.value.field == field


def test_spec_error_is_value_error_and_paracore_error() -> None:
    """SpecError is both a ParacoreError and a ValueError, so either can be caught."""
    with pytest.raises(ValueError) as info:
        Resources(cpus_per_task=-1)
    assert isinstance(info.value, ParacoreError)
    assert isinstance(info.value, SpecError)
    assert "cpus_per_task=-1" in str(info.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Resources(),
        lambda: Resources(partition=None, cpus_per_task=None, mem_mb=None, time_min=None),
        lambda: Resources(gpus=0, cpus_per_task=1, mem_mb=1, time_min=1),
        lambda: Resources(extra={"mail_type": "END"}),
        lambda: Naming(max_len=16),
        lambda: Naming(max_len=1024),
        lambda: Naming(tags={"project": None}),
        lambda: EnvPolicy(merge="replace", overlay={"A": 1, "B": 2.5}),
        lambda: JobSpec.command("echo hi", start_jitter_s=0),
    ],
)
def test_validators_accept_boundary_values(build) -> None:
    """Boundary values (minimums, None = cleared, NOT_GIVEN) are accepted."""
    build()


def test_units_are_canonicalised_on_construction() -> None:
    """Resources stores walltimes in minutes and memory in MB whatever the input form."""
    res = Resources(time_min="2h", mem_mb="16G")
    assert (res.time_min, res.mem_mb) == (120, 16 * 1024)
    assert Resources(mem_mb=300).mem_mb == 300


def test_normalisations() -> None:
    """Env values become strings, extras use dashes and sort, None tags are dropped."""
    assert EnvPolicy(overlay={"B": 2, "A": "x"}).overlay == (("A", "x"), ("B", "2"))
    assert Resources(extra={"mail_type": "END", "comment": "c"}).extra == (
        ("comment", "c"),
        ("mail-type", "END"),
    )
    assert Naming(tags={"b": 1, "a": None}).tags == (("b", "1"),)


# --- values: frozen, hashable, equal ------------------------------------------------------


@given(job_specs())
def test_specs_are_frozen(spec: JobSpec) -> None:
    """Assigning to any field of a spec or its parts raises."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.backend = "local"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.resources.cpus_per_task = 3  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.env.overlay = ()  # type: ignore[misc]


@given(job_specs())
def test_specs_are_hashable_and_equal_to_copies(spec: JobSpec) -> None:
    """Every spec hashes, and a rebuilt equal spec has the same hash."""
    rebuilt = attrs.evolve(spec)
    twin = copy.deepcopy(spec)
    assert rebuilt == spec == twin
    assert hash(rebuilt) == hash(spec) == hash(twin)
    assert len({spec, rebuilt, twin}) == 1


def test_call_with_list_args_is_hashable() -> None:
    """A Call with unhashable (list) arguments still gives a hashable, comparable spec."""
    a = JobSpec.call(double, [1, 2, 3], factor=[4])
    b = JobSpec.call(double, [1, 2, 3], factor=[4])
    c = JobSpec.call(double, [1, 2, 4], factor=[4])
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert {a, b, c} == {a, c}


def test_specs_built_equal_are_equal() -> None:
    """Specs built from the same values are equal; env and extras compare regardless of order."""
    a = JobSpec.command(
        "echo hi",
        resources=Resources(partition="cpu", extra={"b": 1, "a": 2}),
        env=EnvPolicy(overlay={"X": "1", "Y": "2"}),
    )
    b = JobSpec.command(
        "echo hi",
        resources=Resources(extra={"a": 2, "b": 1}, partition="cpu"),
        env=EnvPolicy(overlay={"Y": "2", "X": "1"}),
    )
    assert a == b
    assert hash(a) == hash(b)
    assert a != JobSpec.command("echo ho")


# --- named constructors -------------------------------------------------------------------


def test_command_constructor() -> None:
    """JobSpec.command wraps the string in a Command and leaves every option NOT_GIVEN."""
    spec = JobSpec.command("/usr/bin/python -V")
    assert spec.payload == Command("/usr/bin/python -V")
    assert spec.payload.label == "python"
    assert spec.resources == Resources()
    assert spec.backend is NOT_GIVEN
    assert spec.retry == RetryPolicy()


def test_command_constructor_passes_fields() -> None:
    """JobSpec.command forwards keyword fields to the spec."""
    spec = JobSpec.command("echo", backend="inprocess", cluster="c1")
    assert (spec.backend, spec.cluster) == ("inprocess", "c1")


def test_call_constructor() -> None:
    """JobSpec.call records the function, positional and keyword arguments."""
    spec = JobSpec.call(double, 3, factor=5)
    assert spec.payload == Call(double, (3,), {"factor": 5})
    assert spec.payload.args == (3,)
    assert spec.payload.kwargs == (("factor", 5),)
    assert spec.payload.label == "double"


def test_with_payload_keeps_everything_else() -> None:
    """with_payload swaps only the payload."""
    spec = JobSpec.command("echo a", resources=Resources(cpus_per_task=3), backend="local")
    other = spec.with_payload(Command("echo b"))
    assert other.payload == Command("echo b")
    assert attrs.evolve(other, payload=spec.payload) == spec
