"""Run the scoring job's real graph (`jobs.scoring_job.build_pipeline`) on an embedded
MiniCluster, fed from memory, with every output collected back into this process.

- Source: `env.from_collection` of `(payload bytes, partition, offset)` rows, as the Kafka
  source's table holds them. They are spread over the subtasks by partition (a keyed exchange,
  so each partition's records keep their order, as one Kafka split does), then go through the
  same table steps as the Kafka source: the Java `EventTimeMillis` gives `source_time_ms` and
  the event time of the watermarks (`out_of_orderness_ms` behind), and `to_data_stream` hands
  the RAW rows to `build_pipeline`. Only Kafka itself is missing.
- Outputs: the scored, dead-letter and aggregate streams each get a Java collect sink
  (`collectAsync`) and are read back here after `execute_async`: one job, one MiniCluster.
  (A Python sink cannot append to a list of this process: in thread mode the job's Python
  runs in the interpreter embedded in the MiniCluster's JVM.)

No pytest here: the embedded interpreter unpickles the functions defined in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.config import JobConfig

RAW_IN_FIELDS = ("payload", "kafka_partition", "kafka_offset")
# The table watermark assigner emits a watermark whenever event time has advanced by more than
# `pipeline.auto-watermark-interval` (besides its processing-time timer). With the default
# 200 ms, records minutes apart got one watermark each, and the micro-batcher (which flushes
# before every watermark) passed one record per batch: unlike the Kafka source, which emits
# every 200 ms of processing time. One hour of event time keeps batches full and makes the
# watermarks a function of the input alone (deterministic).
WATERMARK_STEP_MS = 3_600_000


@dataclass
class Collected:
    """Everything the job emitted, as plain dicts (field name -> value)."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)


def _by_partition(row: Any) -> int:
    return row[1]


def _same(row: Any) -> Any:
    return row


def ops_jar_urls() -> list[str]:
    """The project's Java operators (the only jar the pipeline needs without Kafka/JDBC)."""
    from connectors.jars import flink_jar_paths

    return [p.as_uri() for p in flink_jar_paths() if p.name.startswith("fraudstream-flink-ops")]


def memory_source(env: Any, t_env: Any, rows: list[tuple[bytes, int, int]], cfg: JobConfig):
    """RAW DataStream (payload, partition, offset, source_time_ms) with the Kafka source's
    event-time rule and watermarks, from in-memory rows (see the module docstring)."""
    from pyflink.common.typeinfo import Types
    from pyflink.table import DataTypes, Schema

    from connectors.kafka import (
        SOURCE_TIME_COLUMN,
        event_time_expr,
        register_event_time_function,
        sql_interval,
    )
    from connectors.rows import RAW_FIELDS

    row_type = Types.ROW_NAMED(
        list(RAW_IN_FIELDS), [Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.INT(), Types.LONG()]
    )
    collection = env.from_collection(rows, type_info=row_type)
    by_partition = collection.key_by(_by_partition, key_type=Types.INT()).map(
        _same, output_type=row_type
    )
    register_event_time_function(t_env)
    when = event_time_expr(cfg.max_event_time_ahead_ms)
    table = t_env.from_data_stream(
        by_partition,
        Schema.new_builder()
        .column("payload", DataTypes.BYTES())
        .column("kafka_partition", DataTypes.INT())
        .column("kafka_offset", DataTypes.BIGINT())
        .column_by_expression(SOURCE_TIME_COLUMN, when)
        .column_by_expression("event_ts", f"TO_TIMESTAMP_LTZ({when}, 3)")
        .watermark("event_ts", f"event_ts - {sql_interval(cfg.out_of_orderness_ms)}")
        .build(),
    )
    t_env.create_temporary_view("memory_transactions", table)
    return t_env.to_data_stream(
        t_env.sql_query(f"SELECT {', '.join(RAW_FIELDS)} FROM memory_transactions")
    )


def run_pipeline(rows: list[tuple[bytes, int, int]], cfg: JobConfig) -> Collected:
    """Build the job around `rows` (one MiniCluster run, bounded) and collect its outputs."""
    from pyflink.datastream.data_stream import CloseableIterator

    from jobs.scoring_job import Inputs, build_pipeline, create_environment

    env, t_env = create_environment(cfg, ops_jar_urls())
    env.get_config().set_auto_watermark_interval(WATERMARK_STEP_MS)
    raw = memory_source(env, t_env, rows, cfg)
    out = build_pipeline(Inputs(t_env, raw), cfg)
    streams = {
        "scored": out.scored,
        "dead_letters": out.dead_letters,
        "aggregates": t_env.to_data_stream(_readable_windows(t_env, out.aggregates)),
    }
    # Java collect sinks only (`collectAsync`, registered with the environment and bound to
    # the job by `execute_async`): a Python function chained after the scorer would hang the
    # job (see the package docstring).
    iterators = {
        name: CloseableIterator(stream._j_data_stream.collectAsync(), stream.get_type())
        for name, stream in streams.items()
    }
    env.execute_async(cfg.job_name)
    collected = Collected()
    for name, iterator in iterators.items():
        with iterator:
            getattr(collected, name).extend(_as_dict(row) for row in iterator)
    return collected


def _as_dict(row: Any) -> dict[str, Any]:
    values = row.as_dict()
    if isinstance(values.get("raw_bytes"), list):  # BYTES arrive as a list of ints
        values["raw_bytes"] = bytes(b & 0xFF for b in values["raw_bytes"])
    return values


def _readable_windows(t_env: Any, aggregates: Any) -> Any:
    """The aggregates with window bounds as 'yyyy-MM-dd HH:mm:ss.SSS' text (UTC): their
    TIMESTAMP columns reach Python as opaque bytes through `to_data_stream`."""
    t_env.create_temporary_view("pipeline_aggregates", aggregates)
    names = [n for n in aggregates.get_schema().get_field_names()
             if n not in ("window_start", "window_end")]
    return t_env.sql_query(
        "SELECT CAST(window_start AS STRING) AS window_start,"
        " CAST(window_end AS STRING) AS window_end, "
        + ", ".join(f"`{n}`" for n in names) + " FROM pipeline_aggregates"
    )
