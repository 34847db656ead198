"""Feature set card_activity_v1: windows, history, novelty, travel, expiry, serialization."""

from __future__ import annotations

import random

import pytest

from models import features as F
from tests.factories import HOME_LAT, HOME_LONG, ONE_DAY, ONE_HOUR, ONE_MINUTE, T0, txn


def feat(row: list[float], name: str) -> float:
    return row[F.FEATURE_NAMES.index(name)]


def run(*txns):
    state = F.new_state()
    return state, [F.update(state, t) for t in txns]


def test_feature_vector_matches_names_and_one_hot():
    _, [row] = run(txn(category="travel"))
    assert len(row) == len(F.FEATURE_NAMES) == len(set(F.FEATURE_NAMES))
    assert feat(row, "category_travel") == 1.0
    assert sum(row[F.FEATURE_NAMES.index(f"category_{c}")] for c in F.CATEGORIES) == 1.0
    _, [row] = run(txn(category="not_a_category"))
    assert feat(row, "category_other") == 1.0


def test_windows_count_past_and_current_within_bounds():
    _, rows = run(
        txn(amount=5, at=T0 - 8 * ONE_DAY),  # outside 7 d
        txn(amount=7, at=T0 - 2 * ONE_DAY),  # inside 7 d only
        txn(amount=11, at=T0 - 2 * ONE_HOUR),  # inside 24 h
        txn(amount=13, at=T0 - 30 * ONE_MINUTE),  # inside 1 h
        txn(amount=17, at=T0),
    )
    last = rows[-1]
    assert feat(last, "count_1h") == 2 and feat(last, "sum_1h") == 30
    assert feat(last, "count_24h") == 3 and feat(last, "sum_24h") == 41
    assert feat(last, "max_amount_24h") == 17
    assert feat(last, "mean_amount_24h") == pytest.approx(41 / 3)
    assert feat(last, "count_7d") == 4 and feat(last, "sum_7d") == 48
    assert feat(last, "card_txn_count") == 4


def test_window_boundary_is_exclusive_of_exactly_w_ago():
    _, rows = run(txn(amount=1, at=T0 - ONE_HOUR), txn(amount=2, at=T0))
    assert feat(rows[-1], "count_1h") == 1
    assert feat(rows[-1], "count_24h") == 2


def test_history_ratio_and_zscore_use_only_the_past():
    _, rows = run(*[txn(amount=a, at=T0 + i * ONE_HOUR) for i, a in enumerate([10, 20, 30])])
    assert feat(rows[0], "amount_to_mean_ratio") == 1.0
    assert feat(rows[0], "amount_zscore") == 0.0
    assert feat(rows[2], "amount_to_mean_ratio") == pytest.approx(30 / 15)
    _, rows = run(*[txn(amount=a, at=T0 + i * ONE_HOUR) for i, a in enumerate([40, 50, 45, 900])])
    assert feat(rows[-1], "amount_zscore") > 3
    assert feat(rows[-1], "amount_to_mean_ratio") == pytest.approx(900 / 45)


def test_time_since_previous_and_first_event_default():
    _, rows = run(txn(at=T0), txn(at=T0 + 90_000))
    assert feat(rows[0], "log_seconds_since_prev") == pytest.approx(
        __import__("math").log1p(F.NO_PREVIOUS_SECONDS)
    )
    assert feat(rows[1], "log_seconds_since_prev") == pytest.approx(__import__("math").log1p(90))


def test_distance_from_home_and_impossible_travel():
    la = dict(merchant_lat=34.0522, merchant_long=-118.2437)  # Los Angeles
    _, rows = run(txn(at=T0), txn(at=T0 + 30 * ONE_MINUTE, **la))
    assert feat(rows[0], "distance_from_home_km") == pytest.approx(0.0, abs=1e-6)
    assert feat(rows[1], "distance_from_home_km") == pytest.approx(3936, rel=0.01)
    # 3936 km in half an hour is clipped at the cap
    assert feat(rows[1], "speed_from_prev_kmh") == F.MAX_SPEED_KMH
    _, rows = run(txn(at=T0), txn(at=T0 + 10 * ONE_HOUR, **la))
    assert feat(rows[1], "speed_from_prev_kmh") == pytest.approx(393.6, rel=0.01)
    assert F.haversine_km(HOME_LAT, HOME_LONG, HOME_LAT, HOME_LONG) == 0.0


def test_merchant_and_category_novelty():
    _, rows = run(
        txn(merchant="a", category="travel"),
        txn(merchant="a", category="travel", at=T0 + ONE_MINUTE),
        txn(merchant="b", category="home", at=T0 + 2 * ONE_MINUTE),
    )
    assert [feat(r, "merchant_is_new") for r in rows] == [1.0, 0.0, 1.0]
    assert [feat(r, "category_is_new") for r in rows] == [1.0, 0.0, 1.0]


def test_merchant_memory_is_bounded_and_keeps_recent_ones():
    state = F.new_state()
    for i in range(F.MAX_MERCHANTS + 20):
        F.update(state, txn(merchant=f"m{i}", at=T0 + i * ONE_MINUTE))
    assert len(state.merchants) <= F.MAX_MERCHANTS
    row = F.update(state, txn(merchant=f"m{F.MAX_MERCHANTS + 19}", at=T0 + ONE_DAY))
    assert feat(row, "merchant_is_new") == 0.0


def test_hour_and_night_flag():
    _, [day] = run(txn(at=T0))  # 12:00 UTC
    _, [night] = run(txn(at=T0 + 11 * ONE_HOUR))  # 23:00 UTC
    assert feat(day, "hour_of_day") == 12 and feat(day, "is_night") == 0
    assert feat(night, "hour_of_day") == 23 and feat(night, "is_night") == 1


def test_window_entries_pruned_to_seven_days_and_capped():
    state = F.new_state()
    for i in range(20):
        F.update(state, txn(at=T0 + i * ONE_DAY))
    assert all(t > state.last_time_ms - 7 * ONE_DAY for t in state.times_ms)
    assert len(state.times_ms) == 7
    for i in range(F.MAX_WINDOW_EVENTS + 50):
        F.update(state, txn(at=T0 + 30 * ONE_DAY + i * 1000))
    assert len(state.times_ms) == F.MAX_WINDOW_EVENTS


def test_out_of_order_event_sees_only_its_own_past():
    in_order = [txn(amount=a, at=T0 + i * ONE_MINUTE) for i, a in enumerate([1, 2, 4])]
    late = txn(amount=8, at=T0 + 90 * 1000)  # between the 2nd and 3rd
    state, _ = run(*in_order)
    row = F.update(state, late)
    # window features relative to its own time: events 1 and 2 (and itself), not event 3
    assert feat(row, "count_1h") == 3 and feat(row, "sum_1h") == 11
    assert feat(row, "log_seconds_since_prev") == pytest.approx(__import__("math").log1p(30))
    assert state.times_ms == sorted(state.times_ms)
    assert state.last_time_ms == T0 + 2 * ONE_MINUTE  # the latest event stays the anchor


def test_expire_and_next_expiry():
    state = F.new_state()
    assert F.next_expiry_ms(state) is None
    F.update(state, txn(at=T0))
    F.update(state, txn(at=T0 + 3 * ONE_DAY))
    assert F.next_expiry_ms(state) == T0 + 3 * ONE_DAY + F.PROFILE_LIFETIME_MS
    assert F.expire(state, T0 + 8 * ONE_DAY) is False
    assert state.times_ms == [T0 + 3 * ONE_DAY]  # the 7-day-old entry is gone
    assert F.expire(state, F.next_expiry_ms(state)) is True


def test_idle_card_starts_afresh_even_without_timer():
    state, _ = run(txn(amount=100, at=T0))
    row = F.update(state, txn(amount=5, at=T0 + F.PROFILE_LIFETIME_MS))
    assert feat(row, "card_txn_count") == 0
    assert feat(row, "category_is_new") == 1.0
    assert state.count == 1


def random_stream(n: int, seed: int, cards: int = 5):
    rng = random.Random(seed)
    t = T0
    out = []
    for _ in range(n):
        t += int(rng.expovariate(1 / (3 * ONE_HOUR)))
        out.append(
            txn(
                card=f"c{rng.randrange(cards)}",
                amount=round(rng.lognormvariate(3.5, 1.2), 2),
                at=t,
                category=rng.choice(F.CATEGORIES),
                merchant=f"m{rng.randrange(80)}",
                merchant_lat=HOME_LAT + rng.uniform(-1, 1),
                merchant_long=HOME_LONG + rng.uniform(-1, 1),
            )
        )
    return out


def test_serialization_round_trip_is_exact_and_small():
    stream = random_stream(3000, seed=1, cards=3)
    states: dict[str, F.CardState] = {}
    for t in stream:
        F.update(states.setdefault(t.card_token, F.new_state()), t)
    for state in states.values():
        data = F.state_to_bytes(state)
        assert F.state_from_bytes(data) == state
        assert len(data) < 2048


def test_offline_features_equal_streaming_with_state_round_trip_each_event():
    """Parity: what the job does (load bytes, update, store bytes) equals offline features."""
    stream = random_stream(2000, seed=2)
    offline = [row for _, row in F.offline_features(stream)]
    stored: dict[str, bytes] = {}
    online = []
    for t in stream:
        raw = stored.get(t.card_token)
        state = F.state_from_bytes(raw) if raw is not None else F.new_state()
        online.append(F.update(state, t))
        stored[t.card_token] = F.state_to_bytes(state)
    assert online == offline


def test_unknown_state_version_is_refused_with_clear_error():
    state, _ = run(txn())
    data = bytearray(F.state_to_bytes(state))
    data[0] = 99
    with pytest.raises(F.StateVersionError, match="version 99"):
        F.state_from_bytes(bytes(data))
    with pytest.raises(F.StateVersionError):
        F.state_from_bytes(F.state_to_bytes(state)[:-3])
    with pytest.raises(F.StateVersionError):
        F.state_from_bytes(b"")


def test_update_is_deterministic_across_processes_merchant_hash():
    # CRC32, not Python's salted hash(): fixed value
    assert F.merchant_hash("fraud_Kirlin and Sons") == F.merchant_hash("fraud_Kirlin and Sons")
    assert F.merchant_hash("abc") == 0x352441C2 & 0xFFFF
