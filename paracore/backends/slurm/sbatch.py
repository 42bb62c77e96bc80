"""``sbatch`` that survives an unreachable controller without creating duplicate jobs.

Run as ``python -m paracore.backends.slurm.sbatch --token T --delays 1,2 -- sbatch script.sh``. The
script carries ``#SBATCH --comment=T`` (a token unique to this submission). When ``sbatch``
times out or says the controller is unreachable, the job may still have been created, so
before trying again we look for the token in ``squeue``: if a job carries it, we report that
job as submitted instead of submitting a second one. Otherwise we wait the next delay (the
interpreter's backoff schedule, passed in) and try again. A refusal that is not transient
(bad partition, bad option) is passed through at once. Output mimics sbatch's own
``Submitted batch job N`` so submitit parses it unchanged.
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

TRANSIENT_MARKS = (
    "Socket timed out",
    "Unable to contact slurm controller",
    "Connection refused",
    "Connection timed out",
    "temporarily unavailable",
    "Transient",
    "Slurm temporarily unable",
    "Zero Bytes were transmitted",
    "Communication connection failure",
)


def is_transient(stderr: str) -> bool:
    """Whether sbatch's complaint means "try again later" rather than "this job is wrong"."""
    return any(mark.lower() in stderr.lower() for mark in TRANSIENT_MARKS)


def parse_squeue_tokens(text: str, token: str) -> str | None:
    """The (array) job id whose comment is ``token`` in ``squeue -h -o '%F|%k'`` output."""
    for line in text.splitlines():
        job_id, _, comment = line.partition("|")
        if comment.strip() == token and job_id.strip().isdigit():
            return job_id.strip()
    return None


Run = Callable[[Sequence[str], float], tuple[int | None, str, str]]
"""Runs a command with a timeout: (exit code or None on timeout, stdout, stderr)."""


def _run(command: Sequence[str], timeout_s: float) -> tuple[int | None, str, str]:
    try:
        proc = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",  # squeue shows other users' job names and comments: any bytes
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raw = err.stdout
        out = raw.decode(errors="replace") if isinstance(raw, bytes) else (raw or "")
        return None, out, f"{command[0]} timed out after {timeout_s} s"
    except OSError as err:
        return 127, "", f"{command[0]}: {err}"
    return proc.returncode, proc.stdout, proc.stderr


def find_submitted(token: str, run: Run = _run, user: str | None = None) -> tuple[bool, str | None]:
    """Whether squeue answered, and the job id of an earlier try that did reach the controller.

    ``(False, None)`` means "cannot tell": squeue did not answer.
    """
    user = user or os.environ.get("USER") or getpass.getuser()
    code, out, _ = run(["squeue", "-h", "-u", user, "-o", "%F|%k"], 30.0)
    if code != 0:
        return False, None
    return True, parse_squeue_tokens(out, token)


def submit_once(
    command: Sequence[str],
    token: str,
    delays: Sequence[float],
    *,
    timeout_s: float = 60.0,
    run: Run = _run,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> tuple[int, str, str]:
    """Run sbatch, retrying transient failures after ``delays``; (exit code, stdout, stderr).

    Right before each new try, squeue is asked whether an earlier try created the job after
    all (it carries ``token``); when squeue does not answer either, that cannot be told, so
    nothing is submitted: the next delay is waited and squeue asked again.
    """
    waits = list(delays)
    tries = 1
    code, out, err = run(command, timeout_s)
    while code != 0:
        last_err = err.strip()
        if code is not None and not is_transient(err):
            return code, out, err
        if not waits:
            return 1, "", f"controller unreachable after {tries} tries: {last_err}"
        log(f"paracore: sbatch try {tries} failed ({last_err}); asking squeue, then retrying")
        sleep(waits.pop(0))
        answered, found = find_submitted(token, run)
        if found is not None:
            log(f"paracore: sbatch said {last_err!r} but job {found} carries our token; kept it")
            return 0, f"Submitted batch job {found}\n", ""
        if not answered:  # cannot tell whether the job exists: never submit blind
            code, out = None, ""
            err = (
                f"{last_err}; squeue did not answer, so whether job {token} was created cannot "
                f"be told (look for it with: squeue -o '%F %k' | grep {token})"
            )
            continue
        code, out, err = run(command, timeout_s)
        tries += 1
    return 0, out, err


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paracore.backends.slurm.sbatch")
    parser.add_argument("--token", required=True)
    parser.add_argument("--delays", default="")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    delays = [float(d) for d in args.delays.split(",") if d]
    code, out, err = submit_once(command, args.token, delays, timeout_s=args.timeout)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
