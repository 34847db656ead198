"""Unit tests for `jobs/cli/alerts_follow.py`: decoding, formatting, the follow loop (fakes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from jobs.cli.alerts_follow import (
    FollowOptions,
    MalformedAlert,
    alert_json_line,
    alert_row,
    decode_alert,
    event_time,
    follow,
)
from schemas.alert import Alert, AlertReason, alert_to_json

T0_MS = 1_704_110_400_000  # 2024-01-01 12:00:00 UTC


def make_alert(**overrides) -> Alert:
    fields = {
        "transaction_id": "tx-1",
        "card_token": "tok_abc",
        "card_masked": "****4242",
        "event_time_ms": T0_MS,
        "amount": 1234.5,
        "merchant": "fraud_Kirlin and Sons",
        "category": "shopping_net",
        "score": 0.97,
        "threshold": 0.5,
        "model_version": "m-test-1",
        "reasons": (
            AlertReason("AMOUNT_VS_HISTORY", "amount_ratio_24h", 12.5, 0.4),
            AlertReason("NIGHT", "is_night", 1.0, 0.2),
            AlertReason("VELOCITY_1H", "count_1h", 6.0, 0.1),
            AlertReason("CATEGORY", "category_risk", 0.3, 0.05),
        ),
        "features": {"amount_ratio_24h": 12.5, "count_1h": 6.0},
    }
    fields.update(overrides)
    return Alert(**fields)


def test_decode_valid_alert_keeps_reviewer_fields():
    view = decode_alert(alert_to_json(make_alert()).encode())
    assert view.transaction_id == "tx-1"
    assert view.card_masked == "****4242"
    assert event_time(view) == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert view.amount == 1234.5
    assert view.score == 0.97
    assert [r.code for r in view.reasons] == [
        "AMOUNT_VS_HISTORY", "NIGHT", "VELOCITY_1H", "CATEGORY"
    ]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (None, "tombstone"),
        (json.dumps({"transaction_id": "x"}).encode(), "alert schema"),
        (alert_to_json(make_alert(score=1.5)).encode(), "alert schema"),
        (alert_to_json(make_alert(card_masked="card-1234")).encode(), "card_masked"),
        (b"[1, 2]", "alert schema"),
    ],
)
def test_decode_malformed_names_the_problem(payload, fragment):
    with pytest.raises(MalformedAlert) as info:
        decode_alert(payload)
    assert fragment in str(info.value)


def test_row_shows_masked_card_amount_and_top_three_reasons():
    row = alert_row(decode_alert(alert_to_json(make_alert())))
    assert row[0] == "2024-01-01 12:00:00"
    assert row[1] == "****4242"
    assert row[2] == "1,234.50"
    assert row[5] == "0.970"
    assert row[6] == (
        "AMOUNT_VS_HISTORY (amount_ratio_24h=12.5), NIGHT (is_night=1), "
        "VELOCITY_1H (count_1h=6) (+1)"
    )


def test_row_without_reasons_shows_dash():
    row = alert_row(decode_alert(alert_to_json(make_alert(reasons=()))))
    assert row[6] == "-"


def test_json_line_is_the_wire_document():
    wire = alert_to_json(make_alert())
    assert json.loads(alert_json_line(decode_alert(wire))) == json.loads(wire)


# --------------------------------------------------------------------------- follow loop


@dataclass
class FakeMessage:
    _partition: int
    _offset: int
    _value: bytes | None
    _error: object = None

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def value(self):
        return self._value

    def error(self):
        return self._error


@dataclass
class FakeConsumer:
    """Two partitions; `polls` is the queue of what successive poll() calls return."""

    polls: list
    watermarks: dict = field(default_factory=lambda: {0: (0, 2), 1: (0, 1)})
    assigned: list = field(default_factory=list)

    def list_topics(self, topic=None, timeout=None):
        partitions = {pid: object() for pid in self.watermarks}
        md = SimpleNamespace(error=None, partitions=partitions)
        return SimpleNamespace(topics={"fraud-alerts": md})

    def get_watermark_offsets(self, tp, timeout=None):
        return self.watermarks[tp.partition]

    def assign(self, partitions):
        self.assigned = [(tp.partition, tp.offset) for tp in partitions]

    def poll(self, timeout=None):
        return self.polls.pop(0) if self.polls else None


def _wire(tx_id: str) -> bytes:
    return alert_to_json(make_alert(transaction_id=tx_id)).encode()


def test_without_follow_reads_existing_alerts_and_stops_at_end_offsets():
    consumer = FakeConsumer(
        polls=[
            FakeMessage(0, 0, _wire("a")),
            FakeMessage(1, 0, b"garbage"),
            None,
            FakeMessage(0, 1, _wire("b")),
            FakeMessage(0, 2, _wire("never-read")),  # arrived after start: not printed
        ]
    )
    seen, bad = [], []
    stats = follow(
        consumer,
        FollowOptions(),
        seen.append,
        lambda p, o, why: bad.append((p, o, why)),
    )
    assert [a.transaction_id for a in seen] == ["a", "b"]
    assert [(p, o) for p, o, _ in bad] == [(1, 0)]
    assert "not JSON" in bad[0][2]
    assert (stats.alerts, stats.malformed) == (2, 1)
    assert consumer.assigned == [(0, 0), (1, 0)]


def test_follow_starts_at_end_unless_from_beginning():
    consumer = FakeConsumer(polls=[])
    follow(consumer, FollowOptions(follow=True, max_alerts=1), print, print,
           should_stop=lambda: True)
    assert consumer.assigned == [(0, 2), (1, 1)]
    follow(consumer, FollowOptions(follow=True, from_beginning=True), print, print,
           should_stop=lambda: True)
    assert consumer.assigned == [(0, 0), (1, 0)]


def test_follow_stops_at_max_and_on_request():
    consumer = FakeConsumer(polls=[FakeMessage(0, 5, _wire(f"t{i}")) for i in range(5)])
    seen = []
    stats = follow(consumer, FollowOptions(follow=True, max_alerts=3), seen.append, print)
    assert stats.alerts == 3 and len(seen) == 3

    stop_after_one = FakeConsumer(polls=[FakeMessage(0, 5, _wire(f"t{i}")) for i in range(5)])
    seen.clear()
    follow(stop_after_one, FollowOptions(follow=True), seen.append, print,
           should_stop=lambda: len(seen) >= 1)
    assert len(seen) == 1


def test_consumer_errors_are_reported_not_fatal():
    consumer = FakeConsumer(
        polls=[FakeMessage(0, 0, None, _error="broker down"), FakeMessage(0, 0, _wire("a"))],
        watermarks={0: (0, 1)},
    )
    reports, seen = [], []
    follow(consumer, FollowOptions(), seen.append, lambda p, o, w: reports.append((p, w)))
    assert reports == [(-1, "consumer error: broker down")]
    assert [a.transaction_id for a in seen] == ["a"]


def test_missing_topic_is_a_lookup_error():
    consumer = FakeConsumer(polls=[])
    with pytest.raises(LookupError, match="no-such-topic"):
        follow(consumer, FollowOptions(topic="no-such-topic"), print, print)


def test_partition_emptied_by_retention_does_not_block_the_end():
    # low == high > 0: everything was deleted by retention; nothing to wait for.
    consumer = FakeConsumer(polls=[FakeMessage(0, 7, _wire("a"))],
                            watermarks={0: (7, 8), 1: (5, 5)})
    seen = []
    follow(consumer, FollowOptions(), seen.append, print)
    assert [a.transaction_id for a in seen] == ["a"]
    assert consumer.assigned == [(0, 7), (1, 5)]


def test_a_malformed_alert_never_echoes_a_card_number():
    doc = json.loads(_wire("x"))
    doc["card_masked"] = "4111 1111 1111 1111"  # jsonschema quotes the offending value
    leaky = json.dumps(doc).encode()
    consumer = FakeConsumer(polls=[FakeMessage(0, 0, leaky)], watermarks={0: (0, 1)})
    bad = []
    follow(consumer, FollowOptions(), lambda a: None, lambda p, o, why: bad.append(why))
    (why,) = bad
    assert why and "4111" not in why.replace("[REDACTED-PAN]", "")
