"""Hypothesis strategies for issue 10's property tests: Kafka record values the job may get.

- `record_values()`: arbitrary bytes, valid-looking JSON transactions whose fields are valid
  (with odd but legal text: any Unicode but controls and surrogates, boundary numbers, odd
  time formats) or hostile (any text incl. NUL and lone surrogates, NaN/Infinity, huge
  numbers, wrong types), serialised in several ways (ASCII escapes or raw UTF-8 incl. encoded
  surrogates), sometimes with bytes spliced in; plus tombstones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from schemas.transaction import CATEGORIES

TEST_PANS = ("4111111111111111", "5500005555555559", "340000000000009", "6011000990139424")

legal_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64
)
hostile_text = st.text(max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "\udc00x", "\x1b[31m", "\x85", "\\.", "\\N", "\t\n\r",
     "\ufeff", "\uffff", "4111 1111 1111 1111", "NaN", ""]
)
hostile_number = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 10**400, 2**63, -(2**63) - 1, 1e308, 5e-324,
     -0.0, 0, True, False, None]
) | st.floats(allow_nan=True, allow_infinity=True) | st.integers()
hostile_value = st.recursive(
    hostile_text | hostile_number,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=5,
)


@st.composite
def event_times(draw) -> str:
    moment = draw(st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2099, 12, 30)))
    offset = draw(st.integers(min_value=-14 * 60, max_value=14 * 60))
    text = (moment.replace(tzinfo=UTC) + timedelta(minutes=offset)).strftime("%Y-%m-%dT%H:%M:%S")
    text += draw(st.sampled_from(["", ".1", ".123", ".123456", ".123456789"]))
    if offset == 0 and draw(st.booleans()):
        return text + draw(st.sampled_from(["Z", "z"]))
    sign = "-" if offset < 0 else "+"
    return f"{text}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


VALID_FIELDS = {
    "schema_version": st.just(1),
    "transaction_id": legal_text,
    "event_time": event_times(),
    "amt": st.floats(min_value=5e-324, max_value=1e6) | st.integers(1, 10**6),
    "merchant": st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
                        min_size=1, max_size=200),
    "category": st.sampled_from(CATEGORIES),
    "merch_lat": st.floats(-90, 90) | st.integers(-90, 90),
    "merch_long": st.floats(-180, 180) | st.integers(-180, 180),
    "lat": st.floats(-90, 90),
    "long": st.floats(-180, 180),
    "city_pop": st.integers(0, 100_000_000),
    "gender": st.sampled_from(["F", "M", None]),
    "birth_year": st.none() | st.integers(1900, 2100),
    "zip": st.none() | st.from_regex(r"\A[0-9]{5}\Z"),
    "state": st.none() | st.from_regex(r"\A[A-Z]{2}\Z"),
    "is_fraud": st.sampled_from([0, 1, None]),
}


@st.composite
def transactions(draw) -> dict:
    """A transaction dict: valid fields, then up to two fields made hostile or dropped."""
    doc = {name: draw(strategy) for name, strategy in VALID_FIELDS.items()}
    if draw(st.booleans()):
        doc["card_token"] = draw(st.from_regex(r"\A[0-9a-f]{64}\Z"))
        doc["card_last4"] = draw(st.from_regex(r"\A[0-9]{4}\Z"))
    else:
        doc["cc_num"] = draw(st.sampled_from(TEST_PANS))
    names = [*VALID_FIELDS, "card_token", "cc_num", "extra"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            doc.pop(name, None)
        else:
            doc[name] = draw(hostile_value)
    return doc


def _encode(doc: dict, ascii_only: bool) -> bytes:
    text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True, separators=(",", ":"))
    return text.encode("utf-8", errors="surrogatepass")  # lone surrogates as 3 raw bytes


@st.composite
def json_values(draw) -> bytes:
    data = _encode(draw(transactions()), draw(st.booleans()))
    if draw(st.integers(0, 5)) == 0:  # splice some bytes in
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


def record_values() -> st.SearchStrategy[bytes | None]:
    """What a Kafka record value can be (see module docstring)."""
    return json_values() | st.binary(max_size=200) | st.none()
