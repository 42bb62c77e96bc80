"""What ``paracore gc`` and ``rm`` remove, and what they leave alone.

They remove what belongs to a run (its jobs' files, each array's submission script and
submitit's links to it, its chunked map's folder once no other run uses it, its folder in the
store), never anything outside the run's own folders; they leave an uncollected run to the live
process that follows it, and clear a submission whose submitter died, naming the jobs it may
have made. A run removed anyway is a clear error for the process that followed it.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import main
from paracore.core.resolved import resolve_spec
from paracore.runtime.chunks import ChunkTask
from paracore.runtime.tasks import CommandTask
from paracore.shell.handle import SubmitHandle
from paracore.shell.runs import save_run_files
from paracore.shell.store import RunStore
from paracore.shell.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _store() -> RunStore:
    return pc.Session().store()


def _until_done(handle: SubmitHandle) -> None:
    """Wait until the handle is final, without collecting its outcome."""
    wait_until(
        handle.done,
        timeout=120,
        clock=time.monotonic,
        sleep=time.sleep,
        poll_s=0.05,
        max_poll_s=0.5,
        next_due=lambda: None,
        timed_out=lambda: AssertionError(f"job {handle.job_id} not done in 120 s"),
    )


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in another process (same store, through $PARACORE_STORE)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _recorded(
    store: RunStore,
    log_folder: Path,
    job_ids: Sequence[str],
    *,
    map_folder: Path | None = None,
) -> str:
    """A finished, collected run recorded as paracore records one, with these jobs (and the
    chunk tasks of a map folder, when given); no job is run."""
    run_id = store.new_run_id()
    files = store.folder / "runs" / run_id
    spec = resolve_spec(pc.JobSpec.command("true"))
    tasks = [
        ChunkTask(str(map_folder), i, "command") if map_folder else CommandTask("true")
        for i in range(len(job_ids))
    ]
    save_run_files(files, spec, tasks)
    with store.claim(f"key-{run_id}", reuse="never") as (conn, _found):
        store.insert_run(
            conn, run_id=run_id, content_key=f"key-{run_id}", name="job", kind="map",
            backend="local", log_folder=str(log_folder), files=str(files), summary={}, tags={},
            labels=["t"] * len(job_ids), record_keys=["k"] * len(job_ids),
            states=[{"phase": "succeeded"}] * len(job_ids), lease_s=60,
        )  # fmt: skip
    store.submitted(run_id, [(i, {"job_id": job}) for i, job in enumerate(job_ids)])
    store.collected(run_id, range(len(job_ids)))
    return run_id


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------- a run someone follows


def test_gc_leaves_an_uncollected_run_to_its_live_submitter(tmp_path: Path) -> None:
    """Finished but not collected, its submitter alive: gc keeps it and says why; once
    collected, gc removes it."""
    handle = pc.run_cmd("echo kept", backend="local", config={"log_dir": str(tmp_path)})
    _until_done(handle)
    code, text = _cli("gc", "--older-than", "0")
    assert code == 0 and text.startswith("removed 0 finished run(s)")
    assert "not collected, and the process following it" in text
    assert len(_store().runs()) == 1
    assert handle.result(timeout=60).stdout == "kept\n"
    assert _cli("gc", "--older-than", "0")[1].startswith("removed 1 finished run(s)")
    assert _store().runs() == []


def test_gc_removes_an_uncollected_run_whose_submitter_died(tmp_path: Path) -> None:
    """The submitter ended without collecting: nobody wants the results any more."""
    done = _python(f"""
        import time
        import paracore as pc
        from paracore.shell.waiting import wait_until
        h = pc.run_cmd("true", backend="local", config={{"log_dir": {str(tmp_path)!r}}})
        wait_until(h.done, timeout=120, clock=time.monotonic, sleep=time.sleep, poll_s=0.05,
                   max_poll_s=0.5, next_due=lambda: None, timed_out=lambda: TimeoutError())
    """)
    assert done.returncode == 0, done.stderr
    (run,) = _store().runs()
    assert run.collected is None
    assert _cli("gc", "--older-than", "0")[1].startswith("removed 1 finished run(s)")


def test_attaching_makes_this_process_the_follower(tmp_path: Path) -> None:
    """A process that attached to a run whose submitter died follows it: gc leaves it, and
    rm refuses without --force."""
    done = _python(f"""
        import time
        import paracore as pc
        from paracore.shell.waiting import wait_until
        h = pc.run_cmd("echo again", backend="local", config={{"log_dir": {str(tmp_path)!r}}})
        wait_until(h.done, timeout=120, clock=time.monotonic, sleep=time.sleep, poll_s=0.05,
                   max_poll_s=0.5, next_due=lambda: None, timed_out=lambda: TimeoutError())
    """)
    assert done.returncode == 0, done.stderr
    (run,) = _store().runs()
    (handle,) = pc.attach(run.id)
    assert _cli("gc", "--older-than", "0")[1].startswith("removed 0 finished run(s)")
    code, text = _cli("rm", run.id)
    assert code == 1 and "not collected" in text and "--force" in text
    assert handle.result(timeout=60).stdout == "again\n"
    code, text = _cli("rm", run.id)
    assert code == 0 and "removed its record" in text


def test_a_run_removed_under_its_follower_is_a_clear_error(tmp_path: Path) -> None:
    """The run's record is gone while this process still follows it: RunNotFound naming the
    run and that it was removed (not a TypeError from inside the store)."""
    handle = pc.run_cmd("true", backend="local", config={"log_dir": str(tmp_path)})
    (run,) = _store().runs()
    _store().delete(run.id)
    with pytest.raises(pc.RunNotFound, match=rf"run {run.id} was removed from the run store"):
        handle.result(timeout=60)


# ---------------------------------------------------------------- what belongs to a run


def test_rm_removes_each_arrays_submission_script_and_the_links_to_it(tmp_path: Path) -> None:
    """An array's tasks share one ``<array>_submission.sh`` (and submitit's hidden link to
    it): both go with the run; another array's, and files that only look alike, stay."""
    store = _store()
    log = tmp_path / "logs" / "job"
    log.mkdir(parents=True, mode=0o700)
    mine = ["584_0_submitted.pkl", "584_0_0_log.out", "584_1_0_result.pkl", "584_submission.sh"]
    theirs = ["585_submission.sh", "5840_submission.sh", "58_0_log.out", "keep_me.txt"]
    for name in mine + theirs:
        (log / name).write_text("")
    (log / ".submission_file_aaa.sh").symlink_to(log / "584_submission.sh")
    (log / ".submission_file_bbb.sh").symlink_to(log / "585_submission.sh")
    run_id = _recorded(store, log, ["584_0", "584_1"])
    code, text = _cli("rm", run_id)
    assert code == 0, text
    assert _files(log) == {*theirs, ".submission_file_bbb.sh"}
    assert not (store.folder / "runs" / run_id).exists()


def test_a_chunked_maps_folder_goes_with_the_last_run_that_uses_it(tmp_path: Path) -> None:
    """Two waves of a chunked map share its ``map-<key>`` folder: removing one keeps it,
    removing the other removes it. A run recorded before folders.json is read from its
    tasks."""
    store = _store()
    log = tmp_path / "logs" / "job"
    map_folder = log / "map-0123456789abcdef"
    map_folder.mkdir(parents=True)
    (map_folder / "items-0").write_text("")
    first = _recorded(store, log, ["10"], map_folder=map_folder)
    second = _recorded(store, log, ["11"], map_folder=map_folder)
    # as an older paracore left it:
    (store.folder / "runs" / second / "folders.json").unlink(missing_ok=True)
    assert _cli("rm", first)[0] == 0
    assert (map_folder / "items-0").exists()
    assert _cli("rm", second)[0] == 0
    assert not map_folder.exists()


def test_rm_leaves_nothing_of_a_local_chunked_map(tmp_path: Path) -> None:
    """map_func in chunks on this machine, collected, then rm: the log folder holds nothing
    of it (the map folder included)."""
    handles = pc.map_func(
        abs, range(-4, 0), backend="local", chunk_size=2, job_name="chunks",
        config={"log_dir": str(tmp_path)},
    )  # fmt: skip
    assert pc.gather(handles, timeout=120) == [4, 3, 2, 1]
    for run in _store().runs():
        assert _cli("rm", run.id)[0] == 0
    assert _files(tmp_path / "chunks") == set()


def test_rm_never_deletes_outside_the_runs_own_folders(tmp_path: Path) -> None:
    """Rows that name places outside (the run's files elsewhere, a job id that would be a
    glob, a map folder elsewhere or reached through a link, a job file that is a link) make
    rm remove only what is the run's, and say what it left."""
    store = _store()
    log = tmp_path / "logs" / "job"
    log.mkdir(parents=True, mode=0o700)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep")
    (log / "keep_me.txt").write_text("keep")
    (log / "map-link").symlink_to(precious)
    (log / "7_evil").symlink_to(precious / "data")
    run_id = _recorded(store, log, ["*", "7"])
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE runs SET files = ? WHERE id = ?", (str(precious), run_id))
    db.close()
    mapped = _recorded(store, log, ["8"], map_folder=precious)
    (store.folder / "runs" / mapped / "folders.json").write_text(
        json.dumps([str(precious), str(log / "map-link")])
    )
    code, text = _cli("rm", run_id)
    assert code == 0, text
    assert (precious / "data").read_text() == "keep"
    assert _files(log) == {"keep_me.txt", "map-link"}  # the link 7_evil itself went
    code, text = _cli("rm", mapped)
    assert code == 0, text
    assert f"left {precious}: not a map folder in the run's log folder" in text
    assert f"left {log / 'map-link'}: not a map folder in the run's log folder" in text
    assert (precious / "data").read_text() == "keep"
    assert _files(log) == {"keep_me.txt", "map-link"}  # the link 7_evil itself went
    assert store.runs() == []


# ---------------------------------------------------------------- a submission cut short


def test_gc_clears_a_submission_whose_submitter_died_and_names_its_jobs(tmp_path: Path) -> None:
    """SIGKILL while submitting leaves a ``submitting`` row: once its owner is dead and its
    lease over, gc removes it and names the job the submitter may have made; a submission
    whose owner lives is left alone."""
    log = tmp_path / "logs" / "job"
    log.mkdir(parents=True, mode=0o700)
    killed = _python(f"""
        import os, signal
        from pathlib import Path
        import paracore as pc
        store = pc.Session().store()
        with store.claim("cut-short", reuse="never") as (conn, _found):
            store.insert_run(
                conn, run_id="c0ffee00", content_key="cut-short", name="job", kind="job",
                backend="local", log_folder={str(log)!r}, files=str(store.folder / "x"),
                summary={{}}, tags={{}}, labels=["t"], record_keys=["k"],
                states=[{{"phase": "running"}}], lease_s=0,
            )
        Path({str(log)!r}, "777_submitted.pkl").write_text("")  # sbatch answered, then:
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert killed.returncode == -9, killed.stderr
    store = _store()
    for run_id, lease_s in (("a11ve000", 600), ("a11ve001", 0)):  # this process: alive
        with store.claim(run_id, reuse="never") as (conn, _found):
            store.insert_run(
                conn, run_id=run_id, content_key=run_id, name="job", kind="job",
                backend="local", log_folder=str(log), files=str(store.folder / run_id),
                summary={}, tags={}, labels=["t"], record_keys=["k"],
                states=[{"phase": "running"}], lease_s=lease_s,
            )  # fmt: skip
    code, text = _cli("gc", "--older-than", "0")
    assert code == 0 and text.startswith("removed 1 finished run(s)"), text
    assert "run c0ffee00: its submitter" in text and "died while submitting" in text
    assert "may have submitted, which no run recorded: 777" in text
    assert "a11ve" not in text
    assert sorted(r.id for r in store.runs()) == ["a11ve000", "a11ve001"]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_workdir")
def test_rm_leaves_nothing_of_a_slurm_array(slurm_workdir: Path) -> None:
    """On the real Slurm: an array's submission script and submitit's links go with it."""
    name = f"rm-array-{os.getpid()}-{time.time_ns() % 10**9}"
    handles = pc.map_cmds(["true", "true"], job_name=name, time_min=5, mem_gb=0.25)
    pc.gather(handles, timeout=300)
    folder = Path(handles[0].stdout_path or "").parent
    assert any(p.name.endswith("_submission.sh") for p in folder.iterdir())
    (run,) = _store().runs()
    code, text = _cli("rm", run.id)
    assert code == 0, text
    assert _files(folder) == set()
