"""Test oracle: find card numbers (PAN forms) in any output, written apart from schemas.redact.

`find_pans(text)` implements the PAN-form contract of `schemas/redact.py` (module docstring)
independently, so that tests can use it to judge the redactor: a character-by-character
scan builds digit chains (Unicode decimal digits, at most 3 separators between two digits;
separators are whitespace, `. _ - /` and Unicode dashes) and tries every 13..19-digit window
of every chain with Luhn, except the shapes the contract exempts (a decimal number with
<= 12 integer digits; 13 digits without separators starting with 1 or 2, i.e. epoch
milliseconds; a digit run inside a hex id or a UUID: floats, timestamps and ids fill every
output).
The text is scanned as is and after each round of lenient unescaping (JSON escapes,
surrogate pairs, Python `\\xNN`), up to `MAX_UNESCAPE_ROUNDS` rounds (a JSON document
inside a JSON string inside a Kafka message...).

The `scan_*` helpers let end-to-end tests check every sink: Kafka topics (keys, values,
headers), Postgres tables (every text, json, jsonb, bytea, varchar column), log files; a
JSON field named `*base64` is decoded and scanned as well. They return `Finding`s; a
finding names where the PAN was and shows only its last four digits.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SEPARATORS = 3
PAN_LENGTHS = range(13, 20)
MAX_UNESCAPE_ROUNDS = 4
_SEPARATOR_PUNCTUATION = frozenset("._/-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_SHORT_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "b": "\b", "/": "/", '"': '"',
                  "\\": "\\"}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Finding:
    """A PAN form found at `where`; `masked` shows its length and last four digits only."""

    where: str
    masked: str

    def __str__(self) -> str:
        return f"{self.where}: {self.masked}"


def _luhn(digits: list[int]) -> bool:
    # doubling from the right: every second digit, starting with the one before the check digit
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            total += sum(divmod(digit * 2, 10))
        else:
            total += digit
    return total % 10 == 0


def _is_separator(char: str) -> bool:
    return char.isspace() or char in _SEPARATOR_PUNCTUATION


def _chains(text: str) -> list[tuple[list[int], int, int]]:
    """(digit values, index of the first digit, index after the last) of every chain."""
    chains: list[tuple[list[int], int, int]] = []
    digits: list[int] = []
    start = last = 0
    gap = 0
    for i, char in enumerate(text):
        if char.isdecimal():
            if digits and gap > MAX_SEPARATORS:
                chains.append((digits, start, last + 1))
                digits = []
            if not digits:
                start = i
            digits.append(int(char))
            last, gap = i, 0
        elif _is_separator(char):
            gap += 1
        else:
            if digits:
                chains.append((digits, start, last + 1))
            digits, gap = [], 0
    if digits:
        chains.append((digits, start, last + 1))
    return chains


def _hex_id_piece(text: str, start: int, end: int) -> bool:
    """True if text[start:end] is a plain ASCII digit run inside a longer all-hex token."""
    if not all(c in "0123456789" for c in text[start:end]):
        return False
    alnum = set(string.ascii_letters + string.digits)
    left = start
    while left > 0 and text[left - 1] in alnum:
        left -= 1
    right = end
    while right < len(text) and text[right] in alnum:
        right += 1
    token = text[left:right]
    return token != text[start:end] and set(token) <= set(string.hexdigits)


def _in_uuid(text: str, start: int, end: int) -> bool:
    """True if the letters, digits and dashes around text[start:end] form a canonical UUID."""
    allowed = set(string.ascii_letters + string.digits + "-")
    left, right = start, end
    while left > 0 and text[left - 1] in allowed:
        left -= 1
    while right < len(text) and text[right] in allowed:
        right += 1
    token = text[left:right]
    groups = token.split("-")
    return ([len(g) for g in groups] == [8, 4, 4, 4, 12]
            and set(token.replace("-", "")) <= set(string.hexdigits))


def _exempt(digits: list[int], text: str, start: int, end: int) -> bool:
    """The chains that are numbers or ids, not cards (contract in schemas/redact.py): a
    decimal number with at most 12 integer digits; 13 digits without separators starting
    with 1 or 2 (epoch milliseconds; the only 13-digit cards, Visa, start with 4); a digit
    run inside a hexadecimal id or a canonical UUID."""
    span = text[start:end]
    if len(span) == len(digits) == 13 and digits[0] in (1, 2):
        return True
    head, dot, tail = span.partition(".")
    if (dot and 1 <= len(head) <= 12 and tail
            and all(c.isdecimal() for c in head + tail)):
        return True
    return _hex_id_piece(text, start, end) or _in_uuid(text, start, end)


def _windows(chain: list[int]) -> list[str]:
    found = []
    for start in range(len(chain)):
        for length in PAN_LENGTHS:
            window = chain[start:start + length]
            if len(window) == length and _luhn(window):
                found.append("".join(map(str, window)))
    return found


def unescape_once(text: str) -> str:
    """One round of lenient unescaping; anything that is not a known escape stays as it is."""
    units: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= n and all(c in _HEX for c in text[i + 2:i + 6]):
                units.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt == "x" and i + 4 <= n and all(c in _HEX for c in text[i + 2:i + 4]):
                units.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            if nxt in _SHORT_ESCAPES:
                units.append(_SHORT_ESCAPES[nxt])
                i += 2
                continue
        units.append(char)
        i += 1
    joined = "".join(units)
    # join surrogate pairs written as two \u escapes; lone surrogates stay as they are
    return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def find_pans(text: str) -> list[str]:
    """Every Luhn-valid 13..19-digit PAN form in `text` (ASCII digits), in any reading."""
    found: list[str] = []
    view = text
    for round_ in range(MAX_UNESCAPE_ROUNDS + 1):
        for digits, start, end in _chains(view):
            if len(digits) >= PAN_LENGTHS.start and not _exempt(digits, view, start, end):
                found.extend(p for p in _windows(digits) if p not in found)
        if round_ == MAX_UNESCAPE_ROUNDS or "\\" not in view:
            break
        unescaped = unescape_once(view)
        if unescaped == view:
            break
        view = unescaped
    return found


def _mask(pan: str) -> str:
    return f"{len(pan)} digits ending {pan[-4:]}"


def scan_text(where: str, text: str) -> list[Finding]:
    """Findings of `text`, located at `where`."""
    return [Finding(where, _mask(p)) for p in find_pans(text)]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _base64_fields(value: Any, key: str = "") -> Iterable[tuple[str, str]]:
    """(key, decoded text) of every string under a JSON key ending in `base64`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _base64_fields(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _base64_fields(v, key)
    elif isinstance(value, str) and key.endswith("base64"):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return
        yield key, raw.decode("utf-8", errors="replace")


def _as_json(value: Any, text: str) -> Any:
    if isinstance(value, dict | list):
        return value
    if text[:1] not in "{[":
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to hold base64 fields
        return None


def scan_values(where: str, values: Iterable[tuple[str, Any]]) -> list[Finding]:
    """Findings of named values (str, bytes, JSON-like objects): `(name, value)` pairs.

    JSON values are also searched for base64 fields (a key ending in `base64`, e.g. the DLQ
    `raw_base64`): their decoded bytes are scanned too, base64 being no redaction."""
    out: list[Finding] = []
    for name, value in values:
        text = _as_text(value)
        if not text:
            continue
        out.extend(scan_text(f"{where} {name}", text))
        doc = _as_json(value, text)
        if doc is not None:
            for key, decoded in _base64_fields(doc):
                out.extend(scan_text(f"{where} {name}.{key} (base64)", decoded))
    return out


def scan_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Finding]:
    """Read `topic` from the beginning to its end (read_committed) and scan keys, values and
    headers. Raises TimeoutError if the end of every partition is not reached in time."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"pan-scan-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    findings: list[Finding] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        if not partitions:
            raise ValueError(f"topic {topic} has no partitions")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(pending)} not read to the end")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise RuntimeError(f"{topic}: {msg.error()}")
            where = f"{topic}[{msg.partition()}]@{msg.offset()}"
            values: list[tuple[str, Any]] = [("key", msg.key()), ("value", msg.value())]
            values += [(f"header {k}", v) for k, v in (msg.headers() or [])]
            values += [(f"header name {k}", k) for k, _ in (msg.headers() or [])]
            findings.extend(scan_values(where, values))
    finally:
        consumer.close()
    return findings


_TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


def scan_tables(conn: Any, tables: Iterable[str]) -> list[Finding]:
    """Scan every text-like column (text, varchar, char, json, jsonb, bytea) of every row of
    `tables` (names in the connection's search path) with a psycopg 3 connection."""
    from psycopg import sql

    findings: list[Finding] = []
    for table in tables:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s AND data_type = ANY(%s) "
                "AND table_schema = ANY(current_schemas(false)) ORDER BY ordinal_position",
                (table, list(_TEXT_TYPES)),
            )
            columns = [row[0] for row in cur.fetchall()]
            if not columns:
                raise ValueError(f"table {table} has no text-like column (or does not exist)")
            cur.execute(sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)))
            for number, row in enumerate(cur):
                findings.extend(scan_values(f"{table} row {number}", zip(columns, row,
                                                                         strict=True)))
    return findings


def scan_files(paths: Iterable[str | Path]) -> list[Finding]:
    """Scan text files (logs): each line (`path:line`), then the whole file for forms that
    span lines (`path`, reported only when no line holds the same PAN). Missing files raise."""
    findings: list[Finding] = []
    for path in paths:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        seen: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            for pan in find_pans(line):
                seen.add(pan)
                findings.append(Finding(f"{path}:{number}", _mask(pan)))
        findings.extend(Finding(str(path), _mask(p)) for p in find_pans(text) if p not in seen)
    return findings
