"""Measuring a payload inside a pilot task on this machine (the local and inprocess backends).

The payload runs in a fresh child process (``bash -c`` for a command, a new Python interpreter
for a call) and the task reports the child's wall time and its peak memory, so the caller's
own memory never leaks into the figure.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import threading
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


# A fresh interpreter that runs the payload and reports the payload's own rusage. A process
# started straight from a large one inherits its peak memory in ru_maxrss (Linux folds the
# parent's high-water mark into the child at exec); this small launcher's is a few MB.
_LAUNCHER = (
    "import json, os, subprocess, sys, time\n"
    "start = time.monotonic()\n"
    "proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(proc.pid, 0)\n"
    "wall = time.monotonic() - start\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump({'code': os.waitstatus_to_exitcode(status), 'wall_s': wall,\n"
    "               'max_rss_kb': usage.ru_maxrss}, f)\n"
)


def measured_run(argv: Sequence[str]) -> PilotSample:
    """Run ``argv`` as a child process; its wall time and peak RSS (its own ``rusage``).

    The payload runs under a small fresh launcher, so the figure is the payload's own peak
    and never the caller's. The child's stderr is copied to ours; a non-zero exit raises
    PilotTaskFailed with its tail.
    """
    with tempfile.TemporaryDirectory(prefix="paracore-measure-") as folder:
        report = Path(folder) / "rusage.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *argv],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        kept: list[str] = []
        copier = threading.Thread(
            target=pump, args=(proc.stderr, sys.stderr, kept, STDERR_KEEP_CHARS), daemon=True
        )
        copier.start()
        launcher_code = proc.wait()
        copier.join()
        try:
            measured = json.loads(report.read_text())
        except (OSError, ValueError):
            measured = {"code": launcher_code, "wall_s": 0.0, "max_rss_kb": 0}
    code = measured["code"] or launcher_code
    if code != 0:
        lines = [line.strip() for line in kept if line.strip()]
        last = lines[-1] if lines else "no stderr"
        raise PilotTaskFailed(f"exited with code {code}: {last}")
    return PilotSample(wall_s=float(measured["wall_s"]), max_rss_kb=int(measured["max_rss_kb"]))


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
