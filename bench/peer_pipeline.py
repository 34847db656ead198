"""The plain single-process Python pipeline a team would write instead of a Flink job.

Same inputs and outputs as the scoring job, so the benchmark compares like with like:
confluent-kafka consumer -> `schemas.parse.parse_transaction` -> `models.features.update` with
per-card state in a dict -> `Scorer.decide_batch` (one onnxruntime call per poll batch) ->
alerts to the alerts topic (key = transaction id) -> Postgres: scored rows and alerts by COPY
into a temporary staging table then one `INSERT ... ON CONFLICT DO UPDATE` (idempotent
upsert, like the job's JDBC sink) -> bad records to the DLQ topic and `rejected_events`.
Kafka offsets are committed after the Postgres transaction commits (at-least-once).

Run as its own process so the benchmark can account its CPU and memory:
    python -m bench.peer_pipeline --topic T --alerts-topic A --dlq-topic D --pg-schema S \
        [--bounded] [--model-path P]
With `--bounded` it stops once it has consumed up to the end offsets it saw at start (like the
job's bounded mode) and exits 0; otherwise it runs until SIGTERM/SIGINT. It prints one JSON
line with its counters on exit. Limits: no event-time windows beyond the feature state, no
aggregates table (the job's per-minute aggregates are not reproduced), no state expiry timers.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCORED_COLUMNS = (
    "transaction_id", "card_token", "card_last4", "event_time", "amount", "merchant",
    "category", "score", "decision", "reasons", "features", "model_version", "is_late",
    "source_partition", "source_offset",
)
ALERT_COLUMNS = (
    "transaction_id", "card_token", "card_masked", "event_time", "amount", "merchant",
    "category", "score", "threshold", "reasons", "features", "model_version", "is_late",
)
REJECTED_COLUMNS = (
    "source_topic", "source_partition", "source_offset", "reason", "field", "raw_payload",
    "payload_bytes",
)


@dataclass(frozen=True)
class PeerConfig:
    """Everything the peer needs; built by `main()` from flags."""

    kafka_bootstrap: str
    topic: str
    alerts_topic: str
    dlq_topic: str
    pg_conninfo: str
    pg_schema: str | None = None  # search_path for all tables (benchmark namespace)
    group_id: str = "fraudstream-peer"
    bounded: bool = False
    model_path: str | None = None
    card_token_key: str = ""
    max_batch: int = 2000
    poll_timeout_s: float = 0.05
    out_of_orderness_ms: int = 5_000
    dlq_max_payload_bytes: int = 16 * 1024


def _upsert_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {table}_stage "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


class PostgresWriter:
    """Writes one poll batch in one transaction: COPY to temp staging tables, then upsert."""

    def __init__(self, conninfo: str, schema: str | None) -> None:
        import psycopg

        options = f"-c search_path={schema}" if schema else None
        self._conn = psycopg.connect(conninfo, options=options) if options else psycopg.connect(
            conninfo
        )
        with self._conn.cursor() as cur:
            for table in ("scored_transactions", "alerts", "rejected_events"):
                cur.execute(
                    f"CREATE TEMP TABLE {table}_stage (LIKE {table} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                )
        self._conn.commit()
        self._scored_sql = _upsert_sql("scored_transactions", SCORED_COLUMNS, ("transaction_id",))
        self._alert_sql = _upsert_sql("alerts", ALERT_COLUMNS, ("transaction_id",))
        rej_cols = ", ".join(REJECTED_COLUMNS)
        self._rejected_sql = (
            f"INSERT INTO rejected_events ({rej_cols}) SELECT {rej_cols} FROM rejected_events_stage"
            " ON CONFLICT DO NOTHING"
        )

    def write(self, scored: list[tuple], alerts: list[tuple], rejected: list[tuple]) -> None:
        with self._conn.cursor() as cur:
            for rows, table, columns, sql in (
                (scored, "scored_transactions", SCORED_COLUMNS, self._scored_sql),
                (alerts, "alerts", ALERT_COLUMNS, self._alert_sql),
                (rejected, "rejected_events", REJECTED_COLUMNS, self._rejected_sql),
            ):
                if not rows:
                    continue
                with cur.copy(f"COPY {table}_stage ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(sql)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


def _iso(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class PeerPipeline:
    """The loop. `run()` returns counters; `stop()` (signal-safe) ends it after the batch."""

    def __init__(self, cfg: PeerConfig) -> None:
        from confluent_kafka import Consumer, Producer

        from models.features import FEATURE_NAMES
        from models.scoring import Scorer
        from schemas.card_token import CardTokenizer

        self.cfg = cfg
        self._stop = False
        self._feature_names = FEATURE_NAMES
        self._scorer = Scorer.load(cfg.model_path)
        self._tokenizer = CardTokenizer(cfg.card_token_key.encode())
        self._consumer = Consumer({
            "bootstrap.servers": cfg.kafka_bootstrap,
            "group.id": cfg.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.min.bytes": 1,
            "queued.min.messages": 20000,
        })
        self._producer = Producer({
            "bootstrap.servers": cfg.kafka_bootstrap,
            "linger.ms": 5,
            "acks": "all",
            "enable.idempotence": False,
        })
        self._pg = PostgresWriter(cfg.pg_conninfo, cfg.pg_schema)
        self.states: dict[str, Any] = {}
        self.counters = {"consumed": 0, "scored": 0, "alerts": 0, "rejected": 0, "batches": 0}
        self._max_event_ms = -(2**62)

    def stop(self, *_: Any) -> None:
        self._stop = True

    def _assign_from_beginning(self) -> dict[int, int]:
        """Assign every partition of the topic at its beginning; return end offsets (exclusive)."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        meta = self._consumer.list_topics(self.cfg.topic, timeout=30)
        parts = sorted(meta.topics[self.cfg.topic].partitions)
        ends = {}
        for p in parts:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.cfg.topic, p), timeout=30
            )
            ends[p] = high
        self._consumer.assign([TopicPartition(self.cfg.topic, p, OFFSET_BEGINNING) for p in parts])
        return ends

    def run(self) -> dict[str, int]:
        from models.features import new_state, update
        from schemas.parse import TransactionParseError, parse_transaction

        ends = self._assign_from_beginning()
        position = {p: 0 for p in ends}
        done = {p for p, end in ends.items() if end == 0}
        names = self._feature_names
        threshold = self._scorer.threshold
        model_version = self._scorer.model_version
        while not self._stop:
            msgs = self._consumer.consume(self.cfg.max_batch, self.cfg.poll_timeout_s)
            if not msgs:
                if self.cfg.bounded and len(done) == len(ends):
                    break
                continue
            txns, rows, rejected, positions = [], [], [], []
            for msg in msgs:
                if msg.error():
                    raise RuntimeError(f"Kafka consumer error: {msg.error()}")
                part, off = msg.partition(), msg.offset()
                position[part] = off + 1
                if self.cfg.bounded and off + 1 >= ends.get(part, 0):
                    done.add(part)
                payload = msg.value() or b""
                try:
                    txn = parse_transaction(payload, self._tokenizer)
                except TransactionParseError as exc:
                    rejected.append(self._reject(exc, payload, part, off))
                    continue
                state = self.states.get(txn.card_token)
                if state is None:
                    state = self.states[txn.card_token] = new_state()
                rows.append(update(state, txn))
                txns.append(txn)
                positions.append((part, off))
            self.counters["consumed"] += len(msgs)
            decisions = self._scorer.decide_batch(rows) if rows else []
            scored_rows, alert_rows = [], []
            for txn, feats, dec, (part, off) in zip(txns, rows, decisions, positions, strict=True):
                is_late = txn.event_time_ms < self._max_event_ms - self.cfg.out_of_orderness_ms
                if txn.event_time_ms > self._max_event_ms:
                    self._max_event_ms = txn.event_time_ms
                features_json = json.dumps(dict(zip(names, feats, strict=True)))
                reasons_json = json.dumps(_reasons(dec.reasons))
                event_time = _iso(txn.event_time_ms)
                scored_rows.append((
                    txn.transaction_id, txn.card_token, txn.card_last4, event_time, txn.amount,
                    txn.merchant, txn.category, dec.score, "alert" if dec.is_alert else "pass",
                    reasons_json, features_json, model_version, is_late, part, off,
                ))
                if dec.is_alert:
                    alert_rows.append((
                        txn.transaction_id, txn.card_token, txn.card_masked, event_time,
                        txn.amount, txn.merchant, txn.category, dec.score, threshold,
                        reasons_json, features_json, model_version, is_late,
                    ))
                    self._producer.produce(
                        self.cfg.alerts_topic,
                        key=txn.transaction_id.encode(),
                        value=self._alert_json(txn, dec, feats, threshold, model_version,
                                               is_late, part, off),
                    )
            self._producer.poll(0)
            self._pg.write(scored_rows, alert_rows, rejected)
            self._consumer.commit(asynchronous=True)
            self.counters["scored"] += len(scored_rows)
            self.counters["alerts"] += len(alert_rows)
            self.counters["rejected"] += len(rejected)
            self.counters["batches"] += 1
            if self.cfg.bounded and len(done) == len(ends):
                break
        self._producer.flush(30)
        self._consumer.close()
        self._pg.close()
        return self.counters

    def _alert_json(self, txn, dec, feats, threshold, model_version, is_late, part, off) -> bytes:
        from schemas.alert import Alert, AlertReason, alert_to_json, features_to_dict

        alert = Alert.for_transaction(
            txn, score=dec.score, threshold=threshold, model_version=model_version,
            reasons=tuple(AlertReason(**r) for r in _reasons(dec.reasons)),
            features=features_to_dict(self._feature_names, feats), is_late=is_late,
            source_partition=part, source_offset=off,
        )
        return alert_to_json(alert).encode()

    def _reject(self, error: Any, payload: bytes, part: int, off: int) -> tuple:
        reason, fld = error.reason, error.field
        raw = payload[: self.cfg.dlq_max_payload_bytes].decode("utf-8", errors="replace")
        self._producer.produce(
            self.cfg.dlq_topic,
            key=f"{self.cfg.topic}:{part}:{off}".encode(),
            value=json.dumps({
                "source_topic": self.cfg.topic, "source_partition": part, "source_offset": off,
                "reason": reason, "field": fld, "raw_payload": raw,
                "payload_bytes": len(payload),
            }).encode(),
        )
        return (self.cfg.topic, part, off, reason, fld, raw, len(payload))


def _reasons(reasons: Any) -> list[dict[str, Any]]:
    from schemas.alert import reasons_to_list

    return reasons_to_list(reasons)


def main(argv: list[str] | None = None) -> int:
    """Entry point: flags -> PeerConfig -> run; prints the counters as one JSON line."""
    import argparse

    from connectors.settings import load_settings

    settings = load_settings()
    ap = argparse.ArgumentParser(prog="python -m bench.peer_pipeline", description=__doc__)
    ap.add_argument("--topic", default=settings.topic_transactions)
    ap.add_argument("--alerts-topic", default=settings.topic_alerts)
    ap.add_argument("--dlq-topic", default=settings.topic_dlq)
    ap.add_argument("--group-id", default="fraudstream-peer")
    ap.add_argument("--pg-schema", default=None, help="Postgres schema holding the tables")
    ap.add_argument("--bounded", action="store_true", help="stop at the end offsets seen at start")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--max-batch", type=int, default=2000)
    ap.add_argument("--poll-timeout-s", type=float, default=0.05)
    args = ap.parse_args(argv)
    cfg = PeerConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        topic=args.topic,
        alerts_topic=args.alerts_topic,
        dlq_topic=args.dlq_topic,
        pg_conninfo=settings.pg_conninfo("writer"),
        pg_schema=args.pg_schema,
        group_id=args.group_id,
        bounded=args.bounded,
        model_path=args.model_path,
        card_token_key=settings.card_token_key,
        max_batch=args.max_batch,
        poll_timeout_s=args.poll_timeout_s,
    )
    pipeline = PeerPipeline(cfg)
    signal.signal(signal.SIGTERM, pipeline.stop)
    signal.signal(signal.SIGINT, pipeline.stop)
    started = time.monotonic()
    counters = pipeline.run()
    counters_out = dict(counters, wall_s=round(time.monotonic() - started, 3),
                        cards=len(pipeline.states))
    print(json.dumps(counters_out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
