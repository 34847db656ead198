"""Flink row types of the scoring job's streams, each defined next to its converter.

Records that cross Flink operator boundaries:
- RAW: what the Kafka source gives the micro-batcher (payload bytes + partition/offset);
- BATCH: a pickled list of tuples, the unit in which records cross into and out of Python
  (`connectors.flink_ops`): raw records in, TXN records keyed by shard, SCORED and REJECTED
  records out;
- TXN: a parsed, valid `Transaction` plus its source position (parser -> keyed scorer);
- SCORED: one scored transaction (scorer -> Table/SQL sinks and aggregates);
- REJECTED: one dead-letter record (parser -> DLQ topic and table).

Converters are plain functions between these tuples and the dataclasses of `schemas/` and
`models.hot_path`; field order is the contract, kept in the `*_FIELDS` tuples and checked by
the Java side (`PickledRowsToRows`) against the row types. Importing this module does not
start a JVM (Flink type objects are plain Python until a job is built).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyflink.common.typeinfo import Types

from models.hot_path import DeadLetter, ParsedRecord, ScoredEvent
from schemas.transaction import Transaction

# --- RAW: Kafka source row -------------------------------------------------------------------
# The columns the job selects from the source table: payload BYTES, partition INT, offset
# BIGINT. The payload stays bytes: the Java micro-batcher pickles byte[] as Python bytes in one
# copy, so the parser sees exactly what was produced (no UTF-8 decoding, no replacements).
RAW_FIELDS = ("payload", "kafka_partition", "kafka_offset", "source_time_ms")
# source_time_ms: the source's watermark time of the record (connectors.kafka.event_time_expr);
# -1 means refused as too far in the future, and the parser dead-letters the record.

# --- BATCH: many records in one pickled list ---------------------------------------------------
BATCH_TYPE = Types.PICKLED_BYTE_ARRAY()

# --- TXN: parsed transaction + source position -----------------------------------------------
TXN_FIELDS = (
    "transaction_id", "event_time_ms", "card_token", "card_last4", "amount", "merchant",
    "category", "merchant_lat", "merchant_long", "home_lat", "home_long", "city_pop",
    "gender", "birth_year", "zip", "state", "label", "schema_version",
    "source_partition", "source_offset",
)
_N_TXN = len(dataclasses.fields(Transaction))  # Transaction fields come first, in order


def parsed_to_txn(record: ParsedRecord) -> tuple[Any, ...]:
    """A parsed record -> TXN tuple (TXN_FIELDS order)."""
    txn = record.txn
    return (
        txn.transaction_id, txn.event_time_ms, txn.card_token, txn.card_last4,
        float(txn.amount), txn.merchant, txn.category, float(txn.merchant_lat),
        float(txn.merchant_long), float(txn.home_lat), float(txn.home_long), int(txn.city_pop),
        txn.gender, txn.birth_year, txn.zip, txn.state, txn.label, txn.schema_version,
        record.partition, record.offset,
    )


def txn_to_parsed(values: tuple[Any, ...]) -> ParsedRecord:
    """A TXN tuple -> `ParsedRecord`."""
    return ParsedRecord(Transaction(*values[:_N_TXN]), values[_N_TXN], values[_N_TXN + 1])


# --- CONTROL: one record of the control topic (key, value; value None for a tombstone) ------
CONTROL_TYPE = Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.STRING()])


# --- SCORED: one scored transaction ----------------------------------------------------------
SCORED_FIELDS = (
    "transaction_id", "card_token", "card_last4", "event_time_ms", "amount", "merchant",
    "category", "score", "threshold", "is_alert", "reasons_json", "features_json",
    "model_version", "is_late", "source_partition", "source_offset", "alert_json",
    "label", "shadow_version", "shadow_score", "shadow_alert",
    # the record fields training needs to rebuild the Transaction (scored_transactions, 007)
    "merchant_lat", "merchant_long", "home_lat", "home_long", "city_pop", "gender",
    "birth_year", "zip", "state",
)
SCORED_TYPE = Types.ROW_NAMED(
    list(SCORED_FIELDS),
    [
        Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG(), Types.DOUBLE(),
        Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(), Types.BOOLEAN(),
        Types.STRING(), Types.STRING(), Types.STRING(), Types.BOOLEAN(), Types.INT(),
        Types.LONG(), Types.STRING(), Types.INT(), Types.STRING(), Types.DOUBLE(),
        Types.BOOLEAN(), Types.DOUBLE(), Types.DOUBLE(), Types.DOUBLE(), Types.DOUBLE(),
        Types.INT(), Types.STRING(), Types.INT(), Types.STRING(), Types.STRING(),
    ],
)


def scored_to_tuple(event: ScoredEvent) -> tuple[Any, ...]:
    """A scored event -> SCORED tuple (SCORED_FIELDS order); the shadow fields are None
    when no challenger is shadowing, `label` when the record carried no ground truth. The
    record fields at the end are the parser's values as they are (Java widens an int
    coordinate to DOUBLE): no conversion per event."""
    txn, shadow = event.txn, event.shadow
    return (
        txn.transaction_id, txn.card_token, txn.card_last4, txn.event_time_ms,
        float(txn.amount), txn.merchant, txn.category, event.score, event.threshold,
        event.is_alert, event.reasons_json, event.features_json, event.model_version,
        event.is_late, event.partition, event.offset, event.alert_json, txn.label,
        None if shadow is None else shadow.model_version,
        None if shadow is None else shadow.score,
        None if shadow is None else shadow.is_alert,
        txn.merchant_lat, txn.merchant_long, txn.home_lat, txn.home_long, txn.city_pop,
        txn.gender, txn.birth_year, txn.zip, txn.state,
    )


# --- REJECTED: one dead-letter record --------------------------------------------------------
# raw_bytes: the record value under the card-number rule of `schemas.dead_letter` (BYTES, so
# no codec on the way can refuse or alter it); raw_exact: whether it equals the Kafka value.
REJECTED_FIELDS = (
    "source_topic", "source_partition", "source_offset", "reason", "field", "raw_payload",
    "payload_bytes", "raw_bytes", "raw_exact", "dlq_key", "dlq_json",
)
REJECTED_TYPE = Types.ROW_NAMED(
    list(REJECTED_FIELDS),
    [
        Types.STRING(), Types.INT(), Types.LONG(), Types.STRING(), Types.STRING(),
        Types.STRING(), Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.BOOLEAN(),
        Types.STRING(), Types.STRING(),
    ],
)


def dead_letter_to_tuple(dead: DeadLetter) -> tuple[Any, ...]:
    """A dead letter -> REJECTED tuple (REJECTED_FIELDS order)."""
    return (
        dead.source_topic, dead.partition, dead.offset, dead.reason, dead.field,
        dead.raw_payload, dead.payload_bytes, dead.raw_bytes, dead.raw_exact, dead.key,
        dead.to_json(),
    )
