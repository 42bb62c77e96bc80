"""Files paracore unpickles, opened so nobody else can have chosen them.

A pickle is code: reading one someone else wrote runs their code. A log folder may sit in a
shared folder (``/tmp``, a project's scratch space), where another user can create entries and
re-point symbolic links while a job runs. So every pickle paracore reads (results, failure
records, a chunk's items and results, a workflow step's saved result) and every one it writes
goes through this module, which walks the path one component at a time from ``/`` with
directory descriptors (``openat`` with ``O_NOFOLLOW``), so a check and the open that follows
it see the same file:

- a symbolic link on the way is followed only when it is yours (or root's): a link someone
  else made can be pointed anywhere at any moment;
- the folder holding the file must be yours (or root's) and writable by nobody else;
- the file itself must be a regular file (never a link), yours (or root's), and writable by
  nobody else, checked on the open descriptor.

Anything else raises :class:`UntrustedFile` naming the path and why. Only the standard
library is imported: both the backends and what runs on the node use this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "UntrustedFile",
    "append_private",
    "private_folder_fd",
    "read_private",
    "tighten_folder",
    "write_private",
]

MAX_LINKS = 40
"""Symbolic links followed in one path before giving up (the kernel's own limit)."""

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO never blocks
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


class UntrustedFile(PermissionError):
    """A file or folder paracore will not read from or write to: ``path`` and ``why``."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        self.path = str(path)
        self.why = why
        super().__init__(errno.EPERM, f"{self.path}: {why}")

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.why))


def _owner_ok(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def _writable_by_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _check_private(path: str, info: os.stat_result, what: str) -> None:
    """Refuse ``path`` unless it is yours (or root's) and nobody else may write it."""
    if not _owner_ok(info.st_uid):
        raise UntrustedFile(
            path,
            f"the {what} belongs to uid {info.st_uid}, not to you: paracore unpickles only "
            "files you own, in folders you own",
        )
    if _writable_by_others(info.st_mode):
        raise UntrustedFile(
            path,
            f"the {what} is writable by others (mode {stat.S_IMODE(info.st_mode):04o}): "
            "paracore unpickles only files nobody else can write",
        )


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _walk(folder: str, *, create: bool) -> int:
    """An open descriptor of ``folder`` (absolute), walked from ``/`` one component at a time,
    following only symbolic links of yours (or root's); ``create`` makes missing folders 0700."""
    pending = _components(folder)
    walked = "/"
    fd = os.open("/", _DIR)
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            here = os.path.join(walked, name)
            if name == "..":
                parent = os.open("..", _DIR, dir_fd=fd)
                os.close(fd)
                fd, walked = parent, os.path.dirname(walked.rstrip("/")) or "/"
                continue
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
                    os.mkdir(name, 0o700, dir_fd=fd)
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                if not _owner_ok(info.st_uid):
                    raise UntrustedFile(
                        here,
                        f"a symbolic link owned by uid {info.st_uid}: someone else could point "
                        "it anywhere, so paracore does not follow it",
                    )
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), folder)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd, walked = os.open("/", _DIR), "/"
                pending[:0] = _components(target)
                continue
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as err:
                if err.errno == errno.ELOOP:  # replaced by a link since the stat above
                    raise UntrustedFile(here, "became a symbolic link while it was read") from None
                raise
            os.close(fd)
            fd, walked = child, here
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_folder_fd(folder: str | os.PathLike[str], *, create: bool = False) -> int:
    """An open descriptor of ``folder``, walked from ``/`` one component at a time.

    Symbolic links on the way are followed only when they are yours (or root's); ``folder``
    itself must be yours (or root's) and writable by nobody else. With ``create``, missing
    folders are made 0700. The caller closes the descriptor. Raises UntrustedFile,
    FileNotFoundError or NotADirectoryError.
    """
    shown = os.path.abspath(os.fspath(folder))
    fd = _walk(shown, create=create)
    try:
        _check_private(shown, os.fstat(fd), "folder")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_in(folder_fd: int, path: str, name: str, flags: int, mode: int = 0o600) -> int:
    try:
        return os.open(name, flags, mode, dir_fd=folder_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UntrustedFile(path, "a symbolic link: paracore does not follow it") from None
        raise


@contextlib.contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    shown = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(shown)
    folder_fd = private_folder_fd(folder)
    try:
        fd = _open_in(folder_fd, shown, name, _READ)
    finally:
        os.close(folder_fd)
    handle = os.fdopen(fd, "rb")
    with handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFile(shown, "not a regular file")
        _check_private(shown, info, "file")
        yield handle


def read_private(path: str | os.PathLike[str]) -> bytes:
    """The bytes of ``path``, a file of yours in a folder of yours (see the module's rules).

    Raises FileNotFoundError when it (or a folder on the way) is not there, UntrustedFile
    when it may not be read.
    """
    with _opened(path) as handle:
        return handle.read()


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, 0600, in a folder of yours (missing folders are
    made 0700); a link at the file's name is replaced, never followed."""
    shown = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(shown)
    folder_fd = private_folder_fd(folder, create=True)
    try:
        tmp = f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        fd = _open_in(folder_fd, shown, tmp, _CREATE)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder_fd)
            raise
    finally:
        os.close(folder_fd)


def append_private(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for appending (created 0600), in a folder of yours; never through a link,
    and only a file of yours nobody else may write."""
    shown = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(shown)
    folder_fd = private_folder_fd(folder)
    try:
        fd = _open_in(folder_fd, shown, name, _APPEND)
    finally:
        os.close(folder_fd)
    handle = os.fdopen(fd, "ab")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFile(shown, "not a regular file")
        _check_private(shown, info, "file")
    except BaseException:
        handle.close()
        raise
    return handle


def tighten_folder(folder: str | os.PathLike[str]) -> None:
    """Make ``folder`` 0700 when it is yours, through a descriptor: a symbolic link on the way
    (``folder`` itself included) is followed only when it is yours, so a link someone else
    made never has its target's mode changed (UntrustedFile). A folder of someone else's is
    left as it is."""
    fd = _walk(os.path.abspath(os.fspath(folder)), create=False)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~0o077 | stat.S_IRWXU)
    finally:
        os.close(fd)
