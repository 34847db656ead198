"""Checks that a row the job builds can be written by every sink (issue 10), shared by the unit
property tests and the hostile-corpus tests.

The limits are those of the sinks, not of our code: Postgres `text` refuses NUL and needs valid
UTF-8, `jsonb` refuses `\\u0000` and unpaired surrogate escapes, `integer`/`bigint` are 32/64
bit, `timestamptz` and Java's LocalDateTime text need a 4-digit year; the Kafka sinks encode
Java strings as UTF-8 (a lone surrogate would silently become `?`) and refuse messages over
1 MB by default.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from connectors.rows import REJECTED_FIELDS, SCORED_FIELDS

KAFKA_MAX_MESSAGE = 1_000_000  # under the default producer max.request.size (1048576)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# 1000-01-01 .. 9999-12-31 UTC: the span where Java's LocalDateTime prints a plain 4-digit
# year that Postgres reads back as the same instant.
EPOCH_MS_RANGE = (-30_610_224_000_000, 253_402_300_799_999)


def check_text(value: Any, what: str) -> None:
    """`value` is None or text that Postgres text, COPY and UTF-8 Kafka values hold as is."""
    if value is None:
        return
    assert type(value) is str, f"{what}: {type(value).__name__}"
    assert "\x00" not in value, f"{what}: NUL"
    value.encode("utf-8")  # raises on a lone surrogate


def check_jsonb(value: Any, what: str) -> Any:
    """Text that Postgres jsonb accepts; returns the decoded value."""
    check_text(value, what)
    decoded = json.loads(value, parse_constant=_refuse)
    assert "\\u0000" not in value, f"{what}: \\u0000 (jsonb refuses it)"
    _no_lone_surrogates(decoded, what)
    return decoded


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def _no_lone_surrogates(value: Any, what: str) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_lone_surrogates(k, what)
            _no_lone_surrogates(v, what)
    elif isinstance(value, list):
        for v in value:
            _no_lone_surrogates(v, what)


def _int(value: Any, bounds: tuple[int, int], what: str, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    assert type(value) is int and bounds[0] <= value <= bounds[1], f"{what}: {value!r}"


def _finite(value: Any, what: str) -> None:
    assert isinstance(value, float) and math.isfinite(value), f"{what}: {value!r}"


def check_rejected_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A REJECTED tuple fits rejected_events and the DLQ topic; returns the DLQ message."""
    rec = dict(zip(REJECTED_FIELDS, row, strict=True))
    for name in ("source_topic", "reason", "field", "raw_payload", "dlq_key", "dlq_json"):
        check_text(rec[name], name)
    assert rec["reason"], "a dead letter names a reason"
    _int(rec["source_partition"], INT32, "source_partition")
    _int(rec["source_offset"], INT64, "source_offset")
    _int(rec["payload_bytes"], INT32, "payload_bytes")
    assert rec["raw_bytes"] is None or type(rec["raw_bytes"]) is bytes
    assert type(rec["raw_exact"]) is bool
    assert len(rec["dlq_key"].encode()) <= 300
    value = rec["dlq_json"].encode("ascii")  # ASCII, so valid UTF-8 whatever it holds
    assert len(value) < KAFKA_MAX_MESSAGE, f"DLQ message of {len(value)} bytes"
    msg = json.loads(value, parse_constant=_refuse)
    assert msg["reason"] == rec["reason"] and msg["raw_payload"] == rec["raw_payload"]
    assert msg["raw_exact"] == rec["raw_exact"]
    if msg["raw_base64"] is not None:
        assert base64.b64decode(msg["raw_base64"], validate=True) == rec["raw_bytes"]
    return msg


def check_scored_row(row: tuple[Any, ...]) -> None:
    """A SCORED tuple fits scored_transactions, alerts, aggregates and the alerts topic."""
    rec = dict(zip(SCORED_FIELDS, row, strict=True))
    for name in ("transaction_id", "card_token", "card_last4", "merchant", "category",
                 "model_version"):
        check_text(rec[name], name)
        assert rec[name] is not None, name
    assert len(rec["transaction_id"].encode()) <= 256  # the alerts topic's key
    _int(rec["event_time_ms"], EPOCH_MS_RANGE, "event_time_ms")
    _int(rec["source_partition"], INT32, "source_partition", nullable=True)
    _int(rec["source_offset"], INT64, "source_offset", nullable=True)
    for name in ("amount", "score", "threshold"):
        _finite(rec[name], name)
    # the record fields kept for retraining (migration 007): double, integer, text columns
    for name in ("merchant_lat", "merchant_long", "home_lat", "home_long"):
        _finite(float(rec[name]), name)
    _int(rec["city_pop"], INT32, "city_pop")
    _int(rec["birth_year"], INT32, "birth_year", nullable=True)
    _int(rec["label"], (0, 1), "label", nullable=True)
    for name in ("gender", "zip", "state"):
        check_text(rec[name], name)
    check_jsonb(rec["reasons_json"], "reasons_json")
    check_jsonb(rec["features_json"], "features_json")
    if rec["is_alert"]:
        alert = rec["alert_json"]
        check_text(alert, "alert_json")
        assert len(alert.encode()) < KAFKA_MAX_MESSAGE
        json.loads(alert, parse_constant=_refuse)
    else:
        assert rec["alert_json"] is None
