"""The input of the pipeline tier: named cards and records, in event-time order, plus the
expectations a reader can check by eye. No Flink runtime here: the shard routing comes from
`jobs.functions` (which only imports pyflink's type classes).

Cards (tokens are fixed 64-hex strings; `pick_cards` chooses them so the shard layout is what
the tests need at the job's parallelism 2):
- VICTIM: 16 daytime grocery purchases over a week, then a burst of 8 online purchases of
  ~$1,000 within 35 minutes at 23:00 (the fraud burst the registry model must alert on).
- NEIGHBOUR: in the SAME shard as VICTIM (so the same keyed MapState) and the same partition
  (so the same micro-batches and scorer calls), small purchases interleaved with the burst:
  its features must count only its own events.
- OTHER: a shard held by the OTHER scorer subtask, also interleaved with the burst.
- PAN: one legacy record with a raw `cc_num` (tokenized by the parser, never kept).
- FILLER_n: 24 cards with 6 daytime purchases each, so records of many shards and cards share
  micro-batches (the job runs with small batches) and there is volume to lose or duplicate.

Bad records (`BAD`, each with the field the parser must name) sit between the valid ones, in
their partitions, including one whose event time is three days ahead of its partition (refused
by the source's future guard and dead-lettered by the parser).

Records are spread over 4 "Kafka partitions" by card (crc32 % 4), offsets counted per
partition, as a producer keyed by card token would.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction
from schemas.transaction import Transaction
from schemas.wire import to_json_bytes, transaction_to_wire
from tests.factories import ONE_DAY, ONE_HOUR, ONE_MINUTE, T0, txn

PARTITIONS = 4
SHARDS = 16  # JobConfig.scoring_shards default
PARALLELISM = 2
NIGHT = T0 + 11 * ONE_HOUR  # 2024-01-01 23:00 UTC
BURST_SIZE = 8
TEST_PAN = "4111111111111111"  # public test card number


@dataclass(frozen=True)
class Record:
    """One source record: the Kafka value and position, and what it should become."""

    payload: bytes
    partition: int
    offset: int
    event_time_ms: int  # ordering key of the input (the bad records' too)
    txn: Transaction | None = None  # valid records: what the parser must produce
    bad_field: str | None = None  # bad records: the field the dead letter must name


def token(name: str) -> str:
    """A stable 64-hex card token for a readable name."""
    return hashlib.sha256(f"pipeline-tier/{name}".encode()).hexdigest()


def scorer_subtask(card: str) -> int:
    """The scorer subtask (of PARALLELISM) that holds `card`'s shard, as the job routes it."""
    from jobs.functions import scorer_subtask_of, shard_key, shard_of

    return scorer_subtask_of(shard_key(shard_of(card, SHARDS), SHARDS), PARALLELISM)


def shard(card: str) -> int:
    from jobs.functions import shard_of

    return shard_of(card, SHARDS)


def pick_cards() -> dict[str, str]:
    """VICTIM, NEIGHBOUR (same shard and partition) and OTHER (other scorer subtask)."""
    victim = token("victim")
    same = (token(f"neighbour-{i}") for i in range(10_000))
    # same shard AND same partition: its records share micro-batches and scorer calls
    neighbour = next(c for c in same if c != victim and shard(c) == shard(victim)
                     and partition(c) == partition(victim))
    others = (token(f"other-{i}") for i in range(10_000))
    other = next(c for c in others if scorer_subtask(c) != scorer_subtask(victim))
    return {"VICTIM": victim, "NEIGHBOUR": neighbour, "OTHER": other}


def partition(card: str) -> int:
    return zlib.crc32(card.encode()) % PARTITIONS


def build(tokenizer: CardTokenizer) -> tuple[dict[str, str], list[Record]]:
    """(card tokens by name, records in event-time order with positions). `tokenizer` must
    hold the key the job's parser reads (`FRAUDSTREAM_CARD_TOKEN_KEY`): the PAN record's
    expected transaction carries its token."""
    cards = pick_cards()
    victim, neighbour, other = cards["VICTIM"], cards["NEIGHBOUR"], cards["OTHER"]
    valid: list[Transaction] = []
    # VICTIM's week: 12:00 and 18:00 every day (no gap of a day or more: the source refuses
    # a time more than a day ahead of its partition's progress).
    for day in range(7, -1, -1):
        for hour, amount in ((0, 24.0 + day), (6, 31.0 + day)):
            valid.append(txn(card=victim, amount=amount, at=T0 - day * ONE_DAY + hour * ONE_HOUR,
                             category="grocery_pos", merchant=f"fraud_Corner Shop {day % 3}"))
    for i in range(BURST_SIZE):
        valid.append(txn(card=victim, amount=900.0 + 37 * i, at=NIGHT + 5 * i * ONE_MINUTE,
                         category=("shopping_net", "misc_net")[i % 2],
                         merchant=f"fraud_Online Store {i}"))
    for i in range(6):  # between the burst's events
        valid.append(txn(card=neighbour, amount=12.0 + i, at=NIGHT + (5 * i + 2) * ONE_MINUTE,
                         category="food_dining", merchant="fraud_Night Diner"))
    for i in range(4):
        valid.append(txn(card=other, amount=40.0 + i, at=NIGHT + (10 * i + 3) * ONE_MINUTE,
                         category="gas_transport", merchant="fraud_Late Gas"))
    for n in range(24):
        card = token(f"filler-{n}")
        for i in range(6):
            valid.append(txn(card=card, amount=5.0 + (n * 7 + i * 13) % 90,
                             at=T0 - ONE_DAY + (n * 6 + i) * 5 * ONE_MINUTE,
                             category=("grocery_pos", "home", "kids_pets")[(n + i) % 3],
                             merchant=f"fraud_Filler {n % 5}"))
    cards["PAN"] = tokenizer.token(TEST_PAN)
    pan = transaction_to_wire(txn(card=cards["PAN"], amount=18.0, at=T0 + ONE_HOUR,
                                  category="misc_pos", merchant="fraud_Legacy Terminal"))
    del pan["card_token"], pan["card_last4"]
    pan["cc_num"] = TEST_PAN  # a legacy producer: the parser tokenizes it at once

    entries: list[tuple[int, int, bytes, Transaction | None, str | None]] = []
    for t in valid:
        entries.append((t.event_time_ms, partition(t.card_token), to_json_bytes(t), t, None))
    pan_payload = _dumps(pan)
    pan_txn = parse_transaction(pan_payload, tokenizer)
    assert pan_txn.card_token == cards["PAN"] and pan_txn.card_last4 == TEST_PAN[-4:]
    entries.append((pan_txn.event_time_ms, partition(cards["PAN"]), pan_payload, pan_txn, None))
    base = transaction_to_wire(txn(card=victim, at=T0 + 2 * ONE_HOUR))
    bad: list[tuple[int, bytes, str]] = [
        (T0 - 3 * ONE_DAY, b"{not json", "payload"),
        (T0 - 2 * ONE_DAY, b"", "payload"),
        (T0 - ONE_DAY + ONE_HOUR, _dumps({k: v for k, v in base.items() if k != "amt"}), "amt"),
        (T0 + 2 * ONE_HOUR, _dumps({**base, "amt": -5.0}), "amt"),
        (T0 + 3 * ONE_HOUR, _dumps({**base, "schema_version": 2}), "schema_version"),
        # a card number in a bad record: redacted in every dead-letter field
        (T0 + 4 * ONE_HOUR, _dumps({**{k: v for k, v in base.items()
                                       if k not in ("card_token", "card_last4", "amt")},
                                    "cc_num": TEST_PAN}), "amt"),
        # three days ahead of its partition: the source's future guard, then the parser
        (NIGHT + ONE_HOUR, _dumps({**base, "event_time": "2024-01-05T00:00:00Z"}), "event_time"),
    ]
    for at, payload, field in bad:
        entries.append((at, partition(victim), payload, None, field))
    entries.sort(key=lambda e: e[0])  # stable: equal times keep their order
    offsets = [0] * PARTITIONS
    records = []
    for at, part, payload, t, field in entries:
        if t is not None:  # the reference is what the parser makes of the payload
            assert parse_transaction(payload, tokenizer) == t
        records.append(Record(payload, part, offsets[part], at, t, field))
        offsets[part] += 1
    return cards, records


def _dumps(obj: object) -> bytes:
    import json

    return json.dumps(obj, separators=(",", ":")).encode()
