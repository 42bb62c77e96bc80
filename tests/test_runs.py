"""Runs on this machine: re-attaching after the submitter died, attach by id, resume modes, CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import main

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, signal, sys
import paracore as pc
handles = pc.map_cmds([f"sleep 1; echo item-{i}" for i in range(3)], backend="local",
                      job_name="crash", config={"log_dir": sys.argv[1]})
print(" ".join(h.job_id for h in handles), flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
print(" ".join(r.stdout.strip() for r in pc.gather(handles, timeout=120)), flush=True)
"""


def _script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "crash.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return subprocess.run(
        [sys.executable, str(path), str(tmp_path / "logs"), *args],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_rerunning_a_killed_script_re_attaches_instead_of_submitting(tmp_path: Path) -> None:
    """SIGKILL after submitting; the identical script again gets the same jobs' results."""
    first = _script(tmp_path, "die")
    assert first.returncode == -9
    jobs = first.stdout.split()
    second = _script(tmp_path, "wait")
    assert second.returncode == 0, second.stderr
    again, results = second.stdout.splitlines()
    assert again.split() == jobs  # re-attached: no new process was started
    assert results.split() == ["item-0", "item-1", "item-2"]
    third = _script(tmp_path, "wait")  # collected now: identical work is submitted anew
    assert third.stdout.split()[:3] != jobs


def test_attach_by_id_gives_the_handles_in_input_order(tmp_path: Path) -> None:
    """paracore.attach(run_id) returns working handles, as if submitted here."""
    handles = pc.map_func(abs, [-3, -1, -2], backend="local", config={"log_dir": str(tmp_path)})
    (run,) = pc.Session().store().runs()
    attached = pc.attach(run.id[:5])
    assert [h.job_id for h in attached] == [h.job_id for h in handles]
    assert pc.gather(attached, timeout=120) == [3, 1, 2]
    with pytest.raises(pc.RunNotFound, match="no run 'nope'"):
        pc.attach("nope")


def test_resume_modes(tmp_path: Path) -> None:
    """auto re-attaches while uncollected, never submits anew, cache reuses collected results."""
    options = {"backend": "local", "config": {"log_dir": str(tmp_path)}}
    first = pc.run_cmd("echo once", **options)
    assert pc.run_cmd("echo once", **options).job_id == first.job_id  # not collected yet
    first.result(timeout=60)
    assert pc.run_cmd("echo once", **options).job_id != first.job_id  # collected: anew
    cached = pc.run_cmd("echo once", resume="cache", **options)  # the newest identical run
    assert cached.result(timeout=60).stdout == "once\n"
    again = pc.run_cmd("echo once", resume="cache", **options)
    assert again.job_id == cached.job_id and again.result(timeout=1).stdout == "once\n"
    assert pc.run_cmd("echo once", resume="never", **options).job_id != cached.job_id
    with pytest.raises(pc.SpecError, match="'auto', 'cache' or 'never'"):
        pc.run_cmd("echo once", resume="sometimes", **options)


def test_the_runs_commands(tmp_path: Path) -> None:
    """ls, status, logs, manifest (jsonl and csv), rm and gc on a finished local run."""
    handles = pc.map_cmds(
        ["echo out-0", "echo out-1 >&2; exit 3"], backend="local", job_name="cli-run",
        config={"log_dir": str(tmp_path)},
    )  # fmt: skip
    assert isinstance(pc.gather(handles, timeout=120, return_exceptions=True)[1], pc.JobFailedError)
    code, text = _cli("ls", "--json")
    (listed,) = json.loads(text)
    assert code == 0 and listed["name"] == "cli-run" and listed["done"] == 2
    assert listed["states"] == {"failed": 1, "succeeded": 1}
    code, text = _cli("status", listed["id"], "--json")
    status = json.loads(text)
    assert [t["state"] for t in status["tasks"]] == ["succeeded", "failed"]
    assert status["tasks"][1]["failure_class"] == "user_error"
    assert "out-0" in _cli("logs", listed["id"], "0", "--stream", "stdout")[1]
    assert "out-1" in _cli("logs", listed["id"], "1")[1]
    code, text = _cli("manifest", listed["id"])
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["task"], r["attempt"], r["state"]) for r in records] == [
        (0, 1, "COMPLETED"),
        (1, 1, "FAILED"),
    ]
    assert "API" not in text and all("env" not in r for r in records)
    code, text = _cli("manifest", listed["id"], "--format", "csv")
    assert text.splitlines()[0].startswith("run_id,task,attempt,job_id")
    assert _cli("gc", "--older-than", "1", "--dry-run")[1].startswith("would remove 0")
    code, text = _cli("rm", listed["id"], "--json")
    assert code == 0 and json.loads(text)["run"] == listed["id"]
    assert json.loads(_cli("ls", "--json")[1]) == []
    assert not any(tmp_path.joinpath("cli-run").glob(f"{handles[0].job_id}_*"))


def test_an_unknown_run_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    """status of an id nobody recorded: exit status 2 and one line naming it."""
    assert main(["status", "deadbeef"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run 'deadbeef'" in err[0]
