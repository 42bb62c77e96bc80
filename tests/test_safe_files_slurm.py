"""A log folder shared with other users, on the real Slurm: your jobs run and their results
are read (on the node and here, through the checks of ``paracore.runtime.safe_files``), and a
job folder someone else linked there is refused before anything is submitted."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

import paracore as pc
from paracore.runtime.safe_files import UntrustedFile
from tests.conftest import OtherUser
from tests.slurm_helpers import QUICK

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def triple(x: int) -> int:
    return 3 * x


def _shared(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone may add entries, only their owner removes them
    return shared


def test_jobs_in_a_shared_log_folder_run_and_are_read(tmp_path: Path) -> None:
    config = {"log_dir": str(_shared(tmp_path))}
    chunked = pc.map_func(triple, range(6), chunk_size=3, config=config, **QUICK)
    alone = pc.map_func(triple, [7], config=config, **QUICK)
    assert pc.gather([*chunked, *alone], timeout=300) == [0, 3, 6, 9, 12, 15, 21]
    folder = tmp_path / "shared" / "triple"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_job_folder_someone_else_linked_is_refused_before_sbatch(
    tmp_path: Path, other_user: OtherUser
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    link = _shared(tmp_path) / "linked"
    link.symlink_to(mine)
    os.lchown(link, other_user.uid, other_user.gid)
    with pytest.raises(UntrustedFile, match=f"symbolic link owned by uid {other_user.uid}"):
        pc.run_cmd("true", job_name="linked", config={"log_dir": str(link.parent)}, **QUICK)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755  # not tightened through the link
    assert list(mine.iterdir()) == []  # no script, no pickle
    queued = subprocess.run(
        ["squeue", "-h", "-n", "linked", "-o", "%i"], capture_output=True, text=True, check=True
    )
    assert queued.stdout.strip() == ""
