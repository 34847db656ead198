"""Property tests: no PAN form survives redaction, in any rendering, at any cut.

The oracle is `tests.pan_scan.find_pans`, written apart from `schemas.redact`. Cards are
Luhn-valid 13..19-digit numbers, rendered with every separator the contract names (runs of
up to 3), in Unicode digits, inside arbitrary text, JSON strings (ASCII-escaped or not, once
or twice encoded) and at the truncation cut of `redact_payload`.
"""

from __future__ import annotations

import json

from hypothesis import assume, example, given
from hypothesis import strategies as st

from schemas.card_token import CardTokenizer
from schemas.redact import (
    keyed_placeholder,
    redact_card_numbers,
    redact_pans,
    redact_pans_bytes,
    redact_payload,
)
from tests.pan_scan import find_pans
from tests.property_settings import property_settings

SEPARATORS = [" ", "\t", ".", "_", "-", "/", "\n", "\u00a0", "\u2013", "\u3000"]
DIGIT_ZEROS = [ord("0"), 0xFF10, 0x0660, 0x0966]  # ASCII, fullwidth, Arabic-Indic, Devanagari
PROPS = property_settings(300)


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        digits = [int(c) for c in reversed(body + check)]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
                    for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


@st.composite
def pans(draw) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return luhn_complete(body)


@st.composite
def rendered(draw, pan: str | None = None) -> tuple[str, str]:
    """(pan, a rendering of it): groups of digits joined by separator runs of 0..3."""
    pan = pan or draw(pans())
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    out = []
    for i, digit in enumerate(pan):
        if i:
            out.append("".join(draw(st.lists(st.sampled_from(SEPARATORS), max_size=3))))
        out.append(chr(zero + int(digit)) if draw(st.booleans()) else digit)
    return pan, "".join(out)


def wrap(text: str, how: str) -> str:
    if how == "json":
        return json.dumps({"note": text}, ensure_ascii=False)
    if how == "json_ascii":
        return json.dumps({"note": text})
    if how == "json_twice":
        return json.dumps({"payload": json.dumps({"note": text})})
    return text


around = st.text(max_size=40)
wrappings = st.sampled_from(["raw", "json", "json_ascii", "json_twice"])


@PROPS
@given(rendered(), around, around, wrappings)
@example(("4111111111111111", "4111.1111.1111.1111"), "", "", "raw")
@example(("4111111111111111", "4111_1111_1111_1111"), "", "", "raw")
@example(("4111111111111111", "4111\t1111\t1111\t1111"), "", "", "json")
@example(("4111111111111111", "4111  1111  1111  1111"), "x", "y", "raw")
def test_a_rendered_card_is_found_and_then_redacted(card, before, after, how):
    pan, form = card
    text = wrap(before + form + after, how)
    # the oracle sees the card, unless the contract calls the chain a number (a float such as
    # "0." + 16 digits, 13 digits starting with 1 or 2) or `before` ends in a broken escape
    assume(pan in find_pans(text))
    assert find_pans(redact_pans(text)) == []
    assert find_pans(redact_card_numbers(text)) == []


@PROPS
@given(st.text(max_size=200))
def test_no_pan_form_survives_in_any_text(text):
    assert find_pans(redact_pans(text)) == []
    assert find_pans(redact_card_numbers(text)) == []


@PROPS
@given(st.lists(st.one_of(rendered().map(lambda c: c[1]), st.text(max_size=12),
                          st.sampled_from(SEPARATORS), st.text(alphabet="0123456789 ._",
                                                               max_size=8)), max_size=8),
       wrappings)
def test_digits_next_to_separators_and_other_cards(parts, how):
    text = wrap("".join(parts), how)
    assert find_pans(redact_pans(text)) == []
    assert find_pans(redact_card_numbers(text)) == []


@PROPS
@given(st.text(max_size=200))
def test_free_text_without_a_card_is_left_alone(text):
    # Luhn policy: exactly the texts the oracle finds nothing in come back unchanged
    # (texts that need escape decoding beyond one backslash level are left out)
    assume(find_pans(text) == [] and "\\" not in text)
    assert redact_card_numbers(text) == text


@PROPS
@given(rendered(), st.text(alphabet="abc xyz-", max_size=300), st.integers(16, 200),
       st.text(alphabet="abc xyz}", max_size=30), st.sampled_from(["raw", "json"]))
@example(("4111111111111111", "4111 1111 1111 1111"), "a" * 1010, 1020, "", "raw")
def test_no_digit_of_a_card_survives_the_cut(card, filler, max_bytes, tail, how):
    pan, form = card
    raw = wrap(filler + form + tail, how).encode("utf-8")
    safe, size = redact_payload(raw, max_bytes=max_bytes)
    assert size == len(raw)
    assert find_pans(safe) == []
    # every digit of `raw` is the card's: not one may remain, not even a prefix at the cut
    assert not any(c.isdecimal() for c in safe)
    assert len(safe.removesuffix("...[TRUNCATED]").encode("utf-8")) <= max_bytes


@PROPS
@given(st.binary(max_size=400), st.integers(8, 300))
def test_arbitrary_bytes_are_bounded_and_pan_free(raw, max_bytes):
    safe, size = redact_payload(raw, max_bytes=max_bytes)
    assert size == len(raw)
    assert find_pans(safe) == []
    assert len(safe.removesuffix("...[TRUNCATED]").encode("utf-8")) <= max_bytes


@PROPS
@given(st.binary(max_size=60), rendered(), st.binary(max_size=60))
def test_bytes_redaction_keeps_other_bytes_exactly(before, card, after):
    pan, form = card
    raw = before + b"|" + form.encode("utf-8") + b"|" + after
    out = redact_pans_bytes(raw)
    assert find_pans(out.decode("utf-8", errors="replace")) == []
    assert out.startswith(before + b"|") and out.endswith(b"|" + after)
    clean = b"no card here, just 12345"
    assert redact_pans_bytes(clean) is clean


TOK = CardTokenizer(b"property-test-key")


@PROPS
@given(rendered(), rendered(), st.text(alphabet="abcXYZ-_", min_size=1, max_size=10))
def test_keyed_placeholder_keeps_ids_distinct_and_stable(card_a, card_b, prefix):
    (pan_a, form_a), (pan_b, form_b) = card_a, card_b
    assume(pan_a != pan_b and find_pans(form_a) and find_pans(form_b))
    replace = keyed_placeholder(TOK)
    id_a = redact_card_numbers(prefix + "#" + form_a, replace)
    id_b = redact_card_numbers(prefix + "#" + form_b, replace)
    assert find_pans(id_a) == [] and find_pans(id_b) == []
    assert id_a == redact_card_numbers(prefix + "#" + form_a, replace)  # replay: same id
    assert id_a.startswith(prefix + "#[PAN-")
