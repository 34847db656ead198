"""Postgres reads of the labels-to-model loop (issue 14.3), on a connection the caller opens
as the ANALYST role (SELECT on alerts, scored_transactions and feature_drift is all it needs):

- `read_labels`: analyst labels of alerts (`alerts.label`), optionally within an event-time
  range, with their event and review times;
- `read_rows`: the scored_transactions rows of a window's cards from the history start to
  the window end (`models.training.labels.STORED_COLUMNS`), streamed with a server-side
  cursor, each ready for the join (`StoredRow`);
- `count_labels_after`: labels reviewed after a time (the retrain policy's "new labels");
- `drift_hours`: per hour, the highest PSI of the model version with the latest drift rows
  (None when migration 006's `feature_drift` table is not there).
Parameterised SQL only; identifiers are fixed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from models.training.labels import (
    STORED_COLUMNS,
    AnalystLabel,
    StoredRow,
    from_ms,
    label_value,
    stored_row,
    to_ms,
)
from models.training.retrain_policy import DriftHour

_COLUMNS = ", ".join(STORED_COLUMNS)
_ROWS = f"""
SELECT {_COLUMNS} FROM scored_transactions
WHERE event_time >= %(lo)s AND event_time <= %(hi)s
  AND card_token IN (SELECT DISTINCT card_token FROM scored_transactions
                     WHERE event_time >= %(start)s AND event_time <= %(hi)s)
"""  # noqa: S608 - fixed column list
_LABELS = """
SELECT transaction_id, label, event_time, reviewed_at FROM alerts
WHERE label IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR event_time >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR event_time <= %(until)s::timestamptz)
ORDER BY reviewed_at NULLS FIRST, transaction_id
"""
_DRIFT = """
WITH latest AS (SELECT model_version FROM feature_drift ORDER BY hour DESC LIMIT 1),
per_hour AS (
    SELECT DISTINCT ON (d.hour) d.hour, d.psi, d.feature, d.model_version
    FROM feature_drift d JOIN latest USING (model_version)
    WHERE d.rows >= %(min_rows)s
    ORDER BY d.hour DESC, d.psi DESC, d.feature
)
SELECT hour, psi, feature, model_version FROM per_hour ORDER BY hour DESC LIMIT %(limit)s
"""


def read_labels(conn: Any, since_ms: int | None = None,
                until_ms: int | None = None) -> list[AnalystLabel]:
    """Every labelled alert (in review order) with an event time in [since, until]."""
    params = {"since": None if since_ms is None else from_ms(since_ms),
              "until": None if until_ms is None else from_ms(until_ms)}
    rows = conn.execute(_LABELS, params).fetchall()
    conn.rollback()
    return [AnalystLabel(tid, label_value(label), to_ms(event_time), reviewed_at)
            for tid, label, event_time, reviewed_at in rows]


def read_rows(conn: Any, history_start_ms: int, start_ms: int, end_ms: int,
              batch: int = 20_000) -> Iterator[StoredRow]:
    """Stored rows from `history_start_ms` to `end_ms` of the cards that have a row in
    [start_ms, end_ms] (any order; the join sorts)."""
    params = {"lo": from_ms(history_start_ms), "start": from_ms(start_ms),
              "hi": from_ms(end_ms)}
    with conn.transaction(), conn.cursor(name="fraudstream_label_rows") as cur:
        cur.itersize = batch
        cur.execute(_ROWS, params)
        names = [d.name for d in cur.description]
        for values in cur:
            yield stored_row(dict(zip(names, values, strict=True)))


def count_labels_after(conn: Any, after: datetime | None) -> int:
    """Labels reviewed after `after` (every label when None)."""
    row = conn.execute(
        "SELECT count(*) FROM alerts WHERE label IS NOT NULL"
        " AND (%(after)s::timestamptz IS NULL OR reviewed_at > %(after)s::timestamptz)",
        {"after": after},
    ).fetchone()
    conn.rollback()
    return int(row[0])


def drift_hours(conn: Any, limit: int, min_rows: int) -> tuple[str | None, list[DriftHour]] | None:
    """(model version, its `limit` most recent hours newest first, each with its highest PSI
    over features with at least `min_rows` rows), or None without a feature_drift table."""
    exists = conn.execute("SELECT to_regclass('feature_drift') IS NOT NULL").fetchone()[0]
    if not exists:
        conn.rollback()
        return None
    rows = conn.execute(_DRIFT, {"min_rows": min_rows, "limit": limit}).fetchall()
    conn.rollback()
    version = rows[0][3] if rows else None
    return version, [DriftHour(hour, float(psi), feature) for hour, psi, feature, _ in rows]
