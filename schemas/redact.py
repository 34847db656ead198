"""Redaction of raw payloads before they leave the parser (dead-letter topic, table, logs).

A record that failed to parse may still contain a card number in clear (a producer that sent
`cc_num`, a PAN inside a free-text field). Anything that looks like a PAN, a run of 12 or more
digits optionally separated by single spaces or dashes, is replaced before the payload is
stored anywhere. Decision: no Luhn check and no upper bound. We would rather lose an id or an
epoch-millis timestamp (13 digits) in a rejected payload than leak a card number; the source
partition/offset kept next to it point to the original record in Kafka.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED-PAN]"

# 12+ digits, allowing one space or dash between digits (e.g. "4111 1111 1111 1111").
_PAN_LIKE = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,}(?!\d)")

DEFAULT_MAX_BYTES = 16 * 1024
_TRUNCATION_MARK = "...[TRUNCATED]"


def redact_pans(text: str) -> str:
    """Return `text` with every PAN-like digit run (>= 12 digits) replaced by `REDACTED`."""
    return _PAN_LIKE.sub(REDACTED, text)


def redact_payload(raw: bytes | str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, int]:
    """Make a raw record safe to store: decode, redact PANs, truncate.

    Returns `(safe_text, original_size_in_bytes)`. Invalid UTF-8 is replaced (never raises).
    Redaction runs on the whole decoded text BEFORE truncation, so a PAN can never be cut in
    half and survive as a shorter digit run; the result is at most about `max_bytes` bytes
    of UTF-8 plus a short truncation marker.
    """
    if raw is None:
        return "", 0
    if isinstance(raw, str):
        data = raw.encode("utf-8", errors="replace")
    else:
        data = bytes(raw)
    size = len(data)
    # Redacting megabytes of text costs time; cut generously first (a PAN straddling the cut
    # at 2x max is removed by the second cut below since we only keep max_bytes).
    head = data[: 2 * max_bytes + 64].decode("utf-8", errors="replace")
    safe = redact_pans(head)
    encoded = safe.encode("utf-8")
    if len(encoded) > max_bytes or size > 2 * max_bytes + 64:
        cut = encoded[:max_bytes].decode("utf-8", errors="ignore")
        # a digit run cut at the end could still be a PAN prefix of >= 12 digits: redacted
        # already, since redaction ran on the longer text; re-run for safety on the cut.
        safe = redact_pans(cut) + _TRUNCATION_MARK
    return safe, size
