"""What the demo shows: the live panel and the closing summary (pure: stats in, rich out)."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from jobs.cli.alerts_follow import event_time, top_reason_codes

LATEST_ALERTS_SHOWN = 6


@dataclass(slots=True)
class DemoStats:
    """What the live view shows; updated by the pollers, rendered by `render_live`."""

    run_id: str
    topic: str
    phase: str = "starting"
    produced: int = 0
    planted_fraud: int = 0
    malformed_sent: int = 0
    scored: int = 0
    scored_rate: float = 0.0  # events/s over the last refresh
    peak_rate: float = 0.0  # highest events/s seen over one refresh
    alerts: int = 0
    fraud_caught: int = 0
    dlq: int = 0
    elapsed_s: float = 0.0
    latest: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=LATEST_ALERTS_SHOWN)
    )


def render_live(stats: DemoStats) -> Group:
    """The live panel: counters on top, the latest alerts with their reasons below."""
    counters = Table.grid(padding=(0, 3))
    for _ in range(4):
        counters.add_column()
    counters.add_row(
        f"[bold]phase[/] {escape(stats.phase)}",
        f"[bold]elapsed[/] {stats.elapsed_s:5.0f} s",
        f"[bold]produced[/] {stats.produced:,}",
        f"[bold]planted fraud[/] {stats.planted_fraud:,}",
    )
    counters.add_row(
        f"[bold]scored[/] {stats.scored:,}",
        f"[bold]events/s[/] {stats.scored_rate:,.0f}",
        f"[bold]alerts[/] {stats.alerts:,} ({stats.fraud_caught:,} fraud)",
        f"[bold]DLQ[/] {stats.dlq:,}",
    )
    latest = Table(title="latest alerts", header_style="bold", expand=True,
                   box=box.SIMPLE_HEAD, pad_edge=False)
    # Fixed-width facts keep their width; the reasons column takes what is left and is cut.
    for name, width in (("event time (UTC)", 16), ("card", 8), ("amount", 9),
                        ("category", 12), ("score", 5)):
        latest.add_column(name, no_wrap=True, min_width=width,
                          justify="right" if name in ("amount", "score") else "left")
    latest.add_column("top reasons", overflow="ellipsis", no_wrap=True, ratio=1)
    for alert in reversed(stats.latest):
        latest.add_row(
            event_time(alert).strftime("%Y-%m-%d %H:%M"),
            alert.card_masked,
            f"{alert.amount:,.2f}",
            escape(alert.category),
            f"{alert.score:.3f}",
            escape(top_reason_codes(alert, 3)),
        )
    return Group(counters, latest)


def summary_lines(stats: DemoStats, log_path: Path, job_seconds: float | None) -> list[str]:
    """The closing summary (rich markup) with the commands to look further."""
    lines = [
        f"[bold]demo run {escape(stats.run_id)}[/] (topic {escape(stats.topic)})",
        f"  produced     {stats.produced:,} transactions, {stats.planted_fraud:,} planted fraud, "
        f"{stats.malformed_sent} malformed",
        f"  scored       {stats.scored:,}"
        + (f" in {job_seconds:.0f} s of job time (JVM start included)" if job_seconds else "")
        + (f", peak {stats.peak_rate:,.0f} events/s" if stats.peak_rate else ""),
        f"  alerts       {stats.alerts:,}",
    ]
    if stats.planted_fraud:
        recall = stats.fraud_caught / stats.planted_fraud
        precision = stats.fraud_caught / stats.alerts if stats.alerts else 0.0
        lines.append(
            f"  caught       {stats.fraud_caught:,} of {stats.planted_fraud:,} planted frauds "
            f"(recall {recall:.1%}, precision {precision:.1%})"
        )
    lines += [
        f"  dead letters {stats.dlq:,}",
        f"  job log      {log_path}",
        "",
        "Look further:",
        "  fraudstream review list               # open alerts in Postgres (analyst role)",
    ]
    if stats.latest:
        lines.append(
            f"  fraudstream review show {escape(stats.latest[-1].transaction_id)}"
            "   # one alert, reasons and features"
        )
    lines.append("  fraudstream alerts --from-beginning   # the alerts topic")
    return lines


def rate_of(samples: Iterable[tuple[float, int]]) -> float:
    """Events per second between the first and last (time s, count) sample; 0 if undefined."""
    points = list(samples)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return 0.0
    return max(0.0, (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]))
