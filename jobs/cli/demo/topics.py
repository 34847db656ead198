"""The demo's Kafka topics: its own source topic, the job's output topics, their end offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kafka_logs import client_config


@dataclass(frozen=True, slots=True)
class OutputTopics:
    alerts: str
    dlq: str


def job_output_topics(settings: Any) -> OutputTopics:
    """The alerts and DLQ topics the job subprocess will write: resolved exactly as it does
    (`jobs.config.build_config`: flags > FRAUDSTREAM_* env > stack settings > defaults)."""
    from jobs.config import build_config  # noqa: PLC0415

    cfg = build_config({}, stack={"kafka_bootstrap": settings.kafka_bootstrap})
    return OutputTopics(alerts=cfg.alerts_topic, dlq=cfg.dlq_topic)


def end_offsets(consumer: Any, topic: str) -> dict[int, int]:
    """partition -> end offset of `topic` ({} if the topic does not exist)."""
    from confluent_kafka import TopicPartition  # noqa: PLC0415

    md = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error is not None:
        return {}
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in md.partitions
    }


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from deploy.local.kafka import create_topics  # noqa: PLC0415

    create_topics(bootstrap, (topic,), partitions)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete topics, best effort (cleanup must never fail a demo)."""
    if not names:
        return
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient(client_config({"bootstrap.servers": bootstrap}))
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def list_topics(bootstrap: str) -> list[str]:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient(client_config({"bootstrap.servers": bootstrap}))
    return list(admin.list_topics(timeout=10).topics)
