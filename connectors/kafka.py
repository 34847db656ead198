"""Kafka source and sink tables of the scoring job (Flink Table/SQL `kafka` connector).

Decision: the source is the Table connector with `'value.format' = 'raw'` and the
`partition`/`offset` METADATA columns, because PyFlink 2.2's DataStream `KafkaSource` only
offers value-only deserialization and the dead-letter path must name each bad record's
position. The Table connector builds the same `KafkaSource` underneath (same offsets in
checkpoints, same bounded mode).

Sinks: the alerts topic (key = transaction id, value = alert.v2 JSON) and the DLQ topic
(key = `topic/partition/offset`, value = the dead-letter JSON). At-least-once by default;
`alerts_delivery = exactly-once` switches the ALERTS sink to Kafka transactions with
`transactional_id_prefix` (readers with `isolation.level=read_committed` then see alerts only
after each checkpoint completes). The DLQ stays at-least-once: its key makes duplicates
detectable and the table copy is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ALERTS_SINK = "kafka_alerts"
DLQ_SINK = "kafka_dlq"

# Large records: the DLQ payload is truncated to dlq_max_payload_bytes (jobs.config); a fetch
# may carry up to 16 MB. A record bigger than the per-partition size is still returned alone
# (KIP-74).
# Decision, measured (200k replay): 256 KB per partition and fetch, instead of 16 MB, keeps
# the partitions of a subtask within ~1,000 records of each other, so the per-partition
# watermark (their minimum) lags less and fewer aggregate windows stay open at once.
_MAX_FETCH = str(16 * 1024 * 1024)
_PARTITION_FETCH = str(256 * 1024)


@dataclass(frozen=True, slots=True)
class KafkaSourceSpec:
    """What the raw source table reads: see `jobs.config.JobConfig` for each value's meaning."""

    topic: str
    bootstrap: str
    group_id: str
    start_from: Literal["earliest", "latest", "committed"]
    bounded: bool
    fetch_min_bytes: int
    fetch_max_wait_ms: int
    max_event_time_ahead_ms: int
    out_of_orderness_ms: int


@dataclass(frozen=True, slots=True)
class KafkaSinkSpec:
    """Where alerts and dead letters go; `transactional_id_prefix` is set only for
    exactly-once alerts."""

    bootstrap: str
    alerts_topic: str
    dlq_topic: str
    transactional_id_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class KafkaControlSpec:
    """The control topic (model promotions, rules): read from its start when the job starts
    without a checkpoint (it is compacted: the start is the current configuration)."""

    topic: str
    bootstrap: str
    group_id: str
    bounded: bool


def _q(value: str) -> str:
    """Quote a string literal for SQL DDL options."""
    return "'" + value.replace("'", "''") + "'"


def _options(opts: dict[str, str]) -> str:
    return ",\n  ".join(f"{_q(k)} = {_q(v)}" for k, v in opts.items())


def source_table_ddl(name: str, spec: KafkaSourceSpec) -> str:
    """CREATE TEMPORARY TABLE for the raw source topic (payload bytes + partition/offset).

    Register `EVENT_TIME_FUNCTION` first (`register_event_time_function`).
    """
    opts = {
        "connector": "kafka",
        "topic": spec.topic,
        "properties.bootstrap.servers": spec.bootstrap,
        "properties.group.id": spec.group_id,
        "properties.max.partition.fetch.bytes": _PARTITION_FETCH,
        "properties.fetch.max.bytes": _MAX_FETCH,
        "properties.fetch.min.bytes": str(spec.fetch_min_bytes),
        "properties.fetch.max.wait.ms": str(spec.fetch_max_wait_ms),
        "value.format": "raw",
        "scan.startup.mode": {
            "earliest": "earliest-offset",
            "latest": "latest-offset",
            "committed": "group-offsets",
        }[spec.start_from],
    }
    if spec.start_from == "committed":
        opts["properties.auto.offset.reset"] = "earliest"
    if spec.bounded:
        opts["scan.bounded.mode"] = "latest-offset"
    return f"""CREATE TEMPORARY TABLE {name} (
  payload BYTES,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  {SOURCE_TIME_COLUMN} AS {event_time_expr(spec.max_event_time_ahead_ms)},
  event_ts AS TO_TIMESTAMP_LTZ({event_time_expr(spec.max_event_time_ahead_ms)}, 3),
  WATERMARK FOR event_ts AS event_ts - {sql_interval(spec.out_of_orderness_ms)}
) WITH (
  {_options(opts)}
)"""


def control_table_ddl(name: str, spec: KafkaControlSpec) -> str:
    """CREATE TEMPORARY TABLE for the control topic: record key `k` and value `v` as text (a
    tombstone's `v` is NULL). No event time: see `connectors.flink_ops.without_event_time`."""
    opts = {
        "connector": "kafka",
        "topic": spec.topic,
        "properties.bootstrap.servers": spec.bootstrap,
        "properties.group.id": spec.group_id,
        # a control message carries a whole ONNX model (a few hundred KB, at most 16 MB)
        "properties.max.partition.fetch.bytes": _MAX_FETCH,
        "properties.fetch.max.bytes": _MAX_FETCH,
        "scan.startup.mode": "earliest-offset",
        "key.format": "raw",
        "key.fields": "k",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
    }
    if spec.bounded:
        opts["scan.bounded.mode"] = "latest-offset"
    return f"""CREATE TEMPORARY TABLE {name} (
  k STRING,
  v STRING
) WITH (
  {_options(opts)}
)"""


def register_event_time_function(t_env: Any) -> None:
    """Register the Java function the source table's watermark column calls."""
    t_env.create_java_temporary_system_function(EVENT_TIME_FUNCTION, EVENT_TIME_FUNCTION_CLASS)


def sql_interval(ms: int) -> str:
    """A Flink SQL interval literal of `ms` milliseconds."""
    return f"INTERVAL '{ms // 1000}.{ms % 1000:03d}' SECOND(3)"


# Event time for WATERMARKS only, computed in Java from the raw payload so that the Kafka source
# generates watermarks per partition (split). Decision, measured: a Python assigner after the
# parser sees the partitions of one subtask interleaved; replaying 22 days of traffic it put
# the watermark days ahead of some partitions and flagged most events late.
# The parser stays the only authority for the event time used by features and the late flag.
# Only a strictly formed RFC 3339 time (year 1990-2099, valid field ranges) of a schema v1
# payload counts; anything else gives epoch 0, which never advances a watermark (so a record
# with `"event_time": "2020-13-45..."` cannot expire every card's state). The rule lives in
# one Java function (connectors/java/.../EventTimeMillis.java, one streaming JSON pass; three
# JSON_VALUE calls and two regular expressions in SQL cost more than the parser's Python).
# Future guard: a time more than `max_event_time_ahead_ms` ahead of its partition's progress
# (the largest time accepted so far; the wall clock before the first) gives -1 (`AHEAD`), so
# it never advances a watermark, and the same call is selected as the column
# `SOURCE_TIME_COLUMN`, from which the parser dead-letters the record ("event_time in the
# future"). Two calls per record (watermark and column, two function instances that see each
# partition's records in the same order): about 1-2 us of Java each, cheaper than a
# second source of truth. Known limit: a malformed record with a well-formed time within the
# bound still advances the watermark (at most `max_event_time_ahead_ms` past the progress).
EVENT_TIME_FUNCTION = "fraudstream_event_time_ms"
EVENT_TIME_FUNCTION_CLASS = "io.fraudstream.flink.EventTimeMillis"
SOURCE_TIME_COLUMN = "source_time_ms"
EVENT_TIME_AHEAD = -1  # EventTimeMillis.AHEAD


def event_time_expr(max_ahead_ms: int) -> str:
    """The SQL call giving a record's watermark time (0: none, -1: refused as in the future)."""
    return (f"{EVENT_TIME_FUNCTION}(payload, kafka_partition, "
            f"CAST({int(max_ahead_ms)} AS BIGINT))")


def _sink_ddl(name: str, topic: str, spec: KafkaSinkSpec, exactly_once: bool) -> str:
    opts = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": spec.bootstrap,
        "key.format": "raw",
        "key.fields": "k",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": "exactly-once" if exactly_once else "at-least-once",
    }
    if exactly_once:
        opts["sink.transactional-id-prefix"] = str(spec.transactional_id_prefix)
        opts["properties.transaction.timeout.ms"] = "900000"
    return f"""CREATE TEMPORARY TABLE {name} (
  k STRING,
  v STRING
) WITH (
  {_options(opts)}
)"""


def sink_ddls(spec: KafkaSinkSpec) -> list[str]:
    """DDL of the alerts and DLQ sink tables (alerts exactly-once when the spec has a
    transactional id prefix)."""
    return [
        _sink_ddl(ALERTS_SINK, spec.alerts_topic, spec, spec.transactional_id_prefix is not None),
        _sink_ddl(DLQ_SINK, spec.dlq_topic, spec, False),
    ]


def insert_statements(scored_view: str, dlq_view: str) -> list[str]:
    """INSERTs feeding the Kafka sinks from the scored and dead-letter views."""
    return [
        f"INSERT INTO {ALERTS_SINK} SELECT transaction_id, alert_json FROM {scored_view} "
        "WHERE is_alert",
        f"INSERT INTO {DLQ_SINK} SELECT dlq_key, dlq_json FROM {dlq_view}",
    ]


def raw_source(t_env: Any, name: str, spec: KafkaSourceSpec) -> Any:
    """The RAW stream (payload, partition, offset, source time) of the source topic, with its
    per-partition event-time watermarks: table `name` converted to a DataStream."""
    from connectors.rows import RAW_FIELDS

    register_event_time_function(t_env)
    t_env.execute_sql(source_table_ddl(name, spec))
    return t_env.to_data_stream(t_env.sql_query(f"SELECT {', '.join(RAW_FIELDS)} FROM {name}"))


def control_source(t_env: Any, name: str, spec: KafkaControlSpec) -> Any:
    """The control records Row(k, v) of the control topic (table `name`) as a DataStream."""
    t_env.execute_sql(control_table_ddl(name, spec))
    return t_env.to_data_stream(t_env.sql_query(f"SELECT k, v FROM {name}"))
