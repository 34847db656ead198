"""A corpus of hostile Kafka record values (issue 10), each with a name and its expected outcome.

`hostile_corpus(run, base)` builds the records from one valid wire document `base` (a dict as
`schemas.wire.transaction_to_wire` gives it): control characters, NUL, invalid and overlong
UTF-8, lone surrogates, BOMs and other encodings, huge numbers, NaN/Infinity, deep nesting,
duplicate keys, wrong types, oversize fields and payloads, far-future and far-past times,
card numbers in bad records. Outcome:
- `DEAD`: the parser must dead-letter it with a reason (`field` names the expected field when
  the case is about one; None = not checked);
- `SCORED`: hostile-looking but valid (an unknown field with NUL, emoji, noncharacters,
  boundary numbers): it must be scored, and every sink must accept its row. Each such case has
  its own `transaction_id` (`<run>-hostile-<name>`) and its own card token.

`expected_raw(value)` is what `rejected_events.raw_bytes` must hold for a dead case: the value
itself, with PAN-like digit chains replaced (`schemas.redact.redact_pans_bytes`, the
card-number rule of `schemas.dead_letter`), cut at 1 MiB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from schemas.redact import redact_pans_bytes

DEAD = "dead"
SCORED = "scored"

RAW_MAX_BYTES = 1024 * 1024
TEST_PAN = "4111111111111111"


@dataclass(frozen=True)
class HostileCase:
    name: str
    value: bytes | None
    outcome: str
    field: str | None = None
    transaction_id: str | None = None  # the id of a SCORED case
    # Dead-lettered by the source's "event_time too far ahead" rule (issue 10 point 2, the
    # job's Kafka source), not by `parse_transaction` alone.
    future_rule: bool = False


def expected_raw(value: bytes | None) -> tuple[bytes | None, bool]:
    """(raw_bytes, raw_exact) the dead-letter row of `value` must carry."""
    if value is None:
        return None, True
    redacted = redact_pans_bytes(value)
    if len(redacted) > RAW_MAX_BYTES:
        return redacted[:RAW_MAX_BYTES], False
    return redacted, redacted == value


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _splice(doc: dict[str, Any], field: str, raw_json_value: bytes) -> bytes:
    """`doc` as JSON with `field`'s value replaced by raw bytes (which json.dumps cannot make)."""
    marker = "\u2603MARKER\u2603"
    text = json.dumps({**doc, field: marker}, separators=(",", ":"), ensure_ascii=False)
    return text.encode().replace(json.dumps(marker, ensure_ascii=False).encode(), raw_json_value)


def hostile_corpus(run: str, base: dict[str, Any]) -> list[HostileCase]:
    """All cases (more than 60), names unique; see the module docstring."""
    cases: list[HostileCase] = []
    doc = {**base, "transaction_id": f"{run}-hostile-bad"}

    def dead(name: str, value: bytes | None, field: str | None = None) -> None:
        cases.append(HostileCase(name, value, DEAD, field))

    def bad(name: str, field: str | None = None, **changes: Any) -> None:
        dead(name, _dumps({**doc, **changes}), field)

    def bad_raw(name: str, field: str, raw_json_value: bytes, expect: str | None = None) -> None:
        dead(name, _splice(doc, field, raw_json_value), expect)

    def ok(name: str, value_of=None, **changes: Any) -> None:
        tid = f"{run}-hostile-{name}"[:64]
        card = hashlib.sha256(f"{run}/{name}".encode()).hexdigest()
        valid = {**base, "transaction_id": tid, "card_token": card, "card_last4": "0000",
                 **changes}
        valid.pop("cc_num", None)
        value = value_of(valid) if value_of else _dumps(valid)
        cases.append(HostileCase(name, value, SCORED, None, tid))

    whole = _dumps(doc)
    # --- NUL and other control characters, raw and escaped ----------------------------------
    dead("nul_byte_in_merchant", _splice(doc, "merchant", b'"shop\x00name"'))
    dead("nul_only", b"\x00")
    dead("nul_run", b"\x00" * 100)
    dead("nul_after_object", whole + b"\x00")
    dead("nul_between_keys", whole.replace(b',"merchant"', b',\x00"merchant"', 1))
    dead("control_bytes_only", b"\x01\x02\x03\x1b[31mred\x1b[0m\x7f")
    bad_raw("raw_escape_byte_in_merchant", "merchant", b'"\x1b[2Jcleared"')
    bad("escaped_nul_in_merchant", "merchant", merchant="shop\x00name")
    bad("escaped_nul_in_transaction_id", "transaction_id", transaction_id=f"{run}\x00")
    bad("escaped_escape_in_merchant", "merchant", merchant="\x1b[31mred")
    bad("c1_control_in_merchant", "merchant", merchant="shop\x85name")
    bad_raw("c1_control_utf8_in_merchant", "merchant", b'"csi\xc2\x9b31m"', "merchant")
    bad("tab_in_merchant", "merchant", merchant="shop\tname")
    bad("newline_in_transaction_id", "transaction_id", transaction_id=f"{run}\nx")
    bad("del_in_merchant", "merchant", merchant="shop\x7f")
    bad("trailing_newline_in_zip", "zip", zip="12345\n")
    # --- invalid, overlong and odd UTF-8 ----------------------------------------------------
    dead("invalid_utf8_ff", b"\xff\xfe\xfd")
    bad_raw("invalid_utf8_in_merchant", "merchant", b'"caf\xe9"')
    bad_raw("overlong_slash", "merchant", b'"a\xc0\xafb"')
    bad_raw("overlong_nul", "merchant", b'"a\xc0\x80b"')
    bad_raw("overlong_three_byte", "merchant", b'"a\xe0\x80\xafb"')
    dead("truncated_multibyte_at_end", whole[:-1] + b"\xe2\x82")
    bad_raw("utf8_encoded_surrogate", "merchant", b'"a\xed\xa0\x80b"')
    bad_raw("code_point_above_unicode", "merchant", b'"a\xf4\x90\x80\x80b"')
    bad("lone_high_surrogate", "merchant", merchant="shop\ud800")
    bad("lone_low_surrogate_in_id", "transaction_id", transaction_id=f"{run}\udc00")
    bad("reversed_surrogate_pair", "merchant", merchant="\udc00\ud800")
    dead("utf8_bom_prefix", b"\xef\xbb\xbf" + whole)
    dead("utf16le_with_bom", b"\xff\xfe" + whole.decode().encode("utf-16-le"))
    dead("utf16be_without_bom", whole.decode().encode("utf-16-be"))
    dead("utf32", whole.decode().encode("utf-32"))
    # --- not a JSON object --------------------------------------------------------------------
    dead("empty", b"")
    dead("tombstone", None)
    dead("whitespace_only", b" \r\n\t ")
    dead("json_null", b"null")
    dead("json_array", b"[" + whole + b"]")
    dead("json_string", b'"' + TEST_PAN.encode() + b'"')
    dead("json_number", b"1e400")
    dead("comments", whole.replace(b"{", b"{/* c */", 1))
    dead("trailing_comma", whole[:-1] + b",}")
    dead("single_quotes", whole.replace(b'"', b"'"))
    dead("deep_nesting_array", b"[" * 200_000 + b"]" * 200_000)
    dead("deep_nesting_in_field", _splice(doc, "extra", b"[" * 100_000 + b"]" * 100_000))
    # --- numbers --------------------------------------------------------------------------------
    bad_raw("amt_huge_integer_literal", "amt", b"1" + b"0" * 5000)
    bad_raw("amt_overflows_to_infinity", "amt", b"1e400", "amt")
    bad_raw("amt_nan_literal", "amt", b"NaN", "amt")
    bad_raw("amt_negative_infinity", "amt", b"-Infinity", "amt")
    bad_raw("amt_underflows_to_zero", "amt", b"1e-400", "amt")
    bad("amt_nan_string", "amt", amt="NaN")
    bad("amt_over_max", "amt", amt=1_000_000.0000001)
    bad("amt_bool", "amt", amt=True)
    bad("city_pop_huge", "city_pop", city_pop=10**30)
    bad("city_pop_fraction", "city_pop", city_pop=3.5)
    bad("city_pop_negative", "city_pop", city_pop=-1)
    bad("lat_just_over", "lat", lat=90.0000001)
    bad("long_under", "long", long=-180.5)
    bad_raw("merch_lat_nan", "merch_lat", b"NaN", "merch_lat")
    bad("schema_version_float", "schema_version", schema_version=1.0)
    bad("schema_version_bool", "schema_version", schema_version=True)
    bad("schema_version_huge", "schema_version", schema_version=10**40)
    bad("is_fraud_bool", "is_fraud", is_fraud=True)
    bad("birth_year_too_old", "birth_year", birth_year=1899)
    # --- duplicate keys, wrong types ------------------------------------------------------------
    dead("duplicate_amt", whole[:-1] + b',"amt":1.0}', "amt")
    dead("duplicate_schema_version", whole[:-1] + b',"schema_version":1}', "schema_version")
    bad("merchant_number", "merchant", merchant=12345)
    bad("category_list", "category", category=["travel"])
    bad("transaction_id_object", "transaction_id", transaction_id={"id": 1})
    bad("event_time_number", "event_time", event_time=1_583_020_800_000)
    bad("gender_unknown", "gender", gender="X")
    bad("state_lowercase", "state", state="ca")
    bad("card_token_uppercase", "card_token", card_token=base["card_token"].upper())
    # --- oversize fields and payloads -----------------------------------------------------------
    bad("merchant_201_chars", "merchant", merchant="m" * 201)
    bad("transaction_id_65_chars", "transaction_id", transaction_id="t" * 65)
    bad("transaction_id_empty", "transaction_id", transaction_id="")
    bad("payload_over_64k", "payload", pad="p" * (64 * 1024))
    bad("payload_1_5_mb_with_pan", "payload", pad=("p" * 1000 + TEST_PAN) * 1500)
    # --- times ----------------------------------------------------------------------------------
    future = _dumps({**doc, "event_time": "2099-12-31T23:59:59Z"})
    cases.append(HostileCase("far_future_2099", future, DEAD, "event_time", future_rule=True))
    bad("far_future_9999", "event_time", event_time="9999-12-31T23:59:59Z")
    bad("year_10000", "event_time", event_time="10000-01-01T00:00:00Z")
    bad("far_past_year_1", "event_time", event_time="0001-01-01T00:00:00Z")
    bad("just_before_1990", "event_time", event_time="1989-12-31T23:59:59Z")
    bad("leap_second", "event_time", event_time="2015-06-30T23:59:60Z")
    bad("offset_24_hours", "event_time", event_time="2015-06-30T12:00:00+24:00")
    bad("february_30", "event_time", event_time="2015-02-30T12:00:00Z")
    bad("no_offset", "event_time", event_time="2015-06-30T12:00:00")
    bad("dob_year_zero", "dob", dob="0000-01-01", birth_year=None)
    # --- card numbers in bad records (redacted in preview AND raw bytes) --------------------------
    card_less = {k: v for k, v in doc.items() if k not in ("card_token", "card_last4")}
    dead("cc_num_with_spaces", _dumps({**card_less, "cc_num": "4111 1111 1111 1111"}), "cc_num")
    dead("cc_num_bad_luhn_or_length", _dumps({**card_less, "cc_num": "41111111111"}), "cc_num")
    dead("cc_num_and_nan_amt", _splice({**card_less, "cc_num": TEST_PAN}, "amt", b"NaN"), "amt")
    dead("pan_in_invalid_utf8", b"\xff" + TEST_PAN.encode() + b"\xfe")
    dead("pan_after_nul", b"\x00" + TEST_PAN.encode())
    # every separator form of issue 10.3, in a bad record's free text and wrong-typed field
    forms = ("4111.1111.1111.1111", "4111_1111_1111_1111", "4111\t1111\t1111\t1111",
             "4111  1111  1111  1111", "4111-1111-1111-1111", "4111/1111/1111/1111")
    bad("pan_forms_in_bad_record", None, amt=-1, merchant=" | ".join(forms))
    bad("pan_dotted_as_amt", "amt", amt="4111.1111.1111.1111")
    dead("pan_forms_not_json", " ".join(forms).encode())
    # --- hostile-looking but valid: scored, and every sink accepts the row ------------------------
    ok("unknown_field_with_nul", extra="a\x00b")
    ok("unknown_field_with_lone_surrogate", extra="\ud800")
    ok("unknown_field_nan", value_of=lambda v: _splice(v, "extra", b"NaN"))
    ok("duplicate_unknown_key", value_of=lambda v: _dumps(v)[:-1] + b',"x":1,"x":2}')
    ok("emoji_merchant_200_chars", merchant="\U0001f4b3" * 200)
    ok("bidi_override_merchant", merchant="shop \u202eevil")
    ok("noncharacter_merchant", merchant="shop \uffff\ufffe")
    ok("bom_char_in_merchant", merchant="\ufeffshop")
    ok("backslashes_and_quotes", merchant='a\\b"c\\\\N\\.')
    ok("copy_end_marker_merchant", merchant="\\.")
    ok("amt_smallest_positive", value_of=lambda v: _splice(v, "amt", b"5e-324"))
    ok("amt_max", amt=1_000_000)
    ok("coordinates_at_bounds", lat=-90, long=180, merch_lat=90.0, merch_long=-180.0)
    ok("city_pop_max", city_pop=100_000_000)
    ok("nine_digit_fraction_time", value_of=lambda v: _dumps(
        {**v, "event_time": v["event_time"].replace("Z", ".123456789Z")}))
    ok("many_unknown_fields", **{f"f{i}": i for i in range(1000)})
    # a card number in a valid record's free text: scored, the number replaced at parse time
    ok("pan_dotted_in_merchant", merchant="shop 4111.1111.1111.1111")
    ok("pan_double_spaced_in_merchant", merchant="4111  1111  1111  1111 store")
    ok("pan_underscored_in_merchant", merchant="m_4111_1111_1111_1111")
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
