"""The console's SQL (analyst role), beyond what `jobs.cli.review.repository` already has
(one alert's detail, labelling, status counts: the console calls the repository for those).

Every statement is a fixed text with `%s` parameters: a filter picks which fixed fragments
join the WHERE clause, its values travel only as parameters. Functions take a psycopg
connection and return plain dataclasses and tuples.

Indexes: the queue and the overview read `alerts` (tens of thousands of rows); card history
reads `scored_transactions` by card token within an event-time range, which uses the
`event_time` index (there is no index on `card_token`; see the README's console section).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from psycopg.types.json import Jsonb

from jobs.cli.review.repository import STATUSES, AlertSummary
from jobs.console.whatif import HistoryRow, from_ms, to_ms
from models.features import PROFILE_LIFETIME_MS

PAGE_SIZE = 50
MAX_PAGE = 10_000
AGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_FILTER_CHARS = 200


class InvalidFilter(ValueError):
    """A queue filter value the console does not accept (the message names it)."""


@dataclass(frozen=True)
class QueueFilter:
    """The alert queue's filters (None: not filtered) and page (1-based)."""

    status: str | None = "open"
    score_min: float | None = None
    score_max: float | None = None
    age: str | None = None  # a key of AGES: alerts created within that long
    rule: str | None = None  # alerts whose reasons hold RULE:<rule>
    model_version: str | None = None
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> QueueFilter:
        def text(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            if len(value) > MAX_FILTER_CHARS:
                raise InvalidFilter(f"{name} is longer than {MAX_FILTER_CHARS} characters")
            return value or None

        def score(name: str) -> float | None:
            value = text(name)
            if value is None:
                return None
            try:
                number = float(value)
            except ValueError:
                raise InvalidFilter(f"{name} must be a number between 0 and 1") from None
            if not 0.0 <= number <= 1.0:
                raise InvalidFilter(f"{name} must be a number between 0 and 1")
            return number

        status = text("status") or "open"
        if status not in (*STATUSES, "all"):
            raise InvalidFilter(f"status must be one of {', '.join(STATUSES)} or all")
        age = text("age")
        if age is not None and age not in AGES:
            raise InvalidFilter(f"age must be one of {', '.join(AGES)}")
        rule = text("rule")
        if rule is not None and rule.startswith("RULE:"):
            rule = rule[len("RULE:"):]
        try:
            page = int(text("page") or 1)
        except ValueError:
            raise InvalidFilter("page must be a whole number") from None
        return cls(
            status=None if status == "all" else status,
            score_min=score("score_min"), score_max=score("score_max"), age=age,
            rule=rule or None, model_version=text("model"), page=min(max(page, 1), MAX_PAGE),
        )

    def params(self, **changes: Any) -> str:
        """The query string of this filter (with `changes`), for links and paging."""
        f = replace(self, **changes)
        values = {
            "status": f.status or "all", "score_min": f.score_min, "score_max": f.score_max,
            "age": f.age, "rule": f.rule, "model": f.model_version,
            "page": f.page if f.page > 1 else None,
        }
        return urlencode({k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True, slots=True)
class QueueRow(AlertSummary):
    """One row of the console's queue: a `review list` line, plus when the alert was stored
    and its reasons (the columns follow AlertSummary's fields, in that order)."""

    created_at: datetime
    reasons: list[Any]


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    filter: QueueFilter

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _queue_where(f: QueueFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("review_status = %s", f.status),
        ("score >= %s", f.score_min),
        ("score <= %s", f.score_max),
        ("created_at >= now() - %s", AGES[f.age] if f.age else None),
        ("reasons @> %s", Jsonb([{"code": f"RULE:{f.rule}"}]) if f.rule else None),
        ("model_version = %s", f.model_version),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def queue_page(conn: Any, f: QueueFilter) -> QueuePage:
    """One page of the queue, newest event first, and how many alerts match in all."""
    where, params = _queue_where(f)
    total = conn.execute("SELECT count(*) FROM alerts" + where, params).fetchone()[0]
    rows = conn.execute(
        "SELECT transaction_id, card_masked, event_time, amount, merchant, category, score,"
        " model_version, review_status, label, created_at, reasons FROM alerts" + where
        + " ORDER BY event_time DESC, transaction_id LIMIT %s OFFSET %s",
        [*params, PAGE_SIZE, (f.page - 1) * PAGE_SIZE],
    ).fetchall()
    return QueuePage([QueueRow(*r) for r in rows], int(total), f)


def alert_model_versions(conn: Any) -> list[str]:
    """Model versions that raised alerts (for the queue's filter)."""
    rows = conn.execute("SELECT DISTINCT model_version FROM alerts ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def alert_card_token(conn: Any, transaction_id: str) -> str | None:
    row = conn.execute("SELECT card_token FROM alerts WHERE transaction_id = %s",
                       (transaction_id,)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True, slots=True)
class CardEvent:
    """One event of a card's history, for the alert page's timeline."""

    transaction_id: str
    event_time: datetime
    amount: float
    merchant: str
    category: str
    score: float
    decision: str
    distance_km: float | None
    is_late: bool
    review_status: str | None  # None: the event raised no alert
    label: str | None


def card_timeline(conn: Any, card_token: str, around: datetime,
                  before: timedelta = timedelta(days=14), after: timedelta = timedelta(days=1),
                  limit: int = 200) -> list[CardEvent]:
    """The card's scored events from `before` ahead of `around` to `after` it, oldest first
    (at most `limit`, the latest kept), with the review state of those that alerted."""
    rows = conn.execute(
        "SELECT s.transaction_id, s.event_time, s.amount, s.merchant, s.category, s.score,"
        " s.decision, (s.features->>'distance_from_home_km')::float8, s.is_late,"
        " a.review_status, a.label FROM scored_transactions s"
        " LEFT JOIN alerts a ON a.transaction_id = s.transaction_id"
        " WHERE s.card_token = %s AND s.event_time >= %s AND s.event_time <= %s"
        " ORDER BY s.event_time DESC, s.transaction_id LIMIT %s",
        (card_token, around - before, around + after, limit),
    ).fetchall()
    return [CardEvent(*r) for r in reversed(rows)]


# --- what-if: the card's history ---------------------------------------------------------------
_LOCATION_COLUMNS = ("merchant_lat", "merchant_long")
_FIRST_SPAN_MS = 35 * 86_400_000
_WIRE_MIN_MS = 631_152_000_000  # 1990-01-01: the wire contract's earliest event time


def has_location_columns(conn: Any) -> bool:
    """True when scored_transactions stores merchant coordinates (migration 007; see
    `whatif`). The console asks once, at its first what-if."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'scored_transactions'"
        " AND column_name = ANY(%s)", (list(_LOCATION_COLUMNS),)).fetchall()
    return len(rows) == len(_LOCATION_COLUMNS)


def card_history(conn: Any, card_token: str, until_ms: int, located: bool) -> list[HistoryRow]:
    """The card's stored events at or before `until_ms` that can still shape its state.

    The state forgets everything before a gap of `PROFILE_LIFETIME_MS` (30 days), so the read
    goes back slice by slice: first the 35 days up to `until_ms`, then each time the 30 days
    before the earliest event found, until a slice is empty (that gap resets the card) or
    1990 is reached. Each read is a range on the event_time index, so a card's long history
    costs one short range per month of it rather than one wide scan.
    """
    columns = ", merchant_lat, merchant_long" if located else ", NULL::float8, NULL::float8"
    sql = ("SELECT transaction_id, event_time, amount, merchant, category, source_offset,"
           " is_late" + columns + " FROM scored_transactions"
           " WHERE card_token = %s AND event_time > %s AND event_time <= %s")
    history: list[HistoryRow] = []
    start, end = until_ms - _FIRST_SPAN_MS, until_ms
    while True:
        rows = conn.execute(sql, (card_token, from_ms(start), from_ms(end))).fetchall()
        if not rows:
            return history
        history.extend(HistoryRow(r[0], to_ms(r[1]), float(r[2]), r[3], r[4], r[5],
                                  bool(r[6]), r[7], r[8]) for r in rows)
        earliest = min(h.event_time_ms for h in history)
        if earliest - PROFILE_LIFETIME_MS >= start or start <= _WIRE_MIN_MS:
            return history  # nothing older is within 30 days of the earliest event
        start, end = earliest - PROFILE_LIFETIME_MS, start


# --- overview ----------------------------------------------------------------------------------
def alerts_per_hour(conn: Any, hours: int = 48) -> list[tuple[datetime, int]]:
    """Alerts written per hour (by the time the job wrote them) over the last `hours`."""
    return [tuple(r) for r in conn.execute(
        "SELECT date_trunc('hour', created_at) AS h, count(*) FROM alerts"
        " WHERE created_at >= now() - %s GROUP BY h ORDER BY h",
        (timedelta(hours=hours),)).fetchall()]


@dataclass(frozen=True, slots=True)
class ModelReview:
    """Alerts of one model version and what reviewers said of them."""

    model_version: str
    alerts: int
    labelled: int
    fraud: int
    mean_score: float
    first_alert: datetime
    last_alert: datetime

    @property
    def precision(self) -> float | None:
        return self.fraud / self.labelled if self.labelled else None


def review_by_model(conn: Any) -> list[ModelReview]:
    rows = conn.execute(
        "SELECT model_version, count(*), count(label), count(*) FILTER (WHERE label = 'fraud'),"
        " avg(score), min(created_at), max(created_at) FROM alerts"
        " GROUP BY model_version ORDER BY max(created_at) DESC").fetchall()
    return [ModelReview(r[0], r[1], r[2], r[3], float(r[4]), r[5], r[6]) for r in rows]


def dead_letters_by_reason(conn: Any, limit: int = 15) -> list[tuple[str, int, datetime]]:
    return [tuple(r) for r in conn.execute(
        "SELECT reason, count(*), max(rejected_at) FROM rejected_events"
        " GROUP BY reason ORDER BY count(*) DESC, reason LIMIT %s", (limit,)).fetchall()]


def shadow_summary(conn: Any) -> list[tuple[Any, ...]]:
    """Per challenger and champion: events, mean scores, alerts of each, last scored."""
    if not _table_exists(conn, "shadow_scores"):
        return []
    return [tuple(r) for r in conn.execute(
        "SELECT challenger_version, champion_version, count(*), avg(champion_score),"
        " avg(challenger_score), count(*) FILTER (WHERE champion_alert),"
        " count(*) FILTER (WHERE challenger_alert), max(scored_at) FROM shadow_scores"
        " GROUP BY 1, 2 ORDER BY max(scored_at) DESC").fetchall()]


def feature_drift(conn: Any, limit: int = 100) -> tuple[list[str], list[tuple]] | None:
    """The `feature_drift` table's latest rows (columns as the table has them), or None when
    there is no such table. Its layout belongs to whoever writes it: shown as it is."""
    if not _table_exists(conn, "feature_drift"):
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM feature_drift ORDER BY 1 DESC LIMIT %s", (limit,))
        columns = [d.name for d in cur.description or ()]
        return columns, [tuple(r) for r in cur.fetchall()]


def _table_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                        (f"public.{name}",)).fetchone()[0]
