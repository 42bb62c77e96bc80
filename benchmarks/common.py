"""What the benchmarks share: a bare ``sbatch --array`` to compare against, a count of the
scheduler commands a run makes, the machine's description, and a table printer.

Every benchmark runs its contestants one after the other in one run on the same cluster and
prints ratios: absolute times depend on the cluster (the test cluster starts a few array
tasks a second), ratios much less.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

SCHEDULER_COMMANDS = ("sbatch", "sacct", "squeue", "scontrol", "sinfo", "scancel")
"""What a submitting process may run (``srun`` runs inside the jobs, so it is not counted)."""


def machine() -> str:
    """One line describing where the benchmark ran."""
    cores = os.cpu_count()
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    slurm = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{platform.node()}: {cores} cores, {mem_gb:.0f} GiB, {platform.python_implementation()} "
        f"{platform.python_version()}, {slurm or 'no Slurm'}"
    )


def bare_array(folder: Path, tasks: int, body: str, *, name: str, mem: str = "250M") -> float:
    """Seconds for ``sbatch --wait --array=0-(tasks-1)`` of a Python ``body`` (which reads
    ``TASK`` = the array index) to finish every task."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"{name}.py"
    script.write_text("import os\nTASK = int(os.environ['SLURM_ARRAY_TASK_ID'])\n" + body)
    start = time.perf_counter()
    subprocess.run(
        [
            "sbatch", "--wait", "--parsable", f"--array=0-{tasks - 1}", f"--job-name={name}",
            f"--mem={mem}", "--time=10", "--cpus-per-task=1",
            f"--output={folder}/%A_%a.out", f"--wrap={sys.executable} {script}",
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - start


@contextlib.contextmanager
def counted_scheduler_calls(folder: Path) -> Iterator[Counter[str]]:
    """Count every scheduler command run in this process and its children (a PATH shim:
    each command logs its name, then runs the real one)."""
    shims = folder / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    log.write_text("")
    for name in SCHEDULER_COMMANDS:
        real = shutil.which(name)
        if real is None:
            continue
        shim = shims / name
        shim.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec "{real}" "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    counts: Counter[str] = Counter()
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{shims}{os.pathsep}{old}"
    try:
        yield counts
    finally:
        os.environ["PATH"] = old
        counts.update(log.read_text().split())


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A Markdown table (what docs/performance.md holds)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
