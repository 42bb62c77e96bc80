"""Files only their owner can touch: what paracore reads it must trust, what it writes is private.

Configuration files run shell lines in jobs and choose where logs go, and result pickles are
code paracore unpickles: a file someone else could write is refused. Everything paracore
creates (log folders, pickles, failure records, the logs Slurm writes) is made owner-only
(0700 folders, 0600 files) whatever the umask, because it holds environment values, setup
lines and exception messages.

What paracore unpickles from the run store is read through a file descriptor opened without
following symbolic links and checked with ``fstat`` (:func:`read_trusted`), so nothing can be
swapped in between the check and the read; what it deletes is named one entry at a time
relative to an opened folder (:func:`remove_inside`), so no path and no link leads outside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from paracore.errors import ConfigError, SpecError
from paracore.runtime.safe_files import tighten_folder

__all__ = [
    "OWNER_ONLY_UMASK",
    "distrust",
    "folder_distrust",
    "owner_only",
    "plain_name",
    "private_folder",
    "read_trusted",
    "refused",
    "remove_inside",
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


def _owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def distrust(info: os.stat_result) -> str | None:
    """Why a file or folder with this (``lstat``/``fstat``) status is not to be trusted, or
    None when it is yours (or root's) and nobody else may write it."""
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return f"it is a symbolic link (of {_owner_name(info.st_uid)})"
    if not _owner_ok(info.st_uid):
        return (
            f"it belongs to {_owner_name(info.st_uid)}, not to you (uid {os.geteuid()}); "
            f"mode {mode:04o}"
        )
    if writable_by_others(info.st_mode):
        return f"others may write it: it belongs to {_owner_name(info.st_uid)}, mode {mode:04o}"
    return None


def folder_distrust(folder: Path) -> str | None:
    """Why ``folder`` is not a private folder of yours, or None when it is.

    Checked without following a symbolic link first: a link to the folder must be yours (or
    root's) too, since whoever owns the link decides where it points. Then the folder itself
    must be yours (or root's) and writable by nobody else. Raises FileNotFoundError when
    there is nothing there.
    """
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        if not _owner_ok(info.st_uid):
            return (
                f"it is a symbolic link that belongs to {_owner_name(info.st_uid)}, not to you "
                f"(uid {os.geteuid()})"
            )
        info = os.stat(folder)
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    return distrust(info)


def refused(path: Path, reason: str) -> PermissionError:
    """The error for a file or folder paracore will not use (someone else's, writable by
    others, or a symbolic link): ``filename`` names it, ``strerror`` says why."""
    return PermissionError(errno.EPERM, reason, str(path))


def plain_name(name: str) -> bool:
    """Whether ``name`` is one entry of a folder: not empty, no ``/`` or NUL, not ``.``/``..``."""
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _open_folder(folder: Path) -> int:
    """The folder opened for ``*at`` calls, its last component not followed if a link."""
    return os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | os.O_CLOEXEC)


def read_trusted(folder: Path, names: Sequence[str]) -> list[bytes]:
    """The contents of files directly in ``folder``, read only if the folder and each file
    are yours (or root's), writable by nobody else, and neither is a symbolic link.

    The folder and each file are opened without following links and checked with ``fstat``
    on the very descriptor that is read, right before reading. Raises PermissionError (from
    :func:`refused`, or when a file cannot be read), or another OSError (FileNotFoundError
    when a file is missing).
    """
    try:
        fd = _open_folder(folder)
    except OSError as err:
        if err.errno == errno.ELOOP or (err.errno == errno.ENOTDIR and folder.is_symlink()):
            raise refused(folder, "it is a symbolic link") from None
        raise
    try:
        reason = distrust(os.fstat(fd))
        if reason is not None:
            raise refused(folder, reason)
        out = []
        for name in names:
            try:
                file_fd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise refused(folder / name, "it is a symbolic link") from None
                raise
            with os.fdopen(file_fd, "rb") as file:
                info = os.fstat(file.fileno())
                reason = distrust(info) if stat.S_ISREG(info.st_mode) else "not a regular file"
                if reason is not None:
                    raise refused(folder / name, reason)
                out.append(file.read())
        return out
    finally:
        os.close(fd)


def remove_inside(folder: Path, names: Iterable[str]) -> int:
    """Remove these entries of ``folder`` (files, links themselves, folders with what they
    hold); how many were removed.

    Nothing outside ``folder`` is touched: each name must be one plain entry, is removed
    relative to the opened folder, a link is unlinked and never followed, and a folder's
    tree is removed without following links. A folder that is not yours, or that others may
    write, is refused (PermissionError, see :func:`refused`); entries already gone are
    skipped.
    """
    try:
        fd = _open_folder(folder)
    except FileNotFoundError:
        return 0
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise refused(folder, "it is a symbolic link") from None
        raise
    removed = 0
    try:
        reason = distrust(os.fstat(fd))
        if reason is not None:
            raise refused(folder, reason)
        for name in dict.fromkeys(names):
            if not plain_name(name):
                raise ValueError(f"not one entry of a folder: {name!r}")
            try:
                info = os.lstat(name, dir_fd=fd)
                if stat.S_ISDIR(info.st_mode):
                    removed += _remove_tree(fd, name)
                else:
                    os.unlink(name, dir_fd=fd)
                    removed += 1
            except FileNotFoundError:
                continue
    finally:
        os.close(fd)
    return removed


def _remove_tree(parent: int, name: str) -> int:
    """Remove the folder ``name`` of the opened folder ``parent`` and all it holds, through
    descriptors opened without following links (a link inside is unlinked, not followed)."""
    fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    removed = 0
    try:
        with os.scandir(fd) as entries:
            inside = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for entry, is_folder in inside:
            if is_folder:
                removed += _remove_tree(fd, entry)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry, dir_fd=fd)
                    removed += 1
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
    return removed + 1


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
