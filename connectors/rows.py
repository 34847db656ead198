"""Flink row types of the scoring job's streams, each defined next to its converter.

Three records cross Flink operator boundaries (and so need a declared Flink type):
- RAW: what the Kafka source gives the parser (payload bytes + partition/offset);
- TXN: a parsed, valid `Transaction` plus its source position (parser -> keyed scorer);
- SCORED: one scored transaction (keyed scorer -> Table/SQL sinks and aggregates);
- REJECTED: one dead-letter record (parser side output -> DLQ topic and table).

Converters are plain functions between these tuples/Rows and the dataclasses of `schemas/`;
field order is the contract, kept in the `*_FIELDS` tuples. Importing this module does not
start a JVM (Flink type objects are plain Python until a job is built).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyflink.common import Row
from pyflink.common.typeinfo import Types

from schemas.transaction import Transaction

# --- RAW: Kafka source row -------------------------------------------------------------------
# Decision, measured: the payload crosses into Python as a STRING (decoded as UTF-8 in Java,
# invalid bytes replaced). As BYTES, PyFlink's thread-mode converter turns it into a tuple of
# ints one byte at a time, which made parsing ~10x slower than the parser itself.
RAW_FIELDS = ("payload", "kafka_partition", "kafka_offset")
RAW_TYPE = Types.ROW_NAMED(list(RAW_FIELDS), [Types.STRING(), Types.INT(), Types.LONG()])

# --- TXN: parsed transaction + source position -----------------------------------------------
TXN_FIELDS = (
    "transaction_id", "event_time_ms", "card_token", "card_last4", "amount", "merchant",
    "category", "merchant_lat", "merchant_long", "home_lat", "home_long", "city_pop",
    "gender", "birth_year", "zip", "state", "label", "schema_version",
    "source_partition", "source_offset",
)
# Decision, measured (bench, 200k events, MiniCluster p=1): TXN crosses the parser -> keyed
# scorer boundary as ONE pickled tuple in TXN_FIELDS order, not a 20-field Row. A Row is
# converted field by field through PEMJA on both sides and serialized field by field for the
# keyed exchange; a pickled tuple is one byte[] (the exchange is in-job only, never persisted:
# aligned checkpoints hold no in-flight records).
TXN_TYPE = Types.PICKLED_BYTE_ARRAY()
TXN_CARD_INDEX = TXN_FIELDS.index("card_token")
TXN_TIME_INDEX = TXN_FIELDS.index("event_time_ms")
_N_TXN = len(dataclasses.fields(Transaction))  # Transaction fields come first, in order


def transaction_to_row(
    txn: Transaction, partition: int | None, offset: int | None
) -> tuple[Any, ...]:
    """A `Transaction` and its Kafka position -> TXN tuple (TXN_FIELDS order)."""
    return (
        txn.transaction_id, txn.event_time_ms, txn.card_token, txn.card_last4,
        float(txn.amount), txn.merchant, txn.category, float(txn.merchant_lat),
        float(txn.merchant_long), float(txn.home_lat), float(txn.home_long), int(txn.city_pop),
        txn.gender, txn.birth_year, txn.zip, txn.state, txn.label, txn.schema_version,
        partition, offset,
    )


def row_to_transaction(row: Any) -> tuple[Transaction, int | None, int | None]:
    """A TXN row -> `(Transaction, partition, offset)`."""
    values = tuple(row)
    return Transaction(*values[:_N_TXN]), values[_N_TXN], values[_N_TXN + 1]


# --- SCORED: one scored transaction ----------------------------------------------------------
SCORED_FIELDS = (
    "transaction_id", "card_token", "card_last4", "event_time_ms", "amount", "merchant",
    "category", "score", "threshold", "is_alert", "reasons_json", "features_json",
    "model_version", "is_late", "source_partition", "source_offset", "alert_json",
)
SCORED_TYPE = Types.ROW_NAMED(
    list(SCORED_FIELDS),
    [
        Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG(), Types.DOUBLE(),
        Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(), Types.BOOLEAN(),
        Types.STRING(), Types.STRING(), Types.STRING(), Types.BOOLEAN(), Types.INT(),
        Types.LONG(), Types.STRING(),
    ],
)


def scored_row(
    txn: Transaction,
    *,
    score: float,
    threshold: float,
    is_alert: bool,
    reasons_json: str,
    features_json: str,
    model_version: str,
    is_late: bool,
    partition: int | None,
    offset: int | None,
    alert_json: str | None,
) -> Row:
    """The SCORED row of `txn`. `alert_json` is the alert.v1 message, None when no alert."""
    return Row(
        txn.transaction_id, txn.card_token, txn.card_last4, txn.event_time_ms,
        float(txn.amount), txn.merchant, txn.category, float(score), float(threshold),
        bool(is_alert), reasons_json, features_json, model_version, bool(is_late),
        partition, offset, alert_json,
    )


# --- REJECTED: one dead-letter record --------------------------------------------------------
REJECTED_FIELDS = (
    "source_topic", "source_partition", "source_offset", "reason", "field", "raw_payload",
    "payload_bytes", "dlq_key", "dlq_json",
)
REJECTED_TYPE = Types.ROW_NAMED(
    list(REJECTED_FIELDS),
    [
        Types.STRING(), Types.INT(), Types.LONG(), Types.STRING(), Types.STRING(),
        Types.STRING(), Types.INT(), Types.STRING(), Types.STRING(),
    ],
)


def rejected_row(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    reason: str,
    field: str | None,
    raw_payload: str,
    payload_bytes: int,
    dlq_json: str,
) -> Row:
    """The REJECTED row; the DLQ message key is `topic/partition/offset` (stable on replay)."""
    return Row(
        source_topic, partition, offset, reason, field, raw_payload, payload_bytes,
        f"{source_topic}/{partition}/{offset}", dlq_json,
    )
