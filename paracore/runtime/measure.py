"""Measuring a payload inside a pilot task on this machine (the local and inprocess backends).

The payload runs in a fresh child process (``bash -c`` for a command, a new Python interpreter
for a call) and the task reports the child's wall time and its peak memory, so the caller's
own memory never leaks into the figure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.runtime.streams import pump

__all__ = ["PilotSample", "PilotTaskFailed", "measure_call", "measure_command", "measured_run"]

STDERR_KEEP_CHARS = 4000


@dataclasses.dataclass(frozen=True)
class PilotSample:
    """What a measuring task reports: the payload's wall time and peak RSS (KiB)."""

    wall_s: float
    max_rss_kb: int


class PilotTaskFailed(RuntimeError):
    """Raised inside a measuring task when its payload fails."""


def measured_run(argv: Sequence[str]) -> PilotSample:
    """Run ``argv`` as a child process; its wall time and peak RSS (``os.wait4``'s rusage).

    The child's stderr is copied to ours; a non-zero exit raises PilotTaskFailed with its tail.
    """
    start = time.monotonic()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kept: list[str] = []
    copier = threading.Thread(
        target=pump, args=(proc.stderr, sys.stderr, kept, STDERR_KEEP_CHARS), daemon=True
    )
    copier.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    copier.join()
    if proc.returncode != 0:
        lines = [line.strip() for line in kept if line.strip()]
        last = lines[-1] if lines else "no stderr"
        raise PilotTaskFailed(f"exited with code {proc.returncode}: {last}")
    return PilotSample(wall_s=wall, max_rss_kb=int(usage.ru_maxrss))


def measure_command(cmd: str) -> PilotSample:
    """Run a shell command in a fresh ``bash -c`` and measure it (local pilots)."""
    return measured_run(["bash", "-c", cmd])


_CALL_CHILD = (
    "import json, sys\n"
    "sys.path[:0] = [p for p in json.loads(sys.argv[2]) if p not in sys.path]\n"
    "import cloudpickle\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    fn, item = cloudpickle.load(f)\n"
    "fn(item)\n"
)


def measure_call(fn: Callable[[Any], Any], item: Any) -> PilotSample:
    """Call ``fn(item)`` in a fresh Python interpreter and measure it (local pilots)."""
    with tempfile.TemporaryDirectory(prefix="paracore-pilot-") as folder:
        path = Path(folder) / "call.pkl"
        path.write_bytes(cloudpickle.dumps((fn, item)))
        return measured_run(
            [sys.executable, "-c", _CALL_CHILD, str(path), json.dumps(list(sys.path))]
        )
