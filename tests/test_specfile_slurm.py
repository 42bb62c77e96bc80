"""Spec files on the real Slurm: a job, a map and a workflow file run with --wait, a dry run
and a validation that submit nothing, and preview equal to the script sbatch received."""

from __future__ import annotations

import io
import os
import re
import textwrap
import time
from pathlib import Path

import pytest

from paracore.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.slurm_helpers import jobs_named, latest_job_id

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _tag() -> str:
    return f"{os.getpid()}-{time.time_ns() % 10**9}"


def _submitted_script(out: str, folder: Path) -> str:
    """The batch script sbatch received for the first job a `paracore run` printed."""
    job = re.search(r"job (\d+)", out)
    assert job, out
    (script,) = folder.rglob(f"{job.group(1)}_submission.sh")
    return script.read_text()


def test_a_job_file_runs_with_its_resources(slurm_workdir: Path) -> None:
    """A one-job file: submitted with the file's walltime and memory, its output reported."""
    name, since = f"file-job-{_tag()}", latest_job_id()
    path = spec(slurm_workdir, f"""
        name: {name}
        command: "echo $GREETING from $(hostname)"
        env: {{GREETING: hello}}
        resources: {{time: 7, mem: 300M}}
        """)  # fmt: skip
    status, out = cli("run", str(path), "--wait")
    assert status == EXIT_OK, out
    assert "succeeded: exit 0; stdout: 'hello from" in out
    (row,) = jobs_named(name, since)
    assert (row.state, row.timelimit, row.req_mem_mb) == ("COMPLETED", "00:07:00", 300)


def test_a_map_file_runs_one_array(slurm_workdir: Path) -> None:
    """A map file: one array of its items, each item quoted into the command as one word."""
    name, since = f"file-map-{_tag()}", latest_job_id()
    path = spec(slurm_workdir, f"""
        name: {name}
        command: "printf '%s' {{item}} > out-{{index}}.txt"
        items: ["a b", "c;d", "$HOME"]
        resources: {{time: 5, mem: 256M}}
        """)  # fmt: skip
    status, out = cli("run", str(path), "--wait")
    assert status == EXIT_OK, out
    assert f"{name}: 3 succeeded, 0 failed" in out
    outputs = [(slurm_workdir / f"out-{i}.txt").read_text() for i in range(3)]
    assert outputs == ["a b", "c;d", "$HOME"]
    rows = jobs_named(name, since, count=3)
    assert len({r.job_id.split("_")[0] for r in rows}) == 1 and len(rows) == 3


def test_a_workflow_file_runs_its_steps_in_order(slurm_workdir: Path) -> None:
    """A workflow file: each step after the ones it names, defaults applied to all."""
    name, since = f"file-flow-{_tag()}", latest_job_id()
    path = spec(slurm_workdir, f"""
        name: {name}
        defaults:
          resources: {{time: 5, mem: 256M}}
          env: {{WORD: flow}}
        steps:
          - name: first
            command: "echo $WORD > first.txt"
          - name: second
            after: [first]
            command: "cat first.txt > second.txt"
        """)  # fmt: skip
    status, out = cli("run", str(path), "--wait")
    assert status == EXIT_OK, out
    assert (slurm_workdir / "second.txt").read_text() == "flow\n"
    first, second = (jobs_named(f"{name}.{s}", since) for s in ("first", "second"))
    assert [r.state for r in first + second] == ["COMPLETED", "COMPLETED"]
    assert second[0].start >= first[0].end


def test_dry_run_and_validate_submit_nothing(slurm_workdir: Path) -> None:
    """--dry-run prints the scripts; validate refuses a bad partition naming it; no job."""
    name, since = f"file-dry-{_tag()}", latest_job_id()
    path = spec(slurm_workdir, f"name: {name}\ncommand: 'true'\nresources: {{time: 5}}\n")
    status, out = cli("run", str(path), "--dry-run")
    assert status == EXIT_OK
    assert f"#SBATCH --job-name={name}" in out and "dry run, nothing submitted" in out
    status, out = cli("validate", str(path))
    assert (status, out.strip()) == (EXIT_OK, f"{path}: ok, one job; nothing submitted")
    status, _ = cli("validate", str(path), "--set", "resources.partition=no-such-partition")
    assert status == EXIT_BAD_INPUT
    status, _ = cli("run", str(path), "--set", "resources.partition=no-such-partition")
    assert status == EXIT_BAD_INPUT
    assert jobs_named(name, since, timeout=3) == []


@pytest.mark.parametrize("items", [None, ["x", "y", "z"]])
def test_preview_is_what_run_submits(slurm_workdir: Path, items: list[str] | None) -> None:
    """paracore preview --token equals, byte for byte, the script sbatch received (a job and
    an array)."""
    name = f"file-pv-{_tag()}"
    text = f"name: {name}\ncommand: 'echo {{item}}'\nresources: {{time: 6, mem: 200M}}\n"
    if items:
        text += f"items: {items}\n"
    path = spec(slurm_workdir, text)
    status, out = cli("run", str(path), "--wait")
    assert status == EXIT_OK, out
    script = _submitted_script(out, slurm_workdir)
    token = re.search(r"--comment=(paracore-[0-9a-f]{16})", script)
    assert token, script
    status, shown = cli("preview", str(path), "--token", token.group(1))
    assert status == EXIT_OK
    assert shown == script


def test_validate_and_dry_run_ask_sbatch_about_options_in_extra(
    slurm_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Options in `extra` that the live limits do not show (--nodes, --constraint) are
    checked with sbatch --test-only: refused as the real cluster refuses them, nothing run."""
    since = latest_job_id()
    good = spec(slurm_workdir, "name: fits\ncommand: 'true'\nresources: {time: 2}\n")
    assert cli("validate", str(good))[0] == EXIT_OK
    for option, answer in (
        ("nodes: 4", "Requested node configuration is not available"),
        ("constraint: amd64", "Invalid feature specification"),
    ):
        path = spec(
            slurm_workdir,
            f"name: wide\ncommand: 'true'\nresources: {{time: 2, extra: {{{option}}}}}\n",
            "wide.yaml",
        )
        for command in (["validate", str(path)], ["run", str(path), "--dry-run"]):
            status, _out = cli(*command)
            assert status == EXIT_BAD_INPUT
            err = capsys.readouterr().err
            assert "sbatch --test-only refused the job" in err and answer in err
    assert jobs_named("wide", since, 0, timeout=5) == []
