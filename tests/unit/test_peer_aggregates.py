"""The peer's per-minute aggregates (`bench.peer_aggregates`) and how the peer's core feeds them:
Flink's tumbling-window rules (fire at watermark >= end - 1, drop events of fired windows, all
fire at the end of a bounded input) and the job's sums per category and per merchant, checked
against a straightforward reference computation on a generated stream."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from bench.peer_aggregates import (
    AGGREGATE_COLUMNS,
    AGGREGATE_KEY,
    DEFAULT_WINDOW_MS,
    MAX_WATERMARK_MS,
    NO_WATERMARK_MS,
    WindowAggregates,
)
from bench.peer_pipeline import SCORED_COLUMNS, PeerCore
from jobs.config import JobConfig
from models.data.generator import GeneratorConfig, generate
from models.hot_path import RawRecord, RecordParser
from schemas.card_token import CardTokenizer
from schemas.wire import to_json_bytes
from tests.factories import ONE_HOUR, ONE_MINUTE, ONE_SECOND, T0, txn
from tests.fakes import FakeScorer

OOO = 5 * ONE_SECOND
TOKENIZER = CardTokenizer(b"k" * 32)


def _rows(rows) -> list[dict]:
    return [dict(zip(AGGREGATE_COLUMNS, r, strict=True)) for r in rows]


def _by_key(rows) -> dict[tuple, dict]:
    out = {}
    for row in _rows(rows):
        key = (row["window_start"], row["dimension"], row["key"])
        assert key not in out  # one row per primary key (the upsert could not take two)
        out[key] = row
    return out


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- the window rules ------------------------------------------------------------------------
def test_window_is_the_jobs_default_and_columns_are_the_tables():
    assert DEFAULT_WINDOW_MS == JobConfig().aggregate_window_ms
    assert WindowAggregates().window_ms == DEFAULT_WINDOW_MS
    assert AGGREGATE_COLUMNS == ("window_start", "window_end", "dimension", "key", "txn_count",
                                 "amount_sum", "alert_count", "mean_score")
    assert AGGREGATE_KEY == ("window_start", "dimension", "key")
    with pytest.raises(ValueError):
        WindowAggregates(0)


def test_tumbling_boundaries_and_firing_at_watermark_end_minus_one():
    agg = WindowAggregates(ONE_MINUTE)  # T0 is on a minute boundary
    for t in (T0, T0 + ONE_MINUTE - 1, T0 + ONE_MINUTE):  # last ms of the window, next window
        assert agg.add(t, "food", "m1", 10.0, False, 0.1)
    assert agg.open_windows == 2
    assert agg.close(NO_WATERMARK_MS) == []
    assert agg.close(T0 + ONE_MINUTE - 2) == []  # end - 2: not yet
    rows = _rows(agg.close(T0 + ONE_MINUTE - 1))  # end - 1: fires
    assert [(r["dimension"], r["key"], r["txn_count"]) for r in rows] == [
        ("category", "food", 2), ("merchant", "m1", 2)]
    first = rows[0]
    assert first["window_start"] == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert first["window_end"] == datetime(2024, 1, 1, 12, 1, tzinfo=UTC)
    assert first["window_start"].tzinfo is not None and first["window_start"] == _at(T0)
    assert agg.open_windows == 1
    assert not agg.add(T0 + ONE_MINUTE - 1, "food", "m1", 1.0, False, 0.0)  # fired at end - 1
    assert agg.close(T0 + 2 * ONE_MINUTE - 2) == []  # forgotten, and the next one not due
    (nxt, _) = _rows(agg.close(T0 + 2 * ONE_MINUTE - 1))
    assert (nxt["window_start"], nxt["txn_count"]) == (_at(T0 + ONE_MINUTE), 1)
    assert agg.open_windows == 0


def test_one_close_returns_every_due_window_oldest_first():
    agg = WindowAggregates(ONE_MINUTE)
    for minute in (3, 0, 2):
        agg.add(T0 + minute * ONE_MINUTE + 5, "food", "m1", 1.0, False, 0.0)
    rows = _rows(agg.close(T0 + 3 * ONE_MINUTE))  # minutes 0 and 2 end before it; 3 does not
    assert [r["window_start"] for r in rows] == [_at(T0)] * 2 + [_at(T0 + 2 * ONE_MINUTE)] * 2
    assert agg.open_windows == 1


def test_sums_counts_and_means_per_category_and_per_merchant():
    agg = WindowAggregates(ONE_MINUTE)
    events = [  # category, merchant, amount, alert, score
        ("food", "m1", 10.0, False, 0.1),
        ("food", "m2", 30.0, True, 0.9),
        ("travel", "m1", 100.0, True, 0.7),
        ("food", "m1", 5.5, False, 0.2),
    ]
    for i, (cat, merchant, amount, alert, score) in enumerate(events):
        assert agg.add(T0 + i * ONE_SECOND, cat, merchant, amount, alert, score)
    got = _by_key(agg.close(MAX_WATERMARK_MS))
    w = _at(T0)
    assert set(got) == {(w, "category", "food"), (w, "category", "travel"),
                        (w, "merchant", "m1"), (w, "merchant", "m2")}
    food = got[(w, "category", "food")]
    assert (food["txn_count"], food["amount_sum"], food["alert_count"]) == (3, 45.5, 1)
    assert food["mean_score"] == pytest.approx((0.1 + 0.9 + 0.2) / 3)
    m1 = got[(w, "merchant", "m1")]
    assert (m1["txn_count"], m1["amount_sum"], m1["alert_count"]) == (3, 115.5, 1)
    assert m1["mean_score"] == pytest.approx((0.1 + 0.7 + 0.2) / 3)
    travel = got[(w, "category", "travel")]
    assert (travel["txn_count"], travel["alert_count"], travel["mean_score"]) == (1, 1, 0.7)
    assert isinstance(food["txn_count"], int) and isinstance(food["alert_count"], int)


def test_events_of_a_fired_window_are_left_out_others_still_count():
    agg = WindowAggregates(ONE_MINUTE)
    agg.add(T0 + 10, "food", "m1", 1.0, False, 0.5)
    agg.close(T0 + ONE_MINUTE + 30 * ONE_SECOND)  # fires [T0, T0+1m); [T0+1m, T0+2m) open
    assert not agg.add(T0 + 20, "food", "m1", 1.0, False, 0.5)  # its window fired
    assert agg.add(T0 + ONE_MINUTE, "food", "m1", 1.0, False, 0.5)  # at/before the watermark,
    # but its window is open: counted (Flink's window operator drops by window, not by event)
    assert agg.close(T0 + ONE_MINUTE) == []  # a watermark never moves back
    (row, _) = _rows(agg.close(MAX_WATERMARK_MS))
    assert (row["window_start"], row["txn_count"]) == (_at(T0 + ONE_MINUTE), 1)


def test_end_of_input_fires_every_window_and_later_events_are_left_out():
    agg = WindowAggregates(ONE_MINUTE)
    for t in (T0, T0 + ONE_HOUR, T0 + 500 * ONE_HOUR):
        agg.add(t, "food", "m1", 1.0, False, 0.0)
    assert len(agg.close(MAX_WATERMARK_MS)) == 6
    assert agg.open_windows == 0
    assert not agg.add(T0 + 1000 * ONE_HOUR, "food", "m1", 1.0, False, 0.0)
    assert agg.close(MAX_WATERMARK_MS) == []


def test_window_start_floors_before_1970():
    agg = WindowAggregates(ONE_MINUTE)
    agg.add(-1, "food", "m1", 1.0, False, 0.0)
    (row, _) = _rows(agg.close(MAX_WATERMARK_MS))
    assert row["window_start"] == _at(-ONE_MINUTE) and row["window_end"] == _at(0)


# --- the peer's core feeds them --------------------------------------------------------------
def _core(window_ms: int = DEFAULT_WINDOW_MS) -> PeerCore:
    parser = RecordParser("bench.t.transactions", TOKENIZER, 4096)
    return PeerCore(parser, FakeScorer(), OOO, window_ms)


_offsets = iter(range(10**9))


def _raw(txns) -> list[RawRecord]:
    return [RawRecord(to_json_bytes(t), 0, next(_offsets)) for t in txns]


def test_peer_core_closes_windows_after_the_batch_with_the_advanced_watermark():
    core = _core()
    card = "a" * 64
    out = core.process(_raw([txn(card=card, at=T0 + 50 * ONE_SECOND, amount=900.0)]))
    assert out.aggregate_rows == []  # watermark T0+45s-1: the window is open
    # flagged late (T0+40s <= T0+45s-1) yet counted: its window has not fired
    out = core.process(_raw([txn(card=card, at=T0 + 40 * ONE_SECOND, amount=100.0)]))
    late = [dict(zip(SCORED_COLUMNS, r, strict=True))["is_late"] for r in out.scored_rows]
    assert late == [True] and out.window_dropped == 0 and out.aggregate_rows == []
    # this batch's event moves the watermark to T0+115s-1 >= T0+60s-1: the window fires now
    out = core.process(_raw([txn(card=card, at=T0 + 2 * ONE_MINUTE, category="travel")]))
    got = _by_key(out.aggregate_rows)
    cat = got[(_at(T0), "category", "grocery_pos")]
    assert (cat["txn_count"], cat["amount_sum"], cat["alert_count"]) == (2, 1000.0, 1)
    assert cat["mean_score"] == pytest.approx((0.9 + 0.1) / 2)
    assert len(got) == 2
    # a later event of the fired window: scored and stored, left out of the aggregates
    out = core.process(_raw([txn(card=card, at=T0 + 10 * ONE_SECOND)]))
    assert len(out.scored_rows) == 1 and out.window_dropped == 1 and out.aggregate_rows == []
    # end of input: the open window [T0+2m, T0+3m) fires
    rows = _rows(core.finish())
    assert [(r["dimension"], r["key"]) for r in rows] == [
        ("category", "travel"), ("merchant", "fraud_Kirlin and Sons")]
    assert core.finish() == []


def _reference(batches_of_scored: list[list[dict]], window_ms: int) -> dict[tuple, dict]:
    """Straightforward: an event of batch i counts iff its window's end - 1 is above the
    watermark before batch i (max event time of batches 0..i-1 - OOO - 1)."""
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    top = None
    for batch in batches_of_scored:
        watermark = NO_WATERMARK_MS if top is None else top - OOO - 1
        for row in batch:
            t = round(row["event_time"].timestamp() * 1000)
            start = (t // window_ms) * window_ms
            if start + window_ms - 1 <= watermark:
                continue
            for dimension in ("category", "merchant"):
                s = sums[(_at(start), dimension, row[dimension])]
                s[0] += 1
                s[1] += row["amount"]
                s[2] += row["decision"] == "alert"
                s[3] += row["score"]
        times = [round(r["event_time"].timestamp() * 1000) for r in batch]
        top = max([top, *times] if top is not None else times)
    return {
        key: {"window_end": key[0] + (_at(window_ms) - _at(0)), "txn_count": n,
              "amount_sum": amount, "alert_count": alerts, "mean_score": score / n}
        for key, (n, amount, alerts, score) in sums.items()
    }


@pytest.mark.parametrize("window_ms", [DEFAULT_WINDOW_MS, ONE_HOUR])
def test_peer_aggregates_match_a_reference_on_a_generated_out_of_order_stream(window_ms):
    stream = list(generate(GeneratorConfig(cards=100, days=1, seed=7), TOKENIZER))
    rng = random.Random(window_ms)
    # deliver every 6th event 1..40 positions later (minutes late on this sparse stream)
    order = sorted(range(len(stream)),
                   key=lambda i: i + (rng.randint(1, 40) if i % 6 == 0 else 0))
    delivered = [stream[i] for i in order]
    core = _core(window_ms)
    emitted, scored_batches, dropped, pos = [], [], 0, 0
    while pos < len(delivered):
        size = rng.randint(1, 25)
        out = core.process(_raw(delivered[pos:pos + size]))
        pos += size
        emitted += out.aggregate_rows
        dropped += out.window_dropped
        scored_batches.append([dict(zip(SCORED_COLUMNS, r, strict=True))
                               for r in out.scored_rows])
        # nothing is emitted before the watermark has passed its window's end - 1
        for row in _rows(out.aggregate_rows):
            end_ms = round(row["window_end"].timestamp() * 1000)
            assert end_ms - 1 <= core.watermark.current_ms
    emitted += core.finish()

    want = _reference(scored_batches, window_ms)
    got = _by_key(emitted)
    assert set(got) == set(want)
    for key, row in got.items():
        ref = want[key]
        assert row["window_end"] == ref["window_end"]
        assert (row["txn_count"], row["alert_count"]) == (ref["txn_count"], ref["alert_count"])
        assert row["amount_sum"] == pytest.approx(ref["amount_sum"])
        assert row["mean_score"] == pytest.approx(ref["mean_score"])
    scored = [r for batch in scored_batches for r in batch]
    counted = sum(r["txn_count"] for k, r in got.items() if k[1] == "category")
    assert counted + dropped == len(scored) == len(stream)
    assert counted == sum(r["txn_count"] for k, r in got.items() if k[1] == "merchant")
    late = sum(r["is_late"] for r in scored)
    assert dropped > 0  # the stream exercises the drop ...
    assert late > dropped or window_ms == DEFAULT_WINDOW_MS  # ... and late-but-counted events
    assert any(r["alert_count"] for r in got.values())
