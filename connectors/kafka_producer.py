"""Produce transactions to Kafka: wire v1 JSON, key = card token, at a target rate.

`produce_transactions(records, config)` sends every record with confluent-kafka
(`acks=all`, idempotent producer, so per-card order holds within a partition), paces the
sends to `config.rate` messages per second (0 = as fast as possible), counts delivery
errors by reason from the delivery callbacks, and flushes at the end. Anything still
undelivered after the flush timeout is counted as failed, never ignored.

Time is a parameter: `clock` and `sleep` are injectable for tests.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka_logs import client_config
from connectors.settings import DEFAULT_TOPICS
from schemas.transaction import Transaction
from schemas.wire import to_json_bytes


@dataclass(frozen=True)
class ProducerConfig:
    """Where and how fast to produce. `rate` is messages per second; 0 means unthrottled."""

    bootstrap: str
    topic: str = DEFAULT_TOPICS.transactions
    rate: float = 0.0
    flush_timeout_s: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)  # more librdkafka settings

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must be >= 0 (0 = unthrottled)")
        if not self.bootstrap:
            raise ValueError("bootstrap servers must be set")


@dataclass
class DeliveryStats:
    """What happened to the produced messages."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def make_producer(config: ProducerConfig) -> Any:
    """A confluent-kafka Producer with durable defaults (acks=all, idempotence, lz4)."""
    from confluent_kafka import Producer

    settings = {
        "bootstrap.servers": config.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "client.id": "fraudstream-generator",
    }
    settings.update(config.extra)
    return Producer(client_config(settings))


def produce_transactions(
    records: Iterable[Transaction],
    config: ProducerConfig,
    *,
    producer: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[int], None] | None = None,
) -> DeliveryStats:
    """Send `records` in order; returns the delivery accounting after the final flush.

    `on_progress(n)` is called with the number of messages sent since the last call.
    """
    producer = producer if producer is not None else make_producer(config)
    stats = DeliveryStats()

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            stats.delivered += 1
        else:
            stats.failed += 1
            stats.errors[str(err.name() if hasattr(err, "name") else err)] += 1

    start = clock()
    check_every = max(1, int(config.rate // 100)) if config.rate else 1000
    pending_progress = 0
    for txn in records:
        while True:
            try:
                producer.produce(
                    config.topic,
                    key=txn.card_token.encode("ascii"),
                    value=to_json_bytes(txn),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.1)
        stats.sent += 1
        pending_progress += 1
        if stats.sent % check_every == 0:
            producer.poll(0)
            if config.rate:
                ahead = start + stats.sent / config.rate - clock()
                if ahead > 0:
                    sleep(ahead)
            if on_progress is not None:
                on_progress(pending_progress)
                pending_progress = 0
    if on_progress is not None and pending_progress:
        on_progress(pending_progress)
    remaining = producer.flush(config.flush_timeout_s)
    if remaining:
        stats.errors["not delivered before flush timeout"] += int(remaining)
        stats.failed += int(remaining)
    stats.elapsed_s = clock() - start
    return stats
