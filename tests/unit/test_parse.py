"""Wire contract v1: `parse_transaction`, card tokens and the wire encoder."""

from __future__ import annotations

import json

import pytest

from schemas.card_token import (
    CardTokenizer,
    InvalidPanError,
    MissingCardTokenKeyError,
)
from schemas.parse import MAX_PAYLOAD_BYTES, TransactionParseError, parse_transaction
from schemas.wire import format_event_time, to_json_bytes, transaction_to_wire

KEY = b"unit-test-card-token-key"
TOK = CardTokenizer(KEY)
PAN = "4929281734728419"


def valid(**changes) -> dict:
    record = {
        "schema_version": 1,
        "transaction_id": "0b242abb623afc578575680df30655b9",
        "event_time": "2020-06-21T12:14:25Z",
        "cc_num": PAN,
        "amt": 2.86,
        "merchant": "fraud_Kirlin and Sons",
        "category": "personal_care",
        "merch_lat": 33.986391,
        "merch_long": -81.200714,
        "lat": 33.9659,
        "long": -80.9355,
        "city_pop": 333497,
        "gender": "M",
        "dob": "1968-03-19",
        "zip": "29209",
        "state": "SC",
        "is_fraud": 0,
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def parse(record: dict | str | bytes):
    payload = record if isinstance(record, str | bytes) else json.dumps(record)
    return parse_transaction(payload, TOK)


def error_of(record) -> TransactionParseError:
    with pytest.raises(TransactionParseError) as info:
        parse(record)
    return info.value


def test_valid_record_with_raw_card_number_is_tokenized_and_mapped():
    txn = parse(valid())
    assert txn.card_token == TOK.token(PAN)
    assert len(txn.card_token) == 64 and txn.card_last4 == "8419"
    assert PAN not in repr(txn)
    assert txn.event_time_ms == 1_592_741_665_000
    assert (txn.amount, txn.home_lat, txn.merchant_long) == (2.86, 33.9659, -81.200714)
    assert (txn.birth_year, txn.zip, txn.state, txn.label) == (1968, "29209", "SC", 0)


def test_card_token_and_last4_are_taken_as_given():
    txn = parse(valid(cc_num=..., card_token="a" * 64, card_last4="1234"))
    assert (txn.card_token, txn.card_last4) == ("a" * 64, "1234")


def test_optional_fields_may_be_absent():
    txn = parse(valid(gender=..., dob=..., zip=..., state=..., is_fraud=...))
    assert (txn.gender, txn.birth_year, txn.zip, txn.state, txn.label) == (None,) * 5


def test_extra_unknown_fields_are_ignored():
    assert parse(valid(first="Jeff", unix_time=1371816865, nested={"a": [1]})).amount == 2.86


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"schema_version": True}, "schema_version"),
        ({"schema_version": ...}, "schema_version"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"transaction_id": "x" * 65}, "transaction_id"),
        ({"transaction_id": "a\x00b"}, "transaction_id"),
        ({"event_time": "2020-06-21 12:14:25"}, "event_time"),  # no offset
        ({"event_time": "2020-02-30T00:00:00Z"}, "event_time"),
        ({"event_time": "1989-12-31T23:59:59Z"}, "event_time"),
        ({"event_time": "2100-01-01T00:00:00Z"}, "event_time"),
        ({"event_time": 1592741665}, "event_time"),
        ({"cc_num": "4929-2817-3472-8419"}, "cc_num"),
        ({"cc_num": 4929281734728419}, "cc_num"),
        ({"cc_num": "12345678901"}, "cc_num"),
        ({"cc_num": ...}, "card_token"),
        ({"cc_num": ..., "card_token": "a" * 64}, "card_last4"),
        ({"cc_num": ..., "card_token": "A" * 64, "card_last4": "1234"}, "card_token"),
        ({"cc_num": ..., "card_token": "a" * 64, "card_last4": "12345"}, "card_last4"),
        ({"card_token": "a" * 64, "card_last4": "1234"}, "cc_num"),  # both kinds of card
        ({"amt": 0}, "amt"),
        ({"amt": -5}, "amt"),
        ({"amt": 1_000_000.01}, "amt"),
        ({"amt": "2.86"}, "amt"),
        ({"amt": True}, "amt"),
        ({"amt": ...}, "amt"),
        ({"merchant": ""}, "merchant"),
        ({"category": "groceries"}, "category"),
        ({"merch_lat": 90.5}, "merch_lat"),
        ({"merch_long": -180.5}, "merch_long"),
        ({"lat": None}, "lat"),
        ({"long": [1]}, "long"),
        ({"city_pop": -1}, "city_pop"),
        ({"city_pop": 1.5}, "city_pop"),
        ({"gender": "X"}, "gender"),
        ({"dob": "1968-02-30"}, "dob"),
        ({"dob": "19680319"}, "dob"),
        ({"zip": "2920"}, "zip"),
        ({"zip": "29209\n"}, "zip"),
        ({"state": "sc"}, "state"),
        ({"is_fraud": 2}, "is_fraud"),
        ({"is_fraud": True}, "is_fraud"),
    ],
)
def test_each_bad_field_is_named(changes, field):
    err = error_of(valid(**changes))
    assert err.field == field
    assert str(err).startswith(f"{field}: ")


def test_unknown_schema_version_is_reported_before_other_problems():
    err = error_of(valid(schema_version=2, amt=..., category="new-category"))
    assert err.field == "schema_version" and "unsupported version 2" in err.reason


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected_by_field(literal):
    text = json.dumps(valid()).replace('"amt": 2.86', f'"amt": {literal}')
    err = error_of(text)
    assert err.field == "amt" and "finite" in err.reason


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe{}", "[" * 5000,
     b'{"a": 1' + b"}" * 2],
)
def test_undecodable_payloads_name_payload(payload):
    assert error_of(payload).field == "payload"


def test_oversized_payload_is_rejected_before_decoding():
    blob = b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"
    err = error_of(blob)
    assert err.field == "payload" and "too large" in err.reason


def test_duplicate_known_key_is_rejected():
    text = json.dumps(valid())[:-1] + ', "amt": 5000}'
    assert error_of(text).field == "amt"


def test_error_reasons_never_echo_the_card_number():
    for changes in ({"cc_num": PAN + "0000"}, {"cc_num": PAN + "x"}, {"amt": PAN}):
        err = error_of(valid(**changes))
        assert PAN not in str(err)


def test_event_time_offsets_and_fractions():
    base = parse(valid()).event_time_ms
    assert parse(valid(event_time="2020-06-21T14:14:25+02:00")).event_time_ms == base
    assert parse(valid(event_time="2020-06-21t12:14:25.123456789z")).event_time_ms == base + 123
    assert parse(valid(event_time="2019-01-01T00:00:18Z")).event_time_ms == 1_546_300_818_000


def test_wire_round_trip_keeps_every_field_and_carries_no_pan():
    txn = parse(valid(event_time="2020-06-21T12:14:25.250Z", is_fraud=1))
    payload = to_json_bytes(txn)
    assert PAN.encode() not in payload and b"cc_num" not in payload
    assert parse(payload) == txn
    wire = transaction_to_wire(txn)
    assert wire["event_time"] == "2020-06-21T12:14:25.250Z" and wire["is_fraud"] == 1


def test_format_event_time_is_rfc3339_utc():
    assert format_event_time(1_592_741_665_000) == "2020-06-21T12:14:25Z"
    assert format_event_time(1_592_741_665_007) == "2020-06-21T12:14:25.007Z"


def test_tokenizer_is_keyed_and_validates_pans():
    other = CardTokenizer(b"another-key-of-enough-length")
    assert TOK.token(PAN) == TOK.token(PAN) != other.token(PAN)
    assert TOK.last4(PAN) == "8419"
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in PAN)  # digits, but not ASCII
    for bad in ("4929 2817 3472 8419", "12345678901", "1" * 20, "", fullwidth):
        with pytest.raises(InvalidPanError) as info:
            TOK.token(bad)
        assert bad == "" or bad not in str(info.value)
    assert "key" not in repr(TOK).replace("key=***", "")


def test_tokenizer_from_env_requires_a_strong_key():
    with pytest.raises(MissingCardTokenKeyError, match="FRAUDSTREAM_CARD_TOKEN_KEY"):
        CardTokenizer.from_env({})
    with pytest.raises(MissingCardTokenKeyError, match="shorter"):
        CardTokenizer.from_env({"FRAUDSTREAM_CARD_TOKEN_KEY": "short"})
    secret = "s3cret-value-long-enough"
    tok = CardTokenizer.from_env({"FRAUDSTREAM_CARD_TOKEN_KEY": secret})
    assert tok.token(PAN) == CardTokenizer(secret.encode()).token(PAN)
    assert secret not in repr(tok)


def test_the_schema_example_parses():
    from schemas.parse import SCHEMA

    (example,) = SCHEMA["examples"]
    txn = parse(example)
    assert txn.card_last4 == "2095" and txn.birth_year == 1988


def test_the_wire_schema_category_enum_is_the_shared_category_list():
    import json
    from pathlib import Path

    from schemas.transaction import CATEGORIES

    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/json/transaction.v1.json").read_text()
    )
    assert tuple(sorted(schema["properties"]["category"]["enum"])) == CATEGORIES
