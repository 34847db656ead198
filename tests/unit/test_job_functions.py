"""Adapter tests for jobs.functions with small fakes (no JVM, no Flink runtime).

The fakes implement only what the functions use: `runtime_context.get_state`, a keyed
`ValueState`, `ctx.timer_service()` (register/delete event-time timers, current watermark).
`KeyedHarness` plays Flink: it sets the current key, routes state per key, and fires due
timers when the watermark advances (a timer fires once and is then gone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

pytest.importorskip("pyflink")

from connectors.rows import SCORED_FIELDS, transaction_to_row  # noqa: E402
from jobs.functions import DLQ_TAG, ParseTransactions, ScoreCard, cleanup_timer_ms  # noqa: E402
from models import features as F  # noqa: E402
from schemas.alert import parse_alert  # noqa: E402
from tests.factories import ONE_DAY, ONE_HOUR, ONE_MINUTE, T0, txn  # noqa: E402

MIN_WATERMARK = -(2**63)


# --- fakes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeReason:
    code: str
    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class FakeDecision:
    score: float
    is_alert: bool
    reasons: tuple


class FakeScorer:
    """Stand-in model: score = amount / 1000 (capped), alert at >= 0.5."""

    model_version = "fake-1"
    threshold = 0.5
    feature_names = F.FEATURE_NAMES

    def __init__(self):
        self.calls = 0

    def decide_one(self, row):
        return self.decide_batch([row])[0]

    def decide_batch(self, rows):
        self.calls += 1
        out = []
        for row in rows:
            score = min(1.0, row[0] / 1000.0)
            alert = score >= self.threshold
            reasons = (FakeReason("AMOUNT_HIGH", "amount", row[0], 0.3),) if alert else ()
            out.append(FakeDecision(score, alert, reasons))
        return out


class FakeValueState:
    def __init__(self, store: dict, harness: KeyedHarness):
        self._store, self._h = store, harness

    def value(self):
        return self._store.get(self._h.key)

    def update(self, value):
        assert isinstance(value, bytes | bytearray), "state must hold bytes, never objects"
        self._store[self._h.key] = bytes(value)

    def clear(self):
        self._store.pop(self._h.key, None)


class FakeTimerService:
    def __init__(self, harness: KeyedHarness):
        self._h = harness

    def register_event_time_timer(self, t):
        self._h.timers.add((t, self._h.key))

    def delete_event_time_timer(self, t):
        self._h.timers.discard((t, self._h.key))

    def current_watermark(self):
        return self._h.watermark


class FakeCtx:
    def __init__(self, harness):
        self._h = harness

    def timer_service(self):
        return FakeTimerService(self._h)

    def get_current_key(self):
        return self._h.key


class KeyedHarness:
    """Runs a KeyedProcessFunction over (key, row) pairs with watermarks and timers."""

    def __init__(self, fn, states: dict | None = None, timers: set | None = None):
        self.fn, self.key, self.watermark = fn, None, MIN_WATERMARK
        self.states: dict = {} if states is None else dict(states)
        self.timers: set = set() if timers is None else set(timers)
        harness = self

        class RuntimeContext:
            def get_state(self, descriptor):
                return FakeValueState(harness.states, harness)

        fn.open(RuntimeContext())

    def process(self, t):
        self.key = t.card_token
        return list(self.fn.process_element(transaction_to_row(t, 0, 7), FakeCtx(self)) or ())

    def advance_watermark(self, wm):
        self.watermark = wm
        fired = []
        while True:
            due = sorted(x for x in self.timers if x[0] <= wm)
            if not due:
                return fired
            t, key = due[0]
            self.timers.discard(due[0])
            self.key = key
            fired.append((t, key))
            list(self.fn.on_timer(t, FakeCtx(self)) or ())


def _scored(row):
    return dict(zip(SCORED_FIELDS, tuple(row), strict=True))


def _new_fn():
    return ScoreCard(scorer_loader=lambda _path: FakeScorer())


# --- ScoreCard -------------------------------------------------------------------------------
def test_state_is_bytes_per_card_and_one_timer_per_card():
    h = KeyedHarness(_new_fn())
    h.process(txn(card="a", at=T0))
    h.process(txn(card="a", at=T0 + ONE_MINUTE))
    h.process(txn(card="b", at=T0 + ONE_HOUR))
    assert set(h.states) == {"a", "b"}
    assert all(isinstance(v, bytes) for v in h.states.values())
    # timers sit at the expiry rounded UP to the hour
    assert sorted(h.timers) == [
        (cleanup_timer_ms(T0 + ONE_MINUTE + F.WIDEST_WINDOW_MS), "a"),
        (cleanup_timer_ms(T0 + ONE_HOUR + F.WIDEST_WINDOW_MS), "b"),
    ]
    assert cleanup_timer_ms(T0 + ONE_MINUTE + F.WIDEST_WINDOW_MS) >= (
        T0 + ONE_MINUTE + F.WIDEST_WINDOW_MS
    )
    # a later event in another hour MOVES card a's timer: still one per card
    h.process(txn(card="a", at=T0 + 3 * ONE_HOUR))
    assert sorted(h.timers) == [
        (cleanup_timer_ms(T0 + ONE_HOUR + F.WIDEST_WINDOW_MS), "b"),
        (cleanup_timer_ms(T0 + 3 * ONE_HOUR + F.WIDEST_WINDOW_MS), "a"),
    ]


def test_cleanup_timer_rounds_up_to_the_hour():
    assert cleanup_timer_ms(None) is None
    assert cleanup_timer_ms(7 * ONE_HOUR) == 7 * ONE_HOUR
    assert cleanup_timer_ms(7 * ONE_HOUR + 1) == 8 * ONE_HOUR
    assert cleanup_timer_ms(8 * ONE_HOUR - 1) == 8 * ONE_HOUR


def test_state_and_timers_are_cleared_after_the_widest_window():
    h = KeyedHarness(_new_fn())
    h.process(txn(card="a", at=T0))
    h.process(txn(card="b", at=T0 + 2 * ONE_DAY))
    # just before card a's expiry nothing is cleared
    h.advance_watermark(T0 + F.WIDEST_WINDOW_MS - 1)
    assert set(h.states) == {"a", "b"}
    fired = h.advance_watermark(T0 + F.WIDEST_WINDOW_MS)
    assert fired == [(T0 + F.WIDEST_WINDOW_MS, "a")]
    assert set(h.states) == {"b"}
    h.advance_watermark(T0 + 2 * ONE_DAY + F.WIDEST_WINDOW_MS)
    assert h.states == {} and h.timers == set()


def test_a_card_seen_again_after_expiry_starts_fresh_like_offline():
    stream = [txn(card="a", at=T0, amount=50.0), txn(card="a", at=T0 + 40 * ONE_DAY, amount=60.0)]
    h = KeyedHarness(_new_fn())
    out = [h.process(stream[0])]
    h.advance_watermark(T0 + 35 * ONE_DAY)
    assert h.states == {}
    out.append(h.process(stream[1]))
    offline = [v for _, v in F.offline_features(stream)]
    online = [json.loads(_scored(o[0])["features_json"]) for o in out]
    assert [list(d.values()) for d in online] == offline


def test_restart_from_savepoint_keeps_features_continuous():
    stream = [
        txn(card=c, at=T0 + i * 7 * ONE_MINUTE, amount=10.0 + 37 * i % 900)
        for i, c in enumerate(["a", "b", "a", "a", "c", "b", "a", "c", "a", "b"] * 3)
    ]
    expected = [v for _, v in F.offline_features(stream)]

    first = KeyedHarness(_new_fn())
    half = len(stream) // 2
    out = [first.process(t) for t in stream[:half]]
    # "savepoint": the keyed state bytes and pending timers, into a FRESH function instance
    savepoint_states, savepoint_timers = dict(first.states), set(first.timers)
    second = KeyedHarness(_new_fn(), savepoint_states, savepoint_timers)
    out += [second.process(t) for t in stream[half:]]

    online = [list(json.loads(_scored(o[0])["features_json"]).values()) for o in out]
    assert online == expected
    # and the timers still describe exactly one expiry per card
    assert sorted(k for _, k in second.timers) == ["a", "b", "c"]


def test_scored_row_carries_score_decision_reasons_and_alert_message():
    h = KeyedHarness(_new_fn())
    (small,) = h.process(txn(card="a", amount=20.0))
    (big,) = h.process(txn(card="a", amount=900.0, at=T0 + ONE_MINUTE))
    small, big = _scored(small), _scored(big)
    assert (small["is_alert"], small["alert_json"], json.loads(small["reasons_json"])) == (
        False, None, []
    )
    assert big["is_alert"] and big["score"] == pytest.approx(0.9)
    assert big["model_version"] == "fake-1" and big["threshold"] == 0.5
    assert (big["source_partition"], big["source_offset"]) == (0, 7)
    alert = parse_alert(big["alert_json"])
    assert alert.transaction_id == big["transaction_id"]
    assert alert.card_masked == "****4242"
    assert [r.code for r in alert.reasons] == ["AMOUNT_HIGH"]
    assert alert.features == json.loads(big["features_json"])
    assert set(alert.features) == set(F.FEATURE_NAMES)


def test_late_events_are_scored_and_flagged():
    h = KeyedHarness(_new_fn())
    h.process(txn(card="a", at=T0 + ONE_HOUR))
    h.advance_watermark(T0 + ONE_HOUR)
    (late,) = h.process(txn(card="a", at=T0))
    (ontime,) = h.process(txn(card="a", at=T0 + 2 * ONE_HOUR))
    assert _scored(late)["is_late"] is True
    assert _scored(ontime)["is_late"] is False


# --- ParseTransactions ------------------------------------------------------------------------
class _NoCtx:
    pass


def _parser():
    fn = ParseTransactions("transactions", "k" * 32, max_payload_bytes=256)
    fn.open(None)
    return fn


def test_bad_records_go_to_the_side_output_redacted_with_position():
    pytest.importorskip("schemas.parse")
    fn = _parser()
    payload = b'{"cc_num": "4111111111111111", "amt": "lots"' + b" " * 5000
    (out,) = list(fn.process_element((payload, 3, 42), _NoCtx()))
    tag, row = out
    assert tag is DLQ_TAG
    rec = dict(zip(DLQ_TAG.type_info.get_field_names(), tuple(row), strict=True))
    assert (rec["source_topic"], rec["source_partition"], rec["source_offset"]) == (
        "transactions", 3, 42,
    )
    assert rec["reason"] and rec["payload_bytes"] == len(payload)
    assert "4111111111111111" not in rec["raw_payload"] + rec["dlq_json"] + rec["reason"]
    assert len(rec["raw_payload"].encode()) <= 256 + 32
    assert json.loads(rec["dlq_json"])["source_offset"] == 42


def test_null_payload_is_a_dead_letter_not_a_crash():
    pytest.importorskip("schemas.parse")
    (out,) = list(_parser().process_element((None, 0, 1), _NoCtx()))
    assert out[0] is DLQ_TAG


def test_valid_record_becomes_a_txn_row_with_its_position():
    wire = pytest.importorskip("schemas.wire")
    t = txn(card="ab" * 32, amount=12.5)
    (row,) = list(_parser().process_element((wire.to_json_bytes(t), 1, 9), _NoCtx()))
    values = tuple(row)
    assert values[0] == t.transaction_id and values[-2:] == (1, 9)
