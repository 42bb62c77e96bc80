"""Show a pilot's evidence: a terminal table (rich) and, with the ``plot`` extra, a PNG.

:func:`report_table` builds the rich renderable, :func:`show_report` prints it, and
:func:`plot_report` draws the distributions of durations and peak memory with p95 and the
recommended limits marked (needs ``pip install 'paracore[plot]'``, i.e. matplotlib).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from paracore.core.autotune import Recommendation


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def report_table(rec: Recommendation) -> Group:
    """The report as a rich renderable: per-task measurements, statistics, recommendation."""
    slow = {id(t) for t in rec.over_time_limit}
    spikes = {id(t) for t in rec.spikes}
    p95 = rec.duration.p95 if rec.duration else None
    limits = rec.limits
    title = (
        f"pilot: {len(rec.succeeded)} of {len(rec.tasks)} tasks measured "
        f"({rec.requested_size} requested, from {rec.population} items, seed {rec.seed}, "
        f"{rec.backend or 'backend ?'}"
        + (f", partition {limits.name}" if limits and limits.name != rec.backend else "")
        + ")"
    )
    tasks = Table(title=title, title_justify="left", show_lines=False)
    tasks.add_column("item", justify="right")
    tasks.add_column("job")
    tasks.add_column("state")
    tasks.add_column("time s", justify="right")
    tasks.add_column("peak MB", justify="right")
    tasks.add_column("note")
    tasks.add_column("payload", overflow="ellipsis", max_width=48, no_wrap=True)
    for t in sorted(rec.tasks, key=lambda t: (t.duration_s is None, t.duration_s or 0)):
        notes = []
        style = ""
        if not t.ok:
            notes.append(t.error or "left out")
            style = "red"
        if t.attempts > 1:
            notes.append(f"attempt {t.attempts}, {t.time_limit_min} min")
        if p95 is not None and t.ok and (t.duration_s or 0) > p95:
            notes.append("above p95")
        if id(t) in slow:
            notes.append("over the time limit")
            style = style or "yellow"
        if id(t) in spikes:
            notes.append("memory spike")
            style = style or "yellow"
        tasks.add_row(
            str(t.index),
            t.job_id,
            t.state,
            _num(t.duration_s),
            _num(t.max_rss_mb),
            "; ".join(notes),
            t.label,
            style=style or None,
        )

    stats = Table(title="statistics over the measured tasks", title_justify="left")
    stats.add_column("")
    for column in ("n", "min", "p50", "p95", "max"):
        stats.add_column(column, justify="right")
    for name, s in (("time s", rec.duration), ("peak MB", rec.memory)):
        if s is not None:
            stats.add_row(name, str(s.n), *(_num(v) for v in (s.min, s.p50, s.p95, s.max)))
    if rec.memory is None:
        stats.add_row("peak MB", "-", "-", "-", "-", "not measured")

    out = Table(title="recommendation", title_justify="left")
    out.add_column("keyword", style="bold")
    out.add_column("value", justify="right", style="bold green")
    out.add_column("how")
    how = dict(rec.formulas)
    for key, value in rec.as_dict().items():
        out.add_row(key, "-" if value is None else str(value), how.get(key, ""))
    out.add_row("mem (finer)", rec.mem, how.get("mem", ""))
    if limits is not None:
        out.add_row(
            "limits",
            "",
            f"MaxTime {_minutes(limits.max_time_min)}, node {limits.node_mem_mb} MB, "
            f"{limits.node_cpus} CPUs/node, {limits.total_cpus} CPUs",
        )
    parts: list[Any] = [tasks, stats, out]
    for message in rec.warnings:
        parts.append(Text(f"warning: {message}", style="yellow"))
    return Group(*parts)


def show_report(rec: Recommendation | Any, console: Console | None = None) -> None:
    """Print the pilot's report (accepts a Recommendation or what autotune_from_pilot returned)."""
    rec = getattr(rec, "recommendation", rec)
    (console or Console(width=140)).print(report_table(rec))


def plot_report(rec: Recommendation | Any, path: str | Path) -> Path:
    """Write a PNG of the duration and peak-memory distributions, p95 and the limits marked.

    Needs matplotlib: ``pip install 'paracore[plot]'``.
    """
    rec = getattr(rec, "recommendation", rec)
    if rec.duration is None:
        raise ValueError("plot_report needs at least one measured task")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the extra
        raise ImportError("plot_report needs matplotlib: pip install 'paracore[plot]'") from err
    ok = sorted(rec.succeeded, key=lambda t: t.duration_s or 0)
    with_peak = [t for t in ok if t.max_rss_mb is not None]
    panels = 2 if with_peak and rec.memory is not None else 1
    height = 2.2 + 0.28 * min(len(ok), 40)
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, height), squeeze=False)
    d = rec.duration
    _panel(
        axes[0][0],
        [(t, float(t.duration_s or 0)) for t in ok],
        f"wall time of {len(ok)} pilot tasks",
        "seconds",
        [
            (d.p50, f"p50 {d.p50:.1f} s", "#9e9ac8", ":"),
            (d.p95, f"p95 {d.p95:.1f} s", "#e6550d", "--"),
            (
                rec.time_min * 60.0,
                f"limit time_min={rec.time_min}: {rec.time_min * 60} s",
                "#31a354",
                "-",
            ),
        ],
    )
    m = rec.memory
    if panels == 2 and m is not None:
        fine = _mem_mb(rec.mem)
        _panel(
            axes[0][1],
            [(t, float(t.max_rss_mb or 0)) for t in sorted(with_peak, key=lambda t: t.max_rss_mb)],
            f"peak memory (MaxRSS) of {len(with_peak)} tasks",
            "MB",
            [
                (m.p95, f"p95 {m.p95:.0f} MB", "#e6550d", "--"),
                (m.max, f"max {m.max:.0f} MB (what mem follows)", "#756bb1", ":"),
                (fine, f"mem={rec.mem} ({fine:.0f} MB, finer)", "#31a354", "-"),
                (
                    rec.mem_gb * 1024.0,
                    f"mem_gb={rec.mem_gb} ({rec.mem_gb * 1024} MB)",
                    "#006d2c",
                    "-.",
                ),
            ],
        )
    fig.suptitle(
        f"paracore pilot on {rec.backend or '?'}: {len(ok)} of {len(rec.tasks)} tasks measured, "
        f"seed {rec.seed}, margin x{rec.factor}",
        fontsize=11,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panel(ax: Any, rows: list[tuple[Any, float]], title: str, unit: str, marks: list[Any]) -> None:
    """One horizontal bar per task (sorted), with vertical lines for statistics and limits."""
    values = [v for _t, v in rows]
    for x, label, color, style in marks:
        ax.axvline(x, color=color, linestyle=style, linewidth=2, label=label, zorder=3)
    if len(rows) <= 40:
        ax.barh(range(len(rows)), values, color="#9ecae1", edgecolor="#3182bd", height=0.7)
        ax.set_yticks(range(len(rows)), [f"item {t.index}" for t, _v in rows], fontsize=8)
    else:  # many tasks: a histogram reads better than a bar per task
        ax.hist(values, bins=30, color="#9ecae1", edgecolor="#3182bd")
        ax.set_ylabel("tasks")
    ax.set_xlim(0, max([*values, *(m[0] for m in marks)]) * 1.05)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def _minutes(value: int | None) -> str:
    return "unlimited" if value is None else f"{value} min"


def _mem_mb(text: str) -> float:
    return float(text[:-1]) * (1024 if text.endswith("G") else 1)
