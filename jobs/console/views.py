"""What the pages draw, computed in Python (pure): reason bars, the card timeline and the
hourly alert chart as SVG geometry, and the template filters. The templates only place it.

Charts are inline SVG with presentation attributes (no inline styles, no JavaScript), so the
Content-Security-Policy can forbid both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.console.queries import CardEvent
from models import reasons as _reasons
from models.features import FEATURE_DESCRIPTIONS, FEATURE_NAMES

# Reason code -> what it means (the codes of every group, also its high/low variants).
REASON_TEXT: dict[str, str] = {
    **{g.code: g.description for g in _reasons.REASON_GROUPS},
    **getattr(_reasons, "REASON_DESCRIPTIONS", {}),
}
_ONE_HOT = {n for n in FEATURE_NAMES if n.startswith("category_") and n != "category_is_new"}
BAR_WIDTH = 320


@dataclass(frozen=True, slots=True)
class ReasonBar:
    code: str
    feature: str
    value: float | None
    contribution: float | None
    share: float  # of the evidence, 0..1 (see `reason_bars`)
    width: int  # px of BAR_WIDTH
    text: str
    is_rule: bool


def reason_bars(reasons: Sequence[Any]) -> list[ReasonBar]:
    """Each reason's share of the model's evidence: the `share` the reason carries (alerts
    v2: of the row's log-odds above the all-median row), else its positive log-odds
    contribution over the sum of the listed reasons' ones. Analyst rules (`RULE:<name>`, no
    contribution) get no bar."""
    items = [r for r in reasons or () if isinstance(r, dict)]
    positive = sum(max(float(r.get("contribution") or 0.0), 0.0) for r in items)
    bars = []
    for r in items:
        code = str(r.get("code", ""))
        contribution = r.get("contribution")
        if isinstance(r.get("share"), int | float):
            share = min(max(float(r["share"]), 0.0), 1.0)
        elif contribution and positive:
            share = max(float(contribution), 0.0) / positive
        else:
            share = 0.0
        is_rule = code.startswith("RULE:")
        bars.append(ReasonBar(
            code=code, feature=str(r.get("feature") or ""), value=r.get("value"),
            contribution=contribution, share=share, width=round(share * BAR_WIDTH),
            text="analyst rule" if is_rule else REASON_TEXT.get(code, ""), is_rule=is_rule,
        ))
    return bars


def feature_rows(features: dict[str, Any] | None) -> list[tuple[str, Any, str]]:
    """(name, value, description) in the model's feature order, unknown names last; of the
    category one-hot columns only the one that is set."""
    features = features or {}
    known = [(n, features[n], FEATURE_DESCRIPTIONS.get(n, "")) for n in FEATURE_NAMES
             if n in features and not (n in _ONE_HOT and not features[n])]
    extra = [(n, v, "") for n, v in sorted(features.items()) if n not in FEATURE_NAMES]
    return known + extra


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    r: float
    css: str  # class: this / alert / fraud / legit / pass
    title: str
    transaction_id: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    dots: list[Dot]
    ticks: list[tuple[float, str]]  # x, label
    y_ticks: list[tuple[float, str]]


def timeline(events: Sequence[CardEvent], current: str, width: int = 760,
             height: int = 170) -> Timeline:
    """The card's events on a time axis (x) by amount (y, log scale)."""
    pad_l, pad_r, pad_t, pad_b = 52, 14, 10, 26
    if not events:
        return Timeline(width, height, [], [], [])
    t0 = min(e.event_time for e in events)
    t1 = max(e.event_time for e in events)
    span = max((t1 - t0).total_seconds(), 3600.0)
    top = max(math.log10(max(e.amount, 1.0)) for e in events)
    top = max(math.ceil(top), 1)

    def x(at: datetime) -> float:
        return round(pad_l + (at - t0).total_seconds() / span * (width - pad_l - pad_r), 1)

    def y(amount: float) -> float:
        level = math.log10(max(amount, 1.0)) / top
        return round(height - pad_b - level * (height - pad_t - pad_b), 1)

    dots = []
    for e in events:
        if e.transaction_id == current:
            css = "this"
        elif e.label in ("fraud", "legit"):
            css = e.label
        else:
            css = "alert" if e.decision == "alert" else "pass"
        title = (f"{fmt_time(e.event_time)}  ${e.amount:,.2f}  {e.merchant} ({e.category})  "
                 f"score {e.score:.3f}")
        dots.append(Dot(x(e.event_time), y(e.amount), 6.0 if css == "this" else 3.5, css,
                        title, e.transaction_id))
    ticks = [(x(t0 + timedelta(seconds=span * i / 4)),
              (t0 + timedelta(seconds=span * i / 4)).astimezone(UTC).strftime("%m-%d %H:%M"))
             for i in range(5)]
    y_ticks = [(y(10.0**k), f"${10**k:,}") for k in range(0, top + 1)]
    return Timeline(width, height, dots, ticks, y_ticks)


@dataclass(frozen=True)
class HourBars:
    width: int
    height: int
    bars: list[tuple[float, float, float, str]]  # x, y, height, title
    bar_width: float
    peak: int
    first: str
    last: str


def hour_bars(counts: Sequence[tuple[datetime, int]], now: datetime, hours: int = 48,
              width: int = 760, height: int = 120) -> HourBars:
    """One bar per hour over the `hours` up to `now` (hours without alerts are 0)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    slots = [end - timedelta(hours=hours - 1 - i) for i in range(hours)]
    by_hour = {h.astimezone(UTC): n for h, n in counts}
    peak = max([by_hour.get(s, 0) for s in slots] + [1])
    step = width / hours
    bars = []
    for i, slot in enumerate(slots):
        n = by_hour.get(slot, 0)
        h = round(n / peak * (height - 4), 1)
        bars.append((round(i * step, 1), round(height - h, 1), h,
                     f"{slot.strftime('%Y-%m-%d %H:00')} UTC: {n} alert(s)"))
    return HourBars(width, height, bars, round(step * 0.8, 1), peak,
                    slots[0].strftime("%m-%d %H:00"), slots[-1].strftime("%m-%d %H:00"))


def median(values: Sequence[float]) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- template filters ----------------------------------------------------------------------------
def fmt_time(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def fmt_num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return fmt_time(value)
    return str(value)


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


FILTERS = {"time": fmt_time, "money": fmt_money, "num": fmt_num, "pct": fmt_pct}
