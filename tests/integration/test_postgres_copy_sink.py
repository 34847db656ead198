"""The job's Postgres sink (`fraudstream-postgres-copy`, connectors/java) against the real server.

The sink's writer runs in PyFlink's gateway JVM and writes into a scratch copy of `alerts`;
the test reads the rows back with psycopg. It checks what the job relies on: text survives
COPY escaping byte for byte, the last row of a key in one flush wins, a later flush updates
only the declared columns (a reviewer's label stays), timestamps land as UTC instants, and
NULL stays NULL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bench.namespace import with_current_schema
from connectors.jars import flink_jar_paths

pytestmark = pytest.mark.integration

COLUMNS = ("transaction_id", "card_token", "card_masked", "event_time", "amount", "merchant",
           "category", "score", "threshold", "reasons", "features", "model_version", "is_late")
HOSTILE = 'tab\there, new\nline, cr\r, back\\slash \\N, "quotes", caf\u00e9 \u20ac \U0001f4b3'


@pytest.fixture
def scratch_alerts(stack, pg_admin):
    schema = f"copy_sink_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE SCHEMA {schema}")
    pg_admin.execute(f"CREATE TABLE {schema}.alerts (LIKE public.alerts INCLUDING ALL)")
    # NULL transport is checked on `category` (NOT NULL in the real table; the job never
    # writes NULL there, but other sinks have nullable columns).
    pg_admin.execute(f"ALTER TABLE {schema}.alerts ALTER COLUMN category DROP NOT NULL")
    pg_admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {stack.writer_user}")
    pg_admin.execute(f"GRANT SELECT, INSERT, UPDATE ON {schema}.alerts TO {stack.writer_user}")
    yield schema
    pg_admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def jvm():
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    add_jars_to_context_class_loader([p.as_uri() for p in flink_jar_paths()])
    return get_gateway()


def _writer(gw, stack, schema):
    jvm = gw.jvm
    logical = jvm.org.apache.flink.table.types.logical
    text = logical.VarCharType(logical.VarCharType.MAX_LENGTH)
    kinds = {"event_time": logical.TimestampType(3), "is_late": logical.BooleanType()}
    for name in ("amount", "score", "threshold"):
        kinds[name] = logical.DoubleType()
    types = gw.new_array(logical.LogicalType, len(COLUMNS))
    names = gw.new_array(jvm.java.lang.String, len(COLUMNS))
    for i, name in enumerate(COLUMNS):
        types[i] = kinds.get(name, text)
        names[i] = name
    key = gw.new_array(jvm.java.lang.String, 1)
    key[0] = "transaction_id"
    ops = jvm.io.fraudstream.flink
    settings = ops.PostgresCopySink.Settings(
        with_current_schema(stack.jdbc_url(), schema), stack.writer_user,
        stack.writer_password.reveal(), "alerts", names, key, 1000, 0, 0,
    )
    return ops.PostgresCopySink.Writer(settings, ops.CopyTextEncoder(types), None)


def _row(gw, txn_id, merchant, score, event_ms, category="shopping_net"):
    jvm = gw.jvm
    data = jvm.org.apache.flink.table.data
    s = data.StringData.fromString
    values = [s(txn_id), s("tok"), s("****4242"), data.TimestampData.fromEpochMillis(event_ms),
              12.5, s(merchant), None if category is None else s(category), score, 0.5,
              s('[{"code": "X"}]'), s('{"amount": 12.5}'), s("m1"), False]
    array = gw.new_array(jvm.java.lang.Object, len(values))
    for i, v in enumerate(values):
        array[i] = v
    return data.GenericRowData.of(array)


def test_copy_sink_upserts_escapes_and_keeps_review_columns(jvm, stack, pg_admin, scratch_alerts):
    gw, schema = jvm, scratch_alerts
    event_ms = 1_704_110_400_123
    writer = _writer(gw, stack, schema)
    writer.write(_row(gw, "t1", "first", 0.1, event_ms), None)
    writer.write(_row(gw, "t2", HOSTILE, 0.2, event_ms), None)
    writer.write(_row(gw, "t1", "second", 0.3, event_ms), None)  # same key: last one wins
    writer.flush(False)
    rows = pg_admin.execute(
        f"SELECT transaction_id, merchant, score, event_time, category IS NULL, reasons "
        f"FROM {schema}.alerts ORDER BY transaction_id"
    ).fetchall()
    assert [r[:3] for r in rows] == [("t1", "second", 0.3), ("t2", HOSTILE, 0.2)]
    assert rows[0][3] == datetime.fromtimestamp(event_ms / 1000, tz=UTC)
    assert rows[0][5] == [{"code": "X"}]  # jsonb column filled from JSON text

    pg_admin.execute(f"UPDATE {schema}.alerts SET review_status = 'closed', label = 'fraud'")
    writer.write(_row(gw, "t1", "replayed", 0.9, event_ms, category=None), None)
    writer.flush(False)
    writer.close()
    (row,) = pg_admin.execute(
        f"SELECT merchant, score, category, review_status, label FROM {schema}.alerts "
        f"WHERE transaction_id = 't1'"
    ).fetchall()
    assert row[:3] == ("replayed", 0.9, None)
    assert row[3:] == ("closed", "fraud")  # the job never writes review columns
    assert pg_admin.execute(f"SELECT count(*) FROM {schema}.alerts").fetchone()[0] == 2
