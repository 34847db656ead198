"""What-if scoring without Postgres: the state rebuilt from stored-row fields equals the
stream's state, and the what-if score of an event equals the job core's score of it.

`HistoryRow`s are made from generated transactions exactly as `queries.card_history` makes
them from `scored_transactions` (times in ms, amounts as doubles, merchant, category).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from datetime import date

import pytest

from jobs.console.whatif import (
    LOCATION_NOTE,
    HistoryRow,
    from_ms,
    history_before,
    rebuild_state,
    score_what_if,
    to_ms,
)
from models import features as F
from models.data.generator import GeneratorConfig, generate
from models.hot_path import ParsedRecord, score_batch
from schemas.card_token import CardTokenizer


@pytest.fixture(scope="module")
def stream():
    """~2,000 generated transactions of 40 cards over 20 days, in event-time order."""
    config = GeneratorConfig(cards=40, start=date(2020, 3, 1), days=20, seed=11)
    return list(itertools.islice(generate(config, CardTokenizer(b"unit-test-key")), 2000))


@pytest.fixture(scope="module")
def scorer():
    from models.scoring import Scorer

    return Scorer.load()


def _row(txn, offset: int, located: bool) -> HistoryRow:
    return HistoryRow(txn.transaction_id, txn.event_time_ms, txn.amount, txn.merchant,
                      txn.category, offset, False,
                      txn.merchant_lat if located else None,
                      txn.merchant_long if located else None)


def _by_card(stream):
    cards = defaultdict(list)
    for offset, txn in enumerate(stream):
        cards[txn.card_token].append((offset, txn))
    return cards


def test_ms_round_trip_is_exact():
    for ms in (0, 1, 1_583_020_800_123, 4_102_444_799_999, -1):
        assert to_ms(from_ms(ms)) == ms


def test_rebuilt_state_equals_the_stream_state(stream):
    """With coordinates stored the rebuilt state is the stream's, field for field; without
    them everything but the last location is."""
    for events in list(_by_card(stream).values())[:15]:
        state = F.new_state()
        for i, (_, txn) in enumerate(events):
            rows = [_row(t, o, True) for o, t in events]
            located = rebuild_state(history_before(rows, txn), txn)
            assert located.state == state and located.location_known
            bare = rebuild_state(history_before([_row(t, o, False) for o, t in events], txn),
                                 txn)
            assert bare.events == i and bare.state.count == state.count
            for slot in F.CardState.__slots__:
                if slot not in ("last_lat", "last_long"):
                    assert getattr(bare.state, slot) == getattr(state, slot), slot
            assert bare.location_known is (i == 0)
            F.update(state, txn)


def test_history_before_cuts_at_the_stored_event_and_keeps_ties_of_a_new_one(stream):
    txn = stream[100]
    same_time = [HistoryRow(f"t{i}", txn.event_time_ms, 1.0, "m", "misc_net", 10 + i)
                 for i in range(3)]
    later = HistoryRow("later", txn.event_time_ms + 1, 1.0, "m", "misc_net", 1)
    stored = dataclasses.replace(same_time[1], transaction_id=txn.transaction_id)
    rows = [later, same_time[2], stored, same_time[0]]
    assert [r.transaction_id for r in history_before(rows, txn)] == ["t0"]
    fresh = [later, *same_time]
    assert [r.transaction_id for r in history_before(fresh, txn)] == ["t0", "t1", "t2"]


def test_what_if_score_equals_the_job_core(stream, scorer):
    """For every 10th event: score_what_if with the rebuilt (located) history gives the score,
    decision and features the job's score_batch gave it in the stream."""
    states: dict[str, F.CardState] = {}
    expected = {}
    for offset, txn in enumerate(stream):
        [event] = score_batch([ParsedRecord(txn, 0, offset)], states, scorer, -1)
        expected[txn.transaction_id] = event
    rows_by_card = {card: [_row(t, o, True) for o, t in events]
                    for card, events in _by_card(stream).items()}
    alerts = 0
    for txn in stream[::10]:
        rows = rows_by_card[txn.card_token]
        result = score_what_if(txn, rebuild_state(history_before(rows, txn), txn), scorer)
        want = expected[txn.transaction_id]
        assert result["score"] == pytest.approx(want.score, abs=1e-12)
        assert result["decision"] == ("alert" if want.is_alert else "pass")
        assert result["exact"] is True and result["approximations"] == []
        assert result["model_version"] == scorer.model_version
        assert result["reasons"], "reasons are explained for passes too"
        features = dict(zip(scorer.feature_names, F.update(F.new_state(), txn), strict=True))
        assert set(result["features"]) == set(features)
        alerts += want.is_alert
    assert alerts, "the sample should hold alerts"


def test_unknown_location_is_said_and_bounded(stream, scorer):
    """Without stored coordinates the answer says the speed is approximated, and the speed
    is off by at most the previous event's distance from home over the time between."""
    events = max(_by_card(stream).values(), key=len)
    prev, txn = events[10][1], events[11][1]
    rows = [_row(t, o, False) for o, t in events]
    rebuilt = rebuild_state(history_before(rows, txn), txn)
    result = score_what_if(txn, rebuilt, scorer)
    assert result["exact"] is False and result["approximations"] == [LOCATION_NOTE]
    truth = F.new_state()
    for _, t in events[:11]:
        F.update(truth, t)
    true_speed = F.update(truth, txn)[F.FEATURE_NAMES.index("speed_from_prev_kmh")]
    prev_home_km = F.haversine_km(prev.home_lat, prev.home_long, prev.merchant_lat,
                                  prev.merchant_long)
    hours = max(abs(txn.event_time_ms - prev.event_time_ms) / 1000, F.MIN_TRAVEL_SECONDS) / 3600
    got = result["features"]["speed_from_prev_kmh"]
    assert abs(got - true_speed) <= prev_home_km / hours + 1e-6
    assert math.isfinite(result["score"])


def test_idle_card_needs_no_location(stream, scorer):
    """A previous event 30+ days back resets the card: nothing is approximated."""
    txn = stream[0]
    old = HistoryRow("old", txn.event_time_ms - F.PROFILE_LIFETIME_MS, 10.0, "m", "misc_net")
    rebuilt = rebuild_state([old], txn)
    result = score_what_if(txn, rebuilt, scorer)
    assert result["exact"] is True and result["features"]["card_txn_count"] == 0.0
    assert result["history"]["events"] == 1


def test_late_history_is_flagged(stream, scorer):
    txn = stream[50]
    late = HistoryRow("late", txn.event_time_ms - 1000, 10.0, "m", "misc_net", 3, True,
                      txn.merchant_lat, txn.merchant_long)
    result = score_what_if(txn, rebuild_state([late], txn), scorer)
    assert result["exact"] is False
    assert "arrived late" in result["approximations"][0]
