"""The control topic from the operator's side: publish a control message, read what the topic
says now. The scoring job reads the same topic as a Flink source (connectors.kafka).

- `publish(bootstrap, topic, message)` writes one `models.control.ControlMessage` (acks=all,
  idempotent) and returns its (partition, offset) once the broker has it; raises
  `ControlTopicError` with the broker's reason otherwise.
- `read_records(bootstrap, topic)` reads every partition from its start to the end offsets it
  had when reading began and returns the last (value, timestamp ms) per key: on a compacted
  topic, the configuration in force. `read_state` folds those records into a
  `ControlState` (records the job would refuse as malformed are skipped and listed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka_logs import client_config
from models.control import ControlMessage, ControlMessageError, ControlState

# A control message may carry an ONNX model (models.control.MAX_MODEL_BYTES, base64).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ControlTopicError(RuntimeError):
    """The control topic cannot be written or read; the text says why."""


@dataclass(frozen=True)
class TopicView:
    """The control topic as read now: last record per key, and the state they make."""

    records: dict[str, tuple[bytes | None, int]]  # key -> (value, timestamp ms)
    state: ControlState
    skipped: list[str] = field(default_factory=list)  # keys whose last record is malformed

    def issued_at_ms(self, key: str) -> int | None:
        """Broker timestamp of the last record of `key` (None when there is none)."""
        entry = self.records.get(key)
        return entry[1] if entry is not None else None


def publish(bootstrap: str, topic: str, message: ControlMessage, timeout_s: float = 30.0
            ) -> tuple[int, int]:
    """Write `message` under its key; (partition, offset) once acknowledged."""
    from confluent_kafka import Producer

    producer = Producer(client_config({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.max.bytes": MAX_MESSAGE_BYTES,
    }))
    result: dict[str, Any] = {}

    def delivered(err: Any, msg: Any) -> None:
        result["error"], result["msg"] = err, msg

    key, value = message.to_record()
    try:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    except Exception as exc:  # BufferError, KafkaException: say which topic and why
        raise ControlTopicError(f"cannot write to {topic!r}: {exc}") from exc
    remaining = producer.flush(timeout_s)
    if remaining or "msg" not in result:
        raise ControlTopicError(f"no acknowledgement from Kafka ({bootstrap}) within "
                                f"{timeout_s:.0f} s for topic {topic!r}")
    if result["error"] is not None:
        raise ControlTopicError(f"Kafka refused the control message: {result['error']}")
    return result["msg"].partition(), result["msg"].offset()


def read_records(bootstrap: str, topic: str, timeout_s: float = 30.0
                 ) -> dict[str, tuple[bytes | None, int]]:
    """The last (value, timestamp ms) per key, from the start to the current end."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(client_config({
        "bootstrap.servers": bootstrap,
        "group.id": f"fraudstream-control-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": MAX_MESSAGE_BYTES,
        "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
        "receive.message.max.bytes": MAX_MESSAGE_BYTES + 1024 * 1024,
    }))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            reason = metadata.error if metadata is not None else "missing"
            raise ControlTopicError(f"control topic {topic!r} not available ({reason}): run "
                                    "`fraudstream up` (it creates it)")
        ends: dict[int, int] = {}
        assignment = []
        for pid in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid),
                                                       timeout=timeout_s)
            if high > low:
                ends[pid] = high
                assignment.append(TopicPartition(topic, pid, low))
        records: dict[str, tuple[bytes | None, int]] = {}
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise ControlTopicError(f"timed out reading {topic!r} to its end")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise ControlTopicError(f"reading {topic!r}: {msg.error()}")
            key = (msg.key() or b"").decode("utf-8", "replace")
            records[key] = (msg.value(), msg.timestamp()[1])
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
        return records
    finally:
        consumer.close()


def read_state(bootstrap: str, topic: str, timeout_s: float = 30.0) -> TopicView:
    """`read_records` folded into the `ControlState` the job applies."""
    records = read_records(bootstrap, topic, timeout_s)
    state, skipped = ControlState(), []
    for key, (value, _) in sorted(records.items()):
        try:
            state = state.apply_record(key, value)
        except ControlMessageError:
            skipped.append(key)
    return TopicView(records, state, skipped)
