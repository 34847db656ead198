"""Follow the alerts topic: decode each message into an `Alert` and hand it to a callback.

Used by `fraudstream alerts` (and the demo's live view). The consumer is assigned partitions
explicitly (no consumer-group rebalance, no committed offsets), so watching alerts never moves
an offset another reader depends on.

Contract:
- `decode_alert(raw)` turns one message value into a `schemas.alert.Alert` (the wire
  contract's own parser) or raises `MalformedAlert` with a one-line reason; the rest of this
  module only formats alerts for a terminal.
- `follow(consumer, topic, ...)` polls until `max_alerts` alerts were seen, or (when not
  following) the end offsets that existed at start are reached, or `should_stop()` says so.
  Malformed messages go to `on_malformed` with their partition and offset and never stop it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.settings import DEFAULT_TOPICS
from schemas.alert import Alert, AlertParseError, AlertReason, alert_to_dict, parse_alert
from schemas.redact import redact_pans

# A consumer with the confluent-kafka surface `follow` uses (a real Consumer in production).


class ConsumerLike(Protocol):
    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...
    def get_watermark_offsets(self, partition: Any, timeout: float = ...) -> tuple[int, int]: ...
    def assign(self, partitions: list[Any]) -> None: ...
    def poll(self, timeout: float = ...) -> Any: ...


class MalformedAlert(ValueError):
    """A message on the alerts topic that is not a valid alert; the text says why."""


def decode_alert(raw: bytes | str | None) -> Alert:
    """Decode one alerts-topic message value with the wire contract's parser
    (`schemas.alert.parse_alert`); raise `MalformedAlert` naming the problem."""
    if raw is None:
        raise MalformedAlert("empty message (tombstone)")
    try:
        return parse_alert(raw)
    except AlertParseError as exc:
        raise MalformedAlert(str(exc)) from exc


# --------------------------------------------------------------------------- formatting


def format_time(at: datetime) -> str:
    """Event time for a terminal column, in UTC: `2026-11-22 02:31:05`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def event_time(alert: Alert) -> datetime:
    """The alert's event time as an aware UTC datetime."""
    return datetime.fromtimestamp(alert.event_time_ms / 1000.0, tz=UTC)


def reason_short(reason: AlertReason) -> str:
    """`code`, `code (feature=value)` or, with a share, `code (feature=value, 40%)`."""
    if reason.value is None:
        return reason.code
    share = f", {reason.share:.0%}" if reason.share is not None else ""
    return f"{reason.code} ({reason.feature}={reason.value:.4g}{share})"


def top_reasons(alert: Alert, n: int = 3) -> str:
    """The first `n` reasons (the job orders them by contribution) as one short line."""
    if not alert.reasons:
        return "-"
    shown = ", ".join(reason_short(r) for r in alert.reasons[:n])
    more = len(alert.reasons) - n
    return f"{shown} (+{more})" if more > 0 else shown


def top_reason_codes(alert: Alert, n: int = 3) -> str:
    """Just the first `n` reason codes, for narrow views: `AMOUNT_HIGH, VELOCITY_1H`."""
    return ", ".join(r.code for r in alert.reasons[:n]) or "-"


def alert_row(alert: Alert, *, reasons: int = 3) -> tuple[str, ...]:
    """One table row: time, card, amount, merchant, category, score, top reasons."""
    return (
        format_time(event_time(alert)),
        alert.card_masked,
        f"{alert.amount:,.2f}",
        alert.merchant,
        alert.category,
        f"{alert.score:.3f}",
        top_reasons(alert, reasons),
    )


ALERT_COLUMNS = ("event time (UTC)", "card", "amount", "merchant", "category", "score", "reasons")


def alert_json_line(alert: Alert) -> str:
    """The alert as one JSON line (for `--json`): the alert document (alert.v2), keys sorted."""
    return json.dumps(alert_to_dict(alert), sort_keys=True)


# --------------------------------------------------------------------------- consuming


@dataclass(frozen=True, slots=True)
class FollowOptions:
    """How far to read: see the module docstring for the stop rules."""

    topic: str = DEFAULT_TOPICS.alerts
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
    on_alert: Callable[[Alert], None],
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
