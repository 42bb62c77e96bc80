"""What Slurm's accounting says about jobs: one batched ``sacct`` call, parsed purely.

A job's own row carries its state, exit code, reason, elapsed time and limits; peak memory
(MaxRSS) appears only on step rows (``.batch``, ``.0``), so a record takes the largest over
its steps. A job can take a few seconds to appear after ``sbatch``: absence from the answer
is "not yet known", never "lost".
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from paracore.backends.slurm.commands import Runner, run_command
from paracore.core.units import int_or_none, parse_elapsed, parse_memory, parse_rss, parse_walltime
from paracore.errors import SpecError

SACCT_FIELDS: tuple[str, ...] = (
    "JobID",
    "JobName",
    "State",
    "ExitCode",
    "Reason",
    "Elapsed",
    "MaxRSS",
    "ReqMem",
    "Timelimit",
    "Partition",
    "NodeList",
    "AllocCPUS",
    "Start",
    "End",
)


# States after which a job will not change any more.
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


@attrs.frozen
class JobRecord:
    """One job (or array task) as sacct reports it, steps folded in."""

    job_id: str
    name: str
    state: str  # first word: "CANCELLED by 0" -> "CANCELLED"
    state_raw: str
    exit_code: int | None
    exit_signal: int | None
    reason: str
    elapsed_s: int | None
    max_rss_kb: int | None  # largest over the job's steps; None before any step reported
    req_mem_mb: int | None
    time_limit_min: int | None  # None for UNLIMITED / Partition_Limit
    partition: str
    nodes: str
    alloc_cpus: int | None
    start: str
    end: str
    step_states: tuple[str, ...] = ()  # first words of the steps' states (.batch, .0, ...)

    @property
    def terminal(self) -> bool:
        """True once the job will not change state again."""
        return self.state in TERMINAL_STATES

    @property
    def max_rss_mb(self) -> float | None:
        """Peak resident memory over the job's steps, in MB."""
        return None if self.max_rss_kb is None else self.max_rss_kb / 1024


def _exit(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    try:
        return int(code), int(signal or 0)
    except ValueError:
        return None, None


def _elapsed(text: str) -> int | None:
    try:
        return parse_elapsed(text) if text.strip() else None
    except SpecError:
        return None


def _rss(text: str) -> int | None:
    try:
        return parse_rss(text)
    except SpecError:
        return None


def _req_mem(text: str) -> int | None:
    """``ReqMem`` in MB: ``512M``, ``2G`` (older Slurm: ``512Mn`` per node, ``512Mc`` per cpu)."""
    text = text.strip().removesuffix("n").removesuffix("c")
    if not text:
        return None
    try:
        return parse_memory(text if text[-1].isalpha() else text + "M")
    except SpecError:
        return None


def _time_limit(text: str) -> int | None:
    try:
        return parse_walltime(text) if text and text[0].isdigit() else None
    except SpecError:
        return None


def _expand(job_id: str) -> list[str]:
    """``12_[0-3,7%2]`` (pending array tasks) -> ``12_0 .. 12_3, 12_7``; others unchanged."""
    if "_[" not in job_id:
        return [job_id]
    base, _, rest = job_id.partition("_[")
    ids = []
    for part in rest.rstrip("]").split("%")[0].split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ids += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return ids


def parse_sacct(text: str) -> dict[str, JobRecord]:
    """Records by job id (``123`` or ``123_4``) from ``sacct -P -n -o <SACCT_FIELDS>`` output."""
    jobs: dict[str, dict[str, str]] = {}
    rss: dict[str, int] = {}
    steps: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, parts, strict=True))
        job_id, _, step = row["JobID"].partition(".")
        if step:
            step_state = row["State"].split()
            if step_state:
                steps.setdefault(job_id, []).append(step_state[0])
            value = _rss(row["MaxRSS"])
            if value is not None:
                rss[job_id] = max(rss.get(job_id, 0), value)
            continue
        for one in _expand(job_id):
            jobs[one] = row
    records = {}
    for job_id, row in jobs.items():
        code, signal = _exit(row["ExitCode"])
        state_raw = row["State"].strip()
        records[job_id] = JobRecord(
            job_id=job_id,
            name=row["JobName"],
            state=state_raw.split()[0] if state_raw else "UNKNOWN",
            state_raw=state_raw,
            exit_code=code,
            exit_signal=signal,
            reason=row["Reason"].strip(),
            elapsed_s=_elapsed(row["Elapsed"]),
            max_rss_kb=rss.get(job_id),
            req_mem_mb=_req_mem(row["ReqMem"]),
            time_limit_min=_time_limit(row["Timelimit"].strip()),
            partition=row["Partition"],
            nodes=row["NodeList"],
            alloc_cpus=int_or_none(row["AllocCPUS"]),
            start=row["Start"],
            end=row["End"],
            step_states=tuple(steps.get(job_id, ())),
        )
    return records


def sacct_command(job_ids: Iterable[str]) -> list[str]:
    """One sacct call for all the jobs (array tasks are asked for by their array id)."""
    wanted = sorted({str(j).split("_")[0] for j in job_ids})
    return ["sacct", "-P", "-n", "-o", ",".join(SACCT_FIELDS), "-j", ",".join(wanted)]


def query_jobs(job_ids: Iterable[str], run: Runner = run_command) -> dict[str, JobRecord]:
    """Records for the given jobs from one sacct call; jobs sacct does not know yet are absent."""
    ids = list(job_ids)
    if not ids:
        return {}
    return parse_sacct(run(sacct_command(ids)))


def parse_squeue(text: str) -> dict[str, str]:
    """Job id -> state from ``squeue -h -r -o '%i|%T'`` (array tasks one per line)."""
    queued: dict[str, str] = {}
    for line in text.splitlines():
        job_id, bar, state = line.strip().partition("|")
        if bar and job_id:
            queued[job_id] = state.strip()
    return queued


def query_queue(user: str, run: Runner = run_command) -> dict[str, str]:
    """Every job of ``user`` still in the queue, in one squeue call (array tasks expanded)."""
    return parse_squeue(run(["squeue", "-h", "-r", "-u", user, "-o", "%i|%T"]))
