"""Follow the alerts topic: decode each message into an `AlertView` and hand it to a callback.

Used by `fraudstream alerts` (and the demo's live view). The consumer is assigned partitions
explicitly (no consumer-group rebalance, no committed offsets), so watching alerts never moves
an offset another reader depends on.

Contract:
- `decode_alert(raw)` turns one message value into an `AlertView` or raises `MalformedAlert`
  with a one-line reason. It prefers the job's wire parser (`schemas.alert.parse_alert`) when
  present and otherwise checks the fields a reviewer needs itself.
- `follow(consumer, topic, ...)` polls until `max_alerts` alerts were seen, or (when not
  following) the end offsets that existed at start are reached, or `should_stop()` says so.
  Malformed messages go to `on_malformed` with their partition and offset and never stop it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.redact import redact_pans

# A consumer with the confluent-kafka surface `follow` uses (a real Consumer in production).


class ConsumerLike(Protocol):
    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...
    def get_watermark_offsets(self, partition: Any, timeout: float = ...) -> tuple[int, int]: ...
    def assign(self, partitions: list[Any]) -> None: ...
    def poll(self, timeout: float = ...) -> Any: ...


class MalformedAlert(ValueError):
    """A message on the alerts topic that is not a valid alert; the text says why."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code of an alert: why the model flagged it (feature and its value)."""

    code: str
    feature: str | None = None
    value: float | str | None = None

    def short(self) -> str:
        """`code` or `code (feature=value)` for a terminal column."""
        if self.feature is None or self.value is None:
            return self.code
        value = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        return f"{self.code} ({self.feature}={value})"


@dataclass(frozen=True, slots=True)
class AlertView:
    """What a reviewer is shown of one alert (no card number: masked last four only)."""

    transaction_id: str
    event_time: datetime
    card_masked: str
    amount: float
    merchant: str
    category: str
    score: float
    threshold: float | None
    reasons: tuple[Reason, ...]
    model_version: str | None
    raw: Mapping[str, Any]

    def top_reasons(self, n: int = 3) -> str:
        """The first `n` reasons (the job orders them by contribution) as one short line."""
        if not self.reasons:
            return "-"
        shown = ", ".join(r.short() for r in self.reasons[:n])
        more = len(self.reasons) - n
        return f"{shown} (+{more})" if more > 0 else shown


    def top_reason_codes(self, n: int = 3) -> str:
        """Just the first `n` reason codes, for narrow views: `NIGHT, VELOCITY_1H`."""
        return ", ".join(r.code for r in self.reasons[:n]) or "-"


# --------------------------------------------------------------------------- decoding


def _event_time(value: Any) -> datetime:
    """Event time from an ISO-8601 string or epoch milliseconds (both seen on the wire)."""
    if isinstance(value, bool):
        raise MalformedAlert("event_time: not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise MalformedAlert("event_time: not finite")
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedAlert(f"event_time: not ISO-8601: {value[:40]!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise MalformedAlert("event_time: missing or wrong type")


def _number(doc: Mapping[str, Any], key: str, *, required: bool = True) -> float | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedAlert(f"{key}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise MalformedAlert(f"{key}: not finite")
    return float(value)


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedAlert(f"{key}: expected a non-empty string")
    return value


def _reasons(value: Any) -> tuple[Reason, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedAlert("reasons: expected a list")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(Reason(code=item))
        elif isinstance(item, Mapping) and isinstance(item.get("code"), str):
            feature = item.get("feature")
            raw_value = item.get("value")
            out.append(
                Reason(
                    code=item["code"],
                    feature=feature if isinstance(feature, str) else None,
                    value=raw_value if isinstance(raw_value, int | float | str) else None,
                )
            )
        else:
            raise MalformedAlert("reasons: each reason needs a string 'code'")
    return tuple(out)


def _card_masked(doc: Mapping[str, Any]) -> str:
    masked = doc.get("card_masked")
    if isinstance(masked, str) and masked:
        return masked
    last4 = doc.get("card_last4")
    if isinstance(last4, str) and len(last4) == 4 and last4.isdigit():
        return f"****{last4}"
    raise MalformedAlert("card_masked: missing")


def view_from_mapping(doc: Mapping[str, Any]) -> AlertView:
    """Build an `AlertView` from a decoded alert document (wire JSON or a Postgres row)."""
    if not isinstance(doc, Mapping):
        raise MalformedAlert("alert is not a JSON object")
    return AlertView(
        transaction_id=_text(doc, "transaction_id"),
        event_time=_event_time(doc.get("event_time", doc.get("event_time_ms"))),
        card_masked=_card_masked(doc),
        amount=_number(doc, "amount"),  # type: ignore[arg-type]
        merchant=_text(doc, "merchant"),
        category=_text(doc, "category"),
        score=_number(doc, "score"),  # type: ignore[arg-type]
        threshold=_number(doc, "threshold", required=False),
        reasons=_reasons(doc.get("reasons")),
        model_version=doc.get("model_version") if isinstance(doc.get("model_version"), str)
        else None,
        raw=doc,
    )


def _wire_parser() -> Callable[[bytes | str], Any] | None:
    """The job's alert parser (`schemas.alert.parse_alert`, the wire contract) if present."""
    try:
        from schemas.alert import parse_alert  # noqa: PLC0415 - optional until the job lands
    except ImportError:
        return None
    return parse_alert


def decode_alert(raw: bytes | str | None) -> AlertView:
    """Decode one alerts-topic message value; raise `MalformedAlert` naming the problem.

    Validation is the job's schema (alert.v1.json via `parse_alert`) when available; the
    view is then built from the validated document, which the `--json` output echoes.
    """
    if raw is None:
        raise MalformedAlert("empty message (tombstone)")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise MalformedAlert(f"not UTF-8: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise MalformedAlert(f"not JSON: {exc.msg} at char {exc.pos}") from exc
    parser = _wire_parser()
    if parser is not None:
        try:
            parser(text)
        except ValueError as exc:  # AlertParseError is a ValueError
            raise MalformedAlert(f"does not match the alert schema: {exc}") from exc
    return view_from_mapping(doc)


# --------------------------------------------------------------------------- formatting


def format_time(at: datetime) -> str:
    """Event time for a terminal column, in UTC: `2026-11-22 02:31:05`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def alert_row(alert: AlertView, *, reasons: int = 3) -> tuple[str, ...]:
    """One table row: time, card, amount, merchant, category, score, top reasons."""
    return (
        format_time(alert.event_time),
        alert.card_masked,
        f"{alert.amount:,.2f}",
        alert.merchant,
        alert.category,
        f"{alert.score:.3f}",
        alert.top_reasons(reasons),
    )


ALERT_COLUMNS = ("event time (UTC)", "card", "amount", "merchant", "category", "score", "reasons")


def alert_json_line(alert: AlertView) -> str:
    """The alert as one JSON line (for `--json`): the wire document as received."""
    return json.dumps(dict(alert.raw), sort_keys=True, default=str)


# --------------------------------------------------------------------------- consuming


@dataclass(frozen=True, slots=True)
class FollowOptions:
    """How far to read: see the module docstring for the stop rules."""

    topic: str = "fraud-alerts"
    from_beginning: bool = False
    follow: bool = False
    max_alerts: int | None = None
    poll_timeout_s: float = 0.5
    metadata_timeout_s: float = 10.0


@dataclass(slots=True)
class FollowStats:
    alerts: int = 0
    malformed: int = 0


def consumer_config(bootstrap: str, group_id: str) -> dict[str, Any]:
    """confluent-kafka settings for a reader that never commits offsets."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }


def assign_partitions(
    consumer: ConsumerLike, options: FollowOptions
) -> dict[int, tuple[int, int]]:
    """Assign every partition of the topic at its start offset; return (start, end) offsets.

    Raises `LookupError` if the topic does not exist (so the CLI can say so precisely).
    """
    from confluent_kafka import TopicPartition  # noqa: PLC0415 - keep --help fast

    metadata = consumer.list_topics(options.topic, timeout=options.metadata_timeout_s)
    topic_md = metadata.topics.get(options.topic)
    if topic_md is None or topic_md.error is not None or not topic_md.partitions:
        reason = topic_md.error if topic_md is not None and topic_md.error else "no partitions"
        raise LookupError(f"topic {options.topic!r} not available: {reason}")
    assignments = []
    ranges: dict[int, tuple[int, int]] = {}
    for pid in sorted(topic_md.partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(options.topic, pid), timeout=options.metadata_timeout_s
        )
        start = low if options.from_beginning or not options.follow else high
        ranges[pid] = (start, high)
        assignments.append(TopicPartition(options.topic, pid, start))
    consumer.assign(assignments)
    return ranges


def follow(
    consumer: ConsumerLike,
    options: FollowOptions,
    on_alert: Callable[[AlertView], None],
    on_malformed: Callable[[int, int, str], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> FollowStats:
    """Read alerts per `options`, calling `on_alert` / `on_malformed(partition, offset, why)`.

    Without `follow`, reading starts at the beginning and stops once every partition reached
    the end offset it had when reading started. With `follow`, reading starts at the end
    (or the beginning with `from_beginning`) and goes on until `max_alerts` or `should_stop`.
    """
    ranges = assign_partitions(consumer, options)
    # Partitions with something left to read before the end offsets seen at start.
    remaining = {pid for pid, (start, end) in ranges.items() if end > start}
    stats = FollowStats()
    while not should_stop():
        if options.max_alerts is not None and stats.alerts >= options.max_alerts:
            break
        if not options.follow and not remaining:
            break
        msg = consumer.poll(options.poll_timeout_s)
        if msg is None:
            continue
        if msg.error() is not None:
            # Transient broker errors are reported as malformed-less notices, never fatal.
            on_malformed(-1, -1, f"consumer error: {msg.error()}")
            continue
        pid, offset = msg.partition(), msg.offset()
        if pid in remaining and offset + 1 >= ranges[pid][1]:
            remaining.discard(pid)
        try:
            alert = decode_alert(msg.value())
        except MalformedAlert as exc:
            stats.malformed += 1
            # the reason can quote the message (a value, a schema error): never a card number
            on_malformed(pid, offset, redact_pans(str(exc)))
            continue
        stats.alerts += 1
        on_alert(alert)
    return stats


def iter_rows(alerts: Iterable[AlertView]) -> list[tuple[str, ...]]:
    """Rows for a rich table of several alerts (the demo's latest-alerts panel)."""
    return [alert_row(a) for a in alerts]
