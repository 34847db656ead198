"""schemas.redact: PAN-like digit runs never survive; payloads are bounded."""

from __future__ import annotations

import re

import pytest

from schemas.redact import REDACTED, redact_pans, redact_payload

PANS = ["4111111111111111", "378282246310005", "6011000990139424", "2223003122003222123"]


@pytest.mark.parametrize("pan", PANS)
def test_pan_in_json_is_replaced(pan):
    text = f'{{"cc_num": "{pan}", "amt": 12.5, "cc_num2": {pan}}}'
    out = redact_pans(text)
    assert pan not in out
    assert out.count(REDACTED) == 2
    assert '"amt": 12.5' in out


def test_separated_digits_are_replaced():
    out = redact_pans("card 4111 1111 1111 1111 and 4111-1111-1111-1111 end")
    assert not re.search(r"\d{4}", out.replace(REDACTED, ""))


def test_short_numbers_are_kept():
    text = (
        '{"zip": "02134", "amount": 123456.78, "city_pop": 12345678901, '
        '"t": "2026-01-01 10:00:00"}'
    )
    assert redact_pans(text) == text


def test_payload_is_truncated_after_redaction_and_reports_original_size():
    big = ('{"cc_num": "4111111111111111", "pad": "' + "x" * 2_000_000 + '"}').encode()
    safe, size = redact_payload(big, max_bytes=1024)
    assert size == len(big)
    assert "4111111111111111" not in safe
    assert len(safe.encode()) <= 1024 + 32
    assert safe.endswith("[TRUNCATED]")


def test_pan_straddling_the_cut_does_not_leak_a_prefix():
    # the PAN starts just before the cut: no 12+ digit prefix may remain
    payload = ("a" * 1010 + "4111111111111111").encode()
    safe, _ = redact_payload(payload, max_bytes=1020)
    assert not re.search(r"\d{12,}", safe)
    assert "4111111111" not in safe


def test_invalid_utf8_and_none_never_raise():
    safe, size = redact_payload(b"\xff\xfe 4111111111111111 \xc3", max_bytes=100)
    assert "4111111111111111" not in safe and size == 21
    assert redact_payload(None) == ("", 0)
