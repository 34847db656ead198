"""The future guard on event time (issue 10, point 2), in Java and in Python, on one table.

The Flink source computes each record's watermark time in Java (`EventTimeMillis`) and selects
the same verdict as a column; the parser dead-letters a record the guard refused. The peer has
no Java, so `models.hot_path.EventTimeGuard` applies the same rule: both are held to CASES.
"""

from __future__ import annotations

from models.hot_path import FUTURE_REASON, EventTimeGuard, RawRecord, RecordParser, parse_batch
from schemas import wire
from schemas.card_token import CardTokenizer
from tests.factories import T0, txn

DAY = 86_400_000
NOW = T0 + 30 * DAY  # the wall clock of the cases: a month after the replayed traffic

# (partition, event time, accepted?) in order, all with max_ahead = 1 day and now = NOW.
CASES = [
    (0, NOW + 2 * DAY, False),  # first record of a partition: the wall clock is the reference
    (0, T0, True),               # progress of partition 0 becomes T0
    (0, T0 + DAY + 1, False),    # more than a day ahead of the progress, not of the clock
    (0, T0 + DAY, True),         # exactly the bound is accepted; progress moves to it
    (0, T0 + DAY + 3_600_000, True),  # within a day of the new progress
    (1, T0 + 5 * DAY, True),     # partition 1 has its own progress (first: wall clock)
    (1, T0 + 6 * DAY + 1, False),
    (0, T0 - 10 * DAY, True),    # the past is never refused (lateness is the parser's job)
    (0, T0 + DAY + 3_600_000, True),  # progress did not go back
    (2, NOW + DAY, True),        # live traffic: up to a day past the wall clock
    (2, NOW + DAY + 1, False),   # never more, whatever the progress
]


def test_python_guard_follows_the_cases():
    guard = EventTimeGuard(DAY)
    got = [guard.admits(part, at, NOW) for part, at, _ in CASES]
    assert got == [ok for *_, ok in CASES]


def test_java_guard_follows_the_same_cases(jvm):
    fn = jvm.io.fraudstream.flink.EventTimeMillis()
    jlong = jvm.java.lang.Long
    verdicts = [fn.verdict(at, jvm.java.lang.Integer(part), jlong(DAY), NOW)
                for part, at, _ in CASES]
    assert verdicts == [at if ok else -1 for _, at, ok in CASES]


def test_java_guard_passes_records_without_a_time_through(jvm):
    fn = jvm.io.fraudstream.flink.EventTimeMillis()
    day = jvm.java.lang.Long(DAY)
    assert fn.eval(b"not json", jvm.java.lang.Integer(0), day) == 0
    good = wire.to_json_bytes(txn(card="ab" * 32, at=T0))
    assert fn.eval(good, jvm.java.lang.Integer(0), day) == T0 // 1000 * 1000


def _parser(**kwargs) -> RecordParser:
    return RecordParser("transactions", CardTokenizer(b"k" * 32), 4096, **kwargs)


def test_the_parser_dead_letters_what_the_source_refused():
    payload = wire.to_json_bytes(txn(card="ab" * 32, at=T0))
    parsed, dead = parse_batch(
        [RawRecord(payload, 3, 10, False), RawRecord(payload, 3, 11, True),
         RawRecord(payload, 3, 12)],
        _parser(),
    )
    assert [p.offset for p in parsed] == [10, 12]
    (letter,) = dead
    assert (letter.offset, letter.field, letter.reason) == (11, "event_time", FUTURE_REASON)


def test_the_parser_applies_its_own_guard_when_no_verdict_came_with_the_record():
    parser = _parser(guard=EventTimeGuard(DAY), clock_ms=lambda: NOW)
    records = [RawRecord(wire.to_json_bytes(txn(card="ab" * 32, at=at)), 0, off)
               for off, at in enumerate((T0, T0 + 3 * DAY, T0 + 60_000))]
    parsed, dead = parse_batch(records, parser)
    assert [p.offset for p in parsed] == [0, 2]
    assert [(d.offset, d.reason) for d in dead] == [(1, FUTURE_REASON)]

