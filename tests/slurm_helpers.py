"""Small helpers for tests that talk to a real Slurm cluster (see docs/testing.md).

Everything here shells out to the Slurm client commands (sbatch, sacct, squeue), so it
works against any cluster the machine is a client of, not only scripts/local-slurm's.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SACCT_FIELDS = (
    "JobID",
    "JobName",
    "State",
    "ExitCode",
    "Elapsed",
    "MaxRSS",
    "ReqMem",
    "Timelimit",
    "Partition",
    "Start",
    "End",
    "NodeList",
)

#: States after which a job (or step) will not change any more.
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "TIMEOUT",
    }
)

_MEM_UNITS_MB = {
    "": 1 / (1024 * 1024),
    "K": 1 / 1024,
    "M": 1.0,
    "G": 1024.0,
    "T": 1024.0**2,
    "P": 1024.0**3,
}
_MEM_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)


QUICK = {"time_min": 5, "mem_gb": 0.25}
"""Resources for the tiny jobs of the integration tests: a short limit and little memory."""


class SlurmCommandError(RuntimeError):
    """A Slurm client command failed."""


def parse_mem_mb(text: str | None) -> float | None:
    """Parse a Slurm memory figure ("116.28M", "2048K", "1.5G", "0") into MiB.

    Empty text (sacct prints nothing for rows without a value) gives None; a bare number is
    bytes, as sacct prints MaxRSS without --units. ReqMem's old per-CPU/per-node suffixes
    ("500Mn", "2Gc") are accepted and ignored.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if text[-1] in "nc" and len(text) > 1 and text[-2].upper() in "KMGTP":
        text = text[:-1]
    m = _MEM_RE.match(text)
    if not m:
        raise ValueError(f"not a Slurm memory value: {text!r}")
    number, unit = m.groups()
    return float(number) * _MEM_UNITS_MB[unit.upper()]


def parse_elapsed_s(text: str) -> int | None:
    """Parse a Slurm duration ("[D-]HH:MM:SS", "MM:SS", "MM:SS.mmm") into whole seconds."""
    text = text.strip()
    if not text or text in {"UNLIMITED", "INVALID", "Partition_Limit"}:
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return int(days * 86400 + h * 3600 + m * 60 + s)


@dataclass(frozen=True)
class SacctRow:
    job_id: str  # "123", "123.batch", "123.0", "123_4" (array task)
    job_name: str
    state: str  # first word of sacct's State ("CANCELLED by 0" -> "CANCELLED")
    state_raw: str
    exit_code: str  # "code:signal", e.g. "3:0", "0:125"
    elapsed: str
    max_rss: str
    req_mem: str
    timelimit: str
    partition: str
    start: str
    end: str
    node_list: str

    @property
    def step(self) -> str | None:
        """The step part of the id ("batch", "extern", "0"), None for the job's own row."""
        return self.job_id.split(".", 1)[1] if "." in self.job_id else None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def elapsed_s(self) -> int | None:
        return parse_elapsed_s(self.elapsed)

    @property
    def max_rss_mb(self) -> float | None:
        return parse_mem_mb(self.max_rss)

    @property
    def req_mem_mb(self) -> float | None:
        return parse_mem_mb(self.req_mem)


def _run(cmd: Sequence[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
    except subprocess.TimeoutExpired as e:
        raise SlurmCommandError(f"{shlex.join(cmd)} did not answer within {timeout}s") from e
    if proc.returncode != 0:
        raise SlurmCommandError(
            f"{shlex.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def sbatch(
    script: str | None = None,
    args: Sequence[str] = (),
    *,
    directory: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Submit a batch job and return its job id.

    ``script`` is the text of the batch script (a ``#!/bin/bash`` line is added when it has
    none); it is written to ``directory`` (use the test's ``tmp_path``: the node is this
    machine, so the path is shared), which is also the job's working directory. With
    ``script=None``, ``args`` must carry what sbatch needs (e.g. ``["--wrap", "hostname"]``).
    """
    cmd = ["sbatch", "--parsable"]
    workdir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="sbatch-"))
    cmd.append(f"--chdir={workdir}")
    cmd += list(args)
    if script is not None:
        if not script.startswith("#!"):
            script = "#!/bin/bash\n" + script
        fd, path = tempfile.mkstemp(prefix="job-", suffix=".sh", dir=workdir)
        with os.fdopen(fd, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        cmd.append(path)
    out = _run(cmd, env=env).stdout.strip()
    job_id = out.split(";", 1)[0]  # "id" or "id;cluster"
    if not job_id.isdigit():
        raise SlurmCommandError(f"sbatch printed no job id: {out!r}")
    return job_id


def sacct_rows(job_id: str) -> list[SacctRow]:
    """sacct's rows for a job (its own row and its steps); [] if sacct has none (yet)."""
    cmd = [
        "sacct", "-P", "-n", "--units=M", "-j", str(job_id),
        "-o", ",".join(SACCT_FIELDS),
    ]  # fmt: skip
    rows = []
    for line in _run(cmd).stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != len(SACCT_FIELDS):
            raise SlurmCommandError(f"unexpected sacct line: {line!r}")
        state_raw = parts[2]
        rows.append(
            SacctRow(
                job_id=parts[0],
                job_name=parts[1],
                state=state_raw.split(" ", 1)[0],
                state_raw=state_raw,
                exit_code=parts[3],
                elapsed=parts[4],
                max_rss=parts[5],
                req_mem=parts[6],
                timelimit=parts[7],
                partition=parts[8],
                start=parts[9],
                end=parts[10],
                node_list=parts[11],
            )
        )
    return rows


def job_row(rows: Sequence[SacctRow], job_id: str) -> SacctRow:
    """The job's own row (not a step) among ``rows``."""
    for r in rows:
        if r.job_id == str(job_id):
            return r
    raise LookupError(f"no sacct row for job {job_id} in {[r.job_id for r in rows]}")


def step_row(rows: Sequence[SacctRow], job_id: str, step: str = "batch") -> SacctRow:
    """A step's row, e.g. ``step_row(rows, jid, "batch")`` for ``<jid>.batch``."""
    want = f"{job_id}.{step}"
    for r in rows:
        if r.job_id == want:
            return r
    raise LookupError(f"no sacct row {want} in {[r.job_id for r in rows]}")


def _in_squeue(job_id: str) -> bool | None:
    try:
        out = _run(["squeue", "-h", "-j", str(job_id), "-o", "%i"], timeout=30).stdout
    except SlurmCommandError:
        return None  # squeue refuses ids it no longer knows on some versions
    return bool(out.strip())


def wait_for_job(
    job_id: str, timeout: float = 300, poll: float = 1.0, step_grace: float = 10.0
) -> list[SacctRow]:
    """Poll sacct until the job's own row is in a terminal state; return all its rows.

    A job can take a few seconds to show up in sacct after sbatch (slurmctld sends it to
    slurmdbd asynchronously), so absence is not loss: we keep polling until ``timeout``.
    Once the job row is terminal we also wait (at most ``step_grace`` seconds) until the
    ``.batch`` step row is terminal too, so its MaxRSS is final. Raises TimeoutError with
    the last rows seen (and whether squeue still knows the job) on timeout.
    """
    deadline = time.monotonic() + timeout
    grace_until: float | None = None
    rows: list[SacctRow] = []
    while True:
        rows = sacct_rows(job_id)
        main = next((r for r in rows if r.job_id == str(job_id)), None)
        # slurmdbd may briefly hold a terminal row whose other fields are not filled in yet
        if main is not None and main.terminal and main.partition:
            batch = next((r for r in rows if r.job_id == f"{job_id}.batch"), None)
            never_started = main.start in {"", "Unknown", "None"}
            if never_started or (batch is not None and batch.terminal):
                return rows
            if grace_until is None:
                grace_until = time.monotonic() + step_grace
            if time.monotonic() >= grace_until:
                return rows
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"job {job_id} not finished after {timeout}s; sacct rows: {rows}; "
                f"in squeue: {_in_squeue(job_id)}"
            )
        time.sleep(poll)


def read_text(path: str | os.PathLike) -> str:
    """A job output file's text ('' if the job never wrote it)."""
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_array(array_id: str, count: int, timeout: float = 120, poll: float = 1.0) -> list:
    """Poll sacct until the array's ``count`` task rows are terminal with start and end times.

    Results can be read before slurmdbd has the tasks' end times (it records them
    asynchronously), so a test reading times must wait for them. Returns the task rows.
    """
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in sacct_rows(array_id) if r.step is None]
        done = [r for r in rows if r.terminal and _is_time(r.start) and _is_time(r.end)]
        if len(done) >= count:
            return done
        if time.monotonic() >= deadline:
            raise TimeoutError(f"array {array_id}: {len(done)} of {count} tasks complete: {rows}")
        time.sleep(poll)


def _is_time(text: str) -> bool:
    return text not in {"", "Unknown", "None"}


def latest_job_id() -> int:
    """The highest job id sacct lists from the last two days (0 if none)."""
    out = _run(["sacct", "-X", "-n", "-P", "--starttime=now-2days", "-o", "JobIDRaw"]).stdout
    return max((int(x) for x in out.split() if x.isdigit()), default=0)


def jobs_named(
    name: str, after: int, count: int = 1, timeout: float = 60, poll: float = 1.0
) -> list[SacctRow]:
    """The jobs (allocations, not steps; array tasks one row each) named ``name`` with an id
    above ``after``, oldest first, once sacct knows at least ``count`` of them in a final
    state (slurmdbd may lag by a few seconds), or what it knows after ``timeout``.

    Jobs are asked for by id, not by a time window: a job cancelled before it was ever
    eligible (a dependency that failed) has no eligible time, and sacct's ``--starttime``
    and ``--name`` queries leave it out.
    """
    deadline = time.monotonic() + timeout
    while True:
        upper = max(latest_job_id(), after) + 50
        ids = ",".join(str(i) for i in range(after + 1, upper + 1))
        cmd = ["sacct", "-P", "-n", "-X", "--units=M", "-j", ids, "-o", ",".join(SACCT_FIELDS)]
        rows = []
        for line in _run(cmd).stdout.splitlines():
            parts = line.split("|")
            if len(parts) == len(SACCT_FIELDS) and parts[1] == name:
                fields = dict(zip(SACCT_FIELDS, parts, strict=True))
                rows.append(
                    SacctRow(
                        job_id=fields["JobID"], job_name=fields["JobName"],
                        state=fields["State"].split(" ", 1)[0], state_raw=fields["State"],
                        exit_code=fields["ExitCode"], elapsed=fields["Elapsed"],
                        max_rss=fields["MaxRSS"], req_mem=fields["ReqMem"],
                        timelimit=fields["Timelimit"], partition=fields["Partition"],
                        start=fields["Start"], end=fields["End"], node_list=fields["NodeList"],
                    )
                )  # fmt: skip
        if sum(r.terminal for r in rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(poll)
