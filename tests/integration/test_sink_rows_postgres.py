"""Issue 10: Postgres accepts every row the job builds, whatever bytes arrived.

Generated record values (tests/hostile_strategies.py: arbitrary bytes, valid-looking JSON with
hostile values in every field) and the hostile corpus go through the job's code
(`parse_batch` -> `score_batch` -> `connectors.rows` converters -> `PickledRowsToRows`, the
Java unpickler the job uses), then through the job's own Postgres sink writer
(`PostgresCopySink.Writer` + `CopyTextEncoder`, in PyFlink's gateway JVM, no retries) into
scratch copies of rejected_events, scored_transactions, alerts and aggregates, with the
columns and keys of `connectors.postgres_sinks.sink_ddls`. A refused row fails the flush and
the test. Rows are read back: raw bytes, preview, reason and text fields arrive unchanged.
"""

from __future__ import annotations

import pickle
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.namespace import with_current_schema
from connectors.jars import flink_jar_paths
from connectors.rows import REJECTED_FIELDS, REJECTED_TYPE, SCORED_FIELDS, SCORED_TYPE
from tests.hostile_strategies import record_values
from tests.unit.test_sink_rows_properties import CORPUS, job_rows

pytestmark = pytest.mark.integration

TABLES = ("rejected_events", "scored_transactions", "alerts", "aggregates", "shadow_scores")
_COLUMN = re.compile(r"`?(\w+)`? (STRING|INT|BIGINT|DOUBLE|BOOLEAN|TIMESTAMP\(3\)|BYTES)")


def _sink_columns(stack) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """table -> ([(column, Flink type)], key columns), parsed from the job's sink DDL."""
    from connectors.postgres_sinks import sink_ddls
    from jobs.config import build_config

    out = {}
    for ddl in sink_ddls(build_config({"write_scored": True}).postgres_sink_spec()):
        table = re.search(r"'table-name' = '(\w+)'", ddl).group(1)
        body, key = ddl.split("PRIMARY KEY (", 1)
        columns = _COLUMN.findall(body)
        out[table] = (columns, [k.strip(" `") for k in key.split(")")[0].split(",")])
    assert set(out) == set(TABLES)
    return out


@pytest.fixture(scope="module")
def gateway():
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    add_jars_to_context_class_loader([p.as_uri() for p in flink_jar_paths()])
    return get_gateway()


@pytest.fixture(scope="module")
def scratch(stack):
    """A scratch schema with copies of the four sink tables, writable by the job's role."""
    import psycopg

    from deploy.local.postgres import PostgresServer

    schema = f"sink_rows_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PostgresServer(stack).admin_conninfo(stack.pg_database),
                         autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            admin.execute(f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)")
            admin.execute(f"GRANT ALL ON {schema}.{table} TO {stack.writer_user}")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {stack.writer_user}")
        yield schema, admin
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


class Sinks:
    """The job's COPY sink writer for each scratch table, fed from SCORED/REJECTED tuples."""

    def __init__(self, gw, stack, schema: str) -> None:
        self.gw = gw
        jvm = gw.jvm
        logical = jvm.org.apache.flink.table.types.logical
        kinds = {
            "STRING": lambda: logical.VarCharType(logical.VarCharType.MAX_LENGTH),
            "BYTES": lambda: logical.VarBinaryType(logical.VarBinaryType.MAX_LENGTH),
            "INT": logical.IntType, "BIGINT": logical.BigIntType, "DOUBLE": logical.DoubleType,
            "BOOLEAN": logical.BooleanType, "TIMESTAMP(3)": lambda: logical.TimestampType(3),
        }
        ops = jvm.io.fraudstream.flink
        self.columns, self.writers = {}, {}
        for table, (columns, key) in _sink_columns(stack).items():
            types = gw.new_array(logical.LogicalType, len(columns))
            names = gw.new_array(jvm.java.lang.String, len(columns))
            for i, (name, kind) in enumerate(columns):
                types[i] = kinds[kind]()
                names[i] = name
            keys = gw.new_array(jvm.java.lang.String, len(key))
            for i, name in enumerate(key):
                keys[i] = name
            cfg = ops.PostgresCopySink.Settings(
                with_current_schema(stack.jdbc_url(), schema), stack.writer_user,
                stack.writer_password.reveal(), table, names, keys, 100_000, 0, 0,
            )
            self.columns[table] = columns
            self.writers[table] = ops.PostgresCopySink.Writer(
                cfg, ops.CopyTextEncoder(types), None
            )
        self.to_rejected = ops.PickledRowsToRows(REJECTED_TYPE.get_java_type_info())
        self.to_scored = ops.PickledRowsToRows(SCORED_TYPE.get_java_type_info())

    def _write(self, table: str, values: dict) -> None:
        # BinaryRowWriter takes Java primitives, so a Python int reaches a BIGINT as a long
        # (py4j would box a small one as Integer in an Object[]).
        data = self.gw.jvm.org.apache.flink.table.data
        columns = self.columns[table]
        row = data.binary.BinaryRowData(len(columns))
        out = data.writer.BinaryRowWriter(row)
        for i, (name, kind) in enumerate(columns):
            v = values[name]
            if v is None:
                out.setNullAt(i)
            elif kind == "STRING":
                out.writeString(i, data.StringData.fromString(v))
            elif kind == "BYTES":
                out.writeBinary(i, v)
            elif kind == "TIMESTAMP(3)":
                out.writeTimestamp(i, data.TimestampData.fromEpochMillis(v), 3)
            elif kind == "BIGINT":
                out.writeLong(i, v)
            elif kind == "INT":
                out.writeInt(i, v)
            elif kind == "DOUBLE":
                out.writeDouble(i, float(v))
            else:
                out.writeBoolean(i, v)
        out.complete()
        self.writers[table].write(row, None)

    def write(self, rejected: list[tuple], scored: list[tuple]) -> None:
        """Rows as the job's INSERTs project them (connectors.postgres_sinks), one flush."""
        for row in self.to_rejected.rows(pickle.dumps(rejected, protocol=4)):
            rec = dict(zip(REJECTED_FIELDS, [row.getField(i) for i in range(row.getArity())],
                           strict=True))
            self._write("rejected_events", rec)
        for row in self.to_scored.rows(pickle.dumps(scored, protocol=4)):
            rec = dict(zip(SCORED_FIELDS, [row.getField(i) for i in range(row.getArity())],
                           strict=True))
            rec["event_time"] = rec["event_time_ms"]
            rec["reasons"], rec["features"] = rec["reasons_json"], rec["features_json"]
            rec["decision"] = "alert" if rec["is_alert"] else "pass"
            self._write("scored_transactions", rec)
            if rec["is_alert"]:
                self._write("alerts", {**rec, "card_masked": "****" + rec["card_last4"]})
            minute = rec["event_time_ms"] - rec["event_time_ms"] % 60_000
            for dimension in ("category", "merchant"):
                self._write("aggregates", {
                    "window_start": minute, "window_end": minute + 60_000,
                    "dimension": dimension, "key": rec[dimension], "txn_count": 1,
                    "amount_sum": rec["amount"], "alert_count": int(rec["is_alert"]),
                    "mean_score": rec["score"],
                })
        for writer in self.writers.values():
            writer.flush(False)  # raises (Py4JJavaError) if Postgres refuses a row

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


@pytest.fixture(scope="module")
def sinks(gateway, stack, scratch):
    schema, _ = scratch
    s = Sinks(gateway, stack, schema)
    yield s
    s.close()


def _write_and_read_back(sinks, scratch, values):
    schema, admin = scratch
    for table in TABLES:
        admin.execute(f"TRUNCATE {schema}.{table}")
    rejected, scored, dead = job_rows(values)
    sinks.write(rejected, scored)
    got = {
        r[0]: r[1:] for r in admin.execute(
            f"SELECT source_offset, reason, field, raw_payload, payload_bytes, raw_bytes,"
            f" raw_exact FROM {schema}.rejected_events"
        )
    }
    assert len(got) == len(dead)
    for letter in dead:
        assert got[letter.offset] == (
            letter.reason, letter.field, letter.raw_payload, letter.payload_bytes,
            letter.raw_bytes, letter.raw_exact,
        )
    merchants = dict(admin.execute(
        f"SELECT transaction_id, merchant FROM {schema}.scored_transactions"
    ).fetchall())
    assert merchants == {row[0]: row[5] for row in scored}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(values=st.lists(record_values(), min_size=1, max_size=8))
def test_postgres_accepts_every_row_from_any_input(sinks, scratch, values):
    _write_and_read_back(sinks, scratch, values)


def test_postgres_accepts_every_row_of_the_hostile_corpus(sinks, scratch):
    _write_and_read_back(sinks, scratch, [c.value for c in CORPUS])


def test_copy_encoder_backstop_replaces_nul_in_text(sinks, scratch):
    """Python never emits NUL; if a bug did, the sink still writes (U+FFFD), never fails."""
    schema, admin = scratch
    admin.execute(f"TRUNCATE {schema}.rejected_events")
    row = ("t", 0, 1, "reason\x00", None, "a\x00b", 3, b"a\x00b", True, "k", "{}")
    sinks.write([row], [])
    got = admin.execute(
        f"SELECT reason, raw_payload, raw_bytes FROM {schema}.rejected_events"
    ).fetchone()
    assert got == ("reason\ufffd", "a\ufffdb", b"a\x00b")
