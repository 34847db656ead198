"""Smoke job proving the jar set: Kafka (KafkaSource, bounded) -> Python map -> Postgres (Table
`jdbc` connector with a PRIMARY KEY, i.e. INSERT ... ON CONFLICT upserts).

Input: JSON objects `{"id": str, "amount": number, "note": str}` on `--topic`, read from the
earliest to the latest offset present at start, then the job finishes. Output: rows
`(id, amount, note)` upserted into `--table` (which must exist: id text PRIMARY KEY, amount
double precision, note text). Replaying the same input leaves the row count unchanged.

Run on the embedded MiniCluster:  python -m deploy.local.smoke_job --topic T --table TBL
Submit to the standalone cluster: FlinkCluster.submit_python_job("deploy.local.smoke_job",
                                   ["--topic", T, "--table", TBL, "--detached"])
Connection settings come from `load_settings()` (env / <home>/secrets.env).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

ROW_FIELDS = ["id", "amount", "note"]


def parse_message(raw: str) -> tuple[str, float, str]:
    """JSON payload -> (id, amount, note). Raises ValueError on a malformed payload."""
    data = json.loads(raw)
    if not isinstance(data, dict) or "id" not in data:
        raise ValueError(f"not a smoke record: {raw[:80]!r}")
    return str(data["id"]), float(data.get("amount", 0.0)), str(data.get("note", ""))


def sink_ddl(table: str, jdbc_url: str, user: str, password: str) -> str:
    """Flink SQL DDL of the upserting Postgres sink for `table`."""
    return f"""
        CREATE TEMPORARY TABLE smoke_sink (
            id STRING,
            amount DOUBLE,
            note STRING,
            PRIMARY KEY (id) NOT ENFORCED
        ) WITH (
            'connector' = 'jdbc',
            'url' = '{jdbc_url}',
            'table-name' = '{table}',
            'username' = '{user}',
            'password' = '{password}',
            'sink.buffer-flush.interval' = '1s',
            'sink.buffer-flush.max-rows' = '500'
        )
    """


def run(topic: str, table: str, detached: bool = False, parallelism: int = 1) -> None:
    """Build and execute the job; blocks until it finishes unless `detached`."""
    from pyflink.common import Configuration, Row, Types, WatermarkStrategy
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource
    from pyflink.table import StreamTableEnvironment

    from connectors.jars import flink_jar_urls
    from connectors.settings import load_settings

    settings = load_settings()
    user, password = settings.credentials("writer")
    config = Configuration()
    config.set_string("python.executable", sys.executable)
    config.set_string("pipeline.name", f"fraudstream-smoke-{table}")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.add_jars(*flink_jar_urls(settings))
    env.set_parallelism(parallelism)

    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(settings.kafka_bootstrap)
        .set_topics(topic)
        .set_group_id(f"fraudstream-smoke-{uuid.uuid4().hex[:8]}")
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_bounded(KafkaOffsetsInitializer.latest())
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    row_type = Types.ROW_NAMED(ROW_FIELDS, [Types.STRING(), Types.DOUBLE(), Types.STRING()])
    rows = env.from_source(source, WatermarkStrategy.no_watermarks(), "smoke-kafka").map(
        lambda raw: Row(*parse_message(raw)), output_type=row_type
    )
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(sink_ddl(table, settings.jdbc_url(), user, password))
    result = t_env.from_data_stream(rows).execute_insert("smoke_sink")
    if not detached:
        result.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument(
        "--detached", action="store_true", help="do not wait (cluster submission with -d)"
    )
    args = parser.parse_args(argv)
    run(args.topic, args.table, args.detached, args.parallelism)


if __name__ == "__main__":
    main()
