"""The YAML reader that configuration and spec files share: alias bombs, documents that
contain themselves and deep nesting are refused at once, with the file and what is accepted;
error messages quote a bounded part of a value; ordinary anchors and aliases still work."""

from __future__ import annotations

import io
import resource
import tracemalloc
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import main
from paracore.core.config import MAX_ALIAS_VALUES, layer_from_yaml
from paracore.errors import ConfigError
from paracore.specfile import load_spec_file


def anchors(levels: int) -> list[str]:
    """Billion laughs: each level an anchored list of nine aliases of the one before, so
    the last expands to 9 ** (levels + 1) strings."""
    found = ["a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels + 1):
        found.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return found


def laughs(levels: int, head: str = 'name: bomb\ncommand: "echo hi"') -> str:
    """A document of a few hundred bytes that expands to billions of values."""
    return "\n".join([head, *anchors(levels)]) + "\n"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(call, *args, **kwargs) -> tuple[object, float, float]:
    """``call``'s result (or the exception it raised), its CPU seconds and peak MB."""
    tracemalloc.start()
    start = cpu_seconds()
    try:
        result: object = call(*args, **kwargs)
    except Exception as err:
        result = err
    used = cpu_seconds() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, used, peak


def test_an_alias_bomb_in_a_spec_file_is_refused_at_once(tmp_path: Path, capsys) -> None:
    """672614 values from 330 bytes: the walks over the document (lines, schema, ${VAR}) grew
    without bound (a 398-byte file reached 3.3 GB, then a MemoryError traceback)."""
    file = tmp_path / "bomb.yaml"
    file.write_text(laughs(5))
    assert len(file.read_bytes()) < 400
    status, cpu_s, peak_mb = measure(main, ["validate", str(file)], out=io.StringIO())
    err = capsys.readouterr().err
    assert status == 2
    assert f"(from {file})" in err and "672614 values once its aliases" in err
    assert f"at most {MAX_ALIAS_VALUES} values" in err
    assert len(err) < 1000
    assert cpu_s < 0.5 and peak_mb < 20


def test_the_budget_counts_each_node_once_however_far_aliases_go(tmp_path: Path) -> None:
    """Nine levels (4.4 billion values once expanded) are refused as fast as one."""
    file = tmp_path / "bomb.yaml"
    file.write_text(laughs(9))
    error, cpu_s, peak_mb = measure(load_spec_file, file)
    assert isinstance(error, ConfigError) and error.field == "(document)"
    assert "4412961520 values" in str(error) and error.source == str(file)
    assert cpu_s < 0.5 and peak_mb < 5


def test_an_alias_bomb_in_a_configuration_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    """Configuration files are read by the same reader, and name the file the same way."""
    named = tmp_path / "bomb.yaml"
    named.write_text(laughs(6, head="presets:\n  quick: {retries: 1}\n"))
    monkeypatch.setenv("PARACORE_CONFIG", str(named))
    error, cpu_s, _ = measure(pc.resolve)
    assert isinstance(error, ConfigError) and str(named) in str(error)
    assert "aliases" in str(error) and cpu_s < 0.5


def test_merge_keys_are_counted_like_aliases() -> None:
    """'<<: *x' copies every key of its anchor: nested merges grow like nested aliases."""
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(40)) + "}"]
    for i in range(1, 12):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}, *m{i - 1}]}}")
    error, cpu_s, _ = measure(layer_from_yaml, "\n".join(lines), "project file", "/p.yaml")
    assert isinstance(error, ConfigError) and "aliases" in str(error)
    assert cpu_s < 0.5


def test_a_document_that_contains_itself_is_refused() -> None:
    """'&a [*a]' made a list that holds itself: a RecursionError traceback when walked."""
    with pytest.raises(ConfigError, match="its own anchor") as info:
        layer_from_yaml("presets: &a {x: *a}\n", "project file", "/p.yaml")
    assert info.value.source == "/p.yaml"


@pytest.mark.parametrize("depth", [150, 5000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    """Past what configuration needs (150) or what the YAML composer can follow (5000, a
    RecursionError traceback before)."""
    file = tmp_path / "deep.yaml"
    file.write_text("name: deep\ncommand: x\nitems: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError, match="nested") as info:
        load_spec_file(file)
    assert info.value.source == str(file)


def test_a_set_value_is_read_by_the_same_reader() -> None:
    """--set values are YAML too: a bomb there is refused; text that is not YAML stays text."""
    from paracore.core.specfile_schema import apply_sets

    with pytest.raises(ConfigError, match="aliases"):
        apply_sets({}, ["items={" + ", ".join(anchors(6)) + "}"])
    assert apply_sets({}, ["a.b=[1, 2", "c=3"]) == {"a": {"b": "[1, 2"}, "c": 3}


def test_an_error_quotes_a_bounded_part_of_a_big_value(tmp_path: Path) -> None:
    """A small bomb within the budget printed a 4 MB error line: the value is cut, and says
    how long it was."""
    file = tmp_path / "big.yaml"
    levels = [line.split(": ", 1)[1] for line in anchors(3)]  # &a0 [...], &a1 [*a0, ...]
    file.write_text(f"name: big\ncommand: x\ndescription: [{', '.join(levels)}]\n")
    with pytest.raises(ConfigError) as info:
        load_spec_file(file)
    message = str(info.value)
    assert len(message) < 3000 and "characters)" in message
    assert info.value.value[3] == [[[["lol"] * 9] * 9] * 9] * 9  # the whole value is kept


def test_ordinary_anchors_aliases_and_merge_keys_still_work(tmp_path: Path, monkeypatch) -> None:
    """Sharing settings between presets with an anchor, an alias and a merge key."""
    named = tmp_path / "team.yaml"
    named.write_text(
        "presets:\n"
        "  base: &base {partition: compute, time: 30m, env: &env {OMP_NUM_THREADS: '4'}}\n"
        "  big:\n"
        "    <<: *base\n"
        "    mem: 64G\n"
        "  alias: *base\n"
        "  envs: {env: *env, retries: 2}\n"
    )
    monkeypatch.setenv("PARACORE_CONFIG", str(named))
    resolved = pc.resolve()
    big = resolved.preset("big")(pc.JobSpec.command("true"))
    assert (big.resources.partition, big.resources.time_min) == ("compute", 30)
    assert big.resources.mem_mb == 64 * 1024
    assert dict(big.env.overlay) == {"OMP_NUM_THREADS": "4"}
    alias = resolved.preset("alias")(pc.JobSpec.command("true"))
    assert (alias.resources.partition, alias.resources.time_min) == ("compute", 30)
    envs = resolved.preset("envs")(pc.JobSpec.command("true"))
    assert dict(envs.env.overlay) == {"OMP_NUM_THREADS": "4"}


def test_anchors_in_a_spec_file_still_work(tmp_path: Path) -> None:
    """A workflow's steps sharing resources through an anchor (within the budget)."""
    file = tmp_path / "flow.yaml"
    file.write_text(
        "name: flow\n"
        "steps:\n"
        "  - {name: a, command: 'echo a', resources: &r {partition: debug, time: 5m}}\n"
        "  - {name: b, command: 'echo b', resources: *r, after: [a]}\n"
    )
    spec_file = load_spec_file(file)
    assert spec_file.data["steps"][1]["resources"] == {"partition": "debug", "time": "5m"}
