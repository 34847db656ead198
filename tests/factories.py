"""Shared test factories: tiny `Transaction` builders and named time anchors (epoch ms, UTC).

`T0` is Monday 2024-01-01 12:00 UTC (daytime, so the night flag is off unless a test moves it).
"""

from __future__ import annotations

import itertools

from schemas.transaction import Transaction

T0 = 1_704_110_400_000
ONE_SECOND = 1_000
ONE_MINUTE = 60 * ONE_SECOND
ONE_HOUR = 60 * ONE_MINUTE
ONE_DAY = 24 * ONE_HOUR
ONE_MINUTE_LATER = T0 + ONE_MINUTE
ONE_HOUR_LATER = T0 + ONE_HOUR
ONE_DAY_LATER = T0 + ONE_DAY

HOME_LAT = 40.7128  # New York
HOME_LONG = -74.0060

_ids = itertools.count(1)


def txn(
    card: str = "c1",
    amount: float = 10.0,
    at: int = T0,
    category: str = "grocery_pos",
    merchant: str = "fraud_Kirlin and Sons",
    **overrides,
) -> Transaction:
    """A valid transaction; any other `Transaction` field can be overridden by keyword.

    The merchant sits at the card's home unless `merchant_lat`/`merchant_long` are given.
    `card` is used as the card token (already tokenized, as everything past ingestion is).
    """
    fields = {
        "transaction_id": f"t{next(_ids):08d}",
        "event_time_ms": at,
        "card_token": card,
        "card_last4": "4242",
        "amount": amount,
        "merchant": merchant,
        "category": category,
        "merchant_lat": overrides.get("home_lat", HOME_LAT),
        "merchant_long": overrides.get("home_long", HOME_LONG),
        "home_lat": HOME_LAT,
        "home_long": HOME_LONG,
        "city_pop": 100_000,
        "gender": "F",
        "birth_year": 1980,
        "zip": "10001",
        "state": "NY",
        "label": 0,
    }
    fields.update(overrides)
    return Transaction(**fields)
