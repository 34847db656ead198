"""Issue 10, least privilege, on the real Postgres of the local stack.

- The writer role (the job) holds exactly what the job's sinks do (migration 004 against
  `connectors.postgres_sinks.SINK_TABLES`): SELECT, INSERT of the declared columns, UPDATE of
  the non-key ones; no DELETE/TRUNCATE, nothing on review or default-filled columns, and only
  SELECT on tables of later migrations.
- The job's own upsert (`PostgresCopySink.Writer`: COPY into a TEMP stage, INSERT ... ON
  CONFLICT DO UPDATE) works as the writer on the real tables with those grants.
- The analyst may update the review columns and nothing else.
- The superuser's trust-auth unix socket is reachable by its OS owner only.
"""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from connectors.postgres_sinks import SINK_TABLES

pytestmark = pytest.mark.integration

REVIEW_COLUMNS = ("review_status", "label", "reviewer", "review_note", "reviewed_at")
ALERT_COLUMNS = next(s for s in SINK_TABLES if s.table == "alerts").column_names


def _columns(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )]


def _column_privilege(conn, role: str, table: str, column: str, kind: str) -> bool:
    return conn.execute(
        "SELECT has_column_privilege(%s, %s, %s, %s)", (role, f"public.{table}", column, kind)
    ).fetchone()[0]


def _table_privilege(conn, role: str, table: str, kind: str) -> bool:
    return conn.execute(
        "SELECT has_table_privilege(%s, %s, %s)", (role, f"public.{table}", kind)
    ).fetchone()[0]


def test_writer_privileges_are_exactly_the_columns_the_job_writes(stack, pg_admin):
    writer = stack.writer_user
    for sink in SINK_TABLES:
        columns = _columns(pg_admin, sink.table)
        assert set(sink.column_names) <= set(columns), sink.table
        insertable = [c for c in columns
                      if _column_privilege(pg_admin, writer, sink.table, c, "INSERT")]
        updatable = [c for c in columns
                     if _column_privilege(pg_admin, writer, sink.table, c, "UPDATE")]
        assert sorted(insertable) == sorted(sink.column_names), sink.table
        assert sorted(updatable) == sorted(sink.update_columns), sink.table
        assert _table_privilege(pg_admin, writer, sink.table, "SELECT")
        for kind in ("DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            assert not _table_privilege(pg_admin, writer, sink.table, kind), (sink.table, kind)
    assert not set(REVIEW_COLUMNS) & set(ALERT_COLUMNS)
    assert not _table_privilege(pg_admin, writer, "schema_migrations", "INSERT")

    # A table of a later migration (same owner): the writer may read it, nothing more.
    name = f"later_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE TABLE public.{name} (id int PRIMARY KEY)")
    try:
        assert _table_privilege(pg_admin, writer, name, "SELECT")
        for kind in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            assert not _table_privilege(pg_admin, writer, name, kind), kind
    finally:
        pg_admin.execute(f"DROP TABLE public.{name}")


def _insert_alert(conn, tid: str) -> None:
    conn.execute(
        "INSERT INTO alerts (transaction_id, card_token, card_masked, event_time, amount,"
        " merchant, category, score, threshold, reasons, features, model_version, is_late)"
        " VALUES (%s, 'tok', '****4242', now(), 1.0, 'm', 'c', 0.9, 0.5, '[]', '{}', 'v', false)",
        (tid,),
    )


def test_writer_cannot_delete_truncate_review_or_write_other_columns(pg_writer, pg_admin):
    tid = f"lp-{uuid.uuid4().hex}"
    _insert_alert(pg_writer, tid)  # what the job does is allowed
    try:
        refused = [
            ("DELETE FROM alerts WHERE transaction_id = %s", (tid,)),
            ("TRUNCATE alerts", None),
            ("TRUNCATE aggregates", None),
            ("UPDATE alerts SET review_status = 'closed' WHERE transaction_id = %s", (tid,)),
            ("UPDATE alerts SET label = 'legit', reviewer = 'job' WHERE transaction_id = %s",
             (tid,)),
            ("UPDATE alerts SET created_at = now() WHERE transaction_id = %s", (tid,)),
            ("UPDATE alerts SET transaction_id = 'x' WHERE transaction_id = %s", (tid,)),
            ("DELETE FROM scored_transactions WHERE transaction_id = %s", (tid,)),
            ("DELETE FROM rejected_events WHERE source_topic = %s", (tid,)),
            ("INSERT INTO rejected_events (source_topic, source_partition, source_offset,"
             " reason, raw_payload, payload_bytes, rejected_at)"
             " VALUES (%s, 0, 0, 'r', 'p', 1, now())", (tid,)),
            ("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')",
             None),
        ]
        for statement, params in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg_writer.execute(statement, params)
        # the job's own column updates are allowed
        assert pg_writer.execute(
            "UPDATE alerts SET score = 0.95 WHERE transaction_id = %s", (tid,)
        ).rowcount == 1
    finally:
        pg_admin.execute("DELETE FROM alerts WHERE transaction_id = %s", (tid,))


@pytest.fixture(scope="module")
def gateway():
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from connectors.jars import flink_jar_paths

    add_jars_to_context_class_loader([p.as_uri() for p in flink_jar_paths()])
    return get_gateway()


def _alerts_writer(gw, stack, password_env: str | None = None):
    """The job's COPY sink writer on the real `public.alerts`, as the writer role, with the
    alerts sink's declared columns and key (the statement the job runs)."""
    jvm = gw.jvm
    logical = jvm.org.apache.flink.table.types.logical
    sink = next(s for s in SINK_TABLES if s.table == "alerts")
    kinds = {"STRING": lambda: logical.VarCharType(logical.VarCharType.MAX_LENGTH),
             "DOUBLE": logical.DoubleType, "BOOLEAN": logical.BooleanType,
             "TIMESTAMP(3)": lambda: logical.TimestampType(3)}
    types = gw.new_array(logical.LogicalType, len(sink.columns))
    names = gw.new_array(jvm.java.lang.String, len(sink.columns))
    for i, (name, kind) in enumerate(sink.columns):
        types[i], names[i] = kinds[kind](), name
    key = gw.new_array(jvm.java.lang.String, len(sink.key))
    for i, name in enumerate(sink.key):
        key[i] = name
    ops = jvm.io.fraudstream.flink
    password = None if password_env else stack.writer_password.reveal()
    settings = ops.PostgresCopySink.Settings(
        stack.jdbc_url(), stack.writer_user, password, "alerts", names, key, 1000, 0, 0,
        password_env,
    )
    return ops.PostgresCopySink.Writer(settings, ops.CopyTextEncoder(types), None)


def _alert_row(gw, tid: str, score: float):
    data = gw.jvm.org.apache.flink.table.data
    s = data.StringData.fromString
    event_time = data.TimestampData.fromEpochMillis(1_704_110_400_000)
    values = [s(tid), s("tok"), s("****4242"), event_time, 12.5, s("merchant"),
              s("shopping_net"), score, 0.5, s("[]"), s("{}"), s("m1"), False]
    array = gw.new_array(gw.jvm.java.lang.Object, len(values))
    for i, v in enumerate(values):
        array[i] = v
    return data.GenericRowData.of(array)


def test_the_jobs_upsert_runs_as_the_writer_and_keeps_the_review(gateway, stack, pg_admin):
    tid = f"lp-sink-{uuid.uuid4().hex}"
    writer = _alerts_writer(gateway, stack)
    try:
        writer.write(_alert_row(gateway, tid, 0.7), None)
        writer.flush(False)  # INSERT through the TEMP stage
        pg_admin.execute("UPDATE alerts SET review_status = 'closed', label = 'fraud'"
                         " WHERE transaction_id = %s", (tid,))
        writer.write(_alert_row(gateway, tid, 0.9), None)
        writer.flush(False)  # replay: ON CONFLICT DO UPDATE of the declared columns
        row = pg_admin.execute(
            "SELECT score, review_status, label, created_at <= now() FROM alerts"
            " WHERE transaction_id = %s", (tid,)).fetchone()
        assert row == (0.9, "closed", "fraud", True)
    finally:
        writer.close()
        pg_admin.execute("DELETE FROM alerts WHERE transaction_id = %s", (tid,))


def test_the_sink_reads_its_password_from_the_named_variable_at_open(gateway, stack):
    variable = f"FRAUDSTREAM_TEST_UNSET_{uuid.uuid4().hex[:8].upper()}"
    with pytest.raises(Exception) as failure:
        _alerts_writer(gateway, stack, password_env=variable)
    assert variable in str(failure.value)
    assert stack.writer_password.reveal() not in str(failure.value)


def test_analyst_may_update_only_review_columns(pg_writer, pg_analyst, pg_admin):
    tid = f"lp-an-{uuid.uuid4().hex}"
    _insert_alert(pg_writer, tid)
    try:
        assert pg_analyst.execute(
            "UPDATE alerts SET review_status = 'closed', label = 'fraud', reviewer = 'ana',"
            " review_note = 'ok', reviewed_at = %s WHERE transaction_id = %s",
            (datetime.now(UTC), tid),
        ).rowcount == 1
        refused = [
            ("UPDATE alerts SET score = 0 WHERE transaction_id = %s", (tid,)),
            ("UPDATE scored_transactions SET decision = 'pass' WHERE transaction_id = %s",
             (tid,)),
            ("DELETE FROM alerts WHERE transaction_id = %s", (tid,)),
            ("TRUNCATE rejected_events", None),
            ("CREATE TEMP TABLE lp_scratch (x int)", None),
        ]
        for statement, params in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg_analyst.execute(statement, params)
        for sink in SINK_TABLES:
            for column in _columns(pg_admin, sink.table):
                allowed = sink.table == "alerts" and column in REVIEW_COLUMNS
                assert _column_privilege(
                    pg_admin, "fraudstream_analyst", sink.table, column, "UPDATE") is allowed
                assert not _column_privilege(
                    pg_admin, "fraudstream_analyst", sink.table, column, "INSERT")
    finally:
        pg_admin.execute("DELETE FROM alerts WHERE transaction_id = %s", (tid,))


def test_superuser_socket_is_reachable_by_its_owner_only(stack, pg_admin):
    from deploy.local.postgres import pg_bin_dir

    assert pg_admin.execute("SHOW unix_socket_permissions").fetchone()[0] == "0700"
    socket_dir = stack.pg_socket_dir
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    socket = socket_dir / f".s.PGSQL.{stack.pg_port}"
    assert stat.S_ISSOCK(socket.stat().st_mode)
    assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0
    if os.geteuid() == 0:  # root can act as another local user: try the socket as `nobody`
        probe = subprocess.run(
            ["runuser", "-u", "nobody", "--", str(pg_bin_dir() / "psql"), "-h",
             str(socket_dir), "-p", str(stack.pg_port), "-U", "postgres", "-d",
             stack.pg_database, "-c", "SELECT 1"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
        assert probe.returncode != 0
        assert "Permission denied" in probe.stderr
