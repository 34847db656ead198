"""A benchmark run's private namespace on the shared stack, and its clean removal.

Each run gets its own Kafka topics (`bench.<run>.transactions|alerts|dlq`) and its own Postgres
schema (`bench_<run>`) holding copies of the core tables (`LIKE public.<table> INCLUDING ALL`),
so runs never mix with each other or with the demo's data, and row counts are exact. Engines
reach the schema through the search path: psycopg `options=-c search_path=...` for the peer,
`currentSchema=...` in the JDBC URL for the Flink job.

`BenchNamespace.drop()` deletes the topics and the schema: the stack is left as found. DDL
runs as the `postgres` superuser over the local Unix socket (`StackSettings.pg_socket_dir`,
trust auth, set up by `fraudstream up`); the engines write as the normal writer role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CORE_TABLES = ("scored_transactions", "alerts", "rejected_events", "aggregates", "shadow_scores")
_SAFE = re.compile(r"^[a-z0-9_]+$")


def admin_connect(settings: Any):
    """psycopg connection as `postgres` over the local socket (autocommit)."""
    import psycopg

    return psycopg.connect(
        host=str(settings.pg_socket_dir),
        port=settings.pg_port,
        dbname=settings.pg_database,
        user="postgres",
        autocommit=True,
    )


def with_current_schema(jdbc_url: str, schema: str) -> str:
    """The JDBC URL with `currentSchema=<schema>` added (pgjdbc sets the search path)."""
    sep = "&" if "?" in jdbc_url else "?"
    return f"{jdbc_url}{sep}currentSchema={schema}"


@dataclass(frozen=True)
class BenchNamespace:
    """Names for one run; `run_id` is lowercase letters, digits and underscores."""

    run_id: str

    def __post_init__(self) -> None:
        if not _SAFE.match(self.run_id):
            raise ValueError(f"run id must match [a-z0-9_]+, got {self.run_id!r}")

    @property
    def schema(self) -> str:
        return f"bench_{self.run_id}"

    def topic(self, name: str) -> str:
        return f"bench.{self.run_id}.{name}"

    @property
    def source_topic(self) -> str:
        return self.topic("transactions")

    @property
    def alerts_topic(self) -> str:
        return self.topic("alerts")

    @property
    def dlq_topic(self) -> str:
        return self.topic("dlq")

    def create_topics(self, bootstrap: str, partitions: int, names: tuple[str, ...]) -> None:
        """Create fresh topics (replication 1); raises RuntimeError if one fails."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics(
            [NewTopic(self.topic(n), num_partitions=partitions, replication_factor=1)
             for n in names]
        )
        for topic, fut in futures.items():
            try:
                fut.result(timeout=30)
            except Exception as exc:  # noqa: BLE001 - KafkaException carries the reason
                raise RuntimeError(f"cannot create topic {topic}: {exc}") from exc

    def create_schema(self, settings: Any) -> None:
        """Create the schema with empty copies of the core tables, on which the writer has the
        job's privileges only, as on `public` (migration 004: SELECT, INSERT/UPDATE of the
        columns the job writes, no DELETE)."""
        from psycopg import sql

        from connectors.postgres_sinks import writer_grant_statements

        schema = sql.Identifier(self.schema)
        with admin_connect(settings) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            for table in CORE_TABLES:
                like = sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (LIKE public.{} INCLUDING ALL)")
                conn.execute(like.format(schema, sql.Identifier(table), sql.Identifier(table)))
            for grant in writer_grant_statements(self.schema, settings.writer_user):
                conn.execute(grant)

    def count_rows(self, conn: Any, table: str) -> int:
        """Exact row count of one of this run's tables."""
        if table not in CORE_TABLES:
            raise ValueError(f"unknown table {table}")
        from psycopg import sql

        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(self.schema), sql.Identifier(table)
        )
        return conn.execute(query).fetchone()[0]

    def drop(self, settings: Any) -> list[str]:
        """Delete this run's topics and schema; return what could not be removed (best effort)."""
        problems: list[str] = []
        try:
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
            existing = admin.list_topics(timeout=15).topics
            mine = [t for t in existing if t.startswith(f"bench.{self.run_id}.")]
            if mine:
                for topic, fut in admin.delete_topics(mine).items():
                    try:
                        fut.result(timeout=30)
                    except Exception as exc:  # noqa: BLE001
                        problems.append(f"topic {topic}: {exc}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"kafka: {exc}")
        try:
            from psycopg import sql

            with admin_connect(settings) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
                )
        except Exception as exc:  # noqa: BLE001
            problems.append(f"postgres schema {self.schema}: {exc}")
        return problems
