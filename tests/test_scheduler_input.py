"""What comes in from outside is refused or read safely, never a traceback or a job that can
only fail on the node: commands with a NUL, and scheduler output that is not UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

import paracore as pc
from paracore.errors import SpecError
from paracore.specfile import load_spec_file

# ---------------------------------------------------------------- a NUL in a command


def test_a_command_with_a_nul_is_refused_when_the_spec_is_built() -> None:
    """bash -c cannot take a NUL: such a job waited in the queue, then failed on the node."""
    with pytest.raises(SpecError, match="without NUL characters") as info:
        pc.JobSpec.command("echo a\0b")
    assert info.value.field == "cmd"


def test_run_cmd_refuses_a_nul_before_anything_is_submitted(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        pc.run_cmd("echo a\0b", backend="local", config={"log_dir": str(tmp_path)})
    assert info.value.field == "cmd"
    assert not list(tmp_path.iterdir())  # nothing written, nothing submitted


def test_a_chunked_command_map_names_the_command_with_a_nul(tmp_path: Path) -> None:
    """Chunked maps check every command, not only the first: the field says which."""
    cmds = ["echo 0", "echo 1", "echo 2\0", "echo 3"]
    with pytest.raises(SpecError, match="NUL") as info:
        pc.map_cmds(cmds, chunk_size=2, backend="local", config={"log_dir": str(tmp_path)})
    assert info.value.field == "cmds[2]"


def test_a_setup_line_with_a_nul_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        pc.with_env({}, pc.JobSpec.command("true"), setup="module load x\0")
    assert info.value.field == "env_setup"


def test_a_spec_file_command_with_a_nul_is_refused(tmp_path: Path) -> None:
    """YAML's "\\0" escape reaches the command: refused when the job is built."""
    file = tmp_path / "job.yaml"
    file.write_text('name: nul\ncommand: "echo a\\0b"\n')
    with pytest.raises(SpecError) as info:
        load_spec_file(file).job_spec(backend="local")
    assert info.value.field == "cmd"
