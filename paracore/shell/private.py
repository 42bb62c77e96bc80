"""Files only their owner can touch: what paracore reads it must trust, what it writes is private.

Configuration files run shell lines in jobs and choose where logs go, and result pickles are
code paracore unpickles: a file someone else could write is refused. Everything paracore
creates (log folders, pickles, failure records, the logs Slurm writes) is made owner-only
(0700 folders, 0600 files) whatever the umask, because it holds environment values, setup
lines and exception messages.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from paracore.errors import ConfigError, SpecError
from paracore.runtime.safe_files import tighten_folder

__all__ = [
    "OWNER_ONLY_UMASK",
    "owner_only",
    "private_folder",
    "trusted_file",
    "trusted_folder",
    "writable_by_others",
]

OWNER_ONLY_UMASK = 0o077
"""New files 0600 and folders 0700."""


def writable_by_others(mode: int) -> bool:
    """True when the group or everyone may write (the sticky-bit shared folders included)."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _owner_ok(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def trusted_file(path: Path, what: str) -> None:
    """Refuse to read ``path`` unless it is yours (or root's) and nobody else may write it.

    Raises ConfigError naming the file, its owner or mode, and what to do.
    """
    try:
        info = path.stat()
    except OSError as err:
        raise ConfigError("file", str(path), f"a readable file ({err.strerror})", what) from None
    if not _owner_ok(info.st_uid):
        raise ConfigError(
            "file",
            str(path),
            f"a file you own: it belongs to uid {info.st_uid}, and a configuration file runs "
            "its setup lines in your jobs; copy it to a file of yours if you trust it",
            what,
        )
    if writable_by_others(info.st_mode):
        mode = stat.S_IMODE(info.st_mode)
        raise ConfigError(
            "file",
            str(path),
            f"a file only you can write: its mode is {mode:04o}; run 'chmod go-w {path}'",
            what,
        )


def trusted_folder(folder: Path) -> None:
    """Refuse to read records from ``folder`` unless it is yours and nobody else may write it.

    Pickles read back from a log folder are unpickled, i.e. run: a folder others can write
    into could hand this process code. Raises SpecError naming the folder and what to do.
    """
    try:
        info = folder.stat()
    except FileNotFoundError:
        return  # nothing there to read
    if not _owner_ok(info.st_uid) or writable_by_others(info.st_mode):
        mode = stat.S_IMODE(info.st_mode)
        raise SpecError(
            "log_dir",
            str(folder),
            f"a folder only you can write (it belongs to uid {info.st_uid}, mode {mode:04o}): "
            "results are unpickled from it, so paracore will not read a folder others can "
            f"write; run 'chmod go-w {folder}' if it is yours",
        )


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create files and folders owner-only inside the block (the process umask, restored).

    Slurm creates a job's log files with the submitting umask, and the job writes its pickles
    with it, so submitting inside this block keeps all of them private too.
    """
    previous = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_folder(folder: Path) -> Path:
    """Create ``folder`` (and missing parents) owner-only; tighten it if it is ours already.

    Folders that already exist above it are left as they are: only ``folder`` is paracore's.
    """
    with owner_only():
        folder.mkdir(parents=True, exist_ok=True)
    tighten_folder(folder)  # through a descriptor: never through someone else's link
    return folder
