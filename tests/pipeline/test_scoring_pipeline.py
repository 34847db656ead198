"""The scoring job's real graph on an embedded MiniCluster, fed from memory (tests/pipeline).

ONE bounded run for the module (`run`): `build_pipeline` exactly as production builds it
(micro-batcher, parser, shard routing, keyed per-card state, ONNX scoring with the registry's
default model, dead letters, SQL window aggregates), thread mode, parallelism 2, small
micro-batches (so cards' states cross many scorer calls), fed with `scenario.build()` through
the same event-time rule and watermarks as the Kafka source. See tests/pipeline/harness.py.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import pytest

from jobs.config import JobConfig
from models.features import FEATURE_NAMES, offline_features
from schemas.alert import parse_alert
from schemas.card_token import CardTokenizer
from tests.pipeline import scenario as S

pytest.importorskip("pyflink")
# A wedged MiniCluster (see tests/pipeline/__init__.py) must fail the run, not hang it.
pytestmark = pytest.mark.timeout(300)

SOURCE_TOPIC = "transactions"


@pytest.fixture(scope="module")
def run():
    from tests.pipeline.harness import run_pipeline

    cards, records = S.build(CardTokenizer.from_env())
    cfg = JobConfig(
        parallelism=S.PARALLELISM,
        scoring_shards=S.SHARDS,
        # batches of 8 records, cut by size rather than time: many scorer calls per card (its
        # state must carry over), and calls that hold several cards of one shard
        batch_max_records=8,
        batch_max_delay_ms=1_000,
        checkpoint_interval_ms=0,
        source_topic=SOURCE_TOPIC,
    )
    out = run_pipeline([(r.payload, r.partition, r.offset) for r in records], cfg)
    valid = [r for r in records if r.txn is not None]
    return {
        "cards": cards,
        "records": records,
        "valid": valid,
        "bad": [r for r in records if r.txn is None],
        "out": out,
        "scored": {row["transaction_id"]: row for row in out.scored},
        "features": {row["transaction_id"]: json.loads(row["features_json"])
                     for row in out.scored},
    }


def _card_rows(run, name):
    """The scored rows of a named card, in event-time order."""
    card = run["cards"][name]
    rows = [r for r in run["out"].scored if r["card_token"] == card]
    return sorted(rows, key=lambda r: r["event_time_ms"])


def test_every_valid_record_is_scored_exactly_once(run):
    valid = run["valid"]
    counts = Counter(row["transaction_id"] for row in run["out"].scored)
    duplicated = {tid: n for tid, n in counts.items() if n > 1}
    assert not duplicated, f"scored more than once: {duplicated}"
    expected = {r.txn.transaction_id for r in valid}
    assert len(expected) == len(valid) == 179
    assert set(counts) == expected, (
        f"lost: {sorted(expected - set(counts))[:5]}, unknown: {sorted(set(counts) - expected)[:5]}"
    )
    for r in valid:
        row = run["scored"][r.txn.transaction_id]
        assert (row["source_partition"], row["source_offset"]) == (r.partition, r.offset)
        assert row["card_token"] == r.txn.card_token and row["amount"] == r.txn.amount
        # each partition's records are in event-time order: nothing here is late
        assert row["is_late"] is False
        assert 0.0 <= row["score"] <= 1.0 and row["model_version"]


def test_the_fraud_burst_is_alerted_and_nothing_else(run):
    victim = _card_rows(run, "VICTIM")
    history, burst = victim[:-S.BURST_SIZE], victim[-S.BURST_SIZE:]
    assert [r["amount"] for r in burst] == [900.0 + 37 * i for i in range(S.BURST_SIZE)]
    assert all(r["is_alert"] for r in burst), [round(r["score"], 3) for r in burst]
    assert not any(r["is_alert"] for r in history)
    for row in burst:
        assert row["score"] >= row["threshold"]
        assert json.loads(row["reasons_json"]), "an alert names its reasons"
        alert = parse_alert(row["alert_json"])
        assert alert.transaction_id == row["transaction_id"]
        assert alert.card_masked.endswith(row["card_last4"])
    alerted = {r["transaction_id"] for r in run["out"].scored if r["is_alert"]}
    assert alerted == {r["transaction_id"] for r in burst}, "only the burst is alerted"
    assert all(r["alert_json"] is None for r in run["out"].scored if not r["is_alert"])


def test_features_accumulate_per_card_across_scorer_calls(run):
    victim = [run["features"][r["transaction_id"]] for r in _card_rows(run, "VICTIM")]
    burst = victim[-S.BURST_SIZE:]
    # the burst's 1-hour window grows with each event (8 micro-batches of 8 records in between)
    assert [f["count_1h"] for f in burst] == list(range(1, S.BURST_SIZE + 1))
    assert [f["sum_1h"] for f in burst] == [
        sum(900.0 + 37 * j for j in range(i + 1)) for i in range(S.BURST_SIZE)
    ]
    # the card's whole history (16 earlier purchases over a week) is in its state
    assert [f["card_txn_count"] for f in victim] == list(range(len(victim)))
    # ... while its 7-day window at 23:00 has dropped the two purchases of a week ago
    assert burst[0]["count_7d"] == 16 - 2 + 1


def test_cards_do_not_mix_in_a_shard_or_across_subtasks(run):
    cards = run["cards"]
    # the layout this test is about (checked, not assumed): same shard, other subtask
    assert S.shard(cards["NEIGHBOUR"]) == S.shard(cards["VICTIM"])
    assert S.partition(cards["NEIGHBOUR"]) == S.partition(cards["VICTIM"])
    assert S.scorer_subtask(cards["OTHER"]) != S.scorer_subtask(cards["VICTIM"])
    neighbour = [run["features"][r["transaction_id"]] for r in _card_rows(run, "NEIGHBOUR")]
    other = [run["features"][r["transaction_id"]] for r in _card_rows(run, "OTHER")]
    # interleaved with the burst within the same hour, yet they count only their own events
    assert [f["count_1h"] for f in neighbour] == [1, 2, 3, 4, 5, 6]
    assert [f["card_txn_count"] for f in neighbour] == [0, 1, 2, 3, 4, 5]
    assert [f["sum_1h"] for f in neighbour] == [12.0, 25.0, 39.0, 54.0, 70.0, 87.0]
    assert [f["count_1h"] for f in other] == [1, 2, 3, 4]
    # every event of every card: the job's features are the offline reference's, per card
    offline = {t.transaction_id: v for t, v in offline_features(r.txn for r in run["valid"])}
    mismatches = [
        (tid, name, run["features"][tid][name], want)
        for tid, vector in offline.items()
        for name, want in zip(FEATURE_NAMES, vector, strict=True)
        if not math.isclose(run["features"][tid][name], want, rel_tol=1e-9, abs_tol=1e-9)
    ]
    assert not mismatches, f"{len(mismatches)} feature mismatches, e.g. {mismatches[:3]}"


def test_malformed_records_become_dead_letters_with_their_reason(run):
    dead = {(d["source_partition"], d["source_offset"]): d for d in run["out"].dead_letters}
    assert len(dead) == len(run["out"].dead_letters), "one dead letter per record"
    bad = {(r.partition, r.offset): r for r in run["bad"]}
    assert set(dead) == set(bad)
    for position, record in bad.items():
        d = dead[position]
        assert d["field"] == record.bad_field, (d["field"], d["reason"])
        assert d["reason"] and d["source_topic"] == SOURCE_TOPIC
        assert d["dlq_key"] == f"{SOURCE_TOPIC}/{position[0]}/{position[1]}"
        assert d["payload_bytes"] == len(record.payload)
        message = json.loads(d["dlq_json"])
        assert (message["reason"], message["field"]) == (d["reason"], d["field"])
        if S.TEST_PAN.encode() not in record.payload:
            assert d["raw_exact"] is True and d["raw_bytes"] == record.payload
    reasons = [dead[p]["reason"] for p in sorted(bad, key=lambda p: bad[p].event_time_ms)]
    assert "not valid JSON" in reasons[0]
    assert any("future" in reason for reason in reasons), reasons
    assert any("unsupported version 2" in reason for reason in reasons), reasons


def test_no_card_number_passes_the_parser(run):
    pan_rows = _card_rows(run, "PAN")
    assert len(pan_rows) == 1, "the legacy record with a raw cc_num is scored"
    assert pan_rows[0]["card_last4"] == S.TEST_PAN[-4:]
    with_pan = [d for d in run["out"].dead_letters if d["raw_exact"] is False]
    assert len(with_pan) == 1 and S.TEST_PAN.encode() not in with_pan[0]["raw_bytes"]
    everything = repr(run["out"])
    assert S.TEST_PAN not in everything


def test_aggregates_count_every_scored_transaction(run):
    scored = run["out"].scored
    expected: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for row in scored:
        for dimension in ("category", "merchant"):
            counts = expected[(dimension, row[dimension])]
            counts[0] += 1
            counts[1] += row["amount"]
            counts[2] += int(row["is_alert"])
    got: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
    windows = set()
    for agg in run["out"].aggregates:
        counts = got[(agg["dimension"], agg["key"])]
        counts[0] += agg["txn_count"]
        counts[1] += agg["amount_sum"]
        counts[2] += agg["alert_count"]
        windows.add(agg["window_start"])
    assert set(got) == set(expected)
    for key, (count, amount, alerts) in expected.items():
        assert got[key][0] == count and got[key][2] == alerts, key
        assert math.isclose(got[key][1], amount, rel_tol=1e-9), key
    assert sum(c for (dim, _), (c, _, _) in got.items() if dim == "category") == len(scored)
    # the burst's eight alerts fall into one-minute windows from 23:00 to 23:35 UTC
    assert {"2024-01-01 23:00:00.000", "2024-01-01 23:35:00.000"} <= windows
