"""Test streams for the scoring-job end-to-end tests: generated traffic with planted fraud,
records carrying raw card numbers, and a catalogue of malformed records.

Everything is deterministic (fixed generator seed); a per-run prefix on transaction ids keeps
runs apart in the shared Postgres tables.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from models.data.generator import GeneratorConfig, generate
from schemas.card_token import CardTokenizer
from schemas.parse import TransactionParseError, parse_transaction
from schemas.transaction import Transaction
from schemas.wire import transaction_to_wire

# Luhn-valid test card numbers (public test PANs): they must never appear after ingest.
TEST_PANS = ("4111111111111111", "5500005555555559", "340000000000009", "6011000990139424")

# ~100 cards x 20 days ~ 5.5k rows, nearly every card with one planted fraud episode.
GENERATOR = GeneratorConfig(cards=100, start=date(2020, 3, 1), days=22, seed=7)


@dataclass(frozen=True)
class Record:
    """One Kafka record to produce: key (None = round robin) and value (None = tombstone)."""

    key: bytes | None
    value: bytes | None
    txn: Transaction | None = None  # the parsed transaction for valid records


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def valid_records(
    tokenizer: CardTokenizer, run: str, count: int, raw_pan_every: int = 250
) -> list[Record]:
    """`count` generated transactions in event-time order; every `raw_pan_every`-th is sent
    with a raw `cc_num` (one of TEST_PANS) instead of the token, as a legacy producer would.
    `Record.txn` is what the parser must produce (asserted here, so the reference is exact).

    Each run is moved by a whole number of weeks (derived from `run`; weekday and hour kept;
    never into the future) so its aggregate windows do not collide with another run's in the
    shared table.
    """
    # Shifts stay in the past (the job dead-letters times more than a day past the wall clock):
    # from 1 week to as many whole weeks as fit between the generated days and last week.
    last_day = GENERATOR.start + timedelta(days=GENERATOR.days)
    weeks = max(2, (date.today() - last_day).days // 7 - 1)
    shift_ms = random.Random(run).randrange(1, weeks) * 7 * 86_400_000
    out: list[Record] = []
    for i, txn in enumerate(_take(generate(GENERATOR, tokenizer), count)):
        txn = dataclasses.replace(
            txn,
            transaction_id=f"{run}-{txn.transaction_id}",
            event_time_ms=txn.event_time_ms + shift_ms,
        )
        wire = transaction_to_wire(txn)
        if raw_pan_every and i % raw_pan_every == 0:
            del wire["card_token"], wire["card_last4"]
            wire["cc_num"] = TEST_PANS[(i // raw_pan_every) % len(TEST_PANS)]
        payload = _dumps(wire)
        parsed = parse_transaction(payload, tokenizer)
        out.append(Record(parsed.card_token.encode(), payload, parsed))
    return out


def _take(it: Iterator[Transaction], n: int) -> Iterator[Transaction]:
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item


def malformed_records(tokenizer: CardTokenizer, run: str, base: Transaction) -> list[Record]:
    """Exactly 50 records the parser must reject (checked here), of every kind the issue
    names: bad JSON, missing fields, wrong types, negative/NaN amounts, unknown schema
    version, a 2 MB payload; several carry a raw card number."""
    wire = transaction_to_wire(base)
    wire["transaction_id"] = f"{run}-bad"

    def variant(**changes: object) -> bytes:
        doc = dict(wire)
        for k, v in changes.items():
            if v is _DROP:
                doc.pop(k, None)
            else:
                doc[k] = v
        return _dumps(doc)

    values: list[bytes | None] = [
        b"{not json",
        b"not json at all",
        b"[1, 2, 3]",
        b'"just a string"',
        _dumps(wire)[:-5],  # truncated
        b"\xff\xfe\xfa invalid utf-8",
        b"",
        None,  # tombstone
        b'{"transaction_id": "a", "transaction_id": "b"}',
        b"x" * 2_000_000,  # 2 MB: over the parser's bound and the broker's default 1 MB
        _dumps({**wire, "pad": "y" * 2_000_000}),
    ]
    for name in ("schema_version", "transaction_id", "event_time", "amt", "merchant",
                 "category", "merch_lat", "merch_long", "lat", "long", "city_pop"):
        values.append(variant(**{name: _DROP}))
    values += [
        variant(card_token=_DROP, card_last4=_DROP),  # no card at all
        variant(amt="12.50"),
        variant(amt=None),
        variant(city_pop="many"),
        variant(merch_lat="north"),
        variant(event_time=1_583_020_800),
        variant(transaction_id=12345),
        variant(schema_version="1"),
        variant(amt=-5.0),
        variant(amt=0),
        variant(amt=10_000_000),
        variant(schema_version=2),
        variant(schema_version=99),
        variant(event_time="2020-13-45T99:00:00Z"),
        variant(event_time="1970-01-01T00:00:00Z"),
        variant(category="crypto"),
        variant(merch_lat=123.0),
        variant(card_token="XYZ"),
        variant(card_last4="12a4"),
        variant(is_fraud=2),
        # raw card numbers in bad records: must be redacted in the DLQ and the table
        variant(card_token=_DROP, card_last4=_DROP, cc_num=TEST_PANS[0], amt=_DROP),
        variant(card_token=_DROP, card_last4=_DROP, cc_num=TEST_PANS[1], amt="NaN"),
        variant(card_token=_DROP, card_last4=_DROP, cc_num="4111-1111-1111-1111"),
        variant(card_token=_DROP, card_last4=_DROP, cc_num=TEST_PANS[2], schema_version=2),
        variant(merchant=f"shop {TEST_PANS[3]}", amt=-1),
    ]
    raw_nan = _dumps(wire).replace(
        f'"amt":{json.dumps(wire["amt"])}'.encode(), b'"amt":NaN'
    )
    raw_inf = _dumps(wire).replace(
        f'"amt":{json.dumps(wire["amt"])}'.encode(), b'"amt":Infinity'
    )
    values += [raw_nan, raw_inf]
    values.append(variant(merchant="\x00control"))
    assert len(values) == 50, len(values)
    for v in values:
        if v is None:
            continue
        try:
            parse_transaction(v, tokenizer)
        except TransactionParseError:
            continue
        raise AssertionError(f"expected a parse error for {v[:120]!r}")
    return [Record(None, v) for v in values]


class _Drop:
    pass


_DROP = _Drop()
