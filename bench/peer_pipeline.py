"""The plain single-process Python pipeline a team would write instead of a Flink job.

Same inputs, outputs and per-event work as the scoring job, so the benchmark compares like with
like: the per-event work is the job's own pure core, `models.hot_path` (parse, dead letters,
features, one model call per batch, late flag, alert and JSON rendering); around it, one
confluent-kafka consumer -> `parse_batch` -> `score_batch` (per-card state in a dict) ->
alerts to the alerts topic (key = transaction id, value `ScoredEvent.alert_json`) and dead
letters to the DLQ topic (key `topic/partition/offset`, value `DeadLetter.to_json()`, PANs
redacted) -> Postgres: scored rows, alerts and rejected events by COPY into temporary staging
tables then one `INSERT ... ON CONFLICT` each (idempotent upsert, like the job's JDBC sinks).
Kafka offsets are committed after the Postgres transaction commits (at-least-once).

Per-minute aggregates (the job's tumbling event-time windows per category and per merchant,
`bench.peer_aggregates.WindowAggregates`): every scored event whose window has not fired yet is
added; after each batch the windows the advanced watermark closes are written to `aggregates`
(upsert on window_start, dimension, key) in the same Postgres transaction as the batch's rows.
Bounded mode closes every remaining window at the end of input (Flink's final MAX watermark).
The open windows live in memory only (like the card states: the peer has no checkpoints).
With `--partitions` the process reads a share of the topic and another process writes the
same windows, so its upsert ADDS its counts and sums to the row (and combines the means);
without it the upsert replaces the row, like the job's.

Late events: the watermark handed to `score_batch` is what Flink's bounded-out-of-orderness
watermark would be before the batch, `max event time of earlier batches - out_of_orderness_ms
- 1` (`NO_WATERMARK_MS` before the first event), see `BatchWatermark`. One watermark for all
partitions this process reads (the job keeps one per partition and takes the minimum).

Run as its own process so the benchmark can account its CPU and memory:
    python -m bench.peer_pipeline --topic T --alerts-topic A --dlq-topic D --pg-schema S \
        [--bounded] [--partitions 0,2] [--model-path P]
`--partitions` reads only those partitions of the topic (the `python-x2` engine runs two
processes, each with half of them; the topics are keyed by card, so per-card state stays
whole). With `--bounded` it stops once it has consumed up to the end offsets its partitions had
at start (like the job's bounded mode) and exits 0; otherwise it runs until SIGTERM/SIGINT. It
prints one JSON line with its counters on exit. Limits: no state expiry timers.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.peer_aggregates import (
    AGGREGATE_COLUMNS,
    AGGREGATE_KEY,
    DEFAULT_WINDOW_MS,
    MAX_WATERMARK_MS,
    NO_WATERMARK_MS,
    WindowAggregates,
)
from models.hot_path import (
    DeadLetter,
    EventTimeGuard,
    ParsedRecord,
    RawRecord,
    RecordParser,
    ScoredEvent,
    parse_batch,
    score_batch,
)

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
    "payload_bytes", "raw_bytes", "raw_exact",
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
    partitions: tuple[int, ...] | None = None  # None: every partition of the topic
    aggregate_window_ms: int = DEFAULT_WINDOW_MS  # the job's default tumbling window
    max_event_time_ahead_ms: int = 86_400_000  # the job's future guard (JobConfig)


def parse_partitions(text: str) -> tuple[int, ...]:
    """`--partitions 0,2` -> (0, 2): distinct non-negative partition numbers, sorted."""
    try:
        parts = {int(p) for p in text.split(",") if p.strip()}
    except ValueError as exc:
        raise ValueError(f"--partitions expects comma-separated integers, got {text!r}") from exc
    if not parts or min(parts) < 0:
        raise ValueError(f"--partitions expects partition numbers >= 0, got {text!r}")
    return tuple(sorted(parts))


def select_partitions(available: Iterable[int], wanted: Sequence[int] | None) -> list[int]:
    """The partitions to read: `wanted` (all must exist in the topic), or every one."""
    have = sorted(available)
    if wanted is None:
        return have
    missing = sorted(set(wanted) - set(have))
    if missing:
        raise ValueError(f"partitions {missing} are not in the topic (it has {have})")
    return sorted(set(wanted))


class BatchWatermark:
    """Flink's bounded-out-of-orderness watermark, advanced once per batch.

    `current_ms` is the watermark before the next batch: the largest event time of the
    batches observed so far minus `out_of_orderness_ms` minus 1 (`NO_WATERMARK_MS` before any
    event). `score_batch` flags an event late when its time is at or before it.
    """

    def __init__(self, out_of_orderness_ms: int) -> None:
        self.out_of_orderness_ms = out_of_orderness_ms
        self.max_event_ms: int | None = None

    @property
    def current_ms(self) -> int:
        if self.max_event_ms is None:
            return NO_WATERMARK_MS
        return self.max_event_ms - self.out_of_orderness_ms - 1

    def observe(self, batch: Iterable[ParsedRecord]) -> None:
        """Take a scored batch's event times into account (never moves back)."""
        for record in batch:
            t = record.txn.event_time_ms
            if self.max_event_ms is None or t > self.max_event_ms:
                self.max_event_ms = t


class BoundedProgress:
    """Bounded mode: which partitions have been read up to the end offset seen at start."""

    def __init__(self, ends: dict[int, int], lows: dict[int, int] | None = None) -> None:
        self.ends = dict(ends)
        lows = lows or {}
        self._done = {p for p, end in self.ends.items() if end <= lows.get(p, 0)}

    def seen(self, partition: int, offset: int) -> None:
        if offset + 1 >= self.ends.get(partition, 0):
            self._done.add(partition)

    @property
    def finished(self) -> bool:
        return len(self._done) >= len(self.ends)


def _iso(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def scored_row(event: ScoredEvent, model_version: str) -> tuple:
    """A `scored_transactions` row (SCORED_COLUMNS order)."""
    txn = event.txn
    return (
        txn.transaction_id, txn.card_token, txn.card_last4, _iso(txn.event_time_ms),
        float(txn.amount), txn.merchant, txn.category, event.score,
        "alert" if event.is_alert else "pass", event.reasons_json, event.features_json,
        model_version, event.is_late, event.partition, event.offset,
    )


def alert_row(event: ScoredEvent, threshold: float, model_version: str) -> tuple:
    """An `alerts` row (ALERT_COLUMNS order)."""
    txn = event.txn
    return (
        txn.transaction_id, txn.card_token, txn.card_masked, _iso(txn.event_time_ms),
        float(txn.amount), txn.merchant, txn.category, event.score, threshold,
        event.reasons_json, event.features_json, model_version, event.is_late,
    )


def rejected_row(dead: DeadLetter) -> tuple:
    """A `rejected_events` row (REJECTED_COLUMNS order): redacted preview, original size, the
    raw bytes under the card-number rule of `schemas.dead_letter` (as the job writes them)."""
    return (
        dead.source_topic, dead.partition, dead.offset, dead.reason, dead.field,
        dead.raw_payload, dead.payload_bytes, dead.raw_bytes, dead.raw_exact,
    )


@dataclass
class BatchOutput:
    """Everything one poll batch writes: Kafka messages (key, value) and Postgres rows."""

    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes, bytes]] = field(default_factory=list)
    scored_rows: list[tuple] = field(default_factory=list)
    alert_rows: list[tuple] = field(default_factory=list)
    rejected_rows: list[tuple] = field(default_factory=list)
    aggregate_rows: list[tuple] = field(default_factory=list)  # windows closed after the batch
    late: int = 0
    window_dropped: int = 0  # events left out of the aggregates (their window had fired)


class PeerCore:
    """The peer's work on one batch of raw records, without I/O (unit-testable).

    `parser` is a `models.hot_path.RecordParser`, `scorer` a `models.scoring.Scorer` (or
    anything `score_batch` accepts). Card states live in `states` for the process's life.
    """

    def __init__(self, parser: RecordParser, scorer: Any, out_of_orderness_ms: int,
                 aggregate_window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self.parser = parser
        self.scorer = scorer
        self.states: dict[str, Any] = {}
        self.watermark = BatchWatermark(out_of_orderness_ms)
        self.aggregates = WindowAggregates(aggregate_window_ms)
        self._version = str(scorer.model_version)
        self._threshold = float(scorer.threshold)

    def process(self, records: Sequence[RawRecord]) -> BatchOutput:
        parsed, dead = parse_batch(records, self.parser)
        scored = score_batch(parsed, self.states, self.scorer, self.watermark.current_ms)
        self.watermark.observe(parsed)
        out = BatchOutput()
        add = self.aggregates.add
        for event in scored:
            txn = event.txn
            out.scored_rows.append(scored_row(event, self._version))
            out.late += event.is_late
            if not add(txn.event_time_ms, txn.category, txn.merchant, float(txn.amount),
                       event.is_alert, event.score):
                out.window_dropped += 1
            if event.alert_json is not None:
                out.alert_rows.append(alert_row(event, self._threshold, self._version))
                out.alerts.append((event.txn.transaction_id.encode(), event.alert_json.encode()))
        for letter in dead:
            out.rejected_rows.append(rejected_row(letter))
            out.dead_letters.append((letter.key.encode(), letter.to_json().encode()))
        out.aggregate_rows = self.aggregates.close(self.watermark.current_ms)
        return out

    def finish(self) -> list[tuple]:
        """End of a bounded input: the rows of every window still open (all fire)."""
        return self.aggregates.close(MAX_WATERMARK_MS)


def _upsert_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {table}_stage "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def aggregates_upsert_sql(merge: bool) -> str:
    """The `aggregates` upsert from its staging table.

    merge=False: the row is replaced (idempotent, like the job's sink). merge=True (this
    process reads a share of the topic; another one writes the same windows): counts and sums
    are added to the row's and the means combined, weighted by count; the staged rows are
    upserted in key order so two processes lock shared rows in the same order (no deadlock).
    """
    if not merge:
        return _upsert_sql("aggregates", AGGREGATE_COLUMNS, AGGREGATE_KEY)
    cols = ", ".join(AGGREGATE_COLUMNS)
    old, new = "aggregates", "EXCLUDED"
    return (
        f"INSERT INTO aggregates ({cols}) SELECT {cols} FROM aggregates_stage "
        f"ORDER BY {', '.join(AGGREGATE_KEY)} "
        f"ON CONFLICT ({', '.join(AGGREGATE_KEY)}) DO UPDATE SET "
        f"window_end = {new}.window_end, "
        f"txn_count = {old}.txn_count + {new}.txn_count, "
        f"amount_sum = {old}.amount_sum + {new}.amount_sum, "
        f"alert_count = {old}.alert_count + {new}.alert_count, "
        f"mean_score = ({old}.mean_score * {old}.txn_count + {new}.mean_score * {new}.txn_count)"
        f" / ({old}.txn_count + {new}.txn_count)"
    )


class PostgresWriter:
    """Writes one poll batch in one transaction: COPY to temp staging tables, then upsert.

    `merge_aggregates`: add to the `aggregates` rows instead of replacing them (see
    `aggregates_upsert_sql`).
    """

    def __init__(self, conninfo: str, schema: str | None, merge_aggregates: bool = False) -> None:
        import psycopg

        options = f"-c search_path={schema}" if schema else None
        self._conn = psycopg.connect(conninfo, options=options) if options else psycopg.connect(
            conninfo
        )
        with self._conn.cursor() as cur:
            for table in ("scored_transactions", "alerts", "rejected_events", "aggregates"):
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
        self._aggregates_sql = aggregates_upsert_sql(merge_aggregates)

    def write(self, scored: list[tuple], alerts: list[tuple], rejected: list[tuple],
              aggregates: list[tuple]) -> None:
        with self._conn.cursor() as cur:
            for rows, table, columns, sql in (
                (scored, "scored_transactions", SCORED_COLUMNS, self._scored_sql),
                (alerts, "alerts", ALERT_COLUMNS, self._alert_sql),
                (rejected, "rejected_events", REJECTED_COLUMNS, self._rejected_sql),
                (aggregates, "aggregates", AGGREGATE_COLUMNS, self._aggregates_sql),
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


class PeerPipeline:
    """The loop. `run()` returns counters; `stop()` (signal-safe) ends it after the batch."""

    def __init__(self, cfg: PeerConfig) -> None:
        from confluent_kafka import Consumer, Producer

        from models.scoring import Scorer
        from schemas.card_token import CardTokenizer

        self.cfg = cfg
        self._stop = False
        parser = RecordParser(
            cfg.topic, CardTokenizer(cfg.card_token_key.encode()), cfg.dlq_max_payload_bytes,
            guard=EventTimeGuard(cfg.max_event_time_ahead_ms),
            clock_ms=lambda: int(time.time() * 1000),
        )
        self.core = PeerCore(parser, Scorer.load(cfg.model_path), cfg.out_of_orderness_ms,
                             cfg.aggregate_window_ms)
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
        # A share of the topic (--partitions): the other share's process writes the same windows.
        self._pg = PostgresWriter(cfg.pg_conninfo, cfg.pg_schema,
                                  merge_aggregates=cfg.partitions is not None)
        self.counters = {"consumed": 0, "scored": 0, "alerts": 0, "rejected": 0, "late": 0,
                         "batches": 0, "aggregate_rows": 0, "window_dropped": 0}
        self.assigned: list[int] = []

    @property
    def states(self) -> dict[str, Any]:
        return self.core.states

    def stop(self, *_: Any) -> None:
        self._stop = True

    def _assign_from_beginning(self) -> BoundedProgress:
        """Assign the chosen partitions at their beginning; their end offsets (exclusive)."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        meta = self._consumer.list_topics(self.cfg.topic, timeout=30)
        parts = select_partitions(meta.topics[self.cfg.topic].partitions, self.cfg.partitions)
        ends, lows = {}, {}
        for p in parts:
            lows[p], ends[p] = self._consumer.get_watermark_offsets(
                TopicPartition(self.cfg.topic, p), timeout=30
            )
        self._consumer.assign([TopicPartition(self.cfg.topic, p, OFFSET_BEGINNING) for p in parts])
        self.assigned = parts
        return BoundedProgress(ends, lows)

    def run(self) -> dict[str, int]:
        progress = self._assign_from_beginning()
        bounded = self.cfg.bounded
        while not self._stop:
            if bounded and progress.finished:
                break
            msgs = self._consumer.consume(self.cfg.max_batch, self.cfg.poll_timeout_s)
            if not msgs:
                continue
            records = []
            for msg in msgs:
                if msg.error():
                    raise RuntimeError(f"Kafka consumer error: {msg.error()}")
                part, off = msg.partition(), msg.offset()
                progress.seen(part, off)
                records.append(RawRecord(msg.value(), part, off))
            out = self.core.process(records)
            for key, value in out.alerts:
                self._producer.produce(self.cfg.alerts_topic, key=key, value=value)
            for key, value in out.dead_letters:
                self._producer.produce(self.cfg.dlq_topic, key=key, value=value)
            self._producer.poll(0)
            self._pg.write(out.scored_rows, out.alert_rows, out.rejected_rows,
                           out.aggregate_rows)
            self._consumer.commit(asynchronous=True)
            self.counters["consumed"] += len(msgs)
            self.counters["scored"] += len(out.scored_rows)
            self.counters["alerts"] += len(out.alert_rows)
            self.counters["rejected"] += len(out.rejected_rows)
            self.counters["late"] += out.late
            self.counters["aggregate_rows"] += len(out.aggregate_rows)
            self.counters["window_dropped"] += out.window_dropped
            self.counters["batches"] += 1
        if bounded and progress.finished:  # end of input: Flink's MAX watermark fires them all
            rows = self.core.finish()
            if rows:
                self._pg.write([], [], [], rows)
            self.counters["aggregate_rows"] += len(rows)
        self._producer.flush(30)
        self._consumer.close()
        self._pg.close()
        return self.counters


def main(argv: list[str] | None = None) -> int:
    """Entry point: flags -> PeerConfig -> run; prints the counters as one JSON line."""
    import argparse

    from connectors.settings import load_settings

    settings = load_settings()
    ap = argparse.ArgumentParser(prog="python -m bench.peer_pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topic", default=settings.topic_transactions)
    ap.add_argument("--alerts-topic", default=settings.topic_alerts)
    ap.add_argument("--dlq-topic", default=settings.topic_dlq)
    ap.add_argument("--group-id", default="fraudstream-peer")
    ap.add_argument("--pg-schema", default=None, help="Postgres schema holding the tables")
    ap.add_argument("--bounded", action="store_true", help="stop at the end offsets seen at start")
    ap.add_argument("--partitions", default=None,
                    help="comma list of the topic's partitions to read (default: all)")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--max-batch", type=int, default=2000)
    ap.add_argument("--poll-timeout-s", type=float, default=0.05)
    args = ap.parse_args(argv)
    try:
        partitions = parse_partitions(args.partitions) if args.partitions is not None else None
    except ValueError as exc:
        ap.error(str(exc))
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
        card_token_key=settings.card_token_key.reveal(),
        max_batch=args.max_batch,
        poll_timeout_s=args.poll_timeout_s,
        partitions=partitions,
    )
    pipeline = PeerPipeline(cfg)
    signal.signal(signal.SIGTERM, pipeline.stop)
    signal.signal(signal.SIGINT, pipeline.stop)
    started = time.monotonic()
    counters = pipeline.run()
    counters_out = dict(counters, wall_s=round(time.monotonic() - started, 3),
                        cards=len(pipeline.states), partitions=pipeline.assigned)
    print(json.dumps(counters_out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
