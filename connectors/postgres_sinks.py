"""Postgres sink tables of the scoring job (our `fraudstream-postgres-copy` table connector).

Every sink declares `PRIMARY KEY ... NOT ENFORCED`; the connector (connectors/java,
`PostgresCopySinkFactory`) writes each flush with COPY into a temporary staging table and one
`INSERT ... ON CONFLICT (pk) DO UPDATE` naming ONLY the columns declared here: replays after a
failure change nothing, and the review columns of `alerts` (review_status, label, reviewer,
review_note, reviewed_at) are never touched by the job. Rows are buffered and flushed every
`jdbc_flush_interval_ms`, at `jdbc_flush_max_rows`, and before every checkpoint.

Issue 10: the DDL names the variable that holds the writer's password (`'password-env'`,
`PASSWORD_ENV`); the sink reads it from the TaskManager's environment when each writer opens,
so no password is in the SQL, the plan or the job graph. The writer role may do exactly what
these sinks do (migration 004, `SINK_TABLES`, `writer_grant_statements`).

Decision, measured (issue 9, 200k-event replay on the 2-TaskManager cluster): Flink's `jdbc`
connector bound every field of every row through pgjdbc; the COPY connector took the job from
0.21 to 0.13-0.16 ms of CPU per event. The connection still uses pgjdbc and `jdbc_url`.

Column types: timestamps are produced as TIMESTAMP(3) in UTC (`table.local-time-zone = UTC`)
and written to `timestamptz` columns with an explicit +00 offset; jsonb columns receive JSON
text; BYTES goes to `bytea` (rejected_events.raw_bytes, migration 003).

What the job writes is always accepted (issue 10): every text it produces is free of NUL and
lone surrogates (the parser refuses control characters in valid records' text fields,
dead-letter text goes through `schemas.dead_letter.printable`), numbers and times are bounded
by the parser to what the columns hold; tests/unit/test_sink_rows_properties.py and
tests/integration/test_sink_rows_postgres.py check it over generated input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.settings import WRITER_PASSWORD_ENV
from schemas.alert import ALERT_TABLE_FIELDS

SCORED_SINK = "pg_scored_transactions"
ALERTS_SINK = "pg_alerts"
REJECTED_SINK = "pg_rejected_events"
AGGREGATES_SINK = "pg_aggregates"
SHADOW_SINK = "pg_shadow_scores"

# The sink reads the writer's password from this variable of the TaskManager's environment
# when it opens (connector option 'password-env'): the password is never in the DDL, the
# plan or the job graph.
PASSWORD_ENV = WRITER_PASSWORD_ENV


@dataclass(frozen=True, slots=True)
class PostgresSinkSpec:
    """Where and how the sinks write: see `jobs.config.JobConfig` for each value's meaning.
    No password: each writer reads it from `PASSWORD_ENV` when it opens."""

    jdbc_url: str
    user: str
    flush_interval_ms: int
    flush_max_rows: int
    write_scored: bool


@dataclass(frozen=True)
class SinkTable:
    """One Postgres sink: Flink table `name` writing the declared `columns` of `table`.

    These declarations are also the writer role's privileges (migration 004: INSERT on
    `column_names`, UPDATE on `update_columns`, SELECT; `writer_grant_statements` grants the
    same in another schema); tests/integration/test_least_privilege.py checks both agree."""

    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (column, Flink SQL type)
    key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def update_columns(self) -> tuple[str, ...]:
        """The columns the upsert's ON CONFLICT DO UPDATE sets (every non-key column)."""
        return tuple(c for c in self.column_names if c not in self.key)


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, kind) for name, kind in (item.split(" ", 1) for item in spec.split(", "))
    )


_EVENT_TIME = "CAST(TO_TIMESTAMP_LTZ(event_time_ms, 3) AS TIMESTAMP(3))"

# How each stored alert field (schemas.alert.ALERT_TABLE_FIELDS) is typed in the sink and
# computed from the scored view (connectors.rows.SCORED_FIELDS); absent: same-named column.
_ALERT_TYPES = {"event_time": "TIMESTAMP(3)", "amount": "DOUBLE", "score": "DOUBLE",
                "threshold": "DOUBLE", "is_late": "BOOLEAN"}
_ALERT_FROM_SCORED = {"card_masked": "CONCAT('****', card_last4)", "event_time": _EVENT_TIME,
                      "reasons": "reasons_json", "features": "features_json"}

SINK_TABLES: tuple[SinkTable, ...] = (
    SinkTable(
        ALERTS_SINK, "alerts",
        tuple((name, _ALERT_TYPES.get(name, "STRING")) for name in ALERT_TABLE_FIELDS),
        ("transaction_id",),
    ),
    SinkTable(
        REJECTED_SINK, "rejected_events",
        _cols("source_topic STRING, source_partition INT, source_offset BIGINT, "
              "reason STRING, field STRING, raw_payload STRING, payload_bytes INT, "
              "raw_bytes BYTES, raw_exact BOOLEAN"),
        ("source_topic", "source_partition", "source_offset"),
    ),
    SinkTable(
        AGGREGATES_SINK, "aggregates",
        _cols("window_start TIMESTAMP(3), window_end TIMESTAMP(3), dimension STRING, "
              "key STRING, txn_count BIGINT, amount_sum DOUBLE, alert_count BIGINT, "
              "mean_score DOUBLE"),
        ("window_start", "dimension", "key"),
    ),
    SinkTable(
        SHADOW_SINK, "shadow_scores",
        _cols("transaction_id STRING, challenger_version STRING, event_time TIMESTAMP(3), "
              "amount DOUBLE, champion_version STRING, champion_score DOUBLE, "
              "champion_alert BOOLEAN, challenger_score DOUBLE, challenger_alert BOOLEAN, "
              "label INT"),
        ("transaction_id", "challenger_version"),
    ),
    SinkTable(
        SCORED_SINK, "scored_transactions",
        _cols("transaction_id STRING, card_token STRING, card_last4 STRING, "
              "event_time TIMESTAMP(3), amount DOUBLE, merchant STRING, category STRING, "
              "score DOUBLE, decision STRING, reasons STRING, features STRING, "
              "model_version STRING, is_late BOOLEAN, source_partition INT, "
              "source_offset BIGINT, merchant_lat DOUBLE, merchant_long DOUBLE, "
              "home_lat DOUBLE, home_long DOUBLE, city_pop INT, gender STRING, "
              "birth_year INT, zip STRING, state STRING, label INT"),
        ("transaction_id",),
    ),
)


def _ddl(sink: SinkTable, spec: PostgresSinkSpec) -> str:
    opts = {
        "connector": "fraudstream-postgres-copy",
        "url": spec.jdbc_url,
        "table-name": sink.table,
        "username": spec.user,
        "password-env": PASSWORD_ENV,
        "sink.buffer-flush.interval": f"{spec.flush_interval_ms} ms",
        "sink.buffer-flush.max-rows": str(spec.flush_max_rows),
        "sink.max-retries": "5",
    }
    body = ",\n  ".join(
        f"'{k}' = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in opts.items()
    )
    columns = ",\n".join(f"  `{name}` {kind}" for name, kind in sink.columns)
    pk = ", ".join(f"`{k}`" for k in sink.key)
    return (
        f"CREATE TEMPORARY TABLE {sink.name} (\n{columns},\n  PRIMARY KEY ({pk}) NOT ENFORCED\n)"
        f" WITH (\n  {body}\n)"
    )


def sink_ddls(spec: PostgresSinkSpec) -> list[str]:
    """DDL of the Postgres sink tables (the scored one only if `write_scored`). They carry the
    NAME of the password variable (`PASSWORD_ENV`), never a secret."""
    return [_ddl(s, spec) for s in SINK_TABLES if s.name != SCORED_SINK or spec.write_scored]


def writer_grant_statements(schema: str, role: str) -> list[Any]:
    """psycopg `Composed` GRANTs giving `role` on `schema`'s copies of the sink tables exactly
    what the job needs (USAGE on the schema, SELECT, INSERT of the declared columns, UPDATE of
    the non-key ones), i.e. migration 004's privileges; for scratch and benchmark schemas."""
    from psycopg import sql

    def idents(names: tuple[str, ...]) -> sql.Composed:
        return sql.SQL(", ").join(map(sql.Identifier, names))

    out: list[Any] = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema),
                                                        sql.Identifier(role))
    ]
    for sink in SINK_TABLES:
        out.append(
            sql.SQL("GRANT SELECT, INSERT ({}), UPDATE ({}) ON {} TO {}").format(
                idents(sink.column_names), idents(sink.update_columns),
                sql.Identifier(schema, sink.table), sql.Identifier(role),
            )
        )
    return out


def insert_statements(spec: PostgresSinkSpec, scored_view: str, dlq_view: str) -> list[str]:
    """INSERTs from the scored and dead-letter views (aggregates are added as a Table)."""
    alert_columns = ", ".join(_ALERT_FROM_SCORED.get(f, f) for f in ALERT_TABLE_FIELDS)
    stmts = [
        f"INSERT INTO {ALERTS_SINK}\nSELECT {alert_columns}\nFROM {scored_view} WHERE is_alert",
        f"""INSERT INTO {REJECTED_SINK}
SELECT source_topic, source_partition, source_offset, reason, field, raw_payload,
       payload_bytes, raw_bytes, raw_exact
FROM {dlq_view}""",
        f"""INSERT INTO {SHADOW_SINK}
SELECT transaction_id, shadow_version, {_EVENT_TIME}, amount, model_version, score, is_alert,
       shadow_score, shadow_alert, label
FROM {scored_view} WHERE shadow_version IS NOT NULL""",
    ]
    if spec.write_scored:
        stmts.append(
            f"""INSERT INTO {SCORED_SINK}
SELECT transaction_id, card_token, card_last4, {_EVENT_TIME}, amount, merchant, category,
       score, CASE WHEN is_alert THEN 'alert' ELSE 'pass' END, reasons_json, features_json,
       model_version, is_late, source_partition, source_offset, merchant_lat, merchant_long,
       home_lat, home_long, city_pop, gender, birth_year, zip, state, label
FROM {scored_view}"""
        )
    return stmts
