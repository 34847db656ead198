"""`fraudstream generate --kafka`: generated transactions reach a real topic, keyed by card
token, as wire v1 JSON that the parser accepts, with no delivery errors."""

from __future__ import annotations

import pytest
import typer
from confluent_kafka import Consumer
from typer.testing import CliRunner

from models.data.cli import register
from models.data.generator import GeneratorConfig, generate
from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction

pytestmark = pytest.mark.integration

KEY = "integration-generator-token-key"


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    messages, idle = [], 0
    try:
        while len(messages) < expected and idle < timeout_s:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            assert msg.error() is None, msg.error()
            messages.append(msg)
    finally:
        consumer.close()
    return messages


def test_generate_to_kafka_delivers_parseable_keyed_records(stack, fresh_topic, monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_CARD_TOKEN_KEY", KEY)
    app = typer.Typer()
    register(app)
    args = ["generate", "--cards", "5", "--days", "10", "--seed", "4", "--kafka", fresh_topic,
            "--rate", "2000", "--bootstrap", stack.kafka_bootstrap]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    tok = CardTokenizer(KEY.encode())
    expected = list(generate(GeneratorConfig(cards=5, days=10, seed=4), tok))
    assert f"sent {len(expected)}, delivered {len(expected)}, failed 0" in run.output
    messages = consume_all(stack.kafka_bootstrap, fresh_topic, len(expected))
    assert len(messages) == len(expected)
    got = {}
    for msg in messages:
        txn = parse_transaction(msg.value(), tok)
        assert msg.key() == txn.card_token.encode()
        got[txn.transaction_id] = txn
    assert got == {t.transaction_id: t for t in expected}
    # Per-card order is kept (one card -> one partition, idempotent producer).
    for card in {t.card_token for t in expected}:
        sent = [t.transaction_id for t in expected if t.card_token == card]
        seen = [m for m in messages if m.key() == card.encode()]
        ids = [parse_transaction(m.value(), tok).transaction_id for m in seen]
        assert ids == sent


def test_load_kaggle_replays_valid_rows_to_kafka(stack, fresh_topic, monkeypatch):
    from pathlib import Path

    from models.data.kaggle import load_kaggle_csv

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "kaggle_sample.csv"
    monkeypatch.setenv("FRAUDSTREAM_CARD_TOKEN_KEY", KEY)
    app = typer.Typer()
    register(app)
    run = CliRunner().invoke(app, ["load-kaggle", str(fixture), "--kafka", fresh_topic,
                                   "--bootstrap", stack.kafka_bootstrap])
    assert run.exit_code == 0, run.output
    assert "sent 7, delivered 7, failed 0" in run.output
    tok = CardTokenizer(KEY.encode())
    expected = load_kaggle_csv(fixture, tok).transactions
    messages = consume_all(stack.kafka_bootstrap, fresh_topic, len(expected))
    got = sorted((parse_transaction(m.value(), tok) for m in messages),
                 key=lambda t: (t.event_time_ms, t.card_token, t.transaction_id))
    assert got == expected
    raw = b"".join(m.value() for m in messages)
    assert b"4992346398065154184" not in raw and b"cc_num" not in raw
