"""Analyst labels joined with the transactions the job scored (issue 14.3): the training rows
of `fraudstream train --labels`.

Where the transactions come from: the job's `scored_transactions` rows. Since migration 007
the job's sink stores every field a `Transaction` has beside the 001 columns (merchant and
home coordinates, city_pop, gender, birth_year, zip, state and the record's ground-truth
`label`), so `transaction_from_row` rebuilds the record exactly (no card number: the token
and the last four digits identify the card; `schema_version` is 1, the only version). Rows
written before 007 have no coordinates: they cannot be rebuilt and are counted, not guessed.

The window: from the earliest to the latest event time of the labelled transactions (or the
caller's `since`/`until`). Every stored row of the window's cards from `history_ms` before its
start is replayed through `models.features.offline_features` in event order (time, card,
transaction id), so the window's first events see the card's recent past as the stream did;
only rows inside the window become training rows.

Truth of a window row (`truth`), best first:
1. the analyst's label (`alerts.label`, or the exported CSV);
2. else the record's own ground truth (`label`, when the producer knew it: generator,
   labelled replay);
3. else, for a row the model passed, legit: fraud that no one reported is invisible here, so
   this under-counts missed fraud for every model compared on these rows alike;
4. else (an alert nobody reviewed, no ground truth) unknown: the row is replayed for the
   features of later rows but is neither trained on nor evaluated.
Pure: no SQL, no clock (`connectors.label_store` reads the rows and labels).
"""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, PROFILE_LIFETIME_MS, offline_features
from models.training.dataset import DatasetError, FeatureTable, event_order_key
from schemas.transaction import Transaction

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
DEFAULT_HISTORY_MS = PROFILE_LIFETIME_MS + 5 * 86_400_000  # a card idle 30 days starts afresh

# What the rebuild reads of a scored_transactions row (every one is a column the job writes).
STORED_COLUMNS: tuple[str, ...] = (
    "transaction_id", "card_token", "card_last4", "event_time", "amount", "merchant",
    "category", "merchant_lat", "merchant_long", "home_lat", "home_long", "city_pop",
    "gender", "birth_year", "zip", "state", "label", "decision",
)
_REQUIRED_AFTER_007 = ("merchant_lat", "merchant_long", "home_lat", "home_long", "city_pop")

TRUTH_ANALYST = "analyst label"
TRUTH_RECORD = "record's ground truth"
TRUTH_PASSED_LEGIT = "passed, taken as legit"
TRUTH_UNKNOWN = "unreviewed alert, no ground truth"
TRUTH_ORDER = (TRUTH_ANALYST, TRUTH_RECORD, TRUTH_PASSED_LEGIT, TRUTH_UNKNOWN)


def to_ms(at: datetime) -> int:
    """Epoch milliseconds of a timezone-aware time, exactly (integer arithmetic)."""
    return (at - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One scored_transactions row as the join sees it; `txn` None: written before
    migration 007 (no coordinates), so it cannot be rebuilt."""

    transaction_id: str
    event_time_ms: int
    alerted: bool
    txn: Transaction | None


def transaction_from_row(row: Mapping[str, Any]) -> Transaction | None:
    """The `Transaction` a scored_transactions row (`STORED_COLUMNS`) was written from, or
    None when the row predates migration 007."""
    if any(row.get(name) is None for name in _REQUIRED_AFTER_007):
        return None
    label = row.get("label")
    birth_year = row.get("birth_year")
    return Transaction(
        transaction_id=row["transaction_id"],
        event_time_ms=to_ms(row["event_time"]),
        card_token=row["card_token"],
        card_last4=row["card_last4"],
        amount=float(row["amount"]),
        merchant=row["merchant"],
        category=row["category"],
        merchant_lat=float(row["merchant_lat"]),
        merchant_long=float(row["merchant_long"]),
        home_lat=float(row["home_lat"]),
        home_long=float(row["home_long"]),
        city_pop=int(row["city_pop"]),
        gender=row.get("gender"),
        birth_year=None if birth_year is None else int(birth_year),
        zip=row.get("zip"),
        state=row.get("state"),
        label=None if label is None else int(label),
    )


def stored_row(row: Mapping[str, Any]) -> StoredRow:
    return StoredRow(row["transaction_id"], to_ms(row["event_time"]),
                     row["decision"] == "alert", transaction_from_row(row))


@dataclass(frozen=True, slots=True)
class AnalystLabel:
    """An analyst's verdict on one alerted transaction: 1 fraud, 0 legit."""

    transaction_id: str
    label: int
    event_time_ms: int | None = None
    reviewed_at: datetime | None = None


def label_value(text: str) -> int:
    if text == "fraud":
        return 1
    if text == "legit":
        return 0
    raise DatasetError(f"label must be fraud or legit, not {text!r}")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_labels_csv(path: Path) -> list[AnalystLabel]:
    """Labels from `fraudstream review export-labels` (transaction_id, label, reviewed_at,
    ..., event_time); a later line for the same transaction replaces an earlier one."""
    out: dict[str, AnalystLabel] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"transaction_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: not a labels export (missing {sorted(missing)})")
        for line, rec in enumerate(reader, start=2):
            try:
                event_time = _parse_time(rec.get("event_time"))
                out[rec["transaction_id"]] = AnalystLabel(
                    rec["transaction_id"], label_value(rec["label"]),
                    None if event_time is None else to_ms(event_time),
                    _parse_time(rec.get("reviewed_at")),
                )
            except ValueError as exc:
                raise DatasetError(f"{path}, line {line}: {exc}") from exc
    return list(out.values())


def label_window(labels: Iterable[AnalystLabel], since_ms: int | None = None,
                 until_ms: int | None = None) -> tuple[int, int]:
    """[start, end] in event time: the labelled transactions' span, narrowed or replaced by
    `since`/`until`. DatasetError when no label falls inside."""
    times = [lab.event_time_ms for lab in labels if lab.event_time_ms is not None]
    inside = [t for t in times if (since_ms is None or t >= since_ms)
              and (until_ms is None or t <= until_ms)]
    if not inside:
        raise DatasetError("no analyst label with an event time in the window: nothing to "
                           "retrain from (label alerts with `fraudstream review label`)")
    start = since_ms if since_ms is not None else min(inside)
    end = until_ms if until_ms is not None else max(inside)
    return start, end


def truth(row: StoredRow, analyst: int | None) -> tuple[int | None, str]:
    """(label or None, which rule gave it): see the module docstring."""
    if analyst is not None:
        return analyst, TRUTH_ANALYST
    if row.txn is not None and row.txn.label is not None:
        return row.txn.label, TRUTH_RECORD
    if not row.alerted:
        return 0, TRUTH_PASSED_LEGIT
    return None, TRUTH_UNKNOWN


@dataclass
class LabelledWindow:
    """The join's result: every rebuilt transaction in event order, which are training rows
    (their `label` replaced by the truth), and what went where."""

    start_ms: int
    end_ms: int
    history_start_ms: int
    txns: list[Transaction]
    training: np.ndarray  # bool, aligned with txns
    sources: Counter = field(default_factory=Counter)  # TRUTH_* -> window rows
    labels_given: int = 0
    labels_used: int = 0  # analyst labels that became a training row's truth
    labels_outside: int = 0  # event time outside the window
    labels_unmatched: int = 0  # no stored row (or one written before migration 007)
    disagreements: int = 0  # analyst label != the record's ground truth
    not_rebuildable: int = 0  # rows written before migration 007
    history_rows: int = 0
    labels_through: datetime | None = None  # latest review time among the labels used

    @property
    def training_rows(self) -> int:
        return int(self.training.sum())

    def summary(self) -> dict[str, Any]:
        return {
            "window_ms": [self.start_ms, self.end_ms],
            "history_start_ms": self.history_start_ms,
            "training_rows": self.training_rows,
            "history_rows": self.history_rows,
            "truth": {name: int(self.sources.get(name, 0)) for name in TRUTH_ORDER},
            "labels_given": self.labels_given,
            "labels_used": self.labels_used,
            "labels_outside_window": self.labels_outside,
            "labels_without_stored_transaction": self.labels_unmatched,
            "analyst_vs_ground_truth_disagreements": self.disagreements,
            "rows_not_rebuildable": self.not_rebuildable,
            "labels_through": None if self.labels_through is None
            else self.labels_through.isoformat(),
        }


def join_labels(labels: Iterable[AnalystLabel], rows: Iterable[StoredRow], start_ms: int,
                end_ms: int, history_start_ms: int) -> LabelledWindow:
    """Join `labels` with the stored `rows` (history and window, any order) over
    [start_ms, end_ms]; rows before `history_start_ms` or after `end_ms` are ignored."""
    given = {lab.transaction_id: lab for lab in labels}
    out = LabelledWindow(start_ms, end_ms, history_start_ms, [], np.zeros(0, dtype=bool))
    out.labels_given = len(given)
    kept: list[tuple[Transaction, bool]] = []
    matched: set[str] = set()
    for row in rows:
        if not history_start_ms <= row.event_time_ms <= end_ms:
            continue
        in_window = row.event_time_ms >= start_ms
        lab = given.get(row.transaction_id) if in_window else None
        if row.txn is None:
            out.not_rebuildable += 1
            continue
        if not in_window:
            kept.append((row.txn, False))
            out.history_rows += 1
            continue
        value, source = truth(row, None if lab is None else lab.label)
        out.sources[source] += 1
        if lab is not None:
            matched.add(row.transaction_id)
            out.labels_used += 1
            if row.txn.label is not None and row.txn.label != lab.label:
                out.disagreements += 1
            if lab.reviewed_at is not None and (
                    out.labels_through is None or lab.reviewed_at > out.labels_through):
                out.labels_through = lab.reviewed_at
        if value is None:
            kept.append((row.txn, False))
            out.history_rows += 1
        else:
            kept.append((dataclasses.replace(row.txn, label=value), True))
    for tid, lab in given.items():
        if tid in matched:
            continue
        t = lab.event_time_ms
        if t is not None and not start_ms <= t <= end_ms:
            out.labels_outside += 1
        else:
            out.labels_unmatched += 1
    kept.sort(key=lambda item: event_order_key(item[0]))
    out.txns = [t for t, _ in kept]
    out.training = np.fromiter((flag for _, flag in kept), dtype=bool, count=len(kept))
    return out


def feature_table(window: LabelledWindow) -> FeatureTable:
    """Features of the window's training rows, each computed over its card's replayed past
    (history rows included) in event order, exactly as `build_features` does."""
    n = window.training_rows
    x = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    y = np.empty(n, dtype=np.int8)
    times = np.empty(n, dtype=np.int64)
    amounts = np.empty(n, dtype=np.float64)
    i = 0
    for (t, row), train in zip(offline_features(window.txns), window.training, strict=True):
        if not train:
            continue
        x[i], y[i], times[i], amounts[i] = row, t.label, t.event_time_ms, t.amount
        i += 1
    return FeatureTable(x, y, times, amounts)


def training_transactions(window: LabelledWindow) -> list[Transaction]:
    """The training rows as transactions (for the data validation suite)."""
    return [t for t, train in zip(window.txns, window.training, strict=True) if train]
