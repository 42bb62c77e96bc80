"""The run store is trusted only when it is yours: who owns its folder, its database and the
runs' pickles is checked before anything is read or unpickled, and run ids are literal.

Where ownership matters the files are planted by a second Unix user, ``paracore-other``,
created here when the tests run as root (as in CI). Without root these tests skip, except
with ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import io
import os
import pickle
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import main
from paracore.errors import StoreError
from paracore.shell.store import RunStore

OTHER = "paracore-other"


def _cannot(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def other_user() -> pwd.struct_passwd:
    """A second Unix user to own planted files (made with useradd when missing; looked up
    for each test, as the user database belongs to the machine)."""
    if os.geteuid() != 0:
        _cannot("planting files as another user needs root (the CI runs as root)")
    try:
        return pwd.getpwnam(OTHER)
    except KeyError:
        pass
    # two xdist workers may both try: the loser's useradd fails, and the user exists
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(OTHER)
    except KeyError:
        _cannot(f"cannot create the user {OTHER}: {made.stderr.strip() or made.returncode}")
        raise


def _as_other(user: pwd.struct_passwd, *argv: str) -> None:
    subprocess.run(["runuser", "-u", user.pw_name, "--", *argv], check=True)


def _give(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder everyone may write into, like /tmp (sticky), that other users can reach."""
    folder = Path(tempfile.mkdtemp(prefix="paracore-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


class Boom:
    """A pickle that runs a command when loaded: what a planted spec.pkl would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _recorded_run(tmp_path: Path) -> tuple[RunStore, str]:
    """A finished, collected local run of this user's store."""
    handle = pc.run_cmd("true", backend="local", config={"log_dir": str(tmp_path / "logs")})
    handle.result(timeout=120)
    store = pc.Session().store()
    (run,) = store.runs()
    return store, run.id


# ---------------------------------------------------------------- the store's folder


def test_a_store_another_user_made_in_a_shared_folder_is_refused(
    other_user: pwd.struct_passwd,
    shared_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run from /tmp, the default store is ./.paracore there; another user who made it first
    would own the store. Nothing is submitted, nothing is written into it, and the error
    names the folder, its owner and mode, and what to do."""
    _as_other(other_user, "mkdir", "-m", "0777", str(shared_tmp / ".paracore"))
    monkeypatch.delenv("PARACORE_STORE", raising=False)
    monkeypatch.chdir(shared_tmp)
    with pytest.raises(StoreError) as refused:
        pc.run_cmd("echo hi", backend="local", config={"log_dir": str(shared_tmp / "logs")})
    message = str(refused.value)
    assert str(shared_tmp / ".paracore") in message
    assert f"uid {other_user.pw_uid})" in message and "mode 0777" in message
    assert "$PARACORE_STORE" in message and "store:" in message
    assert list((shared_tmp / ".paracore").iterdir()) == []
    assert not (shared_tmp / "logs").exists()  # refused before anything was submitted
    code, _text = _cli("ls")
    assert code == 2


def test_a_store_folder_reached_through_someone_elses_link_is_refused(
    other_user: pwd.struct_passwd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever owns a link decides where it points: a link of another user's is refused even
    when it points to a folder of yours; a link of yours is followed."""
    uid = other_user.pw_uid
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    (tmp_path / "theirs").symlink_to(mine)
    _give(tmp_path / "theirs", other_user)
    with pytest.raises(
        StoreError, match=rf"symbolic link (that belongs to|owned by) .*uid {uid}\b"
    ):
        RunStore(tmp_path / "theirs").runs()
    (tmp_path / "ours").symlink_to(mine)
    assert RunStore(tmp_path / "ours").runs() == []


def test_a_store_folder_others_may_write_is_refused(
    other_user: pwd.struct_passwd, tmp_path: Path
) -> None:
    """A folder of someone else's, whatever its mode; a database file they own in a folder
    of yours. (A folder of yours is tightened to 0700.)"""
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    _give(theirs, other_user)
    with pytest.raises(StoreError, match=rf"belongs to .*uid {other_user.pw_uid}\b"):
        RunStore(theirs).runs()
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o777)
    RunStore(mine).runs()
    assert mine.stat().st_mode & 0o777 == 0o700
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    RunStore(planted).runs()
    _give(planted / "runs.db", other_user)
    with pytest.raises(StoreError, match=r"runs.db is not private: it belongs to"):
        RunStore(planted).runs()


# ---------------------------------------------------------------- the runs' pickles


def test_a_planted_pickle_of_another_user_is_never_unpickled(
    other_user: pwd.struct_passwd, tmp_path: Path
) -> None:
    """spec.pkl replaced by one of another user's: re-attaching refuses, naming the file and
    its owner, and the pickle's code never runs."""
    store, run_id = _recorded_run(tmp_path)
    files = store.folder / "runs" / run_id
    marker = tmp_path / "ran"
    (files / "spec.pkl").write_bytes(pickle.dumps(Boom(marker)))
    _give(files / "spec.pkl", other_user)
    with pytest.raises(StoreError, match=rf"spec.pkl: it belongs to .*uid {other_user.pw_uid}\b"):
        pc.attach(run_id)
    assert not marker.exists()


def test_a_runs_files_folder_of_another_user_is_refused(
    other_user: pwd.struct_passwd, tmp_path: Path
) -> None:
    """The run's folder itself belongs to someone else: nothing in it is read."""
    store, run_id = _recorded_run(tmp_path)
    files = store.folder / "runs" / run_id
    marker = tmp_path / "ran"
    (files / "tasks.pkl").write_bytes(pickle.dumps(Boom(marker)))
    _give(files, other_user)
    with pytest.raises(StoreError, match=rf"{run_id}: it belongs to .*uid {other_user.pw_uid}\b"):
        pc.attach(run_id)
    assert not marker.exists()


def test_run_files_are_not_read_through_links_or_when_others_may_write_them(
    tmp_path: Path,
) -> None:
    """A link in place of the run's folder or of a pickle (even to files of yours), or a
    pickle others may write: refused, and nothing is unpickled."""
    store, run_id = _recorded_run(tmp_path)
    files = store.folder / "runs" / run_id
    marker = tmp_path / "ran"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    for name in ("spec.pkl", "tasks.pkl"):
        (elsewhere / name).write_bytes(pickle.dumps(Boom(marker)))
    moved = files.rename(tmp_path / "moved")
    files.symlink_to(elsewhere)
    with pytest.raises(StoreError, match=r"symbolic link"):
        pc.attach(run_id)
    files.unlink()
    moved.rename(files)
    (files / "spec.pkl").unlink()
    (files / "spec.pkl").symlink_to(elsewhere / "spec.pkl")
    with pytest.raises(StoreError, match=r"spec.pkl: it is a symbolic link"):
        pc.attach(run_id)
    (files / "spec.pkl").unlink()
    (files / "spec.pkl").write_bytes(pickle.dumps(Boom(marker)))
    (files / "spec.pkl").chmod(0o620)
    with pytest.raises(StoreError, match=r"others may write it"):
        pc.attach(run_id)
    assert not marker.exists()


# ---------------------------------------------------------------- run ids are literal


@pytest.mark.parametrize("pattern", ["%", "_", "________", "%%", "\\"])
def test_run_ids_are_never_patterns(pattern: str, tmp_path: Path) -> None:
    """``%`` and ``_`` select no run: not in the store, not in status, not in rm."""
    store, run_id = _recorded_run(tmp_path)
    assert store.run(pattern) is None
    code, _text = _cli("status", pattern)
    assert code == 2
    code, _text = _cli("rm", pattern)
    assert code == 2
    assert [r.id for r in store.runs()] == [run_id]


def test_a_prefix_is_a_literal_prefix(tmp_path: Path) -> None:
    """A unique prefix finds the run; the same letters in other case, or an empty id, do not."""
    store, run_id = _recorded_run(tmp_path)
    found = store.run(run_id[:3])
    assert found is not None and found.id == run_id
    assert store.run("") is None
    if run_id.upper() != run_id:
        assert store.run(run_id.upper()) is None
