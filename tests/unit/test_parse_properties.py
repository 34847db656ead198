"""Acceptance 5: `parse_transaction` raises only its own error type, and every error names a
real field of the contract (or `payload`), whatever bytes or mutated records it is given."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.card_token import CardTokenizer
from schemas.parse import (
    _VALIDATOR,
    SCHEMA,
    TransactionParseError,
    _surely_valid,
    parse_transaction,
)
from schemas.transaction import Transaction
from schemas.wire import to_json_bytes
from tests.property_settings import property_settings

TOK = CardTokenizer(b"property-test-card-token-key")
ALLOWED_FIELDS = frozenset(SCHEMA["properties"]) | {"payload"}

VALID = {
    "schema_version": 1,
    "transaction_id": "2da90c7d74bd46a0caf3777415b3ebd3",
    "event_time": "2019-01-01T00:00:18Z",
    "cc_num": "2703186189652095",
    "amt": 4.97,
    "merchant": "fraud_Rippin, Kub and Mann",
    "category": "misc_net",
    "merch_lat": 36.011293,
    "merch_long": -82.048315,
    "lat": 36.0788,
    "long": -81.1781,
    "city_pop": 3495,
    "gender": "F",
    "dob": "1988-03-09",
    "zip": "28654",
    "state": "NC",
    "is_fraud": 0,
}
TOKEN_VARIANT = {k: v for k, v in VALID.items() if k != "cc_num"} | {
    "card_token": "f" * 64,
    "card_last4": "2095",
}

junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**19, -(10**19), 10**400, 2**63, 1e308, 5e-324])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["NaN", "", "2019-01-01T00:00:18Z", "0" * 19, "\x00", "\ud800"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=6,
)


EDGE_VALUES = [float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 0, -1, True, False,
               10**400, 2**63, "", "1", None, [], {}, "\x00", "\ud800", "2019-13-01T00:00:00Z"]


@st.composite
def mutated_records(draw) -> dict:
    record = dict(draw(st.sampled_from([VALID, TOKEN_VARIANT])))
    keys = sorted(set(record) | set(SCHEMA["properties"]))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["drop", "replace", "edge", "stringify", "extra"]))
        if action == "drop":
            record.pop(key, None)
        elif action == "edge":
            record[key] = draw(st.sampled_from(EDGE_VALUES))
        elif action == "replace":
            record[key] = draw(junk)
        elif action == "stringify" and key in record:
            record[key] = str(record[key])
        else:
            record[draw(st.text(max_size=10))] = draw(junk)
    return record


def check(payload) -> None:
    try:
        txn = parse_transaction(payload, TOK)
    except TransactionParseError as err:
        assert err.field in ALLOWED_FIELDS, err
        assert err.reason and str(err) == f"{err.field}: {err.reason}"
        assert "2703186189652095" not in str(err)
    else:
        # Whatever is accepted is a sane record: finite numbers in range, and it re-encodes
        # (the encoder refuses NaN) and re-parses to the same record.
        assert isinstance(txn, Transaction)
        assert len(txn.card_token) == 64 and 0 < txn.amount <= 1_000_000
        for value in (txn.merchant_lat, txn.home_lat):
            assert -90 <= value <= 90
        for value in (txn.merchant_long, txn.home_long):
            assert -180 <= value <= 180
        assert parse_transaction(to_json_bytes(txn), TOK) == txn


@property_settings(400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_parse_errors(payload):
    check(payload)


@property_settings(300)
@given(mutated_records())
def test_mutated_records_only_raise_parse_errors(record):
    # allow_nan: Python's json writes NaN/Infinity literals, which the parser must refuse.
    check(json.dumps(record, allow_nan=True))


@property_settings(200)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_parse_errors(text):
    check(text)


@property_settings(150)
@given(junk)
def test_any_json_value_only_raises_parse_errors(value):
    check(json.dumps(value, allow_nan=True))


def test_the_fast_path_takes_ordinary_records():
    assert _surely_valid(dict(VALID)) and _surely_valid(dict(TOKEN_VARIANT))


@property_settings(300)
@given(mutated_records())
def test_fast_path_never_accepts_what_the_schema_rejects(record):
    # The parser skips jsonschema when `_surely_valid` says yes: that must imply schema-valid.
    decoded = json.loads(json.dumps(record, allow_nan=True))
    if _surely_valid(decoded):
        assert _VALIDATOR.is_valid(decoded), sorted(decoded)
