"""Analyst review of alerts in Postgres: list, show, label, export labels for retraining.

`ReviewRepository` wraps one psycopg 3 connection opened as the ANALYST role, which may only
SELECT alerts and UPDATE its review columns (review_status, label, reviewer, review_note,
reviewed_at). Every statement is parameterised; identifiers are fixed in this module.

Labels are stored on the alert row itself (the job's upsert never names the review columns,
so a replay cannot overwrite a label); `export_labels` writes them out for retraining.

Time is a parameter: `label(..., at=...)` takes the review time from the caller.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

LABELS = ("fraud", "legit")
STATUSES = ("open", "in_review", "closed")

# Columns a reviewer sees in a list; `show` adds reasons, features and review fields.
_LIST_COLUMNS = (
    "transaction_id, card_masked, event_time, amount, merchant, category, score, "
    "model_version, review_status, label"
)
_SHOW_COLUMNS = (
    "transaction_id, card_masked, event_time, amount, merchant, category, score, threshold, "
    "reasons, features, model_version, is_late, created_at, review_status, label, reviewer, "
    "review_note, reviewed_at"
)
EXPORT_COLUMNS = ("transaction_id", "label", "reviewed_at", "model_version", "score",
                  "event_time")

MAX_NOTE_CHARS = 2000
MAX_REVIEWER_CHARS = 200


class AlertNotFound(LookupError):
    """No alert with that transaction id."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(f"no alert with transaction id {transaction_id!r}")
        self.transaction_id = transaction_id


class InvalidReview(ValueError):
    """A label, status, reviewer or note the review rules reject (message says which)."""


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """One line of `review list`."""

    transaction_id: str
    card_masked: str
    event_time: datetime
    amount: float
    merchant: str
    category: str
    score: float
    model_version: str
    review_status: str
    label: str | None


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """Everything `review show` prints for one alert."""

    transaction_id: str
    card_masked: str
    event_time: datetime
    amount: float
    merchant: str
    category: str
    score: float
    threshold: float
    reasons: list[Any]
    features: Mapping[str, Any]
    model_version: str
    is_late: bool
    created_at: datetime
    review_status: str
    label: str | None
    reviewer: str | None
    review_note: str | None
    reviewed_at: datetime | None


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What `label` changed: the previous label (None if it was unlabelled) and the new one."""

    transaction_id: str
    previous_label: str | None
    label: str
    reviewer: str
    reviewed_at: datetime


def validate_status(status: str | None) -> str | None:
    """`None` means every status; anything else must be one of `STATUSES`."""
    if status is None or status == "all":
        return None
    if status not in STATUSES:
        raise InvalidReview(f"status must be one of {', '.join(STATUSES)} or all, not {status!r}")
    return status


def validate_label(label: str) -> str:
    if label not in LABELS:
        raise InvalidReview(f"label must be fraud or legit, not {label!r}")
    return label


def validate_reviewer(reviewer: str | None) -> str:
    name = (reviewer or "").strip()
    if not name:
        raise InvalidReview("reviewer is empty: pass --reviewer or set FRAUDSTREAM_REVIEWER")
    if len(name) > MAX_REVIEWER_CHARS:
        raise InvalidReview(f"reviewer longer than {MAX_REVIEWER_CHARS} characters")
    return name


def validate_note(note: str | None) -> str | None:
    if note is None:
        return None
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidReview(f"note longer than {MAX_NOTE_CHARS} characters")
    return note


class ReviewRepository:
    """Review operations over one psycopg connection (analyst role in production).

    Works on autocommit and transactional connections alike: reads end their transaction,
    `label` runs in its own transaction block, so a label is durable when the call returns.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def list_alerts(self, *, status: str | None = "open", limit: int = 20) -> list[AlertSummary]:
        """Most recent alerts first (by event time), optionally only one review status."""
        status = validate_status(status)
        if limit < 1:
            raise InvalidReview("limit must be at least 1")
        sql = f"SELECT {_LIST_COLUMNS} FROM alerts"  # noqa: S608 - fixed column list
        params: list[Any] = []
        if status is not None:
            sql += " WHERE review_status = %s"
            params.append(status)
        sql += " ORDER BY event_time DESC, transaction_id LIMIT %s"
        params.append(limit)
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        self._conn.rollback()  # end the read transaction; nothing to keep
        return [AlertSummary(*row) for row in rows]

    def count_by_status(self) -> dict[str, int]:
        """How many alerts are in each review status (statuses with none are 0)."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT review_status, count(*) FROM alerts GROUP BY review_status")
            found = dict(cur.fetchall())
        self._conn.rollback()
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def get(self, transaction_id: str) -> AlertDetail:
        """One alert with reasons and feature snapshot; `AlertNotFound` if there is none."""
        with self._conn.cursor() as cur:
            cur.execute(
                f"SELECT {_SHOW_COLUMNS} FROM alerts WHERE transaction_id = %s",  # noqa: S608
                (transaction_id,),
            )
            row = cur.fetchone()
        self._conn.rollback()
        if row is None:
            raise AlertNotFound(transaction_id)
        return AlertDetail(*row)

    def label(
        self,
        transaction_id: str,
        label: str,
        *,
        reviewer: str,
        at: datetime,
        note: str | None = None,
    ) -> LabelResult:
        """Label an alert fraud or legit and close it; relabelling overwrites (and says so).

        Raises `AlertNotFound` (nothing changed) or `InvalidReview` before touching the table.
        """
        label = validate_label(label)
        reviewer = validate_reviewer(reviewer)
        note = validate_note(note)
        if at.tzinfo is None:
            raise InvalidReview("review time must be timezone-aware")
        # One transaction (also on an autocommit connection): the row lock makes the
        # previous label we report the one we replace.
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                "SELECT label FROM alerts WHERE transaction_id = %s FOR UPDATE",
                (transaction_id,),
            )
            row = cur.fetchone()
            if row is None:
                raise AlertNotFound(transaction_id)  # leaves the block: rolled back
            cur.execute(
                "UPDATE alerts SET review_status = 'closed', label = %s, reviewer = %s, "
                "review_note = %s, reviewed_at = %s WHERE transaction_id = %s",
                (label, reviewer, note, at, transaction_id),
            )
        return LabelResult(transaction_id, row[0], label, reviewer, at)

    def export_labels(self, out: IO[str]) -> int:
        """Write every labelled alert as CSV (`EXPORT_COLUMNS`, header first); return rows.

        Ordered by review time so a retraining run can cut at a date.
        """
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT transaction_id, label, reviewed_at, model_version, score, event_time "
                "FROM alerts WHERE label IS NOT NULL ORDER BY reviewed_at, transaction_id"
            )
            for tx_id, label, reviewed_at, model_version, score, event_time in cur:
                writer.writerow(
                    (
                        tx_id,
                        label,
                        reviewed_at.isoformat() if reviewed_at else "",
                        model_version,
                        repr(float(score)),
                        event_time.isoformat(),
                    )
                )
                count += 1
        self._conn.rollback()
        return count
