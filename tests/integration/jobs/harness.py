"""Helpers for the scoring-job end-to-end tests: topics, producing, reading topics back,
running the job as `fraudstream run` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.jobs.streams import Record

REPO = Path(__file__).resolve().parents[3]
# The 2 MB malformed record exceeds the broker's default max message size (~1 MB): the test
# topics allow 4 MB (topic config), and the test producer raises its own limit to match.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Topics:
    source: str
    dlq: str
    alerts: str

    def all(self) -> tuple[str, str, str]:
        return (self.source, self.dlq, self.alerts)


def create_topics(bootstrap: str, prefix: str, partitions: int = 4) -> Topics:
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"{prefix}-src-{run}", f"{prefix}-dlq-{run}", f"{prefix}-alerts-{run}")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    futures = admin.create_topics(
        [NewTopic(t, partitions, 1, config=config) for t in topics.all()]
    )
    for f in futures.values():
        f.result(timeout=30)
    return topics


def delete_topics(bootstrap: str, topics: Topics) -> None:
    futures = AdminClient({"bootstrap.servers": bootstrap}).delete_topics(list(topics.all()))
    for f in futures.values():
        try:
            f.result(timeout=30)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass


def produce(bootstrap: str, topic: str, records: Iterable[Record]) -> list[tuple[int, int]]:
    """Produce in order (idempotent producer); returns (partition, offset) per record."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "message.max.bytes": MAX_MESSAGE_BYTES + 1024,
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    positions: list[tuple[int, int] | None] = []
    errors: list[str] = []

    def on_delivery(index: int):
        def cb(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                positions[index] = (msg.partition(), msg.offset())

        return cb

    for i, rec in enumerate(records):
        positions.append(None)
        while True:
            try:
                producer.produce(topic, value=rec.value, key=rec.key, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    assert not errors, errors[:3]
    assert all(p is not None for p in positions)
    return positions  # type: ignore[return-value]


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[bytes, bytes]]:
    """Every (key, value) currently in `topic`, from the beginning to the end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        ends = {}
        for tp in parts:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            ends[tp.partition] = high
        consumer.assign(parts)
        out: list[tuple[bytes, bytes]] = []
        pos = {p: 0 for p in ends}
        deadline = time.monotonic() + timeout
        while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.key(), msg.value()))
            pos[msg.partition()] = msg.offset() + 1
        return out
    finally:
        consumer.close()


def run_job_cli(flags: dict[str, object], log_path: Path, timeout: float) -> float:
    """`fraudstream run --bounded` with `--set name=value` flags; returns wall seconds.

    Raises AssertionError with the log tail when the job fails or times out.
    """
    cmd = [sys.executable, "-m", "jobs.cli", "run", "--bounded"]
    for k, v in flags.items():
        cmd += ["--set", f"{k}={v}"]
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.run(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
            env=dict(os.environ), check=False,
        )
    took = time.monotonic() - start
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"job failed (exit {proc.returncode}):\n{tail}")
    return took


def flink_log_files() -> list[Path]:
    """Log files a local PyFlink MiniCluster writes (pyflink/log)."""
    import pyflink

    folder = Path(pyflink.__file__).resolve().parent / "log"
    return sorted(folder.glob("*.log")) if folder.is_dir() else []
