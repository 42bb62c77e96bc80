"""Autotune against the real Slurm: a pilot of known work, then the full run with its advice."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from paracore import autotune_from_pilot, gather, map_cmds, plot_report, show_report
from paracore.core.autotune import percentile

PY = sys.executable

# (seconds, MB) per item: the truth. A long-ish tail in time, a spike in memory.
TRUTH = [(2, 60), (3, 100), (2, 80), (4, 120), (3, 90), (9, 300)]


def command(seconds: int, mb: int) -> str:
    """A task that touches ``mb`` MB of memory, then sleeps ``seconds``."""
    return (
        f'{PY} -c "import time; b = bytearray({mb} * 2**20); '
        f'b[::4096] = bytes(len(range(0, len(b), 4096))); time.sleep({seconds})"'
    )


@pytest.mark.slurm
def test_pilot_measures_known_work_and_its_advice_runs_the_full_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """sacct-measured durations and peaks match the truth; the advice covers p95 and the peak
    with the 1.3 margin, and map_cmds(**suggest) runs every task without TIMEOUT or OOM."""
    monkeypatch.chdir(tmp_path)
    cmds = [command(s, mb) for s, mb in TRUTH]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suggest = autotune_from_pilot(
            cmds,
            runner="cmds",
            sample_size=6,
            seed=11,
            partition="short",
            cpus_per_task_guess=1,
            mem_gb_guess=1,
            time_min_guess=4,
            job_name="autotune-it",
        )
    rec = suggest.recommendation
    assert rec.backend == "slurm" and rec.limits.name == "short"
    assert len(rec.tasks) == 6 and all(t.ok and t.source == "sacct" for t in rec.tasks)
    for task in rec.tasks:
        seconds, mb = TRUTH[task.index]
        assert seconds <= task.duration_s <= seconds + 15, task
        assert 0.95 * mb <= task.max_rss_mb <= mb + 250, task
    true_p95 = percentile([s for s, _ in TRUTH], 95)
    true_peak = max(mb for _, mb in TRUTH)
    assert rec.time_min * 60 >= true_p95 * 1.3
    assert rec.mem_gb * 1024 >= true_peak * 1.3
    assert int(rec.mem[:-1]) >= true_peak * 1.3  # the finer memory covers it too
    assert rec.time_min <= 5  # the partition's MaxTime
    assert any("memory spike" in str(w.message) for w in caught)

    show_report(rec, Console(file=sys.stdout, width=140))
    png = plot_report(rec, tmp_path / "autotune-report.png")
    assert png.stat().st_size > 10_000
    if os.environ.get("PARACORE_AUTOTUNE_PNG"):  # how docs/img/autotune-report.png is made
        shutil.copy(png, os.environ["PARACORE_AUTOTUNE_PNG"])
    print(capsys.readouterr().out)

    jobs = map_cmds(cmds, partition="short", job_name="autotune-full", **suggest)
    results = gather(jobs, timeout=900)
    assert [r.returncode for r in results] == [0] * len(cmds)

    # the finer memory is enough too: the biggest task under rec.mem, enforced by Slurm
    big = max(range(len(TRUTH)), key=lambda i: TRUTH[i][1])
    (tight,) = map_cmds([cmds[big]], partition="short", job_name="autotune-tight",
                        **{**suggest, "mem_gb": rec.mem})  # fmt: skip
    assert tight.result(timeout=600).returncode == 0
