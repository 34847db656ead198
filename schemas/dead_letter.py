"""What a dead letter keeps of a refused record: a readable preview and the raw bytes.

Contract: everything here returns values EVERY sink accepts, whatever the input bytes are:
- `printable(text)` is text that Postgres (`text`, UTF-8), COPY, JSON and Java can hold: no
  NUL, no other control character except TAB, LF and CR, no lone surrogate. What it replaces
  stays visible as a Python-style escape (`\\x00`, `\\x9b`, `\\ud800`).
- `preview(raw, max_bytes)` is the readable, redacted preview (`rejected_events.raw_payload`,
  the DLQ `raw_payload`): invalid UTF-8 bytes are shown as `\\xNN`, control characters as
  above, PAN-like digit runs replaced (`schemas.redact`), cut to about `max_bytes`.
- `raw_bytes(raw)` is the lossless copy (`rejected_events.raw_bytes`, DLQ `raw_base64`), with
  ONE exception, the card-number rule below.

Card-number rule (decision): no card number in clear past ingestion, so the raw bytes are
stored exactly as received UNLESS they hold a PAN-like digit chain under the over-broad rule
of `schemas.redact.redact_pans` (12+ digits with separators, also through JSON escapes): each
such chain is replaced by `[REDACTED-PAN]` (`schemas.redact.redact_pans_bytes`: the UTF-8
text is redacted, every other byte, invalid UTF-8 included, is kept exactly) and `exact` is
False. `exact` is also False when the record is longer than `RAW_MAX_BYTES` (then the first
`RAW_MAX_BYTES` bytes of the redacted payload are kept). So `exact` True means "byte for byte
the Kafka record value"; False points to the source partition/offset for the original (while
the topic retains it). Why not keep the original bytes and restrict who reads them: the table
and the DLQ topic are read by analysts and downstream teams, and the contract of the project
is that no PAN is stored past the parser; the records this column is for (NUL, invalid or
overlong UTF-8, odd encodings, oversize) are kept exactly, as they hold no digit chain.
"""

from __future__ import annotations

import re

from schemas.redact import redact_pans_bytes, redact_payload

# 1 MiB: Kafka's default limits (broker message.max.bytes 1048588, producer max.request.size
# 1048576) keep every record of a default topic within it, so those are kept losslessly.
RAW_MAX_BYTES = 1024 * 1024

# C0 controls except TAB/LF/CR, DEL, C1 controls, and UTF-16 surrogates (only lone ones can
# occur in a Python str).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with NUL, other control characters (but TAB/LF/CR) and lone surrogates escaped."""
    return _UNPRINTABLE.sub(_escape, text)


def preview(raw: bytes | str | None, max_bytes: int) -> tuple[str, int]:
    """The readable, redacted, printable preview of `raw` and its size in bytes.

    `schemas.redact.redact_payload` with invalid UTF-8 shown as `\\xNN` and `printable`
    applied before redaction (the redaction reads `\\xNN` escapes, so a card number split by
    control characters is still found); at most `max_bytes` bytes plus a truncation mark.
    Never raises.
    """
    return redact_payload(raw, max_bytes, errors="backslashreplace", clean=printable)


def raw_bytes(raw: bytes | str | None, max_bytes: int = RAW_MAX_BYTES) -> tuple[bytes | None, bool]:
    """`(stored bytes, exact)` of a refused record under the card-number rule (module doc).

    None for a record without a value (tombstone). A `str` record is stored as its UTF-8
    (lone surrogates as their 3-byte forms: the bytes are opaque, `bytea` holds anything).
    """
    if raw is None:
        return None, True
    if isinstance(raw, str):
        data = raw.encode("utf-8", errors="surrogatepass")
    else:
        data = bytes(raw)
    redacted = redact_pans_bytes(data)
    if len(redacted) > max_bytes:
        return redacted[:max_bytes], False
    return redacted, redacted == data
