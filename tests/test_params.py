"""submitit parameters (paracore.backends.slurm.params), job names, throttles, the preview."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import submitit
from hypothesis import given, settings
from hypothesis import strategies as st
from toolz import pipe

from paracore.backends.slurm.params import (
    LOCAL_PARAM_NAMES,
    SLURM_PARAM_NAMES,
    WARNING_SIGNAL,
    to_submitit_params,
)
from paracore.core.defaults import with_builtin_defaults
from paracore.core.names import ALLOWED_PATTERN, sanitize
from paracore.core.resolved import job_name, resolve_spec
from paracore.core.rules import effective_parallelism
from paracore.core.spec import Call, Command, JobSpec, Resources
from paracore.core.transforms import (
    with_array,
    with_cluster,
    with_name,
    with_name_template,
    with_resources,
    with_tags,
)
from paracore.shell.submit import preview
from tests.strategies import any_text_names, double, job_specs, memory_mb, walltime_minutes

_SLURM_GENERIC = frozenset(submitit.AutoExecutor._valid_parameters())
_SLURM_SPECIFIC = frozenset(submitit.SlurmExecutor._valid_parameters())


# --- the name sets agree with submitit ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(SLURM_PARAM_NAMES))
def test_slurm_param_names_are_accepted_by_submitit(name: str) -> None:
    """Every slurm name is a generic AutoExecutor parameter or slurm_<a SlurmExecutor one>."""
    if name.startswith("slurm_"):
        assert name[len("slurm_") :] in _SLURM_SPECIFIC
    else:
        assert name in _SLURM_GENERIC


@pytest.mark.parametrize("name", sorted(LOCAL_PARAM_NAMES))
def test_local_param_names_are_generic(name: str) -> None:
    """The local executor only gets generic AutoExecutor parameters (it ignores the rest)."""
    assert name in _SLURM_GENERIC


@given(job_specs(), st.sampled_from(["slurm", "local"]))
def test_params_use_only_known_names(spec: JobSpec, kind: str) -> None:
    """to_submitit_params emits only the names listed for its executor kind."""
    allowed = SLURM_PARAM_NAMES if kind == "slurm" else LOCAL_PARAM_NAMES
    assert set(to_submitit_params(resolve_spec(spec), kind)) <= allowed


@given(job_specs(), st.sampled_from(["slurm", "local"]))
def test_params_have_the_types_submitit_asserts(spec: JobSpec, kind: str) -> None:
    """timeout_min, cpus_per_task and the throttle are ints; mem_gb is an int or a float."""
    params = to_submitit_params(resolve_spec(spec), kind)
    for key in ("timeout_min", "cpus_per_task", "gpus_per_node", "slurm_array_parallelism"):
        if key in params:
            assert type(params[key]) is int, key
    if "mem_gb" in params:
        assert type(params["mem_gb"]) in (int, float)
    assert isinstance(params["name"], str)


@settings(max_examples=40, deadline=None)
@given(job_specs(), st.sampled_from(["slurm", "local"]))
def test_params_pass_submitit_update_parameters(
    tmp_path_factory: pytest.TempPathFactory, spec: JobSpec, kind: str
) -> None:
    """A real AutoExecutor accepts the parameters (no NameError, no failed type assertion)."""
    folder = tmp_path_factory.getbasetemp() / "executor"
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    executor.update_parameters(**to_submitit_params(resolve_spec(spec), kind))


@given(job_specs())
def test_params_reflect_resolved_resources(spec: JobSpec) -> None:
    """Time, cpus, memory and slurm names carry the spec's values (after built-in defaults)."""
    res = with_builtin_defaults(spec).resources
    params = to_submitit_params(resolve_spec(spec), "slurm")
    assert params.get("timeout_min") == (res.time_min if isinstance(res.time_min, int) else None)
    assert params.get("cpus_per_task") == (
        res.cpus_per_task if isinstance(res.cpus_per_task, int) else None
    )
    if isinstance(res.mem_mb, int):
        assert params["mem_gb"] * 1024 == res.mem_mb
    for field in ("partition", "account", "qos"):
        value = getattr(res, field)
        assert params.get(f"slurm_{field}") == (value if isinstance(value, str) else None)
    assert params["slurm_additional_parameters"] == {"signal": WARNING_SIGNAL, **dict(res.extra)}


@given(memory_mb(1024 * 1024), walltime_minutes(10_000))
def test_preview_memory_and_time_round_trip(mb: int, minutes: int) -> None:
    """The sbatch script asks for exactly the spec's memory and minutes."""
    spec = JobSpec.command("echo", resources=Resources(mem_mb=mb, time_min=minutes))
    script = preview(spec)
    mem = re.search(r"^#SBATCH --mem=(\d+)(MB|GB)$", script, re.M)
    assert mem is not None
    assert int(mem.group(1)) * (1024 if mem.group(2) == "GB" else 1) == mb
    assert f"#SBATCH --time={minutes}\n" in script


# --- job names ----------------------------------------------------------------------------


@given(job_specs())
def test_job_name_is_always_valid(spec: JobSpec) -> None:
    """Every spec's job name matches the allowed pattern and fits its max_len."""
    name = job_name(spec)
    max_len = with_builtin_defaults(spec).naming.max_len
    assert re.fullmatch(ALLOWED_PATTERN, name)
    assert len(name) <= max_len


@given(job_specs(), any_text_names().filter(str.strip))
def test_explicit_name_wins_over_template(spec: JobSpec, name: str) -> None:
    """An explicit job name is used (sanitised) whatever template and tags are set."""
    spec = pipe(spec, with_name_template("{project}-{cluster}"), with_name(name))
    max_len = with_builtin_defaults(spec).naming.max_len
    assert job_name(spec) == sanitize(name, max_len)


def test_template_renders_tags_cluster_and_partition() -> None:
    """A template is filled from tags plus the spec's cluster and partition."""
    spec = pipe(
        JobSpec.command("python train.py"),
        with_name_template("{project}-{cluster}-{partition}"),
        with_tags({"project": "demo"}),
        with_cluster("c1"),
        with_resources(partition="gpu"),
    )
    assert job_name(spec) == "demo-c1-gpu"


def test_tags_win_over_cluster_and_partition() -> None:
    """An explicit ``cluster`` or ``partition`` tag wins over the spec's own values."""
    spec = pipe(
        JobSpec.command("echo"),
        with_name_template("{cluster}-{partition}"),
        with_tags({"cluster": "alias", "partition": "p"}),
        with_cluster("c1"),
        with_resources(partition="gpu"),
    )
    assert job_name(spec) == "alias-p"


def test_missing_tags_collapse_separators() -> None:
    """Missing tags render empty and their separators vanish."""
    spec = pipe(JobSpec.command("echo"), with_name_template("{project}-{cluster}-{partition}"))
    spec = with_tags({"project": "demo"}, spec)
    assert job_name(spec) == "demo"


@pytest.mark.parametrize(
    ("payload", "label"),
    [(Command("/usr/bin/python3 -V"), "python3"), (Call(double, (1,)), "double")],
)
def test_name_falls_back_to_payload_label(payload, label: str) -> None:
    """Without a name or a template that renders to something, the payload's label is used."""
    assert job_name(JobSpec(payload=payload)) == label
    assert job_name(with_name_template("{project}", JobSpec(payload=payload))) == label


def test_max_len_bounds_names() -> None:
    """A long explicit name is cut to max_len (with a stable hash suffix)."""
    spec = pipe(
        JobSpec.command("echo"), with_name("x" * 200), with_name_template("{a}", max_len=20)
    )
    name = job_name(spec)
    assert len(name) == 20
    assert name == job_name(spec)


# --- array throttle -----------------------------------------------------------------------


@given(st.one_of(st.none(), st.integers(1, 1000)), st.one_of(st.none(), st.integers(1, 1000)))
def test_effective_parallelism_caps(wanted: int | None, cap: int | None) -> None:
    """The throttle is the wish capped by max_array_parallelism; a warning says when capped."""
    spec = JobSpec.command(
        "echo", resources=Resources(array_parallelism=wanted, max_array_parallelism=cap)
    )
    value, warning = effective_parallelism(spec)
    if wanted is None:
        assert (value, warning) == (cap, None)
    elif cap is not None and wanted > cap:
        assert value == cap
        assert warning is not None
        assert str(wanted) in warning
        assert str(cap) in warning
    else:
        assert (value, warning) == (wanted, None)
    if value is not None:
        assert to_submitit_params(resolve_spec(spec), "slurm")["slurm_array_parallelism"] == value


# --- preview ------------------------------------------------------------------------------


def test_preview_shows_the_sbatch_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preview has the throttled array, %A_%a log paths, partition, time and job name."""
    monkeypatch.chdir(tmp_path)
    spec = pipe(
        JobSpec.command("python train.py"),
        with_resources(partition="gpu", time="2h", mem="4G", extra={"constraint": "a100"}),
        with_array(3),
        with_name("train-demo"),
    )
    script = preview(spec, array_size=6)
    assert "#SBATCH --array=0-5%3\n" in script
    assert re.search(r"^#SBATCH --output=\S*%A_%a\S*$", script, re.M)
    assert re.search(r"^#SBATCH --error=\S*%A_%a\S*$", script, re.M)
    assert "#SBATCH --partition=gpu\n" in script
    assert "#SBATCH --time=120\n" in script
    assert "#SBATCH --job-name=train-demo\n" in script
    assert "#SBATCH --constraint=a100\n" in script
    assert "#SBATCH --mem=4GB\n" in script
    assert f"{tmp_path}/paracore_logs/train-demo/" in script
    assert not list(tmp_path.iterdir())  # previewing submits and writes nothing


def test_preview_single_job_has_no_array() -> None:
    """Without an array size the preview is a single job with %j log paths."""
    script = preview(JobSpec.command("echo hi"))
    assert "--array" not in script
    assert "%j" in script


def test_copied_submitit_submission_code_is_the_installed_one() -> None:
    """The submission code copied into the Slurm executor matches installed submitit's."""
    import inspect

    from submitit.core.core import PicklingExecutor

    from paracore.backends.slurm.executor import (
        SUBMITIT_ARRAY_CODE_DIGEST,
        SUBMITIT_SINGLE_CODE_DIGEST,
    )
    from paracore.core.digest import stable_digest

    for method, digest in (
        (submitit.SlurmExecutor._internal_process_submissions, SUBMITIT_ARRAY_CODE_DIGEST),
        (PicklingExecutor._internal_process_submissions, SUBMITIT_SINGLE_CODE_DIGEST),
    ):
        assert stable_digest(inspect.getsource(method), 16) == digest, (
            f"submitit changed {method.__qualname__}: compare it with "
            "paracore.backends.slurm.executor._RobustSlurmExecutor and update the digest"
        )
