"""Hardening on the real Slurm: the previewed script is the submitted one, values stay values,
files are private, sacct silence is survived, and an interrupted submission is recorded."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import paracore as pc
from paracore.errors import SchedulerUnreachable
from tests.slurm_helpers import QUICK, wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

REPO = Path(__file__).resolve().parents[1]


def _submitted_script(handle: pc.SubmitHandle) -> str:
    """The batch script sbatch was given for the handle's (first) job."""
    array_id = handle.job_id.split("_")[0]
    folder = Path(handle.stdout_path).parent
    return (folder / f"{array_id}_submission.sh").read_text()


def _token(script: str) -> str:
    match = re.search(r"--comment=(paracore-[0-9a-f]{16})", script)
    assert match, script
    return match.group(1)


def test_preview_is_the_script_that_is_submitted() -> None:
    """preview(spec, token=...) equals, byte for byte, what sbatch received (job and array)."""
    spec = pc.with_name("exact", pc.with_resources(pc.JobSpec.command("true"), **QUICK))
    handle = pc.submit(spec)
    handle.result(timeout=300)
    script = _submitted_script(handle)
    assert pc.preview(spec, token=_token(script)) == script

    array_spec = pc.with_name("exact-array", pc.with_resources(pc.JobSpec.call(abs, 0), **QUICK))
    handles = pc.submit_map(array_spec, [pc.Call(abs, (-i,)) for i in range(3)])
    assert pc.gather(handles, timeout=300) == [0, 1, 2]
    script = _submitted_script(handles[0])
    assert pc.preview(array_spec, array_size=3, token=_token(script)) == script


def test_a_value_with_spaces_and_shell_text_stays_one_value(tmp_path: Path) -> None:
    """A single-line value that looks like options and commands is passed as one literal."""
    marker = tmp_path / "pwn"
    tricky = f"x --mem=18000M; touch {marker} #SBATCH --mem=999G"
    spec = pc.with_resources(
        pc.JobSpec.command("true"), extra={"hold": True, "comment": tricky}, **QUICK
    )
    script = pc.preview(spec)
    assert (
        sum(line.startswith("#SBATCH") for line in script.splitlines())
        == sum(
            line.startswith("#SBATCH")
            for line in pc.preview(pc.JobSpec.command("true")).splitlines()
        )
        + 1
    )  # exactly one more option (hold) besides the comment, whatever the value says
    probe = tmp_path / "probe.sh"
    probe.write_text(script)
    test_only = subprocess.run(
        ["sbatch", "--test-only", str(probe)], capture_output=True, text=True
    )
    assert test_only.returncode == 0, test_only.stderr
    handle = pc.submit(spec)
    try:
        shown = subprocess.run(
            ["scontrol", "show", "job", handle.job_id], capture_output=True, text=True
        ).stdout
        assert "MinMemoryNode=256M" in shown
        assert f"Comment={tricky}-paracore-" in shown
    finally:
        handle.cancel()
    assert not marker.exists()


def test_slurm_logs_and_pickles_are_private(tmp_path: Path) -> None:
    """With umask 022, Slurm's logs, the pickles and the folder are still owner-only."""
    previous = os.umask(0o022)
    try:
        handle = pc.run_cmd(
            "echo to-the-log", job_name="private-slurm", config={"log_dir": "plogs"}, **QUICK
        )
        assert handle.result(timeout=300).stdout.strip() == "to-the-log"
    finally:
        os.umask(previous)
    folder = Path("plogs") / "private-slurm"
    assert folder.stat().st_mode & 0o777 == 0o700
    files = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    names = {p.name for p in files}
    assert any(n.endswith("_log.out") for n in names) and any(
        n.endswith("_result.pkl") for n in names
    )
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {n: 0o600 for n in names}


def test_a_silent_sacct_is_survived_with_squeue_and_files() -> None:
    """sacct failing throughout: timeouts say so, and the result still arrives via squeue."""
    from paracore.backends.slurm.commands import run_command

    def no_sacct(command):
        if command[0] == "sacct":
            raise SchedulerUnreachable("sacct: error: slurmdbd: Connection refused (simulated)")
        return run_command(command)

    session = pc.Session(runner=no_sacct, status_silence_s=5)
    with pc.use_session(session):
        handle = pc.run_cmd("sleep 8; echo survived", job_name="no-sacct", **QUICK)
        with pytest.raises(pc.JobTimeoutError, match="sacct has not answered"):
            handle.result(timeout=3)
        assert handle.result(timeout=300).stdout.strip() == "survived"
        poller = session.backend("slurm").poller
        assert poller.queue_calls >= 1


INTERRUPTED = """
import sys
import paracore as pc
pc.map_cmds(["true", "true", "true"], job_name=sys.argv[1], time_min=5, mem_gb=0.25)
print("returned", flush=True)
"""


def test_sigterm_during_a_map_submission_leaves_it_recorded(tmp_path: Path) -> None:
    """SIGTERM while sbatch runs: the array is submitted, recorded, and only then exits."""
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    started = tmp_path / "sbatch-started"
    (fake_bin / "sbatch").write_text(f'#!/bin/bash\ntouch {started}\nsleep 3\nexec {real} "$@"\n')
    (fake_bin / "sbatch").chmod(0o755)
    script = tmp_path / "submit_map.py"
    script.write_text(textwrap.dedent(INTERRUPTED))
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    name = f"sigterm-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, str(script), name], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not started.exists():  # wait for sbatch to start, then interrupt it
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM
    assert b"returned" not in out
    folder = Path("paracore_logs") / name
    store = pc.Session().store()
    (run,) = store.runs()
    assert run.status == "active"
    ids = [task.job_id for task in store.tasks(run.id)]
    assert len(ids) == 3 and len({i.split("_")[0] for i in ids}) == 1
    assert not [p for p in folder.glob("*.pkl") if re.fullmatch(r"[0-9a-f]{32}\.pkl", p.name)]
    assert all((folder / f"{i}_submitted.pkl").exists() for i in ids)
    rows = wait_for_job(ids[0].split("_")[0] + "_0", timeout=300)
    assert rows
