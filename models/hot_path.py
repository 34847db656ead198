"""The per-event work of every engine, done a batch at a time: parse, features, score, outputs.

One pure-Python core (no pyflink import) shared by the Flink job and the benchmark's peer,
so both parse, key, score, flag lateness and shape dead letters and alerts the same way:

    parsed, dead = parse_batch(records, parser)           # raw Kafka records in
    states = {card: CardState}                            # the engine loads them its own way
    scored = score_batch(parsed, states, scorer, watermark_ms)
    # states now holds every touched card's new state: the engine stores it back

Contracts
---------
- `parse_batch` never raises on bad input: every record is either a `ParsedRecord` or a
  `DeadLetter` (reason, field, redacted and truncated preview, the raw bytes under the
  card-number rule of `schemas.dead_letter`, source position, the DLQ key
  `topic/partition/offset` and message). Output order follows input order. Every text of a
  dead letter is sink-safe (`schemas.dead_letter.printable`: no NUL, no other control
  character but TAB/LF/CR, no lone surrogate), whatever the input bytes were.
- `score_batch` updates the card states in input order (so two events of one card in one
  batch see each other, exactly as one at a time), scores all events with ONE model call, and
  returns one `ScoredEvent` per input, in input order. `watermark_ms` is the event-time
  progress the engine has seen before this batch: an event at or before it is late (scored
  anyway, flagged `is_late`).
- Nothing here reads the clock.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from models import features as F
from schemas.alert import (
    Alert,
    AlertReason,
    alert_to_json,
    compact_json,
    features_to_dict,
    features_to_json,
    reasons_to_list,
)
from schemas.dead_letter import preview, printable, raw_bytes
from schemas.parse import TransactionParseError, parse_transaction
from schemas.redact import redact_pans
from schemas.transaction import Transaction

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 1000
MAX_FIELD_CHARS = 100
# The DLQ message carries the raw bytes (base64) only up to this size: base64 of 512 KiB plus
# the preview stays under Kafka's default 1 MB message limit, so a dead letter can never be
# too large for the DLQ producer. Bigger raw payloads are in `rejected_events.raw_bytes` only.
DLQ_RAW_MAX_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record as read: value bytes (None for a tombstone) and its position.

    `event_time_ahead`: the source's future-guard verdict (True: its event_time is too far
    ahead of the partition's progress, dead-letter it), or None when no guard ran upstream
    (then `RecordParser`'s own `EventTimeGuard`, if any, decides).
    """

    payload: bytes | str | None
    partition: int
    offset: int
    event_time_ahead: bool | None = None


class EventTimeGuard:
    """Refuses event times too far ahead of their partition's progress (never raises).

    The rule of the Flink source's `EventTimeMillis.verdict` (Java, whose class doc explains
    it), for engines without it. It tells a jump (one record far ahead: refused) from a gap (a
    quiet partition going on: accepted). A partition's progress is the largest time accepted
    there, aged by the wall-clock time since it moved, and never behind the lead (the largest
    time accepted on any partition); `now_ms` caps it and stands in before a partition's first
    record: ceiling = min(now, progress) + max_ahead_ms. `CONFIRMATIONS` refused times in a
    row within max_ahead_ms of the first of them mean the traffic itself moved: the last one
    is accepted. Nothing is ever accepted more than max_ahead_ms past the wall clock.
    """

    CONFIRMATIONS = 3

    def __init__(self, max_ahead_ms: int) -> None:
        self.max_ahead_ms = max_ahead_ms
        self._progress: dict[int, tuple[int, int]] = {}  # partition -> (time, wall clock then)
        self._lead = -(2**63)  # the largest time accepted on any partition (Java: MIN_VALUE)
        self._streak_start = 0
        self._streak_length = 0

    def admits(self, partition: int, event_time_ms: int, now_ms: int) -> bool:
        """True when `event_time_ms` is within the bound (the progress then moves to it)."""
        seen = self._progress.get(partition)
        reference = now_ms
        if seen is not None:
            aged = seen[0] + max(0, now_ms - seen[1])
            reference = min(now_ms, max(aged, self._lead))
        if event_time_ms > now_ms + self.max_ahead_ms or (
                event_time_ms > reference + self.max_ahead_ms
                and not self._confirms_streak(event_time_ms)):
            return False
        self._streak_length = 0
        if seen is None or event_time_ms > seen[0]:
            self._progress[partition] = (event_time_ms, now_ms)
        self._lead = max(self._lead, event_time_ms)
        return True

    def _confirms_streak(self, event_time_ms: int) -> bool:
        """Counts a refused time into the streak; True when it completes the confirmation."""
        if self._streak_length and abs(event_time_ms - self._streak_start) <= self.max_ahead_ms:
            self._streak_length += 1
        else:
            self._streak_start, self._streak_length = event_time_ms, 1
        return self._streak_length >= self.CONFIRMATIONS


FUTURE_REASON = "event_time in the future (too far ahead of its partition's progress)"


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """A valid transaction (card number already tokenized) and its source position."""

    txn: Transaction
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the parser refused, ready for the DLQ topic and the rejected_events table.

    `raw_payload` is the redacted, truncated, printable preview; `payload_bytes` the original
    size; `raw_bytes` the record value (None for a tombstone) and `raw_exact` whether it is
    byte for byte what Kafka holds (False: PAN-like runs redacted and/or cut at
    `schemas.dead_letter.RAW_MAX_BYTES`).
    """

    source_topic: str
    partition: int
    offset: int
    reason: str
    field: str | None
    raw_payload: str
    payload_bytes: int
    truncated: bool
    raw_bytes: bytes | None = None
    raw_exact: bool = True

    @property
    def key(self) -> str:
        """The DLQ message key, stable on replay: `topic/partition/offset`."""
        return f"{self.source_topic}/{self.partition}/{self.offset}"

    def to_json(self) -> str:
        """The DLQ message (JSON text, ASCII only).

        `raw_base64` is the base64 of `raw_bytes` when it is at most `DLQ_RAW_MAX_BYTES`
        long, else null (the table keeps it); `raw_exact` as in the table.
        """
        raw = self.raw_bytes
        encoded = None
        if raw is not None and len(raw) <= DLQ_RAW_MAX_BYTES:
            encoded = base64.b64encode(raw).decode("ascii")
        return compact_json({
            "source_topic": self.source_topic,
            "source_partition": self.partition,
            "source_offset": self.offset,
            "reason": self.reason,
            "field": self.field,
            "payload_bytes": self.payload_bytes,
            "truncated": self.truncated,
            "raw_payload": self.raw_payload,
            "raw_exact": self.raw_exact,
            "raw_base64": encoded,
        })


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """A challenger's verdict on an event (never alerted on: it goes to Postgres only)."""

    model_version: str
    score: float
    is_alert: bool


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """One scored transaction with everything the sinks need, JSON already rendered.

    `is_alert` is the final decision (model, then analyst rules); `model_version` and
    `threshold` those of the champion that scored it; `shadow` the challenger's verdict when
    one is shadowing."""

    txn: Transaction
    partition: int | None
    offset: int | None
    score: float
    is_alert: bool
    is_late: bool
    reasons_json: str
    features_json: str
    alert_json: str | None  # the alert.v2 message; None when the event is no alert
    model_version: str = ""
    threshold: float = 0.0
    shadow: ShadowScore | None = None


class RecordParser:
    """Parses raw records for one source topic; see `parse_batch`."""

    def __init__(
        self, source_topic: str, tokenizer: Any, max_payload_bytes: int,
        guard: EventTimeGuard | None = None, clock_ms: Any = None,
    ) -> None:
        """`guard` (with `clock_ms`, a no-argument callable giving epoch ms) judges records
        whose `event_time_ahead` is None; the Flink job passes the source's verdict instead."""
        self.source_topic = source_topic
        self._tokenizer = tokenizer
        self._max_bytes = max_payload_bytes
        self._guard = guard
        self._clock_ms = clock_ms

    def parse(self, record: RawRecord) -> ParsedRecord | DeadLetter:
        """One record -> a `ParsedRecord`, or a `DeadLetter` (never raises on bad input)."""
        payload = record.payload
        try:
            if payload is None:
                raise TransactionParseError("<payload>", "empty record (null value)")
            txn = parse_transaction(payload, self._tokenizer)
        except TransactionParseError as exc:
            return self.dead_letter(record, exc)
        except Exception as exc:  # a parser bug must not stop the job: dead-letter it, loudly
            log.warning(
                "parser raised %s at %s/%s", type(exc).__name__, record.partition, record.offset
            )
            return self.dead_letter(record, exc)
        ahead = record.event_time_ahead
        if ahead is None and self._guard is not None:
            ahead = not self._guard.admits(record.partition, txn.event_time_ms, self._clock_ms())
        if ahead:
            return self.dead_letter(record, TransactionParseError("event_time", FUTURE_REASON))
        return ParsedRecord(txn, record.partition, record.offset)

    def dead_letter(self, record: RawRecord, exc: Exception) -> DeadLetter:
        """The dead letter of `record`; reason, field and preview are redacted and printable."""
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        # The reason text can echo input (e.g. a JSON decode message): redact it too.
        reason = printable(redact_pans(str(reason)))[:MAX_REASON_CHARS] or "refused"
        field = getattr(exc, "field", None)
        if field is not None:
            field = printable(redact_pans(str(field)))[:MAX_FIELD_CHARS]
        text, size = preview(record.payload, self._max_bytes)
        raw, exact = raw_bytes(record.payload)
        return DeadLetter(
            source_topic=self.source_topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            field=field,
            raw_payload=text,
            payload_bytes=size,
            truncated=size > self._max_bytes,
            raw_bytes=raw,
            raw_exact=exact,
        )


def parse_batch(
    records: Iterable[RawRecord], parser: RecordParser
) -> tuple[list[ParsedRecord], list[DeadLetter]]:
    """Split a batch into valid transactions and dead letters (each in input order)."""
    parsed: list[ParsedRecord] = []
    dead: list[DeadLetter] = []
    for record in records:
        result = parser.parse(record)
        (parsed if type(result) is ParsedRecord else dead).append(result)
    return parsed, dead


def score_batch(
    batch: Sequence[ParsedRecord],
    states: MutableMapping[str, F.CardState],
    scorer: Any,
    watermark_ms: int,
    rules: Any = None,
    shadow: Any = None,
) -> list[ScoredEvent]:
    """Update card states, score every event with one model call, render the outputs.

    `states` maps card token -> state; a card missing from it starts from `F.new_state()`
    and is added. `scorer` is a `models.scoring.Scorer` (or anything with `decide_batch`,
    `feature_names`, `model_version` and `threshold`). `rules` (a `models.rules.RuleSet`)
    adjusts each decision after the model and adds its `RULE:<name>` reasons first; `shadow`
    (another Scorer) scores the same feature rows with one more model call, for Postgres only.
    """
    if not batch:
        return []
    vectors = []
    for record in batch:
        card = record.txn.card_token
        state = states.get(card)
        if state is None:
            state = states[card] = F.new_state()
        vectors.append(F.update(state, record.txn))
    decisions = scorer.decide_batch(vectors)
    verdicts = None
    if rules is not None and rules.active:
        verdicts = rules.apply_events([r.txn for r in batch], vectors, decisions)
    shadows = _shadow_scores(shadow, vectors) if shadow is not None else None
    names = scorer.feature_names
    version = str(scorer.model_version)
    threshold = float(scorer.threshold)
    out = []
    for i, (record, vector, decision) in enumerate(zip(batch, vectors, decisions, strict=True)):
        txn = record.txn
        is_late = txn.event_time_ms <= watermark_ms
        is_alert, reasons = bool(decision.is_alert), tuple(decision.reasons)
        if verdicts is not None and verdicts[i].reasons:
            verdict = verdicts[i]
            is_alert = verdict.is_alert
            reasons = (*(_rule_reason(code) for code in verdict.reasons), *reasons)
        alert_json = None
        if is_alert:
            alert_json = alert_to_json(
                Alert.for_transaction(
                    txn,
                    score=decision.score,
                    threshold=threshold,
                    model_version=version,
                    reasons=reasons,
                    features=features_to_dict(names, vector),
                    is_late=is_late,
                    source_partition=record.partition,
                    source_offset=record.offset,
                )
            )
        out.append(
            ScoredEvent(
                txn=txn,
                partition=record.partition,
                offset=record.offset,
                score=float(decision.score),
                is_alert=is_alert,
                is_late=is_late,
                reasons_json=compact_json(reasons_to_list(reasons)),
                features_json=features_to_json(names, vector),
                alert_json=alert_json,
                model_version=version,
                threshold=threshold,
                shadow=shadows[i] if shadows is not None else None,
            )
        )
    return out


def _rule_reason(code: str) -> AlertReason:
    """The reason an analyst rule adds (`RULE:<name>`): no feature value, no model weight."""
    return AlertReason(code, "rule", None, None)


def _shadow_scores(shadow: Any, vectors: list[list[float]]) -> list[ShadowScore]:
    """The challenger's scores for the same rows: one model run, no reasons (nobody is
    alerted on them)."""
    version, threshold = str(shadow.model_version), float(shadow.threshold)
    return [ShadowScore(version, s, s >= threshold) for s in shadow.score_batch(vectors)]
