"""Flink adapters of the scoring job: thin shells around `models.hot_path`, one call per batch.

- `ParseBatch`: one micro-batch of raw Kafka records (a list of (payload, partition, offset)
  tuples from the Java `MicroBatcher`) -> `parse_batch` -> one output per scoring shard
  present, `(shard, pickled list of TXN tuples)`; dead letters leave as one list of REJECTED
  tuples on the `DLQ_TAG` side output. It never raises on bad input.
- `ScoreShard`: keyed by shard (`shard_key(shard_of(card_token))`). Per batch it reads each
  distinct card's state bytes from ONE `MapState` (card token -> bytes) once, calls
  `score_batch` (features in event order, one model call), writes every touched card back
  once, and emits one list of SCORED tuples. A per-shard event-time timer sweeps out cards
  idle for the profile lifetime, so state stays bounded.

State layout (the savepoint contract): operator uid `score-shard`, `MapState` named
`STATE_NAME` (card token -> `models.features.state_to_bytes`), `ValueState` `SWEEP_NAME` (the
pending sweep time), keyed by `shard_key(shard_of(card, scoring_shards))` with max parallelism
`SCORER_MAX_PARALLELISM`; both numbers are therefore fixed for the life of a savepoint.
Everything here is testable with small fakes (tests/unit/test_job_functions.py): the
functions only use `runtime_context.get_*state`, `ctx.timer_service()` and `yield`.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from typing import Any

from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from connectors.kafka import EVENT_TIME_AHEAD
from connectors.rows import (
    BATCH_TYPE,
    dead_letter_to_tuple,
    parsed_to_txn,
    scored_to_tuple,
    txn_to_parsed,
)
from jobs.code_version import check_loaded
from jobs.key_groups import shard_keys
from models import features as F
from models.hot_path import RawRecord, RecordParser, parse_batch, score_batch

DLQ_TAG = OutputTag("dead-letters", BATCH_TYPE)
# The scorer's max parallelism, fixed: with `scoring_shards` it decides which key group (and so
# which subtask) holds each shard, and both are part of the savepoint contract.
SCORER_MAX_PARALLELISM = 128
STATE_NAME = "card-features-by-shard-v1"  # MapState name: part of the savepoint contract
SWEEP_NAME = "idle-card-sweep-v1"
# Decision: idle cards are swept per shard, not by one timer per card. A sweep reads every card
# of the shard, so it runs only when the least recently active card can have expired (its last
# event + the profile lifetime), rounded up to the day: at most one sweep per shard per day of
# event time, and a card outlives its profile by at most a day (features never depend on it:
# `features.update` resets an idle card itself).
SWEEP_GRANULARITY_MS = F.ONE_DAY_MS


def shard_of(card_token: str, shards: int) -> int:
    """The scoring shard of a card: stable across processes and restarts (CRC-32, not hash())."""
    return zlib.crc32(card_token.encode("utf-8")) % shards


def shard_key(shard: int, shards: int) -> int:
    """The Flink key of a shard: spreads the shards evenly over the scorer's key groups."""
    return shard_keys(shards, SCORER_MAX_PARALLELISM)[shard]


def sweep_time_ms(expiry_ms: int) -> int:
    """The sweep time for a card state expiring at `expiry_ms` (rounded up to the day)."""
    return -(-expiry_ms // SWEEP_GRANULARITY_MS) * SWEEP_GRANULARITY_MS


class ParseBatch(ProcessFunction):
    """Raw batch -> per-shard TXN batches + one dead-letter batch (see module docstring).

    The tokenizer key is read in `open()`, on the worker, from `FRAUDSTREAM_CARD_TOKEN_KEY`
    (`CardTokenizer.from_env()`: `MissingCardTokenKeyError` naming the variable when it is
    missing or short). It is never a constructor argument, so it is never pickled into the
    job graph.
    """

    def __init__(
        self, source_topic: str, max_payload_bytes: int, shards: int,
        code_fingerprint: str = "",
    ) -> None:
        self._code = code_fingerprint  # jobs.code_version.check_loaded in open()
        self._topic = source_topic
        self._max_bytes = max_payload_bytes
        self._shards = shards
        self._keys = shard_keys(shards, SCORER_MAX_PARALLELISM)
        self._parser: RecordParser | None = None

    def open(self, runtime_context: Any) -> None:
        from schemas.card_token import CardTokenizer

        check_loaded(self._code)
        self._parser = RecordParser(self._topic, CardTokenizer.from_env(), self._max_bytes)

    def process_element(self, value: Any, ctx: Any):
        records = [RawRecord(payload, part, off, source_time == EVENT_TIME_AHEAD)
                   for payload, part, off, source_time in value]
        parsed, dead = parse_batch(records, self._parser)
        if dead:
            yield DLQ_TAG, [dead_letter_to_tuple(d) for d in dead]
        by_shard: dict[int, list[tuple[Any, ...]]] = {}
        shards = self._shards
        for record in parsed:
            shard = shard_of(record.txn.card_token, shards)
            by_shard.setdefault(shard, []).append(parsed_to_txn(record))
        keys = self._keys
        for shard, txns in by_shard.items():
            # The list is pickled here once, so the keyed exchange moves one bytes object.
            yield keys[shard], pickle.dumps(txns, protocol=pickle.HIGHEST_PROTOCOL)


class ScoreShard(KeyedProcessFunction):
    """Per-card features in keyed `MapState` + one model call per batch; keyed by shard.

    Input: `(shard, pickled list of TXN tuples)`. Output: one list of SCORED tuples per input.
    The model is loaded once per operator instance in `open()`.
    """

    def __init__(
        self,
        model_path: str | None = None,
        scorer_loader: Callable[[str | None], Any] | None = None,
        code_fingerprint: str = "",
    ) -> None:
        self._code = code_fingerprint  # jobs.code_version.check_loaded in open()
        self._model_path = model_path
        self._loader = scorer_loader  # None: models.scoring.Scorer.load (tests inject fakes)
        self._cards: Any = None
        self._sweep: Any = None
        self._scorer: Any = None

    def open(self, runtime_context: Any) -> None:
        check_loaded(self._code)
        if self._loader is None:
            from models.scoring import Scorer

            loader: Callable[[str | None], Any] = Scorer.load
        else:
            loader = self._loader
        # Decision: PICKLED_BYTE_ARRAY holds a plain `bytes` (our versioned layout; pickle of
        # bytes names no class). PRIMITIVE_ARRAY(BYTE) converts element by element in thread
        # mode (PyFlink 2.2 embedded converter).
        self._cards = runtime_context.get_map_state(
            MapStateDescriptor(STATE_NAME, Types.STRING(), Types.PICKLED_BYTE_ARRAY())
        )
        self._sweep = runtime_context.get_state(ValueStateDescriptor(SWEEP_NAME, Types.LONG()))
        self._scorer = loader(self._model_path)
        self._threshold = float(self._scorer.threshold)
        self._version = str(self._scorer.model_version)

    def process_element(self, value: Any, ctx: Any):
        batch = [txn_to_parsed(t) for t in pickle.loads(value[1])]
        states: dict[str, F.CardState] = {}
        cards = self._cards
        for card in {record.txn.card_token for record in batch}:
            raw = cards.get(card)
            if raw is not None:
                states[card] = F.state_from_bytes(raw)
        timers = ctx.timer_service()
        scored = score_batch(batch, states, self._scorer, timers.current_watermark())
        cards.put_all({card: F.state_to_bytes(state) for card, state in states.items()})
        if self._sweep.value() is None:
            due = sweep_time_ms(min(F.next_expiry_ms(s) for s in states.values()))
            timers.register_event_time_timer(due)
            self._sweep.update(due)
        threshold, version = self._threshold, self._version
        yield [scored_to_tuple(event, threshold, version) for event in scored]

    def on_timer(self, timestamp: int, ctx: Any):
        """Sweep: drop the cards idle for the profile lifetime; schedule the next sweep."""
        idle, next_expiry = [], None
        for card, raw in self._cards.items():
            expiry = F.next_expiry_ms(F.state_from_bytes(raw))
            if expiry is None or expiry <= timestamp:
                idle.append(card)
            elif next_expiry is None or expiry < next_expiry:
                next_expiry = expiry
        for card in idle:
            self._cards.remove(card)
        if next_expiry is None:
            self._sweep.clear()
        else:
            due = max(sweep_time_ms(next_expiry), timestamp + 1)
            ctx.timer_service().register_event_time_timer(due)
            self._sweep.update(due)
        yield from ()
