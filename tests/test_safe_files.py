"""Pickles are read only from files nobody else could have written or chosen.

A job folder in a shared sticky log folder can be a symbolic link someone else made, pointing
at a folder of yours (so it passes a one-time owner check) and re-pointed at theirs while the
job runs. Every read of a pickle walks its path again with ``O_NOFOLLOW`` and refuses such a
link, a file or folder of someone else's, and one others may write. The second user is
``paracore-other`` (the ``other_user`` fixture of ``conftest.py``).
"""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import submitit
from submitit.local.local import LocalJob as SubmititLocalJob

import paracore as pc
from paracore.backends.local import ReattachedLocalJob
from paracore.backends.slurm.jobs import SubmititJob
from paracore.backends.slurm.polling import Poller
from paracore.errors import JobFailedError
from paracore.runtime.chunks import frame, read_results, results_path
from paracore.runtime.results import read_saved, save
from paracore.runtime.safe_files import (
    UntrustedFile,
    read_private,
    tighten_folder,
    write_private,
)
from paracore.runtime.tasks import TaskFailure, failure_path, read_failure
from paracore.testing import FakeClock, job_record
from tests.conftest import OtherUser


class Trap:
    """Unpickling it makes the folder ``marker``: proof that an attacker's pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _own(path: Path, user: OtherUser) -> Path:
    os.lchown(path, user.uid, user.gid)
    return path


def _shared(tmp_path: Path) -> Path:
    """A shared log folder: everyone may create entries, only their owner may remove them."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


# ---------------------------------------------------------------- what is read, what is not


def test_a_file_of_yours_in_a_folder_of_yours_is_read(tmp_path: Path) -> None:
    write_private(tmp_path / "mine" / "deep" / "x.pkl", b"data")
    assert read_private(tmp_path / "mine" / "deep" / "x.pkl") == b"data"
    assert stat.S_IMODE((tmp_path / "mine" / "deep").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "mine" / "deep" / "x.pkl").stat().st_mode) == 0o600


def test_a_link_of_yours_on_the_way_is_followed(tmp_path: Path) -> None:
    """Your own ~/logs -> /scratch/you/logs keeps working."""
    write_private(tmp_path / "real" / "job" / "x.pkl", b"data")
    (tmp_path / "logs").symlink_to(tmp_path / "real")
    assert read_private(tmp_path / "logs" / "job" / "x.pkl") == b"data"


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_file_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    write_private(tmp_path / "x.pkl", b"data")
    (tmp_path / "x.pkl").chmod(mode)
    with pytest.raises(UntrustedFile, match="writable by others"):
        read_private(tmp_path / "x.pkl")


def test_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    write_private(tmp_path / "job" / "x.pkl", b"data")
    (tmp_path / "job").chmod(0o1777)
    with pytest.raises(UntrustedFile, match="folder is writable by others"):
        read_private(tmp_path / "job" / "x.pkl")


def test_the_file_itself_is_never_a_link(tmp_path: Path) -> None:
    write_private(tmp_path / "real.pkl", b"data")
    (tmp_path / "x.pkl").symlink_to(tmp_path / "real.pkl")
    with pytest.raises(UntrustedFile, match="symbolic link"):
        read_private(tmp_path / "x.pkl")


def test_a_file_or_folder_of_someone_else_is_refused(tmp_path: Path, other_user: OtherUser) -> None:
    write_private(tmp_path / "job" / "x.pkl", b"data")
    _own(tmp_path / "job" / "x.pkl", other_user)
    with pytest.raises(UntrustedFile, match=f"file belongs to uid {other_user.uid}"):
        read_private(tmp_path / "job" / "x.pkl")
    write_private(tmp_path / "theirs" / "x.pkl", b"data")
    _own(tmp_path / "theirs", other_user)
    with pytest.raises(UntrustedFile, match=f"folder belongs to uid {other_user.uid}"):
        read_private(tmp_path / "theirs" / "x.pkl")


# ---------------------------------------------------------------- the shared log folder


def _attack(tmp_path: Path, user: OtherUser, name: str, writer: Callable[[Path], None]) -> Path:
    """Your job's files in a folder of yours, the attacker's in theirs, and the job folder in
    the shared log folder a link of theirs: first to your folder, then re-pointed to theirs.

    Returns the job folder as paracore knows it (the link's path)."""
    shared = _shared(tmp_path)
    mine, theirs = tmp_path / "mine" / name, tmp_path / "theirs" / name
    mine.mkdir(parents=True, mode=0o700)
    theirs.mkdir(parents=True, mode=0o700)
    writer(mine)
    writer(theirs)
    for path in [theirs.parent, theirs, *theirs.iterdir()]:
        _own(path, user)
    link = shared / name
    link.symlink_to(mine)
    _own(link, user)
    return link


def _trap_files(marker: Path) -> Callable[[Path], None]:
    """Every pickle a reader could look at, each one a trap."""

    def write(folder: Path) -> None:
        trap = cloudpickle.dumps(Trap(marker))
        for name in ("77_0_result.pkl", "results-0.pkl", "step.pkl"):
            (folder / name).write_bytes(trap)
        (folder / failure_path(folder / "77_0_result.pkl", "key").name).write_bytes(trap)

    return write


def _slurm_job(folder: Path) -> SubmititJob:
    clock = FakeClock()
    records = {"77": job_record("77", "FAILED", exit_code=1)}
    poller = Poller(lambda ids: {j: records[j] for j in ids if j in records}, clock=clock.now)
    return SubmititJob(
        submitit.SlurmJob(folder=folder, job_id="77"), None, "call f()", poller, clock.now, "key"
    )


def _local_job(folder: Path) -> ReattachedLocalJob:
    return ReattachedLocalJob(SubmititLocalJob(folder=folder, job_id="77"), None, "call f()", "key")


READERS: dict[str, Callable[[Path], object]] = {
    "slurm job": lambda folder: _slurm_job(folder).outcome(),
    "local job": lambda folder: _local_job(folder).outcome(),
    "failure record": lambda folder: read_failure(folder / "77_0_result.pkl", "key"),
    "chunk results": lambda folder: read_results(results_path(folder, 0)),
    "step result": lambda folder: read_saved(folder / "step.pkl", "step"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("repointed", [False, True], ids=["to-your-folder", "re-pointed"])
def test_a_job_folder_linked_by_someone_else_is_never_read(
    tmp_path: Path, other_user: OtherUser, reader: str, repointed: bool
) -> None:
    """Through their link, neither your files nor (once re-pointed) theirs are unpickled."""
    marker = tmp_path / "attacker-code-ran"
    link = _attack(tmp_path, other_user, "job", _trap_files(marker))
    if repointed:
        link.unlink()
        link.symlink_to(tmp_path / "theirs" / "job")
        _own(link, other_user)
    with pytest.raises((UntrustedFile, JobFailedError), match="symbolic link owned by uid"):
        READERS[reader](link)
    assert not marker.exists()


def test_a_job_folder_linked_by_someone_else_is_refused_at_submission(
    tmp_path: Path, other_user: OtherUser
) -> None:
    """The link is refused before anything is written, and your folder's mode is untouched
    (it used to be tightened to 0700 through their link)."""
    link = _attack(tmp_path, other_user, "linked", lambda folder: None)
    mine = tmp_path / "mine" / "linked"
    mine.chmod(0o755)
    with pytest.raises(UntrustedFile, match="symbolic link owned by uid"):
        pc.run_cmd("true", backend="local", job_name="linked", config={"log_dir": str(link.parent)})
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
    assert list(mine.iterdir()) == []


def test_tightening_never_goes_through_someone_elses_link(
    tmp_path: Path, other_user: OtherUser
) -> None:
    target = tmp_path / "yours"
    target.mkdir(mode=0o755)
    link = _shared(tmp_path) / "job"
    link.symlink_to(target)
    _own(link, other_user)
    with pytest.raises(UntrustedFile):
        tighten_folder(link)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_a_log_folder_behind_a_link_of_yours_still_runs(tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    (tmp_path / "logs").symlink_to(tmp_path / "scratch")
    handles = pc.map_func(abs, [-3], backend="local", config={"log_dir": str(tmp_path / "logs")})
    assert pc.gather(handles, timeout=120) == [3]


def test_chunk_results_of_someone_else_fail_the_items_without_reading_them(
    tmp_path: Path, other_user: OtherUser
) -> None:
    """A results file swapped for one of someone else's: the items fail, saying why."""
    marker = tmp_path / "attacker-code-ran"
    folder = tmp_path / "map"
    folder.mkdir(mode=0o700)
    path = results_path(folder, 0)
    path.write_bytes(frame(0, "ok", Trap(marker))[1])
    path.chmod(0o600)
    _own(path, other_user)
    with pytest.raises(UntrustedFile, match=f"belongs to uid {other_user.uid}"):
        read_results(path)
    assert not marker.exists()


def handshake(fifos: tuple[str, str]) -> int:
    """Say the chunk is running, then wait for the go (both FIFOs: no polling)."""
    started, go = fifos
    if started:
        with open(started, "w") as out:
            out.write("running")
        with open(go) as wait:
            wait.read()
    return 1


def test_a_chunks_results_file_given_away_while_it_runs_fails_its_items(
    tmp_path: Path, other_user: OtherUser
) -> None:
    """The results file belongs to someone else by the time the chunk ends: its items fail,
    saying which file was refused and why, and nothing in it is unpickled."""
    started, go = tmp_path / "started", tmp_path / "go"
    os.mkfifo(started)
    os.mkfifo(go)
    items = [(str(started), str(go)), ("", "")]
    handles = pc.map_func(
        handshake, items, chunk_size=2, backend="local", config={"log_dir": str(tmp_path)}
    )
    with open(started) as running:  # the chunk runs its first item: its results file is open
        running.read()
    path = results_path(handles.map.folder, 0)
    os.chown(path, other_user.uid, other_user.gid)
    with open(go, "w") as out:
        out.write("go")
    outcomes = pc.gather(handles, timeout=120, return_exceptions=True)
    for error in outcomes:
        assert isinstance(error, JobFailedError)
        assert f"paracore will not read {path}" in str(error)
        assert f"belongs to uid {other_user.uid}" in str(error)


def test_saved_step_results_are_private(tmp_path: Path) -> None:
    save(tmp_path / "results" / "plan" / "step.pkl", {"a": 1})
    assert read_saved(tmp_path / "results" / "plan" / "step.pkl", "step") == {"a": 1}
    assert stat.S_IMODE((tmp_path / "results" / "plan").stat().st_mode) == 0o700
    assert pickle.loads((tmp_path / "results" / "plan" / "step.pkl").read_bytes()) == {"a": 1}


def test_a_failure_record_of_yours_is_read(tmp_path: Path) -> None:
    failure = TaskFailure(kind="call", exc_type="builtins.ValueError", exc_message="boom")
    write_private(failure_path(tmp_path / "5_0_result.pkl", "k"), cloudpickle.dumps(failure))
    assert read_failure(tmp_path / "5_0_result.pkl", "k") == failure
