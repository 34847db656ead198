"""Transaction wire contract v1: the record every producer sends to the `transactions` topic.

The JSON Schema in `schemas/json/transaction.v1.json` is the wire contract; `Transaction` is the
in-memory record after parsing. `parse_transaction` (in `schemas/parse.py`) is the only way in:
it validates, tokenizes a raw card number at once, and returns a `Transaction` or a
`TransactionParseError` naming the field and the reason.

No card number in clear ever lives in a `Transaction`: only the keyed HMAC token and the
masked last four digits.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1

# Sparkov's 14 merchant categories, sorted. The one source of the list: the generator's
# profiles, the feature one-hot order and the JSON Schema enum (a test compares them) use it.
CATEGORIES: tuple[str, ...] = (
    "entertainment",
    "food_dining",
    "gas_transport",
    "grocery_net",
    "grocery_pos",
    "health_fitness",
    "home",
    "kids_pets",
    "misc_net",
    "misc_pos",
    "personal_care",
    "shopping_net",
    "shopping_pos",
    "travel",
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One card transaction, validated.

    `event_time_ms` is epoch milliseconds UTC (the event time used for windows and watermarks).
    `label` is the ground truth when the producer knows it (generator, replay of a labelled
    file); the scoring job never reads it, evaluation does.
    """

    transaction_id: str
    event_time_ms: int
    card_token: str
    card_last4: str
    amount: float
    merchant: str
    category: str
    merchant_lat: float
    merchant_long: float
    home_lat: float
    home_long: float
    city_pop: int
    gender: str | None = None
    birth_year: int | None = None
    zip: str | None = None
    state: str | None = None
    label: int | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def card_masked(self) -> str:
        """What a reviewer sees of the card: `****1234`."""
        return f"****{self.card_last4}"
