"""Running Slurm's command-line tools: one place that turns "no answer" into an error."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from paracore.errors import SchedulerUnreachable

__all__ = ["Runner", "run_command"]

Runner = Callable[[Sequence[str]], str]
"""Runs a command and returns its stdout; raises SchedulerUnreachable when it cannot."""


def run_command(command: Sequence[str], timeout_s: float = 60.0) -> str:
    """Run a Slurm command; its stdout, or SchedulerUnreachable naming the command and why.

    Output that is not UTF-8 (a job name, a comment or a node's reason written in another
    encoding) is decoded with U+FFFD in place of the bytes that do not decode, never an error.
    """
    try:
        proc = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SchedulerUnreachable(f"{command[0]} did not answer: {err}") from err
    if proc.returncode != 0:
        detail = proc.stderr.strip() or f"exit code {proc.returncode}"
        raise SchedulerUnreachable(f"{' '.join(command[:3])}: {detail}")
    return proc.stdout
