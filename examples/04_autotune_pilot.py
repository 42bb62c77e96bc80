"""Seed example 4: a pilot on a sample picks time_min/mem_gb/cpus_per_task, then the full run.

The work is self-contained: each command sleeps a known time and touches a known amount of
memory, so the pilot's measurements can be checked by eye against the truth.
"""

import sys
import warnings

from paracore import gather, show_report
from paracore.api import autotune_from_pilot, map_cmds

# (seconds, MB) per item: the truth the pilot should find
WORK = [(1, 60), (2, 120), (1, 90), (3, 200), (2, 150), (1, 80)]


def command(seconds: int, mb: int) -> str:
    """A task that touches ``mb`` MB of memory, then sleeps ``seconds``."""
    return (
        f'{sys.executable} -c "import time; b = bytearray({mb} * 2**20); '
        f'b[::4096] = bytes(len(range(0, len(b), 4096))); time.sleep({seconds})"'
    )


def main() -> None:
    cmds = [command(s, mb) for s, mb in WORK]
    with warnings.catch_warnings():  # the report below shows every warning
        warnings.simplefilter("ignore")
        suggest = autotune_from_pilot(
            sample_cmds_or_items=cmds,
            runner="cmds",
            sample_size=4,
            seed=1,
            partition="compute",
            cpus_per_task_guess=1,
            mem_gb_guess=2,
            time_min_guess=5,
            job_name="pilot",
        )
    rec = suggest.recommendation
    show_report(rec)
    print(f"pilot measured {len(rec.succeeded)} tasks; peak {rec.memory.max:.0f} MB")
    print(f"suggest: {dict(suggest)} (finer memory: {rec.mem})")

    jobs = map_cmds(cmds, partition="compute", job_name="full-run", **suggest)
    results = gather(jobs, timeout=900)
    done = sum(r.returncode == 0 for r in results)
    print(f"full run: {done} of {len(cmds)} tasks completed with {dict(suggest)}")


if __name__ == "__main__":
    main()
