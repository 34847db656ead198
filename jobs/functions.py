"""Flink adapters of the scoring job: thin shells around the pure logic in schemas/ and models/.

- `ParseTransactions`: raw Kafka record -> TXN row, or a dead-letter record on the
  `DLQ_TAG` side output (reason, field, redacted + truncated payload, source position).
  It never raises on bad input: one bad record never stops the job.
- `EventTimeOfTxn`: the event-time timestamp assigner for TXN rows.
- `ScoreCard`: the keyed (per card token) function. For each transaction it loads the card's
  state bytes from ONE `ValueState`, calls `models.features.update` (the same pure function
  training uses), stores the bytes back, scores with the model loaded once in `open()`, and
  emits a SCORED row. An event-time timer (`cleanup_timer_ms`) clears the state once
  the card has been idle for the widest window, so state is bounded.

Everything here is testable with small fakes (see tests/unit/test_job_functions.py): the
functions only use `runtime_context.get_state`, `ctx.timer_service()` and `yield`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

from connectors.rows import (
    REJECTED_TYPE,
    TXN_TIME_INDEX,
    rejected_row,
    row_to_transaction,
    scored_row,
    transaction_to_row,
)
from models import features as F
from schemas.alert import Alert, features_to_dict, reasons_to_list
from schemas.alert import alert_to_json as _alert_to_json
from schemas.parse import TransactionParseError, parse_transaction
from schemas.redact import redact_pans, redact_payload

log = logging.getLogger(__name__)

DLQ_TAG = OutputTag("dead-letters", REJECTED_TYPE)
STATE_NAME = "card-features-v1"  # keyed state name: part of the savepoint contract
# Decision, measured: the clean-up timer fires at the END of the hour in which the card's state
# expires, not at the exact expiry. A card with several events in an hour then keeps the one
# timer it has; re-registering on every event (delete + register, two calls into Java) cost
# 3-5 % of the job's Python time. A state lives at most one hour longer than the widest window.
TIMER_GRANULARITY_MS = 3_600_000


def cleanup_timer_ms(expiry_ms: int | None) -> int | None:
    """The event time of the clean-up timer for a state expiring at `expiry_ms`."""
    if expiry_ms is None:
        return None
    return -(-expiry_ms // TIMER_GRANULARITY_MS) * TIMER_GRANULARITY_MS


def _as_payload(payload: Any) -> str | bytes:
    """The RAW payload as the parser takes it: text as is, bytes-like as bytes."""
    return payload if isinstance(payload, str | bytes) else bytes(payload)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


class ParseTransactions(ProcessFunction):
    """Parse + validate raw records; valid -> TXN row, invalid -> `DLQ_TAG` side output.

    Input: RAW row (payload text or bytes, partition, offset). The tokenizer key is given at
    construction (from `JobConfig.card_token_key`); when empty, `CardTokenizer.from_env()` is
    used in `open()` (the worker's environment).
    """

    def __init__(self, source_topic: str, card_token_key: str, max_payload_bytes: int) -> None:
        self._topic = source_topic
        self._key = card_token_key
        self._max_bytes = max_payload_bytes
        self._tokenizer: Any = None

    def open(self, runtime_context: Any) -> None:
        from schemas.card_token import CardTokenizer

        if self._key:
            self._tokenizer = CardTokenizer(self._key.encode("utf-8"))
        else:
            self._tokenizer = CardTokenizer.from_env()

    def process_element(self, value: Any, ctx: Any):
        payload, partition, offset = value[0], value[1], value[2]
        try:
            if payload is None:
                raise TransactionParseError("<payload>", "empty record (null value)")
            txn = parse_transaction(_as_payload(payload), self._tokenizer)
        except TransactionParseError as exc:
            yield DLQ_TAG, self.dead_letter(payload, partition, offset, exc)
            return
        except Exception as exc:  # a parser bug must not stop the job: dead-letter it, loudly
            log.warning("parser raised %s at %s/%s", type(exc).__name__, partition, offset)
            yield DLQ_TAG, self.dead_letter(payload, partition, offset, exc)
            return
        yield transaction_to_row(txn, partition, offset)

    def dead_letter(self, payload: Any, partition: int, offset: int, exc: Exception) -> Row:
        """The REJECTED row for `payload`; the payload is redacted and truncated first."""
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        field = getattr(exc, "field", None)
        # The reason text can echo input (e.g. a JSON decode message): redact it too.
        reason = redact_pans(str(reason))[:1000]
        safe, size = redact_payload(
            None if payload is None else _as_payload(payload), self._max_bytes
        )
        message = {
            "source_topic": self._topic,
            "source_partition": partition,
            "source_offset": offset,
            "reason": reason,
            "field": field,
            "payload_bytes": size,
            "truncated": size > self._max_bytes,
            "raw_payload": safe,
        }
        return rejected_row(
            source_topic=self._topic,
            partition=partition,
            offset=offset,
            reason=reason,
            field=field,
            raw_payload=safe,
            payload_bytes=size,
            dlq_json=_json(message),
        )


class EventTimeOfTxn(TimestampAssigner):
    """Event time of a TXN row: its `event_time_ms`."""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[TXN_TIME_INDEX]


class ScoreCard(KeyedProcessFunction):
    """Per-card features in keyed state + model score; keyed by card token.

    State: ONE `ValueState` of bytes named `STATE_NAME` holding `state_to_bytes(CardState)`.
    Timers: exactly one pending event-time timer per card, at
    `cleanup_timer_ms(next_expiry_ms(state))` (the expiry rounded up to the hour); it is moved
    (delete + register) only when an update moves it to another hour, and deletes itself by
    firing.
    `on_timer` calls `expire`: when the card has been idle for the widest window the state is
    cleared, otherwise the pruned state is stored and the next timer registered.
    The model is loaded once per operator instance in `open()`.
    """

    def __init__(
        self,
        model_path: str | None = None,
        scorer_loader: Callable[[str | None], Any] | None = None,
    ) -> None:
        self._model_path = model_path
        self._loader = scorer_loader  # None: models.scoring.Scorer.load (tests inject fakes)
        self._state: Any = None
        self._scorer: Any = None

    def open(self, runtime_context: Any) -> None:
        if self._loader is None:
            from models.scoring import Scorer

            loader: Callable[[str | None], Any] = Scorer.load
        else:
            loader = self._loader
        # Decision: PICKLED_BYTE_ARRAY holds a plain `bytes` (our versioned layout; pickle of
        # bytes names no class). PRIMITIVE_ARRAY(BYTE) fails on a null value in thread mode
        # (PyFlink 2.2 embedded converter) and converts element by element.
        descriptor = ValueStateDescriptor(STATE_NAME, Types.PICKLED_BYTE_ARRAY())
        self._state = runtime_context.get_state(descriptor)
        self._scorer = loader(self._model_path)
        self._names = tuple(self._scorer.feature_names)
        self._version = str(self._scorer.model_version)
        self._threshold = float(self._scorer.threshold)

    def process_element(self, value: Any, ctx: Any):
        txn, partition, offset = row_to_transaction(value)
        raw = self._state.value()
        state = F.state_from_bytes(bytes(raw)) if raw is not None else F.new_state()
        old_timer = cleanup_timer_ms(F.next_expiry_ms(state))
        vector = F.update(state, txn)
        self._state.update(F.state_to_bytes(state))
        new_timer = cleanup_timer_ms(F.next_expiry_ms(state))
        timers = ctx.timer_service()
        if new_timer != old_timer:
            if old_timer is not None:
                timers.delete_event_time_timer(old_timer)
            if new_timer is not None:
                timers.register_event_time_timer(new_timer)
        is_late = txn.event_time_ms <= timers.current_watermark()
        decision = self._scorer.decide_one(vector)
        yield self.to_scored(txn, vector, decision, is_late, partition, offset)

    def on_timer(self, timestamp: int, ctx: Any):
        raw = self._state.value()
        if raw is None:
            return
        state = F.state_from_bytes(bytes(raw))
        if F.expire(state, timestamp):
            self._state.clear()
            return
        self._state.update(F.state_to_bytes(state))
        nxt = cleanup_timer_ms(F.next_expiry_ms(state))
        if nxt is not None:
            ctx.timer_service().register_event_time_timer(max(nxt, timestamp + 1))
        yield from ()

    def to_scored(
        self, txn: Any, vector: list[float], decision: Any, is_late: bool,
        partition: int | None, offset: int | None,
    ) -> Row:
        """Build the SCORED row (and the alert message when the decision is an alert)."""
        features = features_to_dict(self._names, vector)
        reasons = reasons_to_list(decision.reasons)
        alert_json = None
        if decision.is_alert:
            alert_json = _alert_to_json(
                Alert.for_transaction(
                    txn,
                    score=decision.score,
                    threshold=self._threshold,
                    model_version=self._version,
                    reasons=tuple(decision.reasons),
                    features=features,
                    is_late=is_late,
                    source_partition=partition,
                    source_offset=offset,
                )
            )
        return scored_row(
            txn,
            score=float(decision.score),
            threshold=self._threshold,
            is_alert=bool(decision.is_alert),
            reasons_json=_json(reasons),
            features_json=_json(features),
            model_version=self._version,
            is_late=is_late,
            partition=partition,
            offset=offset,
            alert_json=alert_json,
        )
