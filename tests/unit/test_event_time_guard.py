"""The future guard on event time, in Java and in Python, held to one table of scenarios.

The Flink source computes each record's watermark time in Java (`EventTimeMillis`) and selects
the same verdict as a column; the parser dead-letters a record the guard refused. The peer has
no Java, so `models.hot_path.EventTimeGuard` applies the same rule: both are held to SCENARIOS.
"""

from __future__ import annotations

import pytest

from models.hot_path import FUTURE_REASON, EventTimeGuard, RawRecord, RecordParser, parse_batch
from schemas import wire
from schemas.card_token import CardTokenizer
from tests.factories import T0, txn

DAY = 86_400_000
HOUR = 3_600_000
NOW = T0 + 30 * DAY  # the wall clock of the cases: a month after the replayed traffic

# Each scenario runs on a fresh guard with max_ahead = 1 day: (partition, event time, wall
# clock, accepted?) in order.
SCENARIOS = {
    "a jump on a replay is refused, the traffic after it is not": [
        (0, T0, NOW, True),
        (0, T0 + DAY + 1, NOW, False),  # more than a day ahead of the progress, not of the clock
        (0, T0 + DAY, NOW, True),  # exactly the bound is accepted; progress moves to it
        (0, T0 + DAY + HOUR, NOW, True),  # within a day of the new progress
        (0, T0 + 4 * DAY, NOW, False),
        (0, T0 - 10 * DAY, NOW, True),  # the past is never refused (lateness is the parser's)
        (0, T0 + 2 * DAY + HOUR, NOW, True),  # progress did not go back
    ],
    "the wall clock is the reference before a partition's first record, and caps it": [
        (0, NOW + 2 * DAY, NOW, False),
        (0, NOW + DAY, NOW, True),  # live traffic: up to a day past the wall clock
        (0, NOW + DAY + 1, NOW, False),  # never more, whatever the progress
        (1, T0 + 5 * DAY, NOW, True),  # each partition's first record: the wall clock
    ],
    "a quiet partition catches up with its siblings": [
        (0, T0, NOW, True),
        (1, T0, NOW, True),
        (1, T0 + DAY, NOW, True),
        (1, T0 + 2 * DAY, NOW, True),
        (0, T0 + 2 * DAY + HOUR, NOW, True),  # two days after its last record: a gap
        (0, T0 + 4 * DAY, NOW, False),  # still a jump: a day ahead of every partition
    ],
    "live traffic after a quiet weekend is not ahead": [
        (0, NOW, NOW, True),
        (0, NOW + 3 * DAY, NOW + 3 * DAY, True),  # the progress aged with the wall clock
        (0, NOW + 4 * DAY + 1, NOW + 3 * DAY, False),
    ],
    "a gap in every partition is confirmed by the records after it": [
        (0, T0, NOW, True),
        (1, T0 + HOUR, NOW, True),
        (0, T0 + 3 * DAY, NOW, False),
        (1, T0 + 3 * DAY + HOUR, NOW, False),
        (0, T0 + 3 * DAY + 2 * HOUR, NOW, True),  # the third in a row that agrees
        (1, T0 + 3 * DAY + 3 * HOUR, NOW, True),  # its siblings follow the new lead
    ],
    "lone jumps never confirm one another": [
        (0, T0, NOW, True),
        (0, T0 + 3 * DAY, NOW, False),
        (0, T0 + HOUR, NOW, True),  # an accepted record ends the streak
        (0, T0 + 3 * DAY, NOW, False),
        (0, T0 + 10 * DAY, NOW, False),  # disagrees with the first of the streak: a new one
        (0, T0 + 3 * DAY + HOUR, NOW, False),
        (0, T0 + 2 * HOUR, NOW, True),
    ],
    "a confirmed streak still never passes the wall clock": [
        (0, T0, NOW, True),
        (0, NOW + 2 * DAY, NOW, False),
        (0, NOW + 2 * DAY, NOW, False),
        (0, NOW + 2 * DAY, NOW, False),
    ],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_python_guard_follows_the_scenarios(name):
    guard = EventTimeGuard(DAY)
    got = [guard.admits(part, at, now) for part, at, now, _ in SCENARIOS[name]]
    assert got == [ok for *_, ok in SCENARIOS[name]]


@pytest.mark.parametrize("name", SCENARIOS)
def test_java_guard_follows_the_same_scenarios(jvm, name):
    fn = jvm.io.fraudstream.flink.EventTimeMillis()
    jlong = jvm.java.lang.Long
    verdicts = [fn.verdict(at, jvm.java.lang.Integer(part), jlong(DAY), now)
                for part, at, now, _ in SCENARIOS[name]]
    assert verdicts == [at if ok else -1 for _, at, _, ok in SCENARIOS[name]]


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

