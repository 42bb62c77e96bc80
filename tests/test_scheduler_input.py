"""What comes in from outside is refused or read safely, never a traceback or a job that can
only fail on the node: commands with a NUL, and scheduler output that is not UTF-8."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import paracore as pc
from paracore.backends.slurm.accounting import query_jobs
from paracore.backends.slurm.cluster_queries import ClusterQueries
from paracore.backends.slurm.commands import run_command
from paracore.backends.slurm.sbatch import find_submitted
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


# ---------------------------------------------------------------- output that is not UTF-8

PARTITION = (
    b"PartitionName=caf\xe9 Default=YES MaxTime=01:00:00 Nodes=n1 State=UP TotalCPUs=4 "
    b"TotalNodes=1 MaxMemPerNode=UNLIMITED\n"
)
NODE = b"NodeName=n1 CPUTot=4 RealMemory=8000 State=IDLE Partitions=caf\xe9 Reason=d\xe9faut\n"


def fake_tool(folder: Path, name: str, output: bytes) -> None:
    """``name`` on PATH: prints ``output`` (latin-1 bytes, not UTF-8) and exits 0."""
    data = folder / f"{name}.out"
    data.write_bytes(output)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\ncat '{data}'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def test_scontrol_output_that_is_not_utf8_is_read(tools: Path) -> None:
    """A partition or a node's reason in latin-1 was a UnicodeDecodeError traceback."""

    def scontrol(command: list[str]) -> str:
        fake_tool(tools, "scontrol", PARTITION if command[-1] == "partition" else NODE)
        return run_command(command)

    info = ClusterQueries(scontrol).info()
    (partition,) = info.partitions
    assert partition.name == "caf\ufffd"  # the byte that does not decode, replaced
    assert partition.max_time_min == 60
    assert info.nodes[0].name == "n1"


def test_sacct_output_that_is_not_utf8_is_read(tools: Path) -> None:
    fields = ["7", "r\xe9sum\xe9", "COMPLETED", "0:0", "None", "00:00:01", "", "1G", "00:10:00",
              "debug", "n1", "1", "2024-01-01T00:00:00", "2024-01-01T00:00:01"]  # fmt: skip
    fake_tool(tools, "sacct", "|".join(fields).encode("latin-1") + b"\n")
    record = query_jobs(["7"])["7"]
    assert (record.name, record.state) == ("r\ufffdsum\ufffd", "COMPLETED")


def test_squeue_output_that_is_not_utf8_is_read(tools: Path) -> None:
    """Another user's job comment in latin-1 does not stop paracore finding its own token."""
    fake_tool(tools, "squeue", b"41|caf\xe9 au lait\n42|paracore-token-1\n")
    assert find_submitted("paracore-token-1", user="me") == (True, "42")
