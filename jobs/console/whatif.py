"""What-if scoring: score one transaction as the stream would, with the card's stored history.

The stream keeps each card's `models.features.CardState` in Flink state; the console has only
Postgres. So the state is REBUILT: the card's earlier `scored_transactions` rows are replayed
through `models.features.update` in event-time order, then the new transaction goes through
the job's own per-batch core (`models.hot_path.score_batch`: features, one model call,
threshold, reasons) with that state.

What the replay needs of each earlier event, and what `scored_transactions` has:
- event time, amount, merchant (hashed for novelty), category: stored, exact (amount is a
  double, times are whole milliseconds), so every window count/sum/max, the history mean and
  z-score (Welford over log1p(amount), same order, same floats), the merchant and category
  novelty and the time since the previous event come out exactly as in the stream;
- the merchant's coordinates of the card's LATEST event (the state's `last_lat/last_long`,
  from which `speed_from_prev_kmh` of the next event is measured): stored since migration 007
  (`merchant_lat`, `merchant_long`), so the rebuild is exact. A row written before it has
  none; when the latest event is such a row (or the table has no such columns), it is placed
  at the card's home (the request's `lat`/`long`) and the answer says so (`exact: false`,
  `approximations`). The error of that speed is at most the previous event's own
  `distance_from_home_km` over the time between the two events.
- The features of the last stored event alone do not suffice: the windows of the new event
  need the times and amounts of every event of the last 7 days, and the history statistics
  every event since the card was last idle for 30 days.

Order: the stream applies events in arrival order (Kafka offset within the card's
partition); the replay uses event time, then source offset. The two agree unless the card had
out-of-order (late) events, which change the order-dependent history statistics.
Pure: no SQL, no clock (`queries.card_history` reads the rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models import features as F
from models.hot_path import ParsedRecord, score_batch
from schemas.alert import reasons_to_list
from schemas.transaction import Transaction

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
NEVER_LATE_MS = -(2**62)  # a what-if event is scored as on time
LOCATION_NOTE = (
    "speed_from_prev_kmh: the card's previous event has no stored merchant coordinates "
    "(written before migration 007), so it is placed at the card's home (error at most that "
    "event's distance_from_home_km over the time between the two events)"
)


def to_ms(at: datetime) -> int:
    """Epoch milliseconds of a timezone-aware time, exactly (integer arithmetic)."""
    return (at - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """What the replay reads of one stored scored transaction of the card."""

    transaction_id: str
    event_time_ms: int
    amount: float
    merchant: str
    category: str
    source_offset: int | None = None
    is_late: bool = False
    merchant_lat: float | None = None
    merchant_long: float | None = None

    @property
    def located(self) -> bool:
        return self.merchant_lat is not None and self.merchant_long is not None


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """The card state before the what-if event, and how it was made."""

    state: F.CardState
    events: int  # history rows replayed
    first_ms: int | None
    last_ms: int | None
    late_events: int  # replayed rows the stream had flagged late (order may differ)
    location_known: bool  # the coordinates the next speed is measured from were stored


def history_before(rows: Sequence[HistoryRow], txn: Transaction) -> list[HistoryRow]:
    """The rows that come before `txn`, in replay order (event time, then source offset).

    If `txn` itself is stored (same transaction id), the rows after it in that order are
    left out, so a stored event is re-scored with exactly the history it had; otherwise every
    row at or before its event time counts (it would arrive after them).
    """
    ordered = sorted(
        (r for r in rows if r.event_time_ms <= txn.event_time_ms),
        key=lambda r: (r.event_time_ms, r.source_offset is None, r.source_offset or 0,
                       r.transaction_id),
    )
    for i, row in enumerate(ordered):
        if row.transaction_id == txn.transaction_id:
            return ordered[:i]
    return ordered


def rebuild_state(history: Sequence[HistoryRow], txn: Transaction) -> Rebuilt:
    """Replay `history` (already in order, see `history_before`) through `F.update`.

    The fields features never read of a past event (home, city population, ...) are taken
    from `txn`; a row without coordinates is placed at the card's home (`txn.home_*`).
    """
    state = F.new_state()
    location_known = True
    late = 0
    for row in history:
        past = Transaction(
            transaction_id=row.transaction_id,
            event_time_ms=row.event_time_ms,
            card_token=txn.card_token,
            card_last4=txn.card_last4,
            amount=row.amount,
            merchant=row.merchant,
            category=row.category,
            merchant_lat=row.merchant_lat if row.located else txn.home_lat,
            merchant_long=row.merchant_long if row.located else txn.home_long,
            home_lat=txn.home_lat,
            home_long=txn.home_long,
            city_pop=txn.city_pop,
        )
        sets_location = row.event_time_ms >= state.last_time_ms  # as `F.update` decides
        F.update(state, past)
        if sets_location:
            location_known = row.located
        late += row.is_late
    return Rebuilt(
        state=state,
        events=len(history),
        first_ms=history[0].event_time_ms if history else None,
        last_ms=history[-1].event_time_ms if history else None,
        late_events=late,
        location_known=location_known,
    )


def location_matters(rebuilt: Rebuilt, txn: Transaction) -> bool:
    """True when the new event's speed is measured from the rebuilt state's last location
    (there is a previous event and the card was not idle long enough to be reset)."""
    last = rebuilt.state.last_time_ms
    return last >= 0 and txn.event_time_ms - last < F.PROFILE_LIFETIME_MS


def score_what_if(txn: Transaction, rebuilt: Rebuilt, scorer: Any) -> dict[str, Any]:
    """Score `txn` on a copy of the rebuilt state with the job's core; the JSON answer.

    `reasons` are given for a pass too (the job stores reasons of alerts only); analyst
    rules from the control topic are not applied (`rules_applied: false`).
    """
    state = F.state_from_bytes(F.state_to_bytes(rebuilt.state))  # the caller's stays as is
    [event] = score_batch([ParsedRecord(txn, None, None)], {txn.card_token: state}, scorer,
                          NEVER_LATE_MS)
    features = json.loads(event.features_json)
    reasons = json.loads(event.reasons_json)
    if not event.is_alert:
        row = [features[name] for name in scorer.feature_names]
        reasons = reasons_to_list(scorer.explain(row))
    approximations = []
    if not rebuilt.location_known and location_matters(rebuilt, txn):
        approximations.append(LOCATION_NOTE)
    if rebuilt.late_events:
        approximations.append(
            f"order: {rebuilt.late_events} earlier event(s) arrived late; the stream applied "
            "them in arrival order, the replay in event-time order")
    return {
        "transaction_id": txn.transaction_id,
        "card_token": txn.card_token,
        "card_masked": txn.card_masked,
        "event_time": from_ms(txn.event_time_ms).isoformat().replace("+00:00", "Z"),
        "model_version": event.model_version,
        "threshold": event.threshold,
        "score": event.score,
        "decision": "alert" if event.is_alert else "pass",
        "reasons": reasons,
        "features": features,
        "history": {
            "events": rebuilt.events,
            "first_event_time": _iso(rebuilt.first_ms),
            "last_event_time": _iso(rebuilt.last_ms),
            "profile_events": rebuilt.state.count,
            "late_events": rebuilt.late_events,
        },
        "exact": not approximations,
        "approximations": approximations,
        "rules_applied": False,
    }


def _iso(ms: int | None) -> str | None:
    return None if ms is None else from_ms(ms).isoformat().replace("+00:00", "Z")
