"""`fraudstream alerts` on the real Kafka: alerts produced to a fresh topic are read back.

A malformed message among them is reported with its partition and offset and does not stop
the reader.
"""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from typer.testing import CliRunner

from jobs.cli import app
from jobs.cli.alerts_follow import FollowOptions, consumer_config, follow
from schemas.alert import ALERT_SCHEMA_VERSION, Alert, AlertReason, alert_to_json

pytestmark = pytest.mark.integration

T0_MS = 1_704_110_400_000


def _alert(i: int) -> Alert:
    return Alert(
        transaction_id=f"follow-{i}", card_token=f"tok-{i}", card_masked=f"****{1000 + i}",
        event_time_ms=T0_MS + i * 1000, amount=100.0 + i, merchant="fraud_Follow Test",
        category="misc_net", score=0.95, threshold=0.5, model_version="model-test-1",
        reasons=(AlertReason("NIGHT", "is_night", 1.0, 0.2),), features={"is_night": 1.0},
    )


@pytest.fixture
def bootstrap(stack):
    return stack.kafka_bootstrap


@pytest.fixture
def topic(bootstrap, topic_factory):
    """A fresh 2-partition topic holding 3 valid alerts and 1 malformed message."""
    name = topic_factory("ops-alerts", partitions=2)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(3):
        producer.produce(name, alert_to_json(_alert(i)).encode(), key=f"follow-{i}",
                         partition=i % 2)
    producer.produce(name, b'{"transaction_id": "half an alert"', partition=1)
    assert producer.flush(30) == 0
    return name


def test_follower_returns_alerts_and_reports_malformed(bootstrap, topic):
    consumer = Consumer(consumer_config(bootstrap, f"ops-test-{uuid.uuid4().hex[:6]}"))
    seen, bad = [], []
    try:
        stats = follow(consumer, FollowOptions(topic=topic), seen.append,
                       lambda p, o, why: bad.append((p, o, why)))
    finally:
        consumer.close()
    assert sorted(a.transaction_id for a in seen) == ["follow-0", "follow-1", "follow-2"]
    assert {a.card_masked for a in seen} == {"****1000", "****1001", "****1002"}
    assert [(p, o) for p, o, _ in bad] == [(1, 1)]
    assert "not JSON" in bad[0][2]
    assert (stats.alerts, stats.malformed) == (3, 1)


def test_follow_mode_from_beginning_stops_at_max(bootstrap, topic):
    consumer = Consumer(consumer_config(bootstrap, f"ops-test-{uuid.uuid4().hex[:6]}"))
    seen = []
    try:
        follow(consumer, FollowOptions(topic=topic, follow=True, from_beginning=True,
                                       max_alerts=3), seen.append, lambda *a: None)
    finally:
        consumer.close()
    assert len(seen) == 3


runner = CliRunner()


def test_cli_prints_alerts_and_json(topic):
    shown = runner.invoke(app, ["alerts", "--topic", topic])
    assert shown.exit_code == 0, shown.output
    for i in range(3):
        assert f"****{1000 + i}" in shown.output
    assert "malformed alert at partition 1 offset 1" in shown.output
    assert "tok-0" not in shown.output  # the token is not for terminals

    as_json = runner.invoke(app, ["alerts", "--topic", topic, "--json", "--max", "2"])
    assert as_json.exit_code == 0
    lines = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and all(d["schema_version"] == ALERT_SCHEMA_VERSION for d in lines)


def test_cli_missing_topic_is_a_clear_error(stack):
    result = runner.invoke(app, ["alerts", "--topic", f"no-such-{uuid.uuid4().hex[:6]}"])
    assert result.exit_code == 1
    assert "not available" in result.output
