"""Acceptance 2 (issue 2): the real Kafka and Postgres of the local stack, with the roles."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest


def test_stack_topics_exist_with_configured_partitions(stack):
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10)
    for topic in stack.topics:
        assert topic in metadata.topics, topic
        assert len(metadata.topics[topic].partitions) >= 1


def test_json_message_round_trips_through_kafka(stack, fresh_topic):
    from confluent_kafka import Consumer, Producer

    payload = {"transaction_id": f"rt-{uuid.uuid4().hex}", "amount": 12.5, "merchant": "m-1"}
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(fresh_topic, key=b"card-token", value=json.dumps(payload).encode())
    assert producer.flush(10) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"rt-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([fresh_topic])
    try:
        received = []
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                received.append(msg)
                break
    finally:
        consumer.close()
    assert len(received) == 1
    assert received[0].key() == b"card-token"
    assert json.loads(received[0].value()) == payload


def _alert_row(transaction_id: str) -> dict:
    return {
        "transaction_id": transaction_id,
        "card_token": "tok-test",
        "card_masked": "**** 4242",
        "event_time": "2026-01-01T00:00:00Z",
        "amount": 99.0,
        "merchant": "m",
        "category": "c",
        "score": 0.97,
        "threshold": 0.5,
        "reasons": "[]",
        "features": "{}",
        "model_version": "test",
    }


INSERT_ALERT = (
    "INSERT INTO alerts (transaction_id, card_token, card_masked, event_time, amount, merchant,"
    " category, score, threshold, reasons, features, model_version) VALUES (%(transaction_id)s,"
    " %(card_token)s, %(card_masked)s, %(event_time)s, %(amount)s, %(merchant)s, %(category)s,"
    " %(score)s, %(threshold)s, %(reasons)s::jsonb, %(features)s::jsonb, %(model_version)s)"
)


def test_writer_inserts_analyst_reads_and_may_only_review(pg_writer, pg_analyst, pg_admin):
    tid = f"roles-{uuid.uuid4().hex}"
    pg_writer.execute(INSERT_ALERT, _alert_row(tid))
    try:
        row = pg_analyst.execute(
            "SELECT card_masked, score, review_status FROM alerts WHERE transaction_id = %s",
            (tid,),
        ).fetchone()
        assert row == ("**** 4242", 0.97, "open")

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg_analyst.execute(INSERT_ALERT, _alert_row(f"roles-{uuid.uuid4().hex}"))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg_analyst.execute("UPDATE alerts SET score = 0 WHERE transaction_id = %s", (tid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg_analyst.execute("DELETE FROM alerts WHERE transaction_id = %s", (tid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg_analyst.execute("INSERT INTO aggregates VALUES (now(), now(), 'c', 'k', 1, 1, 0, 0)")

        updated = pg_analyst.execute(
            "UPDATE alerts SET review_status = 'closed', label = 'fraud', reviewer = 'ana',"
            " review_note = 'confirmed', reviewed_at = now() WHERE transaction_id = %s",
            (tid,),
        ).rowcount
        assert updated == 1
        assert pg_writer.execute(
            "SELECT label, reviewer FROM alerts WHERE transaction_id = %s", (tid,)
        ).fetchone() == ("fraud", "ana")
    finally:
        pg_admin.execute("DELETE FROM alerts WHERE transaction_id = %s", (tid,))  # not writer


def test_migrations_are_recorded_once_with_checksums(pg_admin):
    from deploy.local.migrate import discover

    rows = pg_admin.execute(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    ).fetchall()
    expected = [(m.version, m.name, m.checksum) for m in discover()]
    assert rows == expected
