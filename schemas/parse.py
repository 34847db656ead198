"""Parse one wire payload (transaction contract v1) into a `Transaction`, or say precisely why not.

`parse_transaction(payload, tokenizer)` is the only way into the pipeline. It raises only
`TransactionParseError(field, reason)`; `field` is a field name of the contract or `payload`
(not JSON, not UTF-8, too large, not an object). Reasons never echo a submitted value (a
`cc_num` must not leak into a dead-letter reason or a log line).

Steps: size bound (before decoding) -> UTF-8 + JSON decode -> duplicate / non-finite checks ->
JSON Schema (`schemas/json/transaction.v1.json`, compiled once at import) -> semantic checks
(RFC 3339 time within absolute bounds, dates, control characters, card) -> tokenization of a
raw `cc_num` (the PAN is dropped right there).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from schemas.card_token import CardTokenizer, InvalidPanError
from schemas.redact import keyed_placeholder, redact_card_numbers
from schemas.transaction import SCHEMA_VERSION, Transaction

SCHEMA_PATH = Path(__file__).parent / "json" / "transaction.v1.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(SCHEMA)
_VALIDATOR = Draft202012Validator(SCHEMA)

MAX_PAYLOAD_BYTES = 64 * 1024
PAYLOAD = "payload"
FIELDS: tuple[str, ...] = tuple(SCHEMA["properties"])
# Event-time sanity bounds are absolute, never relative to the wall clock: replays of 2019
# data must parse, and parsing must not depend on when it runs.
EVENT_TIME_MIN = datetime(1990, 1, 1, tzinfo=UTC)
EVENT_TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER_FIELDS = ("amt", "merch_lat", "merch_long", "lat", "long", "city_pop", "birth_year",
                  "schema_version", "is_fraud")
# Every string field we keep. Also catches a trailing newline, which Python's `$` in the
# schema patterns would otherwise let through ("12345\n" as a zip).
_TEXT_FIELDS = ("transaction_id", "merchant", "event_time", "card_token", "card_last4",
                "cc_num", "dob", "zip", "state", "gender")
# Decision (issue 10): control characters (C0 incl. TAB/LF/CR, DEL, C1) and lone surrogates are
# refused in every kept text field, never cleaned up: Postgres text cannot hold NUL, Java and
# Kafka's UTF-8 cannot carry a lone surrogate, and no legitimate id, merchant or code has them.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FRACTION = re.compile(r"\.(\d{6})\d+")

_PATTERN_REASON = {
    "event_time": "must be an RFC 3339 timestamp with offset, e.g. 2020-06-21T12:14:25Z",
    "card_token": "must be 64 lowercase hex characters (HMAC-SHA256)",
    "card_last4": "must be exactly 4 digits",
    "cc_num": "must be a string of 12 to 19 digits",
    "dob": "must be a date YYYY-MM-DD",
    "zip": "must be 5 digits",
    "state": "must be a 2-letter uppercase state code",
}
_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string",
               "null": "null", "object": "an object", "array": "an array", "boolean": "a boolean"}


class TransactionParseError(ValueError):
    """A payload that is not a valid v1 transaction. `str()` is `"field: reason"`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self):  # picklable across process boundaries (Flink Python workers)
        return (type(self), (self.field, self.reason))



class _Object(dict):
    """A decoded JSON object that remembers keys given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_hook(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object_hook)


def _decode(payload: bytes | bytearray | memoryview | str, max_bytes: int) -> dict[str, Any]:
    if isinstance(payload, str):
        if len(payload) > max_bytes:
            raise TransactionParseError(PAYLOAD, f"too large (more than {max_bytes} bytes)")
        try:
            payload = payload.encode("utf-8")
        except UnicodeEncodeError:
            raise TransactionParseError(PAYLOAD, "is not valid UTF-8 text") from None
    elif not isinstance(payload, bytes | bytearray | memoryview):
        raise TransactionParseError(PAYLOAD, "must be bytes or str")
    size = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    if size > max_bytes:
        raise TransactionParseError(PAYLOAD, f"too large ({size} bytes > {max_bytes})")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise TransactionParseError(PAYLOAD, "is not valid UTF-8") from None
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise TransactionParseError(
            PAYLOAD, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise TransactionParseError(PAYLOAD, "is nested too deeply") from None
    except ValueError:  # e.g. an integer literal longer than Python's digit limit
        raise TransactionParseError(PAYLOAD, "contains a number that cannot be read") from None
    if not isinstance(obj, dict):
        raise TransactionParseError(PAYLOAD, "must be a JSON object")
    return obj


def _type_reason(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return "must be " + " or ".join(_TYPE_NAMES.get(n, n) for n in names)


def _card_field(obj: dict[str, Any]) -> tuple[str, str]:
    if "card_token" in obj and "card_last4" not in obj:
        return "card_last4", "is required with card_token"
    if "card_last4" in obj and "card_token" not in obj:
        return "card_token", "is required with card_last4"
    return "card_token", "is required: send card_token and card_last4, or cc_num"


def _explain(error: ValidationError, obj: dict[str, Any]) -> TransactionParseError:
    """Turn a jsonschema error into (field, reason) without echoing the submitted value."""
    kind, expected = error.validator, error.validator_value
    if not error.path:
        if kind == "required":
            missing = [f for f in expected if f not in obj]
            return TransactionParseError(missing[0] if missing else PAYLOAD, "is required")
        if kind == "anyOf":
            return TransactionParseError(*_card_field(obj))
        return TransactionParseError(PAYLOAD, f"is invalid ({kind})")
    name = str(error.path[0])
    if name not in SCHEMA["properties"]:  # cannot happen with this schema; stay in contract
        return TransactionParseError(PAYLOAD, f"is invalid ({kind})")
    if kind == "type":
        reason = _type_reason(expected)
    elif kind == "const" and name == "schema_version":
        value = error.instance
        shown = f" {value}" if isinstance(value, int) and abs(value) < 10**6 else ""
        reason = f"unsupported version{shown} (this parser understands {SCHEMA_VERSION})"
    elif kind == "pattern":
        reason = _PATTERN_REASON.get(name, "has an invalid format")
    elif kind == "enum":
        shown = ", ".join("null" if v is None else str(v) for v in expected)
        reason = f"must be one of: {shown}"
    elif kind == "minLength":
        reason = f"must have at least {expected} characters"
    elif kind == "maxLength":
        reason = f"must have at most {expected} characters"
    elif kind == "minimum":
        reason = f"must be >= {expected}"
    elif kind == "maximum":
        reason = f"must be <= {expected}"
    elif kind == "exclusiveMinimum":
        reason = f"must be > {expected}"
    else:
        reason = f"is invalid ({kind})"
    return TransactionParseError(name, reason)


def _field_order(error: ValidationError) -> tuple[int, str]:
    if error.path:
        name = str(error.path[0])
        return (FIELDS.index(name) if name in FIELDS else len(FIELDS), error.validator)
    return (-1, error.validator)  # missing fields first


def _check_version(obj: dict[str, Any]) -> None:
    """The version decides how to read the rest, so it is checked before anything else."""
    if "schema_version" not in obj:
        raise TransactionParseError("schema_version", "is required")
    version = obj["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TransactionParseError("schema_version", "must be an integer")
    if version != SCHEMA_VERSION:
        shown = f" {version}" if abs(version) < 10**6 else ""
        raise TransactionParseError(
            "schema_version", f"unsupported version{shown} (this parser understands "
            f"{SCHEMA_VERSION})"
        )


def _pre_checks(obj: dict[str, Any]) -> None:
    _check_version(obj)
    duplicated = [k for k in getattr(obj, "duplicates", ()) if k in SCHEMA["properties"]]
    if duplicated:
        raise TransactionParseError(duplicated[0], "is given more than once")
    for name in _NUMBER_FIELDS:
        value = obj.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise TransactionParseError(name, "must be a finite number (NaN/Infinity rejected)")
        if isinstance(value, bool):
            raise TransactionParseError(name, "must be a number, not a boolean")


def _event_time_ms(text: str) -> int:
    normalised = text[:10] + "T" + text[11:]
    if normalised[-1] in "zZ":
        normalised = normalised[:-1] + "+00:00"
    normalised = _FRACTION.sub(r".\1", normalised)  # datetime keeps microseconds at most
    try:
        moment = datetime.fromisoformat(normalised)
    except ValueError:
        raise TransactionParseError("event_time", "is not a valid date and time") from None
    if moment.tzinfo is None:  # the pattern requires an offset; keep the guard anyway
        raise TransactionParseError("event_time", "must carry a UTC offset")
    if not EVENT_TIME_MIN <= moment < EVENT_TIME_MAX:
        raise TransactionParseError(
            "event_time", "is outside the accepted range 1990-01-01 .. 2100-01-01"
        )
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _birth_year(obj: dict[str, Any]) -> int | None:
    if obj.get("birth_year") is not None:
        return int(obj["birth_year"])
    dob = obj.get("dob")
    if dob is None:
        return None
    try:
        year = date.fromisoformat(dob).year
    except ValueError:
        raise TransactionParseError("dob", "is not a valid calendar date") from None
    if not 1900 <= year <= 2100:
        raise TransactionParseError("dob", "year must be in 1900..2100")
    return year


def _card(obj: dict[str, Any], tokenizer: CardTokenizer) -> tuple[str, str]:
    pan = obj.get("cc_num")
    if pan is None:
        return obj["card_token"], obj["card_last4"]
    if "card_token" in obj or "card_last4" in obj:
        raise TransactionParseError("cc_num", "send either cc_num or card_token/card_last4")
    try:
        return tokenizer.token(pan), tokenizer.last4(pan)
    except InvalidPanError as exc:
        raise TransactionParseError("cc_num", str(exc)) from None


# Fast path. jsonschema costs ~100-400 us per record (measured), too much per event in the
# stream. `_surely_valid` is a hand-written check built from the same schema dict (patterns,
# bounds, enums): when it says True the record satisfies the schema (soundness is
# property-tested against jsonschema in tests/unit/test_parse_properties.py); when it says
# False, jsonschema decides and names the error. So the schema stays the single authority.
_PROPS = SCHEMA["properties"]
_PATTERNS = {name: re.compile(sub["pattern"]) for name, sub in _PROPS.items() if "pattern" in sub}
_CATEGORY_SET = frozenset(_PROPS["category"]["enum"])
_GENDERS = frozenset(v for v in _PROPS["gender"]["enum"] if v is not None)


def _in_range(value: Any, name: str, *, integer: bool = False) -> bool:
    sub = _PROPS[name]
    if type(value) is not int and (integer or type(value) is not float):
        return False
    if "minimum" in sub and not value >= sub["minimum"]:
        return False
    if "exclusiveMinimum" in sub and not value > sub["exclusiveMinimum"]:
        return False
    return "maximum" not in sub or value <= sub["maximum"]


def _text(value: Any, name: str) -> bool:
    if type(value) is not str:
        return False
    sub = _PROPS[name]
    if not sub.get("minLength", 0) <= len(value) <= sub.get("maxLength", len(value)):
        return False
    pattern = _PATTERNS.get(name)
    return pattern is None or pattern.search(value) is not None


def _optional_text(obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name)
    return value is None or _text(value, name)


def _surely_valid(obj: dict[str, Any]) -> bool:
    """True only if `obj` satisfies the v1 schema (conservative: False means 'ask jsonschema')."""
    try:
        if obj["schema_version"] != SCHEMA_VERSION or type(obj["schema_version"]) is not int:
            return False
        if not (_text(obj["transaction_id"], "transaction_id")
                and _text(obj["event_time"], "event_time")
                and _text(obj["merchant"], "merchant")
                and type(obj["category"]) is str and obj["category"] in _CATEGORY_SET
                and _in_range(obj["amt"], "amt")
                and _in_range(obj["merch_lat"], "merch_lat")
                and _in_range(obj["merch_long"], "merch_long")
                and _in_range(obj["lat"], "lat")
                and _in_range(obj["long"], "long")
                and _in_range(obj["city_pop"], "city_pop", integer=True)):
            return False
    except KeyError:
        return False
    has_token = "card_token" in obj and "card_last4" in obj
    if not (has_token or "cc_num" in obj):
        return False
    for name in ("card_token", "card_last4", "cc_num"):
        if name in obj and not _text(obj[name], name):
            return False
    gender = obj.get("gender")
    if gender is not None and (type(gender) is not str or gender not in _GENDERS):
        return False
    birth_year = obj.get("birth_year")
    if birth_year is not None and not _in_range(birth_year, "birth_year", integer=True):
        return False
    label = obj.get("is_fraud")
    if label is not None and (type(label) is not int or label not in (0, 1)):
        return False
    return all(_optional_text(obj, name) for name in ("dob", "zip", "state"))


def parse_transaction(
    payload: bytes | bytearray | memoryview | str,
    tokenizer: CardTokenizer,
    *,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Transaction:
    """Validate one v1 payload and return the `Transaction`.

    Raises `TransactionParseError` (and nothing else) naming the first bad field, or
    `payload` when the bytes are not a JSON object within `max_bytes`.
    """
    obj = _decode(payload, max_bytes)
    _pre_checks(obj)
    if not _surely_valid(obj):
        errors = list(_VALIDATOR.iter_errors(obj))
        if errors:
            raise _explain(min(errors, key=_field_order), obj)
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and _BAD_CHARS.search(value):
            raise TransactionParseError(name, "contains control characters")
    event_time_ms = _event_time_ms(obj["event_time"])
    birth_year = _birth_year(obj)
    card_token, card_last4 = _card(obj, tokenizer)
    label = obj.get("is_fraud")
    # Free text reaches alerts, tables and logs: a Luhn-valid card number in it is replaced
    # by a keyed placeholder (schemas.redact.redact_card_numbers; ordinary ids survive).
    no_pan = keyed_placeholder(tokenizer)
    return Transaction(
        transaction_id=redact_card_numbers(obj["transaction_id"], no_pan),
        event_time_ms=event_time_ms,
        card_token=card_token,
        card_last4=card_last4,
        amount=float(obj["amt"]),
        merchant=redact_card_numbers(obj["merchant"], no_pan),
        category=obj["category"],
        merchant_lat=float(obj["merch_lat"]),
        merchant_long=float(obj["merch_long"]),
        home_lat=float(obj["lat"]),
        home_long=float(obj["long"]),
        city_pop=int(obj["city_pop"]),
        gender=obj.get("gender"),
        birth_year=birth_year,
        zip=obj.get("zip"),
        state=obj.get("state"),
        label=None if label is None else int(label),
    )
