"""Encode a `Transaction` as a wire contract v1 payload (the inverse of `parse_transaction`).

Producers shipped with fraudstream send the card as `card_token` + `card_last4`, never a card
number. Optional fields that are `None` are left out. `parse_transaction(to_json_bytes(t))`
returns `t` again (round trip; tested).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.transaction import Transaction

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")


def format_event_time(event_time_ms: int) -> str:
    """RFC 3339 UTC: `2020-06-21T12:14:25Z`, with `.mmm` only when milliseconds are set."""
    seconds, millis = divmod(event_time_ms, 1000)
    day, second = divmod(seconds, 86_400)
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    text = f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{sec:02d}"
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def transaction_to_wire(txn: Transaction) -> dict[str, Any]:
    """The v1 JSON object for `txn` (Sparkov field names; no PAN)."""
    out: dict[str, Any] = {
        "schema_version": txn.schema_version,
        "transaction_id": txn.transaction_id,
        "event_time": format_event_time(txn.event_time_ms),
        "card_token": txn.card_token,
        "card_last4": txn.card_last4,
        "amt": txn.amount,
        "merchant": txn.merchant,
        "category": txn.category,
        "merch_lat": txn.merchant_lat,
        "merch_long": txn.merchant_long,
        "lat": txn.home_lat,
        "long": txn.home_long,
        "city_pop": txn.city_pop,
    }
    optional = {
        "gender": txn.gender,
        "birth_year": txn.birth_year,
        "zip": txn.zip,
        "state": txn.state,
        "is_fraud": txn.label,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def to_json_bytes(txn: Transaction) -> bytes:
    """Compact UTF-8 JSON of `transaction_to_wire(txn)`; NaN/Infinity are refused."""
    return _ENCODER.encode(transaction_to_wire(txn)).encode("utf-8")
