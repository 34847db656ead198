"""`schemas.dead_letter`: printable text, the preview and the raw bytes under the card-number
rule, and the DLQ message built from them (`models.hot_path.DeadLetter.to_json`)."""

from __future__ import annotations

import base64
import json

from models.hot_path import DLQ_RAW_MAX_BYTES, RawRecord, RecordParser
from schemas.card_token import CardTokenizer
from schemas.dead_letter import RAW_MAX_BYTES, preview, printable, raw_bytes

PAN = "4111111111111111"


def test_printable_escapes_what_a_sink_refuses_and_keeps_the_rest():
    assert printable("a\x00b\x1b[1m\x85\x7f") == "a\\x00b\\x1b[1m\\x85\\x7f"
    assert printable("x\ud800y\udfff") == "x\\ud800y\\udfff"
    kept = "tab\tnew\nline\r caf\u00e9 \u20ac \U0001f4b3 \ufeff \uffff"
    assert printable(kept) == kept


def test_preview_is_visible_safe_and_redacted():
    text, size = preview(b"\x00\xff{\"a\": \"\xc0\x80\"}", 1024)
    assert size == 13
    assert text == '\\x00\\xff{"a": "\\xc0\\x80"}'
    text.encode("utf-8")  # no lone surrogate
    # a card number split by control characters (whitespace to the PAN detector) is found
    split = "\x1f".join(PAN[i:i + 4] for i in range(0, 16, 4)).encode()
    text, _ = preview(b'{"x": "' + split + b'"}', 1024)
    assert "1111" not in text and "[REDACTED-PAN]" in text


def test_raw_bytes_are_exact_unless_a_pan_or_the_size_forbids():
    for value in (b"\x00", b"\xff\xfe\xc0\x80", b"\xed\xa0\x80", "x\ud800".encode(
            "utf-8", "surrogatepass"), b""):
        assert raw_bytes(value) == (value, True)
    assert raw_bytes(None) == (None, True)
    redacted, exact = raw_bytes(b"\xff" + PAN.encode() + b"\x00")
    assert (redacted, exact) == (b"\xff[REDACTED-PAN]\x00", False)
    big = b"\x00" * (RAW_MAX_BYTES + 1)
    assert raw_bytes(big) == (big[:RAW_MAX_BYTES], False)


def test_dlq_message_carries_raw_bytes_as_base64_up_to_its_bound():
    parser = RecordParser("src", CardTokenizer(b"k"), 64)
    small = parser.parse(RawRecord(b"\x00\xff", 0, 1))
    msg = json.loads(small.to_json())
    assert base64.b64decode(msg["raw_base64"]) == b"\x00\xff" and msg["raw_exact"] is True
    assert small.to_json().isascii()
    large = parser.parse(RawRecord(b"\x00" * (DLQ_RAW_MAX_BYTES + 1), 0, 2))
    msg = json.loads(large.to_json())
    assert msg["raw_base64"] is None and large.raw_bytes == b"\x00" * (DLQ_RAW_MAX_BYTES + 1)
    assert len(large.to_json()) < 1_000_000
    tombstone = parser.parse(RawRecord(None, 0, 3))
    assert json.loads(tombstone.to_json())["raw_base64"] is None and tombstone.raw_bytes is None


def test_reason_and_field_of_an_unexpected_error_are_printable():
    parser = RecordParser("src", CardTokenizer(b"k"), 64)

    class Odd(Exception):
        field = "f\x00"

    letter = parser.dead_letter(RawRecord(b"x", 0, 1), Odd(f"bad \x00 {PAN} \ud800"))
    assert "\x00" not in letter.reason + letter.field and PAN not in letter.reason
    letter.reason.encode("utf-8")
