"""Writers (JSONL wire / CSV / Parquet) round-trip, and the Kafka producer's pacing and
delivery accounting against a fake producer (the real broker is in tests/integration)."""

from __future__ import annotations

import json

import pytest

from connectors.kafka_producer import ProducerConfig, produce_transactions
from models.data.generator import GeneratorConfig, generate
from models.data.writers import UnknownFormatError, read_records, write_records
from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction

TOK = CardTokenizer(b"writers-test-token-key")


@pytest.fixture(scope="module")
def records():
    return list(generate(GeneratorConfig(cards=8, days=20, seed=2), TOK))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_each_format_round_trips_exactly(tmp_path, records, suffix):
    path = tmp_path / f"out{suffix}"
    assert write_records(records, path) == len(records)
    assert list(read_records(path, tokenizer=TOK)) == records


def test_jsonl_lines_are_wire_v1_without_card_numbers(tmp_path, records):
    path = tmp_path / "out.jsonl"
    write_records(records, path)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["schema_version"] == 1 and first["event_time"].endswith("Z")
    assert "cc_num" not in first and len(first["card_token"]) == 64


def test_unknown_format_is_refused(tmp_path, records):
    with pytest.raises(UnknownFormatError):
        write_records(records, tmp_path / "out.txt")


class FakeError:
    def name(self) -> str:
        return "_MSG_TIMED_OUT"


class FakeProducer:
    """Records messages; fails every `fail_every`-th delivery; raises BufferError once."""

    def __init__(self, fail_every: int = 0) -> None:
        self.messages: list[tuple[str, bytes, bytes]] = []
        self.callbacks: list = []
        self.fail_every = fail_every
        self.buffer_full_once = True
        self.polls = 0
        self.delivered = 0

    def produce(self, topic, key, value, on_delivery):
        if self.buffer_full_once and len(self.messages) == 3:
            self.buffer_full_once = False
            raise BufferError("queue full")
        self.messages.append((topic, key, value))
        self.callbacks.append(on_delivery)

    def poll(self, timeout):
        self.polls += 1
        self._deliver()
        return 0

    def flush(self, timeout):
        self._deliver()
        return 0

    def _deliver(self):
        pending, self.callbacks = self.callbacks, []
        for cb in pending:
            self.delivered += 1
            failed = self.fail_every and self.delivered % self.fail_every == 0
            cb(FakeError() if failed else None, None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_producer_keys_by_card_token_and_counts_deliveries(records):
    fake = FakeProducer(fail_every=10)
    clock = FakeClock()
    config = ProducerConfig(bootstrap="fake:9092", topic="transactions", rate=0)
    stats = produce_transactions(records, config, producer=fake, clock=clock, sleep=clock.sleep)
    assert stats.sent == len(records) == len(fake.messages)
    assert stats.failed == len(records) // 10 and stats.errors == {"_MSG_TIMED_OUT": stats.failed}
    assert stats.delivered + stats.failed == stats.sent
    for (topic, key, value), txn in zip(fake.messages, records, strict=True):
        assert topic == "transactions" and key == txn.card_token.encode()
        assert parse_transaction(value, TOK) == txn


def test_producer_paces_to_the_target_rate(records):
    clock = FakeClock()
    config = ProducerConfig(bootstrap="fake:9092", rate=200.0)
    stats = produce_transactions(records, config, producer=FakeProducer(), clock=clock,
                                 sleep=clock.sleep)
    # With an instant fake broker, all the elapsed time is pacing: n / rate seconds.
    assert stats.elapsed_s == pytest.approx(len(records) / 200.0, rel=0.02)


def test_undelivered_after_flush_are_failures(records):
    class Stuck(FakeProducer):
        def flush(self, timeout):
            return len(self.callbacks)

        def poll(self, timeout):
            return 0

    stats = produce_transactions(records[:50], ProducerConfig(bootstrap="fake:9092"),
                                 producer=Stuck())
    assert stats.failed == 50 and stats.errors["not delivered before flush timeout"] == 50
