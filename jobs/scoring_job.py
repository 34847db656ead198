"""The scoring job: raw transactions in, scored transactions, alerts, dead letters and
aggregates out.

`build_pipeline(inputs, cfg)` is the job as a function of its input streams (RAW rows that
already carry event-time watermarks, and control records): it knows nothing about Kafka or
Postgres (tests/pipeline drives it with in-memory streams). `main()` (and `run_job`) wires the
real sources and sinks from one `JobConfig`:

    Kafka `transactions` (raw bytes + partition/offset, Table/SQL kafka connector, event-time
      watermarks per partition)
      -> MicroBatcher (Java): one pickled batch per <= batch_max_records / batch_max_delay_ms
      -> ParseBatch (Python, once per batch) --side output--> dead-letter rows (Java)
             -> DLQ: Kafka `transactions.dlq` + rejected_events
      -> key by shard = crc32(card token) % scoring_shards
      -> ScoreShard (Python, once per shard batch: MapState per card, one ONNX call)
           <- broadcast: Kafka `fraudstream-control` (promotions, shadows, rules; no event time)
      -> scored rows (Java) -> Table: scored_transactions, alerts, shadow_scores (Postgres) +
                 fraud-alerts (Kafka) -> tumbling event-time aggregates (Postgres)

Decision (why Table/SQL around a DataStream core): PyFlink 2.2's `KafkaSource` offers only a
value deserializer, but the dead-letter path needs each record's partition and offset; the
Table kafka connector builds the same KafkaSource and exposes them as METADATA columns with
`'value.format' = 'raw'`. Postgres is written through our COPY table connector (upsert by
primary key). All inserts go into one `StreamStatementSet` attached to the DataStream
environment, so the whole thing is ONE job with one checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from jobs.config import JobConfig

SOURCE_TABLE = "kafka_transactions"
CONTROL_TABLE = "kafka_control"
SCORED_VIEW = "scored"
DLQ_VIEW = "dead_letters"

UID_BATCH = "micro-batch"
UID_PARSE = "parse-batch"
# v2 (2026-12-02): LONG shard keys; savepoints of uid "score-shard" (v1) are not restorable
# into it (docs/operations.md, "Upgrades").
UID_SCORE = "score-shard-v2"
UID_CONTROL = "control-without-event-time"


@dataclass(frozen=True)
class Inputs:
    """The job's input: a stream of RAW rows (payload bytes, partition, offset) that already
    carries event-time watermarks (the Kafka source makes them per partition)."""

    t_env: Any  # StreamTableEnvironment
    raw: Any  # DataStream[RAW]
    # DataStream of control records Row(k, v): model promotions and rules (None: no control
    # input, the default model and no rules)
    control: Any = None


@dataclass(frozen=True)
class Outputs:
    """The job's outputs: streams and the tables derived from them."""

    scored: Any  # DataStream[SCORED]
    dead_letters: Any  # DataStream[REJECTED]
    scored_table: Any  # Table over `scored` with an event-time attribute `rowtime`
    aggregates: Any  # Table(window_start, window_end, dimension, key, txn_count, ...)


def build_pipeline(inputs: Inputs, cfg: JobConfig, scorer_loader: Any = None) -> Outputs:
    """Batch, parse, key, score and aggregate; returns the output streams/tables (no sinks).

    `scorer_loader(model_path) -> scorer` replaces `models.scoring.Scorer.load` (tests).
    Python runs once per micro-batch (`batch_max_records` / `batch_max_delay_ms`) in the
    parser and once per shard batch in the scorer; see docs/scoring-job.md.
    """
    from pyflink.common.typeinfo import Types
    from pyflink.table import Schema

    from connectors.flink_ops import micro_batch, rows_from_batches, without_event_time
    from connectors.rows import BATCH_TYPE, CONTROL_TYPE, REJECTED_TYPE, SCORED_TYPE
    from jobs.code_version import current_fingerprint
    from jobs.functions import (
        CONTROL_STATE,
        DLQ_TAG,
        SCORER_MAX_PARALLELISM,
        ParseBatch,
        ScoreShard,
    )

    code = current_fingerprint()
    # The parser routes each shard to the scorer subtask that holds it, so it must know the
    # scorer's parallelism: both come from this one value (the environment's default, which
    # the cluster's configuration sets when the job leaves it open).
    scorer_parallelism = inputs.raw.get_execution_environment().get_parallelism()
    if scorer_parallelism < 1:
        scorer_parallelism = cfg.parallelism
    batches = micro_batch(
        inputs.raw, cfg.batch_max_records, cfg.batch_max_delay_ms, uid=UID_BATCH
    )
    parsed = (
        batches.process(
            ParseBatch(cfg.source_topic, cfg.dlq_max_payload_bytes, cfg.scoring_shards,
                       scorer_parallelism, code, cfg.job_metrics),
            output_type=BATCH_TYPE,
        )
        .name("parse-batch")
        .uid(UID_PARSE)
    )
    dead_letters = rows_from_batches(
        parsed.get_side_output(DLQ_TAG), REJECTED_TYPE, "dead-letter-rows"
    )
    control = inputs.control
    if control is None:
        env = inputs.raw.get_execution_environment()
        control = env.from_collection([], type_info=CONTROL_TYPE)
    control = without_event_time(control, UID_CONTROL).broadcast(CONTROL_STATE)
    scored_batches = (
        parsed.key_by(lambda routed: routed[0], key_type=Types.LONG())
        .connect(control)
        .process(ScoreShard(cfg.model_path, scorer_loader, code, cfg.job_metrics),
                 output_type=BATCH_TYPE)
        .name("score-shard")
        .uid(UID_SCORE)
        .set_parallelism(scorer_parallelism)
        .set_max_parallelism(SCORER_MAX_PARALLELISM)
    )
    scored = rows_from_batches(scored_batches, SCORED_TYPE, "scored-rows")

    t_env = inputs.t_env
    # The scored stream keeps the upstream watermarks (SOURCE_WATERMARK); its rowtime is the
    # parsed event time. A window that the watermark has closed drops a later event from the
    # aggregates (it is still scored, stored and flagged `is_late`).
    scored_table = t_env.from_data_stream(
        scored,
        Schema.new_builder()
        .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(event_time_ms, 3)")
        .watermark("rowtime", "SOURCE_WATERMARK()")
        .build(),
    )
    t_env.create_temporary_view(SCORED_VIEW, scored_table)
    aggregates = t_env.sql_query(aggregate_sql(SCORED_VIEW, cfg.aggregate_window_ms))
    return Outputs(scored, dead_letters, scored_table, aggregates)


def aggregate_sql(view: str, window_ms: int) -> str:
    """Tumbling event-time aggregates per category and per merchant.

    Decision, measured: ONE window aggregation over GROUPING SETS ((category), (merchant))
    instead of a UNION ALL of two, so the scored rows are shuffled and buffered once.
    """
    seconds = f"{window_ms / 1000:.3f}"
    return f"""
        SELECT window_start, window_end,
               CASE WHEN GROUPING(category) = 0 THEN 'category' ELSE 'merchant' END
                   AS dimension,
               CASE WHEN GROUPING(category) = 0 THEN category ELSE merchant END AS `key`,
               COUNT(*) AS txn_count, SUM(amount) AS amount_sum,
               SUM(CASE WHEN is_alert THEN 1 ELSE 0 END) AS alert_count,
               AVG(score) AS mean_score
        FROM TABLE(TUMBLE(TABLE {view}, DESCRIPTOR(rowtime), INTERVAL '{seconds}' SECOND))
        GROUP BY window_start, window_end, GROUPING SETS ((category), (merchant))"""


def create_environment(
    cfg: JobConfig, jar_urls: list[str] | None = None, options: dict[str, str] | None = None
) -> tuple[Any, Any]:
    """The StreamExecutionEnvironment + StreamTableEnvironment configured from `cfg`.

    `options`: the Flink options the job sets (default `flink_options(cfg)`); `main()` passes
    fewer on a cluster whose configuration decides the rest (`jobs.cluster_env`)."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    options = flink_options(cfg) if options is None else options
    conf = Configuration()
    for key, value in options.items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    if "parallelism.default" in options:
        env.set_parallelism(cfg.parallelism)
    if jar_urls:
        # add_jars APPENDS to pipeline.jars: under `flink run` that list already holds the
        # flink-python jar (the program jar); replacing it made the JobManager fail with
        # ClassNotFoundException: EmbeddedPythonProcessOperator.
        env.add_jars(*jar_urls)
    t_env = StreamTableEnvironment.create(
        env, EnvironmentSettings.new_instance().in_streaming_mode().build()
    )
    t_env.get_config().set("table.local-time-zone", "UTC")
    if cfg.idleness_ms > 0:  # a partition without data must not hold the watermark back
        t_env.get_config().set("table.exec.source.idle-timeout", f"{cfg.idleness_ms} ms")
    return env, t_env


def flink_options(cfg: JobConfig) -> dict[str, str]:
    """Flink configuration keys derived from `cfg` (also used for `flink run -D`)."""
    opts = {
        "python.execution-mode": cfg.execution_mode,
        "python.executable": cfg.python_executable,
        "python.client.executable": cfg.python_executable,
        "python.pythonpath": cfg.worker_pythonpath or default_worker_pythonpath(),
        "python.fn-execution.bundle.size": str(cfg.bundle_size),
        "python.fn-execution.bundle.time": str(cfg.bundle_time_ms),
        "execution.buffer-timeout.interval": f"{cfg.buffer_timeout_ms} ms",
        # Decision, measured: chained operators hand records over without a defensive copy
        # (CopyingChainingOutput + RowDataSerializer.copy were the top Java frames of the scorer
        # thread). Safe here: every operator of the job either copies what it keeps (JDBC
        # sink buffer, window buffers) or serializes at once (our batcher, Kafka sink, Python).
        "pipeline.object-reuse": "true",
        "parallelism.default": str(cfg.parallelism),
        "pipeline.name": cfg.job_name,
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": str(cfg.restart_attempts),
        "restart-strategy.fixed-delay.delay": f"{cfg.restart_delay_ms} ms",
        "state.backend.type": cfg.state_backend,
        "table.local-time-zone": "UTC",
    }
    if cfg.checkpoint_interval_ms > 0:
        opts["execution.checkpointing.interval"] = f"{cfg.checkpoint_interval_ms} ms"
        opts["execution.checkpointing.mode"] = "EXACTLY_ONCE"
        # Bounded runs: keep checkpointing after some sources finished (exactly-once sinks
        # commit on the final checkpoint).
        opts["execution.checkpointing.checkpoints-after-tasks-finish"] = "true"
        opts["execution.checkpointing.externalized-checkpoint-retention"] = (
            cfg.checkpoint_retention
        )
    if cfg.checkpoint_dir:
        opts["execution.checkpointing.dir"] = cfg.checkpoint_dir
        opts["execution.checkpointing.storage"] = "filesystem"
    if cfg.savepoint_dir:
        opts["execution.checkpointing.savepoint-dir"] = cfg.savepoint_dir
    return opts


def default_worker_pythonpath() -> str:
    """This checkout's root and this interpreter's site-packages, as a PYTHONPATH string."""
    import os
    import site
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(dict.fromkeys([repo, *site.getsitepackages()]))


def attach_sinks(outputs: Outputs, t_env: Any, cfg: JobConfig) -> Any:
    """Register every sink table and add the INSERTs to one statement set (returned)."""
    from connectors import kafka, postgres_sinks

    t_env.create_temporary_view(DLQ_VIEW, t_env.from_data_stream(outputs.dead_letters))
    stmt = t_env.create_statement_set()
    for ddl in postgres_sinks.sink_ddls(cfg.postgres_sink_spec()):
        t_env.execute_sql(ddl)
    for ddl in kafka.sink_ddls(cfg.kafka_sink_spec()):
        t_env.execute_sql(ddl)
    for sql in postgres_sinks.insert_statements(cfg.postgres_sink_spec(), SCORED_VIEW, DLQ_VIEW):
        stmt.add_insert_sql(sql)
    for sql in kafka.insert_statements(SCORED_VIEW, DLQ_VIEW):
        stmt.add_insert_sql(sql)
    stmt.add_insert(postgres_sinks.AGGREGATES_SINK, outputs.aggregates)
    return stmt


def build_job(
    cfg: JobConfig,
    jar_urls: list[str] | None = None,
    scorer_loader: Any = None,
    options: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    """The complete job (source, pipeline, sinks) on a fresh environment: `(env, t_env)`."""
    env, t_env = create_environment(cfg, jar_urls, options)
    from connectors import kafka

    raw = kafka.raw_source(t_env, SOURCE_TABLE, cfg.kafka_source_spec())
    control = kafka.control_source(t_env, CONTROL_TABLE, cfg.kafka_control_spec())
    outputs = build_pipeline(Inputs(t_env, raw, control), cfg, scorer_loader)
    stmt = attach_sinks(outputs, t_env, cfg)
    stmt.attach_as_datastream()
    return env, t_env


def run_job(
    cfg: JobConfig,
    jar_urls: list[str] | None = None,
    wait: bool = True,
    scorer_loader: Any = None,
    options: dict[str, str] | None = None,
) -> Any:
    """Build and execute the job; returns the JobExecutionResult (or JobClient if not wait).
    `options`: see `create_environment`."""
    env, _ = build_job(cfg, jar_urls, scorer_loader, options)
    if wait:
        return env.execute(cfg.job_name)
    return env.execute_async(cfg.job_name)


def main(argv: list[str] | None = None) -> None:
    """Entry point on a cluster: `flink run -pym jobs.scoring_job` (`fraudstream submit`) and
    the image's PythonDriver script. Flags as `--name value`.

    The cluster's configuration wins over job defaults for the options it sets (durable
    checkpoint dir, state backend, restart strategy...) unless a flag or FRAUDSTREAM_* variable
    names them; connector jars come from the local cache or, failing that, the cluster's lib/
    (`jobs.cluster_env`)."""
    import os

    from jobs.cluster_env import (
        job_flink_options,
        job_jar_urls,
        read_cluster_config,
        require_checkpoints,
    )
    from jobs.config import build_config, explicit_fields

    args = list(sys.argv[1:] if argv is None else argv)
    flags: dict[str, str] = {}
    while args:
        key = args.pop(0)
        if not key.startswith("--") or not args:
            raise SystemExit(f"usage: scoring_job --setting value ... (bad: {key})")
        flags[key[2:].replace("-", "_")] = args.pop(0)
    cfg = build_config(flags)
    cluster = read_cluster_config(os.environ)
    options, left = job_flink_options(
        flink_options(cfg), cluster, explicit_fields(flags, os.environ)
    )
    require_checkpoints(cfg, {**cluster, **options})
    jars = job_jar_urls(os.environ)
    print(cfg.describe(), flush=True)
    for key, value in left.items():
        print(f"left to the cluster: {key} = {value}", flush=True)
    print(f"connector jars: {'cluster lib/' if jars is None else len(jars)}", flush=True)
    run_job(cfg, jars, wait=True, options=options)


if __name__ == "__main__":
    main()
