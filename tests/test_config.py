"""Layered configuration: merge laws, provenance, schema checks, file locations and presets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import paracore as pc
from paracore.core.config import (
    SLURM_SCHEMA,
    ConfigError,
    Layer,
    Origin,
    check_layer,
    layer_from_yaml,
    leaves,
    merge,
    merge_layers,
    preset_transform,
    resolve_layers,
)
from paracore.core.transforms import with_config
from paracore.core.units import parse_memory, parse_walltime
from paracore.errors import SpecError
from paracore.shell.config_files import config_paths, find_project_file, resolve
from tests.strategies import config_layers, config_leaf_maps, nest, wild_values

# ---------------------------------------------------------------- merge laws


@given(config_layers(), config_layers(), config_layers())
def test_merge_is_associative(a: dict, b: dict, c: dict) -> None:
    """merge(merge(a, b), c) == merge(a, merge(b, c))."""
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(config_layers())
def test_empty_mapping_is_the_identity(a: dict) -> None:
    """{} is the identity of merge on both sides, and merge of nothing is {}."""
    assert merge({}, a) == a == merge(a, {})
    assert merge() == {}


@given(st.lists(config_leaf_maps(), min_size=1, max_size=4))
def test_last_layer_wins_for_every_leaf(layers: list[dict]) -> None:
    """Each leaf of the merge is the value of the last layer that has it (None included)."""
    merged = leaves(merge(*(nest(layer) for layer in layers)))
    expected: dict = {}
    for layer in layers:
        expected.update(layer)
    assert merged == expected


@given(config_leaf_maps(), config_leaf_maps(), config_leaf_maps(), st.data())
def test_splitting_a_layer_in_two_changes_nothing(
    low: dict, middle: dict, high: dict, data: st.DataObject
) -> None:
    """Splitting one layer's keys over two consecutive layers gives the same merge."""
    keys = sorted(middle)
    first = set(data.draw(st.lists(st.sampled_from(keys), unique=True)) if keys else [])
    part1 = {k: v for k, v in middle.items() if k in first}
    part2 = {k: v for k, v in middle.items() if k not in first}
    assert merge(nest(low), nest(middle), nest(high)) == merge(
        nest(low), nest(part1), nest(part2), nest(high)
    )


@given(config_layers(), config_layers())
def test_merge_does_not_change_its_inputs(a: dict, b: dict) -> None:
    """merge returns a new mapping and leaves its inputs as they were."""
    before = (repr(a), repr(b))
    merged = merge(a, b)
    merged.setdefault("clusters", {})["new"] = {}
    assert (repr(a), repr(b)) == before


@given(st.lists(config_leaf_maps(), min_size=1, max_size=4))
def test_provenance_names_the_highest_layer_that_set_a_field(layers: list[dict]) -> None:
    """Every leaf's origin is the last layer (by name and file) that set it."""
    built = [Layer(f"layer{i}", nest(leaf), f"/f{i}.yaml") for i, leaf in enumerate(layers)]
    _merged, origins = merge_layers(built)
    for path, origin in origins.items():
        last = max(i for i, leaf in enumerate(layers) if path in leaf)
        assert (origin.layer, origin.file) == (f"layer{last}", f"/f{last}.yaml")


@given(st.lists(config_layers(), min_size=1, max_size=3), st.sampled_from([None, "hpc1", "dev"]))
def test_resolved_values_always_make_a_valid_spec(layers: list[dict], cluster) -> None:
    """Whatever valid layers say, the resolved configuration fills a spec without error."""
    built = [Layer(f"l{i}", data) for i, data in enumerate(layers)]
    merged = merge(*layers)
    chosen = cluster if cluster is not None else merged.get("active_cluster")
    if chosen is not None and chosen not in merged.get("clusters", {}):
        with pytest.raises(ConfigError, match="no such cluster profile"):
            resolve_layers(built, cluster=cluster)
        return
    resolved = resolve_layers(built, cluster=cluster)
    spec = with_config(resolved.spec_config(), pc.JobSpec.command("true"))
    assert spec.cluster == (resolved.cluster or pc.NOT_GIVEN)


# ---------------------------------------------------------------- validation laws

_ACCEPTED = {
    "time_min": lambda v: parse_walltime(v),
    "mem_gb": lambda v: parse_memory(v),
    "cpus_per_task": lambda v: pc.Resources(cpus_per_task=v),
    "max_array_parallelism": lambda v: pc.Resources(max_array_parallelism=v),
    "array_parallelism": lambda v: pc.Resources(array_parallelism=v),
    "partition": lambda v: pc.Resources(partition=v),
    "account": lambda v: pc.Resources(account=v),
    "gpus": lambda v: pc.Resources(gpus=v),
    "start_jitter_s": lambda v: pc.JobSpec.command("x", start_jitter_s=v),
}


@given(st.sampled_from(sorted(_ACCEPTED)), wild_values())
def test_validation_never_accepts_a_value_outside_the_accepted_forms(key: str, value) -> None:
    """A value the file check accepts is one paracore's spec accepts (or null)."""
    layer = Layer("project file", {"clusters": {"c": {"slurm": {key: value}}}}, "/p.yaml")
    try:
        check_layer(layer)
    except ConfigError as err:
        assert err.field == f"clusters.c.slurm.{key}"
        assert "/p.yaml" in str(err)
        return
    if value is not None:
        _ACCEPTED[key](value)  # must not raise


def test_every_slurm_key_has_a_law() -> None:
    """The validation law covers every scalar key of the slurm section."""
    assert set(SLURM_SCHEMA) - {"extra", "qos"} == set(_ACCEPTED)


# ---------------------------------------------------------------- errors users see

BAD_KEY = """\
active_cluster: hpc1
clusters:
  hpc1:
    slurm:
      partiton: compute
"""


def test_unknown_key_names_file_line_key_and_closest_key(tmp_path: Path) -> None:
    """A typo'd key fails with the file:line, the key and a did-you-mean."""
    path = tmp_path / "paracore.yaml"
    path.write_text(BAD_KEY)
    with pytest.raises(ConfigError) as info:
        resolve(cwd=tmp_path, home=tmp_path / "nohome", environ={})
    message = str(info.value)
    assert f"{path}:5" in message
    assert "clusters.hpc1.slurm.partiton" in message
    assert "did you mean 'partition'?" in message
    assert isinstance(info.value, SpecError) and isinstance(info.value, ValueError)


def test_unknown_top_level_key_suggests() -> None:
    """A typo at the top level is caught too."""
    layer = layer_from_yaml("activ_cluster: x\n", "user file", "/home/u/.paracore.yaml")
    with pytest.raises(ConfigError, match=r"\.paracore\.yaml:1.*did you mean 'active_cluster'"):
        check_layer(layer)


@pytest.mark.parametrize(
    ("text", "field", "accepted"),
    [
        (
            "clusters: {c: {slurm: {time_min: 'two hours'}}}",
            "clusters.c.slurm.time_min",
            "walltime",
        ),
        ("clusters: {c: {slurm: {mem_gb: '16'}}}", "clusters.c.slurm.mem_gb", "needs a unit"),
        ("clusters: {c: {slurm: {cpus_per_task: 0}}}", "clusters.c.slurm.cpus_per_task", "from 1"),
        ("clusters: {c: {slurm: {partition: 'a b'}}}", "clusters.c.slurm.partition", "spaces"),
        ("naming: {max_len: 5}", "naming.max_len", "16 to 1024"),
        ("clusters: {c: {slurm: null}}", "clusters.c.slurm", "null section"),
        ("validate: 'maybe'", "validate", "true or false"),
    ],
)
def test_wrong_types_name_field_layer_value_and_accepted_forms(
    text: str, field: str, accepted: str
) -> None:
    """A wrongly typed value names the field, the layer and file:line and the accepted forms."""
    layer = layer_from_yaml(text, "project file", "/proj/paracore.yaml")
    with pytest.raises(ConfigError) as info:
        check_layer(layer)
    assert info.value.field == field
    assert "project file /proj/paracore.yaml:1" in str(info.value)
    assert accepted in str(info.value)


def test_malformed_yaml_names_the_file_and_line() -> None:
    """Broken YAML is a ConfigError with the file and line."""
    with pytest.raises(ConfigError, match=r"/p\.yaml:3: not valid YAML"):
        layer_from_yaml("a: 1\nb: [\n", "project file", "/p.yaml")


def test_unknown_cluster_profile_suggests() -> None:
    """Choosing a profile that does not exist lists the profiles and suggests the closest."""
    layer = Layer("project file", {"clusters": {"hpc1": {}, "dev": {}}}, "/p.yaml")
    with pytest.raises(ConfigError, match=r"did you mean 'hpc1'\?.*dev, hpc1"):
        resolve_layers([layer], cluster="hcp1")


# ---------------------------------------------------------------- file locations and env


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A fake HOME and a project directory (with a sub directory as cwd)."""
    home, project = tmp_path / "home", tmp_path / "project"
    (project / "sub" / "deeper").mkdir(parents=True)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PARACORE_CONFIG", raising=False)
    monkeypatch.delenv("PARACORE_CLUSTER", raising=False)
    monkeypatch.delenv("PARACORE_VALIDATE", raising=False)
    monkeypatch.chdir(project / "sub" / "deeper")
    return home, project


PROFILE = "active_cluster: c\nclusters:\n  c:\n    slurm:\n      partition: {part}\n"


def test_user_file_applies(homes: tuple[Path, Path]) -> None:
    """~/.paracore.yaml is read from $HOME."""
    home, _ = homes
    user = _write(home / ".paracore.yaml", PROFILE.format(part="from-user"))
    resolved = pc.resolve()
    assert resolved.value("partition") == "from-user"
    assert resolved.origin("partition") == Origin("user file", str(user), 5)


def test_project_file_in_a_parent_directory_beats_the_user_file(homes: tuple[Path, Path]) -> None:
    """./paracore.yaml is found in the nearest parent and wins over the user file."""
    home, project = homes
    _write(home / ".paracore.yaml", PROFILE.format(part="from-user") + "      qos: low\n")
    found = _write(project / "paracore.yaml", PROFILE.format(part="from-project"))
    assert find_project_file(Path.cwd()) == found.resolve()
    resolved = pc.resolve()
    assert resolved.value("partition") == "from-project"
    assert resolved.origin("partition").layer == "project file"
    assert resolved.value("qos") == "low"  # deep merge keeps the user's other values
    assert resolved.origin("qos").layer == "user file"


def test_paracore_config_file_beats_the_project_file(
    homes: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file named by $PARACORE_CONFIG sits above the project file."""
    _home, project = homes
    _write(project / "paracore.yaml", PROFILE.format(part="from-project"))
    named = _write(tmp_path / "elsewhere.yaml", PROFILE.format(part="from-env-file"))
    monkeypatch.setenv("PARACORE_CONFIG", str(named))
    assert [name for name, _ in config_paths()] == ["project file", "PARACORE_CONFIG file"]
    assert pc.resolve().origin("partition") == Origin("PARACORE_CONFIG file", str(named), 5)


def test_paracore_config_must_exist(homes: tuple[Path, Path], monkeypatch) -> None:
    """A $PARACORE_CONFIG naming no file is an error, not silently ignored."""
    monkeypatch.setenv("PARACORE_CONFIG", "/no/such/file.yaml")
    with pytest.raises(ConfigError, match="PARACORE_CONFIG"):
        pc.resolve()


TWO_PROFILES = """\
active_cluster: hpc1
clusters:
  hpc1:
    slurm: {partition: compute, time_min: 60}
  dev:
    slurm: {partition: short, time_min: 3}
"""


def test_paracore_cluster_and_the_cluster_argument_choose_the_profile(
    homes: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """active_cluster < $PARACORE_CLUSTER < cluster=."""
    _home, project = homes
    _write(project / "paracore.yaml", TWO_PROFILES)
    assert pc.resolve().value("partition") == "compute"
    monkeypatch.setenv("PARACORE_CLUSTER", "dev")
    resolved = pc.resolve()
    assert (resolved.cluster, resolved.value("time_min")) == ("dev", 3)
    assert resolved.origin("cluster") == Origin("environment", "PARACORE_CLUSTER")
    assert pc.resolve("hpc1").value("partition") == "compute"
    assert pc.resolve("hpc1").origin("cluster").layer == "call"


def test_null_in_a_higher_layer_clears_a_value(homes: tuple[Path, Path]) -> None:
    """null clears a lower layer's value, built-in defaults included; the spec gets None."""
    home, project = homes
    _write(home / ".paracore.yaml", PROFILE.format(part="from-user") + "      qos: low\n")
    _write(
        project / "paracore.yaml",
        "clusters:\n  c:\n    slurm:\n      qos: null\n      time_min: null\n",
    )
    resolved = pc.resolve()
    assert resolved.value("qos") is None and resolved.origin("qos").layer == "project file"
    assert resolved.value("time_min") is None  # the built-in 60 is cleared
    spec = with_config(resolved.spec_config(), pc.JobSpec.command("true"))
    assert spec.resources.qos is None and spec.resources.time_min is None


def test_call_overrides_and_config_argument_are_the_top_layers(homes: tuple[Path, Path]) -> None:
    """resolve(**overrides) wins over config=, which wins over the files."""
    _home, project = homes
    _write(project / "paracore.yaml", TWO_PROFILES)
    resolved = pc.resolve(config={"time": "2h", "qos": "high"}, time_min=5)
    assert (resolved.value("time_min"), resolved.origin("time_min").layer) == (5, "call")
    assert (resolved.value("qos"), resolved.origin("qos").layer) == ("high", "config argument")
    assert resolved.origin("partition").layer == "project file"


def test_paracore_validate_turns_cluster_checks_off(homes, monkeypatch) -> None:
    """validate: false in a file, or PARACORE_VALIDATE=0, turns live-cluster checks off."""
    _home, project = homes
    assert pc.resolve().validate is True
    _write(project / "paracore.yaml", "validate: false\n")
    assert pc.resolve().validate is False
    monkeypatch.setenv("PARACORE_VALIDATE", "1")
    assert pc.resolve().validate is True


# ---------------------------------------------------------------- presets

PRESETS = """\
presets:
  gpu-large:
    partition: gpu
    gpus: 4
    mem: 128G
    time: 1d
    env: {NCCL_DEBUG: WARN}
    env_setup: module load cuda
    retries: 2
    retry_backoff_s: 60
    tags: {team: vision}
    name_template: "{team}-{partition}"
  quick:
    time: 5m
"""


def test_preset_from_a_file_becomes_a_transform(homes: tuple[Path, Path]) -> None:
    """with_preset(name) reads the files once and returns a pure transform."""
    _home, project = homes
    _write(project / "paracore.yaml", PRESETS)
    gpu = pc.with_preset("gpu-large")
    spec = pipe(pc.JobSpec.command("python train.py"), gpu)
    res = spec.resources
    assert (res.partition, res.gpus, res.mem_mb, res.time_min) == ("gpu", 4, 128 * 1024, 1440)
    assert dict(spec.env.overlay) == {"NCCL_DEBUG": "WARN"}
    assert spec.env.setup == "module load cuda"
    assert (spec.retry.retries, spec.retry.backoff_s) == (2, 60)
    assert pc.job_name(spec) == "vision-gpu"
    assert pc.with_preset("quick", pc.JobSpec.command("x")).resources.time_min == 5


def test_preset_composes_with_python_presets() -> None:
    """A YAML preset and Python transforms compose with preset()/compose_left."""
    team = pc.preset(preset_transform({"time": "5m", "retries": 1}), pc.with_resources(cpus=2))
    spec = team(pc.JobSpec.command("x"))
    assert (spec.resources.time_min, spec.resources.cpus_per_task, spec.retry.retries) == (5, 2, 1)


def test_unknown_preset_suggests(homes: tuple[Path, Path]) -> None:
    """A mistyped preset name says which presets exist."""
    _home, project = homes
    _write(project / "paracore.yaml", PRESETS)
    with pytest.raises(ConfigError, match=r"did you mean 'gpu-large'\?.*gpu-large, quick"):
        pc.with_preset("gpu-larg")


def test_unknown_preset_key_names_line(homes: tuple[Path, Path]) -> None:
    """A typo inside a preset is caught with its line."""
    _home, project = homes
    path = _write(project / "paracore.yaml", "presets:\n  p:\n    retires: 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:3.*did you mean 'retries'"):
        pc.with_preset("p")


def test_api_applies_the_files_and_the_call_wins(homes: tuple[Path, Path]) -> None:
    """run_cmd picks up ./paracore.yaml without code changes; call keywords win."""
    _home, project = homes
    _write(project / "paracore.yaml", TWO_PROFILES + PRESETS)
    handle = pc.run_cmd(
        "echo $NCCL_DEBUG", backend="inprocess", preset="gpu-large", env_setup="true", qos="q"
    )
    assert handle.result(timeout=30).stdout.strip() == "WARN"
    from paracore import api

    spec, options = api.build_spec(
        pc.Command("true"),
        api.Keywords(backend="inprocess", time_min=7, config={"qos": "cfg"}, cluster="dev"),
    )
    assert (spec.resources.partition, spec.resources.time_min, spec.resources.qos) == (
        "short",
        7,
        "cfg",
    )
    assert spec.cluster == "dev"
    assert options.origin_of["time_min"] == "call"
    assert options.origin_of["qos"] == "config argument"
    assert options.origin_of["partition"].startswith("project file ")
