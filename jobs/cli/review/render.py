"""What `fraudstream review` prints: the alert list table and one alert's detail (pure: rows in,
rich renderables out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from jobs.cli.alerts_follow import format_time
from jobs.cli.review.repository import AlertDetail, AlertSummary


def summary_table(rows: list[AlertSummary], width: int = 200) -> Table:
    """The `review list` table for a terminal `width` columns wide (masked card only).

    The id is what an analyst copies into `review show`, so it is never wrapped or cut.
    Columns that do not fit the width are left out (event time, category, merchant last;
    `review show` has everything) rather than squeezed into unreadable slivers.
    """
    show_review = len({r.review_status for r in rows}) > 1 or any(r.label for r in rows)
    columns: list[tuple[str, list[str], str]] = [
        ("transaction id", [escape(r.transaction_id) for r in rows], "left"),
        ("card", [r.card_masked for r in rows], "left"),
        ("amount", [f"{r.amount:,.2f}" for r in rows], "right"),
        ("score", [f"{r.score:.3f}" for r in rows], "right"),
    ]
    optional = [
        ("event time (UTC)",
         [r.event_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for r in rows], "left"),
        ("category", [escape(r.category) for r in rows], "left"),
        ("merchant", [escape(r.merchant) for r in rows], "left"),
    ]
    # A list of one status with no labels needs no review column; otherwise it is essential.
    if show_review:
        columns.append(("review", [r.review_status + (f": {r.label}" if r.label else "")
                                   for r in rows], "left"))

    def needed(cols: list[tuple[str, list[str], str]]) -> int:
        # box=None: columns are separated by their padding, two spaces.
        return sum(max(len(h), *(len(v) for v in vals)) + 2 for h, vals, _ in cols)

    for column in optional:
        if needed([*columns, column]) <= width:
            columns.append(column)
    table = Table(box=None, header_style="bold underline", pad_edge=False)
    for header, _, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for i in range(len(rows)):
        table.add_row(*(vals[i] for _, vals, _ in columns))
    return table


def detail_renderables(d: AlertDetail) -> list[Any]:
    """Panel of facts, reasons table and feature table for `review show`."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key, value in (
        ("transaction id", d.transaction_id),
        ("card", d.card_masked),
        ("event time", format_at(d.event_time) + (" (late)" if d.is_late else "")),
        ("amount", f"{d.amount:,.2f}"),
        ("merchant", d.merchant),
        ("category", d.category),
        ("score / threshold", f"{d.score:.4f} / {d.threshold:.4f}"),
        ("model", d.model_version),
        ("alerted at", format_at(d.created_at)),
        ("review status", d.review_status),
        ("label", d.label or "-"),
        ("reviewer", d.reviewer or "-"),
        ("reviewed at", format_at(d.reviewed_at)),
        ("note", d.review_note or "-"),
    ):
        facts.add_row(key, escape(str(value)))
    reasons = Table(title="reasons", header_style="bold")
    columns = ("code", "feature", "value", "direction", "contribution", "share")
    for col in columns:  # the names stay whole in a narrow terminal; the numbers give way
        reasons.add_column(col, no_wrap=col in ("code", "feature"))
    for item in d.reasons or []:
        if isinstance(item, dict):
            reasons.add_row(*(escape(_cell(item.get(c), short=c in ("contribution", "share")))
                              for c in columns))
        else:
            reasons.add_row(escape(str(item)), *([""] * (len(columns) - 1)))
    features = Table(title="feature snapshot", header_style="bold")
    features.add_column("feature")
    features.add_column("value", justify="right")
    for name, value in sorted((d.features or {}).items()):
        features.add_row(escape(name), _cell(value))
    return [Panel(facts, title=f"alert {escape(d.transaction_id)}"), reasons, features]


def _cell(value: Any, short: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if short else f"{value:.6g}"
    return str(value)


def format_at(at: datetime | None) -> str:
    """A review timestamp as the alert views print it; "-" when there is none."""
    return format_time(at) if at is not None else "-"
