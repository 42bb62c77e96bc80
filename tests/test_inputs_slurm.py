"""On the real Slurm: a secret expanded into a spec file's env and setup line reaches the job
but not the run store or the runs commands' output, and a restarted submitter with another
hash seed re-attaches to the job its call with set arguments submitted."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import EXIT_OK, main

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cret-slurm-7d1e0b"


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_a_secret_reaches_the_job_but_not_the_store(
    slurm_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", SECRET)
    path = slurm_workdir / "secret.yaml"
    path.write_text(
        "name: secret-slurm\n"
        'command: \'test "$TOKEN" = "$API_KEY" && test -n "$TOKEN"\'\n'
        "env: {API_KEY: '${SECRET_TOKEN}'}\n"
        "env_setup: 'export TOKEN=${SECRET_TOKEN}'\n"
        "resources: {time: 5, mem: 200M}\n"
    )
    status, out = cli("run", str(path), "--wait")
    assert status == EXIT_OK, out
    store = pc.Session().store()
    (run,) = store.runs()
    printed = [out]
    for argv in (("status", run.id, "--json"), ("ls", "--json"), ("manifest", run.id)):
        status, text = cli(*argv)
        assert status == EXIT_OK
        printed.append(text)
    assert all(SECRET not in text for text in printed)
    assert json.loads(printed[1])["summary"]["env_setup"] is True
    for f in store.folder.rglob("*"):
        if f.is_file() and f.suffix != ".pkl":
            assert SECRET.encode() not in f.read_bytes(), f


SUBMIT = """
import json, sys
from tests.test_canonical_keys import call_spec
import paracore as pc

handle = pc.submit(call_spec())
if sys.argv[1] == "wait":
    print(json.dumps({"job": handle.job_id, "result": handle.result(timeout=300)}))
else:
    print(json.dumps({"job": handle.job_id}))
"""


def submitter(seed: int, mode: str, cwd: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", SUBMIT, mode],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=400, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout)
    return found


def test_a_restarted_submitter_with_another_hash_seed_reattaches(slurm_workdir: Path) -> None:
    """The first process submits and dies; the second (another seed) follows its job."""
    first = submitter(11, "leave", slurm_workdir)
    second = submitter(12, "wait", slurm_workdir)
    assert second["job"] == first["job"]
    assert second["result"] == 136
    assert len(pc.Session().store().runs()) == 1
