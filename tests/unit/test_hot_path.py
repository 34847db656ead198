"""The shared per-event core (`models.hot_path`): batches behave exactly like one event at a
time, lateness follows the watermark, dead letters keep their position and never a PAN."""

from __future__ import annotations

import json

from models import features as F
from models.hot_path import (
    DeadLetter,
    ParsedRecord,
    RawRecord,
    RecordParser,
    parse_batch,
    score_batch,
)
from schemas import wire
from schemas.card_token import CardTokenizer
from tests.factories import ONE_MINUTE, T0, txn
from tests.fakes import FakeScorer

PAN = "4111111111111111"


def _parser(max_bytes: int = 256) -> RecordParser:
    return RecordParser("transactions", CardTokenizer(b"k" * 32), max_bytes)


def test_a_batch_scores_like_one_event_at_a_time():
    stream = [txn(card=c, at=T0 + i * ONE_MINUTE, amount=5.0 + 91 * i % 700)
              for i, c in enumerate("abaabcab")]
    one_by_one: dict = {}
    singles = [score_batch([ParsedRecord(t, 0, i)], one_by_one, FakeScorer(), T0 - 1)[0]
               for i, t in enumerate(stream)]
    batched_states: dict = {}
    batched = score_batch([ParsedRecord(t, 0, i) for i, t in enumerate(stream)],
                          batched_states, FakeScorer(), T0 - 1)
    assert [e.features_json for e in batched] == [e.features_json for e in singles]
    assert [e.score for e in batched] == [e.score for e in singles]
    assert {c: F.state_to_bytes(s) for c, s in batched_states.items()} == {
        c: F.state_to_bytes(s) for c, s in one_by_one.items()
    }
    offline = [v for _, v in F.offline_features(stream)]
    assert [list(json.loads(e.features_json).values()) for e in batched] == offline


def test_events_at_or_before_the_watermark_are_late():
    events = score_batch(
        [ParsedRecord(txn(card="a", at=T0 + d), 0, d) for d in (-1, 0, 1)], {}, FakeScorer(), T0
    )
    assert [e.is_late for e in events] == [True, True, False]


def test_parse_batch_keeps_order_and_positions_and_redacts_dead_letters():
    good = [RawRecord(wire.to_json_bytes(txn(card="ab" * 32)), 2, off) for off in (5, 7)]
    bad = RawRecord(b'{"cc_num": "' + PAN.encode() + b'", \x00\xff' + b"x" * 900, 2, 6)
    parsed, dead = parse_batch([good[0], bad, good[1], RawRecord(None, 2, 8)], _parser())
    assert [(p.partition, p.offset) for p in parsed] == [(2, 5), (2, 7)]
    assert [d.offset for d in dead] == [6, 8]
    letter = dead[0]
    assert isinstance(letter, DeadLetter) and letter.key == "transactions/2/6"
    assert letter.truncated and letter.payload_bytes == len(bad.payload)
    text = letter.to_json() + letter.reason + letter.raw_payload
    assert PAN not in text
    assert json.loads(letter.to_json())["source_offset"] == 6
