"""What was sent: a record of every submission, written before an interruption can land.

A submission is all-or-recorded: SIGINT and SIGTERM are held while it runs (in the main
thread) and delivered once it has been appended to ``submissions.jsonl`` in its log folder.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from paracore.backends.base import RunningJob

__all__ = ["SUBMISSIONS_FILE", "read_submissions", "record_submission", "signals_deferred"]

SUBMISSIONS_FILE = "submissions.jsonl"
_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM inside the block and deliver them when it ends.

    Only the main thread receives signals; elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def record_submission(
    folder: Path,
    backend: str,
    name: str,
    jobs: Sequence[RunningJob],
    after: Sequence[str] = (),
) -> None:
    """Append one line saying what was submitted (job ids, logs, when) to the folder's record."""
    line = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "job_name": name,
        "job_ids": [job.job_id for job in jobs],
        "stdout": [job.stdout_path for job in jobs],
        "after_ok": list(after),
    }
    with (folder / SUBMISSIONS_FILE).open("a") as out:
        out.write(json.dumps(line) + "\n")


def read_submissions(folder: Path) -> list[dict[str, Any]]:
    """Every submission recorded in ``folder``, oldest first."""
    try:
        text = (folder / SUBMISSIONS_FILE).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
