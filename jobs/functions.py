"""Flink adapters of the scoring job: thin shells around `models.hot_path`, one call per batch.

- `ParseBatch`: one micro-batch of raw Kafka records (a list of (payload, partition, offset)
  tuples from the Java `MicroBatcher`) -> `parse_batch` -> ONE output per scorer subtask that
  holds a shard present in the batch: `(route key, pickled [(shard key, [TXN tuple, ...]),
  ...])`; dead letters leave as one list of REJECTED tuples on the `DLQ_TAG` side output. It
  never raises on bad input.
- `ScoreShard`: keyed by shard (`shard_key(shard_of(card_token))`, LONG keys). One call
  carries every shard of one scorer subtask in that micro-batch: for each shard it makes the
  shard the current key (`current_key_setter`), reads each distinct card's state bytes from
  the shard's `MapState` (card token -> bytes) once; then ONE `score_batch` over the whole
  call (features in event order per card, one model call); then it writes every touched card
  back once under its shard and emits one list of SCORED tuples. A per-shard event-time timer
  sweeps out cards idle for the profile lifetime, so state stays bounded.

Decision (issue 9, measured): with one output per shard, a micro-batch of a few events at
1,000-2,500 events/s became one scorer call per event or two, and the per-call costs (one
onnxruntime run, PEMJA crossings, Java conversions) dominated the job's CPU. Routing by
scorer subtask keeps 16 shards (rescalable up to 16 subtasks) with at most one scorer call
per subtask and micro-batch. It switches the current key inside a call: the keyed state and
timer service of Flink's operator follow the backend's current key, which is what Flink itself
does before each record and timer; the route key is restored before the call returns.

State layout (the savepoint contract): operator uid `UID_SCORE` (jobs.scoring_job),
`MapState` named `STATE_NAME` (card token -> `models.features.state_to_bytes`), `ValueState`
`SWEEP_NAME` (the pending sweep time), keyed by LONG `shard_key(shard_of(card,
scoring_shards))` with max parallelism `SCORER_MAX_PARALLELISM`; both numbers are therefore
fixed for the life of a savepoint. Everything here is testable with small fakes
(tests/unit/test_job_functions.py): the functions only use `runtime_context.get_*state`,
`runtime_context.get_keyed_state_backend()`, `ctx.timer_service()` and `yield`.
"""

from __future__ import annotations

import logging
import pickle
import zlib
from collections.abc import Callable
from typing import Any

from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedBroadcastProcessFunction, OutputTag, ProcessFunction
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
from jobs.job_metrics import ParseMetrics, ScoreMetrics
from jobs.key_groups import key_group, shard_keys
from models import features as F
from models.hot_path import RawRecord, RecordParser, parse_batch, score_batch

log = logging.getLogger(__name__)

DLQ_TAG = OutputTag("dead-letters", BATCH_TYPE)
# Broadcast state of the scorer: control-topic key -> the accepted record's value (JSON text),
# replayed into `models.live_control.LiveControl` after a restore. Part of the savepoint
# contract, like STATE_NAME.
CONTROL_STATE = MapStateDescriptor("control-records-v1", Types.STRING(), Types.STRING())
# The scorer's max parallelism, fixed: with `scoring_shards` it decides which key group (and so
# which subtask) holds each shard, and both are part of the savepoint contract.
SCORER_MAX_PARALLELISM = 128
# v2 (2026-12-02): LONG shard keys (v1: INT), one scorer call per subtask and micro-batch.
STATE_NAME = "card-features-by-shard-v2"  # MapState name: part of the savepoint contract
SWEEP_NAME = "idle-card-sweep-v2"
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


def scorer_subtask_of(key: int, parallelism: int) -> int:
    """The scorer subtask that holds Flink key `key` (`KeyGroupRangeAssignment`)."""
    return key_group(key, SCORER_MAX_PARALLELISM) * parallelism // SCORER_MAX_PARALLELISM


def current_key_setter(runtime_context: Any) -> Callable[[int], None]:
    """`set(key)`: make shard key `key` the current key of the scorer's keyed state and timers.

    Thread mode: the Java `KeyedStateBackend` behind PyFlink 2.2's embedded runtime context.
    PyFlink keys a `key_by(..., key_type=LONG)` stream by a one-field `Row` holding a
    `java.lang.Long` (`KeyByKeySelector`), so the key set here is the same Row (PEMJA passes a
    Python int as Long); one Row per shard key, built once and never changed. The unit-test
    fakes offer `set_current_key`. Process mode has no such backend: a clear error.
    """
    if not hasattr(runtime_context, "get_keyed_state_backend"):
        raise RuntimeError(
            "the scorer switches keys inside a call, which only PyFlink's thread mode allows "
            "(execution_mode=thread); process mode gives Python no keyed state backend"
        )
    backend = runtime_context.get_keyed_state_backend()
    java_backend = getattr(backend, "_keyed_state_backend", None)
    if java_backend is not None and hasattr(java_backend, "setCurrentKey"):
        from pemja import findClass

        row_class = findClass("org.apache.flink.types.Row")
        rows: dict[int, Any] = {}
        set_java_key = java_backend.setCurrentKey

        def set_key(key: int) -> None:
            row = rows.get(key)
            if row is None:
                row = rows[key] = row_class.withPositions(1)
                row.setField(0, key)
            set_java_key(row)

        return set_key
    if hasattr(backend, "set_current_key"):
        return backend.set_current_key
    raise RuntimeError(
        "this PyFlink runtime context cannot switch the current key "
        f"({type(backend).__name__}); the scorer needs PyFlink 2.2's keyed state backend"
    )


def subtask_position(runtime_context: Any) -> tuple[int, int]:
    """(index of this subtask, parallelism) of the operator.

    PyFlink 2.2's embedded runtime context still calls the Flink 1.x `getIndexOfThisSubtask`,
    which Flink 2 moved to `getTaskInfo()`; read it there when the wrapper holds the Java
    context, else (process mode, test fakes) through the Python API.
    """
    java_context = getattr(runtime_context, "_runtime_context", None)
    if java_context is not None and hasattr(java_context, "getTaskInfo"):
        info = java_context.getTaskInfo()
        return info.getIndexOfThisSubtask(), info.getNumberOfParallelSubtasks()
    return (runtime_context.get_index_of_this_subtask(),
            runtime_context.get_number_of_parallel_subtasks())


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
        scorer_parallelism: int, code_fingerprint: str = "", job_metrics: bool = True,
    ) -> None:
        self._code = code_fingerprint  # jobs.code_version.check_loaded in open()
        self._metrics = ParseMetrics(job_metrics)  # jobs.job_metrics: registered in open()
        self._topic = source_topic
        self._max_bytes = max_payload_bytes
        self._shards = shards
        self._keys = shard_keys(shards, SCORER_MAX_PARALLELISM)
        # Each shard's scorer subtask, and per subtask the key its batches are routed by (one
        # of its own shard keys).
        self._subtask_of_shard = [scorer_subtask_of(k, scorer_parallelism) for k in self._keys]
        self._route_key: dict[int, int] = {}
        for shard, subtask in enumerate(self._subtask_of_shard):
            self._route_key.setdefault(subtask, self._keys[shard])
        self._parser: RecordParser | None = None

    def open(self, runtime_context: Any) -> None:
        from schemas.card_token import CardTokenizer

        check_loaded(self._code)
        self._parser = RecordParser(self._topic, CardTokenizer.from_env(), self._max_bytes)
        self._metrics.open(runtime_context)

    def process_element(self, value: Any, ctx: Any):
        records = [RawRecord(payload, part, off, source_time == EVENT_TIME_AHEAD)
                   for payload, part, off, source_time in value]
        parsed, dead = parse_batch(records, self._parser)
        self._metrics.batch(len(records), len(parsed), dead)
        if dead:
            yield DLQ_TAG, [dead_letter_to_tuple(d) for d in dead]
        # scorer subtask -> shard key -> TXN tuples of that shard, in batch order
        routed: dict[int, dict[int, list[tuple[Any, ...]]]] = {}
        shards, keys, subtask_of = self._shards, self._keys, self._subtask_of_shard
        for record in parsed:
            shard = shard_of(record.txn.card_token, shards)
            routed.setdefault(subtask_of[shard], {}).setdefault(keys[shard], []).append(
                parsed_to_txn(record)
            )
        for subtask, groups in routed.items():
            # Pickled here once, so the keyed exchange moves one bytes object.
            yield self._route_key[subtask], pickle.dumps(
                list(groups.items()), protocol=pickle.HIGHEST_PROTOCOL
            )


class ScoreShard(KeyedBroadcastProcessFunction):
    """Per-card features in keyed `MapState` + one model call per batch; keyed by shard.

    Input 1: `(route key, pickled [(shard key, [TXN tuple, ...]), ...])`. Output: one list of
    SCORED tuples per input. Input 2 (broadcast): control records `(key, value)` — model
    promotions, shadows and rules — applied between two batches on every subtask
    (`models.live_control`); accepted ones are kept in the `CONTROL_STATE` broadcast state, so
    a restore or rescale keeps them. The default model is loaded once in `open()`.
    """

    def __init__(
        self,
        model_path: str | None = None,
        scorer_loader: Callable[[str | None], Any] | None = None,
        code_fingerprint: str = "",
        job_metrics: bool = True,
    ) -> None:
        self._code = code_fingerprint  # jobs.code_version.check_loaded in open()
        self._model_path = model_path
        self._loader = scorer_loader  # None: models.scoring.Scorer.load (tests inject fakes)
        self._cards: Any = None
        self._sweep: Any = None
        self._control: Any = None  # models.live_control.LiveControl, after the first call
        self._default_scorer: Any = None
        self._set_key: Callable[[int], None] | None = None
        self._subtask = 0
        self._parallelism = 1
        self._metrics = ScoreMetrics(job_metrics)  # jobs.job_metrics: registered in open()

    def open(self, runtime_context: Any) -> None:
        check_loaded(self._code)
        self._set_key = current_key_setter(runtime_context)
        self._subtask, self._parallelism = subtask_position(runtime_context)
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
        self._default_scorer = loader(self._model_path)
        self._metrics.open(runtime_context)

    def _live_control(self, ctx: Any) -> Any:
        """The control configuration, rebuilt from the broadcast state on first use (after
        `open`, the state is only reachable through a context)."""
        if self._control is None:
            from models.live_control import LiveControl

            control = LiveControl(self._default_scorer)
            for key, value in ctx.get_broadcast_state(CONTROL_STATE).items():
                outcome = control.apply(key, value)
                if not outcome.accepted:  # accepted once, refused now: code changed since
                    log.warning("control state no longer applies: %s", outcome.detail)
            self._control = control
        return self._control

    def process_broadcast_element(self, value: Any, ctx: Any):
        """One control record: apply it (and keep it) or refuse it (and count it)."""
        key, record = value[0], value[1]
        outcome = self._live_control(ctx).apply(key, record)
        if outcome.accepted:
            state = ctx.get_broadcast_state(CONTROL_STATE)
            if record is None:
                state.remove(key)
            else:
                state.put(key, record)
            self._metrics.applied.inc()
            log.info("subtask %d: %s", self._subtask, outcome.detail)
        else:
            self._metrics.refused.inc()
            log.warning("subtask %d: %s", self._subtask, outcome.detail)
        yield from ()

    def process_element(self, value: Any, ctx: Any):
        control = self._live_control(ctx)
        route_key, blob = value
        groups = pickle.loads(blob)
        set_key, cards, sweep, sized = self._set_key, self._cards, self._sweep, self._metrics.sized
        batch = []
        states: dict[str, F.CardState] = {}
        shard_cards: list[tuple[int, set[str]]] = []
        for key, txns in groups:
            self._check_owned(key)
            set_key(key)
            records = [txn_to_parsed(t) for t in txns]
            batch += records
            touched = {record.txn.card_token for record in records}
            shard_cards.append((key, touched))
            for card in touched:
                raw = cards.get(card)
                if raw is not None:
                    states[card] = F.state_from_bytes(raw)
        timers = ctx.timer_service()
        scored = score_batch(batch, states, control.champion, timers.current_watermark(),
                             control.rules, control.shadow)
        for key, touched in shard_cards:
            set_key(key)
            cards.put_all(sized({card: F.state_to_bytes(states[card]) for card in touched}))
            if sweep.value() is None:
                due = sweep_time_ms(min(F.next_expiry_ms(states[card]) for card in touched))
                timers.register_event_time_timer(due)
                sweep.update(due)
        set_key(route_key)
        self._metrics.batch(scored)
        yield [scored_to_tuple(event) for event in scored]

    def _check_owned(self, key: int) -> None:
        """A shard of another subtask here means the parser's scorer parallelism is wrong."""
        owner = scorer_subtask_of(key, self._parallelism)
        if owner != self._subtask:
            raise RuntimeError(
                f"shard key {key} belongs to scorer subtask {owner} of {self._parallelism}, "
                f"not to subtask {self._subtask}: the parse-batch operator was built for "
                "another scorer parallelism (jobs.scoring_job sets both from one value)"
            )

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
