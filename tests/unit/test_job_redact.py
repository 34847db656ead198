"""schemas.redact: PAN forms never survive; payloads are bounded; valid free text is cleaned.

The separator forms below (dots, underscores, tabs, double spaces, escapes) and the cut cases
were missed by the redactor before issue 10.3.
"""

from __future__ import annotations

import json
import re

import pytest

from models.hot_path import ParsedRecord, RawRecord, RecordParser, parse_batch
from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction
from schemas.redact import (
    REDACTED,
    keyed_placeholder,
    redact_card_numbers,
    redact_pans,
    redact_pans_bytes,
    redact_payload,
)
from tests.pan_scan import find_pans

PANS = ["4111111111111111", "378282246310005", "6011000990139424", "2223003122003222123"]
VISA = "4111111111111111"
FORMS = [
    "4111.1111.1111.1111",
    "4111_1111_1111_1111",
    "4111\t1111\t1111\t1111",
    "4111  1111  1111  1111",
    "4111 - 1111 / 1111 1111",
    "4111\u00a01111\u20131111\n1111",
    "\uff14\uff11\uff11\uff11 1111 1111 1111",
    "4111\\t1111\\t1111\\t1111",  # a tab as a JSON escape, as a rejected JSON payload shows it
    "\\u0034\\u0031\\u0031\\u0031111111111111",
    "4111\\x0b1111\\x0b1111\\x0b1111",  # control characters escaped for Postgres
]
TOK = CardTokenizer(b"unit-test-card-token-key")


@pytest.mark.parametrize("pan", PANS)
def test_pan_in_json_is_replaced(pan):
    text = f'{{"cc_num": "{pan}", "amt": 12.5, "cc_num2": {pan}}}'
    out = redact_pans(text)
    assert pan not in out
    assert out.count(REDACTED) == 2
    assert '"amt": 12.5' in out


@pytest.mark.parametrize("form", FORMS)
def test_every_separator_form_is_replaced_by_both_policies(form):
    text = f'{{"merchant": "shop {form} end"}}'
    assert VISA in find_pans(text)  # the oracle sees it: the test is not void
    for out in (redact_pans(text), redact_card_numbers(text)):
        assert find_pans(out) == [] and REDACTED in out
        assert out.startswith('{"merchant": "shop ') and out.endswith(' end"}')


def test_separated_digits_are_replaced():
    out = redact_pans("card 4111 1111 1111 1111 and 4111-1111-1111-1111 end")
    assert not re.search(r"\d{4}", out.replace(REDACTED, ""))


def test_short_numbers_are_kept():
    text = (
        '{"zip": "02134", "amount": 123456.78, "city_pop": 12345678901, '
        '"t": "2026-01-01 10:00:00"}'
    )
    assert redact_pans(text) == text
    assert redact_card_numbers(text) == text


def test_dead_letter_policy_is_over_broad_free_text_policy_needs_luhn():
    not_luhn = "4111111111111113"  # fails Luhn in every 13..19 window
    assert find_pans(not_luhn) == []
    assert redact_pans(f"id {not_luhn}") == f"id {REDACTED}"
    assert redact_card_numbers(f"id {not_luhn}") == f"id {not_luhn}"
    for ordinary in ("0b242abb623afc578575680df30655b9", "order 1592741665000",
                     "score 0.4111111111111111", "ref 411111111111", "4111    1111 1111 1111"):
        assert redact_card_numbers(ordinary) == ordinary


def test_hex_and_uuid_ids_keep_their_digit_runs():
    # 16 digits in a row, Luhn-valid windows: about 0.5% of 32-hex ids look like this
    for ident in ("c0d6fcb36ea0261658611196233c691c", "0261658611196233c691c",
                  "c0d6fcb3-6ea0-2616-5861-1196233c691c"):
        assert redact_card_numbers(f"id {ident}!") == f"id {ident}!"
        assert find_pans(ident) == []
    # a non-hex letter or a separator in front: a card, not an id
    assert redact_card_numbers("Kirlin4111111111111111") == "Kirlin" + REDACTED
    assert redact_card_numbers("x 0261658611196233") == "x " + REDACTED


def test_four_separators_end_a_chain():
    # the contract allows at most 3 separators between two digits
    assert redact_pans("4111    1111 1111 1111") == "4111    " + REDACTED


def test_payload_is_truncated_after_redaction_and_reports_original_size():
    big = ('{"cc_num": "4111111111111111", "pad": "' + "x" * 2_000_000 + '"}').encode()
    safe, size = redact_payload(big, max_bytes=1024)
    assert size == len(big)
    assert "4111111111111111" not in safe
    assert len(safe.encode()) <= 1024 + 32
    assert safe.endswith("[TRUNCATED]")


@pytest.mark.parametrize("form", ["4111111111111111", "4111 1111 1111 1111",
                                  "4111.1111.1111.1111"])
def test_pan_straddling_the_cut_leaves_no_digit(form):
    payload = ("a" * 1010 + form + "bbbb").encode()
    safe, _ = redact_payload(payload, max_bytes=1020)
    assert not re.search(r"\d", safe) and safe.endswith("...[TRUNCATED]")


def test_pan_straddling_the_first_cut_of_a_shrinking_payload_leaves_no_prefix():
    # Only the first 2*max+64 bytes are decoded. Redaction shortens each 19-digit dashed form
    # (37 chars -> 14), so that head shrinks to max_bytes and would be kept whole, with the
    # first 8 digits of the card that straddles its cut. They must not survive.
    max_bytes = 143
    form = "-".join("4" + "1" * 18)
    payload = ((form + "x") * 9 + VISA + "x" * 50).encode()
    assert len((form + "x") * 9) == 2 * max_bytes + 64 - 8  # 8 digits of the card before it
    safe, size = redact_payload(payload, max_bytes=max_bytes)
    assert size == len(payload)
    assert not re.search(r"\d", safe) and safe.endswith("...[TRUNCATED]")


def test_a_multibyte_separator_cut_in_half_does_not_end_the_fragment():
    # U+3000 (3 bytes) between the groups; the head cut falls inside it
    max_bytes = 40
    limit = 2 * max_bytes + 64
    payload = ("z" * (limit - 10) + "4111\u30001111\u30001111\u30001111" + "z" * 200).encode()
    safe, _ = redact_payload(payload, max_bytes=1000)
    assert find_pans(safe) == [] and not re.search(r"\d", safe)


def test_invalid_utf8_and_none_never_raise():
    safe, size = redact_payload(b"\xff\xfe 4111111111111111 \xc3", max_bytes=100)
    assert "4111111111111111" not in safe and size == 21
    assert redact_payload(None) == ("", 0)


def test_clean_hook_and_error_handler_run_before_redaction():
    raw = b"\xff 4111\x0b1111\x0b1111\x0b1111"
    escape_controls = lambda t: re.sub(r"[\x00-\x08\x0b-\x1f]", lambda m: f"\\x{ord(m[0]):02x}", t)  # noqa: E731
    safe, _ = redact_payload(raw, 100, errors="backslashreplace", clean=escape_controls)
    assert safe == "\\xff " + REDACTED


def test_bytes_redaction_is_exact_elsewhere():
    raw = b"\xff\x00 4111.1111.1111.1111 \xc3"
    assert redact_pans_bytes(raw) == b"\xff\x00 " + REDACTED.encode() + b" \xc3"
    assert redact_pans_bytes(b"\xff ok 12345") == b"\xff ok 12345"


# --- valid records: merchant and transaction_id -------------------------------------------

def _record(**changes) -> bytes:
    record = {
        "schema_version": 1, "transaction_id": "0b242abb623afc578575680df30655b9",
        "event_time": "2020-06-21T12:14:25Z", "card_token": "ab" * 32, "card_last4": "1111",
        "amt": 2.86, "merchant": "fraud_Kirlin and Sons", "category": "personal_care",
        "merch_lat": 33.98, "merch_long": -81.2, "lat": 33.96, "long": -80.93,
        "city_pop": 333497,
    }
    record.update(changes)
    return json.dumps(record).encode()


@pytest.mark.parametrize("form", [f for f in FORMS if "\t" not in f and "\n" not in f])
def test_valid_record_free_text_loses_the_card(form):
    txn = parse_transaction(_record(merchant=f"Shop {form}", transaction_id=f"o-{form}"), TOK)
    assert find_pans(txn.merchant) == [] and find_pans(txn.transaction_id) == []
    placeholder = keyed_placeholder(TOK)(VISA)
    assert txn.merchant == f"Shop {placeholder}" and txn.transaction_id == f"o-{placeholder}"
    assert re.fullmatch(r"\[PAN-[0-9a-f]{12}\]", placeholder)


def test_valid_record_ids_stay_distinct_stable_and_ordinary_text_is_untouched():
    other = "5555555555554444"
    a = parse_transaction(_record(transaction_id=f"t-{VISA}"), TOK)
    b = parse_transaction(_record(transaction_id=f"t-{other}"), TOK)
    again = parse_transaction(_record(transaction_id=f"t-{VISA}"), TOK)
    assert a.transaction_id != b.transaction_id and a.transaction_id == again.transaction_id
    plain = parse_transaction(_record(transaction_id="1592741665000"), TOK)
    assert plain.transaction_id == "1592741665000"  # epoch millis: a number, not a card
    assert plain.merchant == "fraud_Kirlin and Sons"


def test_parse_batch_outputs_carry_no_card_from_free_text():
    parser = RecordParser("transactions", TOK, 16 * 1024)
    records = [RawRecord(_record(merchant="Pay 4111_1111_1111_1111"), 0, 1),
               RawRecord(_record(merchant="bad\x00 4111.1111.1111.1111"), 0, 2)]
    parsed, dead = parse_batch(records, parser)
    assert [type(p) for p in parsed] == [ParsedRecord] and len(dead) == 1
    assert find_pans(repr(parsed[0].txn)) == []
    assert find_pans(dead[0].to_json()) == [] and find_pans(dead[0].raw_payload) == []
