"""The project's Java operators (connectors/java) and the key-group arithmetic, in the JVM.

Runs in PyFlink's gateway JVM with the `fraudstream-flink-ops` jar that bootstrap builds (a
missing jar fails with the bootstrap command). Checks the contracts the job relies on:
- `PickleBatchWriter` writes what Python's `pickle.loads` reads back exactly (bytes kept
  byte for byte, ints past 32 bits, None, booleans, floats, text);
- `PickledRowsToRows` turns Python's pickles into rows of the declared types and refuses a
  tuple of the wrong arity;
- `EventTimeMillis` follows the watermark rule of `connectors.kafka`;
- `jobs.key_groups` computes the key groups Flink computes.
"""

from __future__ import annotations

import pickle

import pytest

pytest.importorskip("pyflink")

from connectors.rows import SCORED_FIELDS, SCORED_TYPE  # noqa: E402
from jobs.key_groups import key_group, shard_keys  # noqa: E402


def _row(jvm, *values):
    row = jvm.org.apache.flink.types.Row(len(values))
    for i, v in enumerate(values):
        row.setField(i, v)
    return row


def test_pickle_batch_writer_round_trips_every_field_type(jvm):
    writer = jvm.io.fraudstream.flink.PickleBatchWriter()
    payload = bytes(range(256)) * 3  # every byte value, longer than a short bytes opcode
    jlong = jvm.java.lang.Long
    writer.add(_row(jvm, payload, jvm.java.lang.Integer(3), jlong(2**40 + 5)))
    writer.add(_row(jvm, b"\x00", None, jlong(-7)))
    writer.add(_row(jvm, "caf\u00e9 \u20ac", True, 1.5))
    assert writer.size() == 3
    batch = pickle.loads(bytes(writer.finish()))
    assert batch == [(payload, 3, 2**40 + 5), (b"\x00", None, -7), ("caf\u00e9 \u20ac", True, 1.5)]
    assert writer.isEmpty()
    writer.add(_row(jvm, b"x"))
    assert pickle.loads(bytes(writer.finish())) == [(b"x",)]  # reusable after finish


def test_pickled_rows_become_typed_rows(jvm):
    to_rows = jvm.io.fraudstream.flink.PickledRowsToRows(SCORED_TYPE.get_java_type_info())
    values = ("t1", "card", "4242", 1_700_000_000_000, 12, "m", "c", 0.5, 0.4, True,
              "[]", "{}", "v1", False, 3, 2**33, None, 1, "m2", 0.7, False,
              40.5, -74, 40.7, -74.25, 3495, "F", 1988, "10001", None)
    assert len(values) == len(SCORED_FIELDS)
    # protocol 4 = pickle.DEFAULT_PROTOCOL, what PyFlink writes (the shaded Pyrolite reads <= 4)
    (row,) = list(to_rows.rows(pickle.dumps([values], protocol=4)))
    got = [row.getField(i) for i in range(row.getArity())]
    assert got[:4] == ["t1", "card", "4242", 1_700_000_000_000]
    assert got[4] == 12.0 and isinstance(got[4], float)  # int amount -> DOUBLE
    assert got[9] is True and got[14] == 3 and got[15] == 2**33 and got[16] is None
    assert got[17:21] == [1, "m2", 0.7, False]  # label, shadow version, score, alert
    # the record fields for retraining (007): an int coordinate widened to DOUBLE
    assert got[21:] == [40.5, -74.0, 40.7, -74.25, 3495, "F", 1988, "10001", None]
    assert isinstance(got[22], float)
    with pytest.raises(Exception, match="fields for a row of"):
        to_rows.rows(pickle.dumps([values[:-1]]))


@pytest.mark.parametrize(
    ("payload", "expected_ms"),
    [
        (b'{"schema_version": 1, "event_time": "2024-01-01T12:00:00Z"}', 1_704_110_400_000),
        (b'{"schema_version": "1", "x": {"event_time": "nested"}, '
         b'"event_time": "2024-01-01T13:00:00.123+01:00"}', 1_704_110_400_000),
        (b'{"event_time": "2024-01-01T12:00:00Z"}', 0),  # no schema version
        (b'{"schema_version": 2, "event_time": "2024-01-01T12:00:00Z"}', 0),
        (b'{"schema_version": 1, "event_time": "2024-13-01T12:00:00Z"}', 0),
        (b'{"schema_version": 1, "event_time": "2024-02-30T12:00:00Z"}', 0),
        (b'{"schema_version": 1, "event_time": "1989-12-31T23:59:59Z"}', 0),
        (b'{"schema_version": 1, "event_time": 1704110400}', 0),
        (b'{"schema_version": 1, "event_time": "2024-01-01T12:00:00Z"', 0),  # truncated
        (b'{"schema_version": 1, "event_time": "2024-01-01T12:00:00Z"} trailing', 0),
        (b'[1, 2]', 0),
        (b'\x00\xff\xfe', 0),
        (b'', 0),
    ],
)
def test_event_time_for_watermarks(jvm, payload, expected_ms):
    assert jvm.io.fraudstream.flink.EventTimeMillis().eval(payload) == expected_ms


def test_key_groups_match_flink_for_the_keys_pyflink_makes(jvm):
    """PyFlink's key_by(key_type=LONG) keys by a one-field Row holding a java.lang.Long.

    py4j hands a Python int to Java as Integer when it fits 32 bits, else as Long; for
    0 <= v < 2**31 both hash alike (the shard keys are small non-negative numbers), and the
    keys beyond 32 bits check the Long formula itself."""
    assignment = jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment
    # every shard key the job makes at both max parallelisms, a run of small ones, and the
    # 32/64-bit edges (each key is a few py4j round trips: hundreds, not thousands)
    keys = [*shard_keys(16, 128), *shard_keys(16, 256), *range(0, 160), 2**31 - 1,
            123_456_789, 2**31, 2**40 + 3, 2**63 - 1, -(2**31) - 1, -(2**40) - 7, -(2**63)]
    for max_parallelism in (128, 256):
        for key in keys:
            expected = assignment.assignToKeyGroup(
                _row(jvm, jvm.java.lang.Long(key)), max_parallelism
            )
            assert key_group(key, max_parallelism) == expected, key


@pytest.mark.parametrize("parallelism", [1, 2, 4, 8, 16])
def test_shard_keys_spread_evenly_over_subtasks(parallelism):
    keys = shard_keys(16, 128)
    assert len(set(keys)) == 16
    subtasks = [key_group(k, 128) * parallelism // 128 for k in keys]
    assert sorted(subtasks) == sorted(list(range(parallelism)) * (16 // parallelism))
