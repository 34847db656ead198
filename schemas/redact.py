"""Card numbers (PANs) never leave the parser in clear: one detector for every output.

What counts as a PAN form (the contract `tests/pan_scan.py` checks every output against)
-----------------------------------------------------------------------------------------
- A *digit* is any Unicode decimal digit (category Nd: ASCII, fullwidth, Arabic-Indic, ...).
- A *separator* is any Unicode whitespace (space, tab, newline, NBSP, ...) or one of
  `. _ - /` or a Unicode dash (U+2010..U+2015, U+2212).
- A *chain* is a maximal sequence of digits where between two consecutive digits there are
  at most `MAX_SEPARATOR_RUN` (3) separators: "4111.1111.1111.1111", "4111  1111 1111 1111",
  "4111<TAB>1111-1111_1111", "4111 - 1111 / 1111 1111" are chains of 16 digits. Four or more
  separators in a row, or any other character (a letter, a comma, a colon), end a chain.
- A *PAN form* is any 13..19 consecutive digits of a chain that pass the Luhn check, except
  in two chains that are numbers, not cards (floats and timestamps fill every output):
  a decimal number (digits, one `.`, digits, nothing else; at most 12 integer digits, so
  the integer part alone cannot be a card) and 13 digits without separators starting with
  1 or 2 (epoch milliseconds 2001..2065; the only 13-digit cards, Visa, start with 4).
  Also exempt: a run of ASCII digits without separators inside a longer token of hex
  characters (the maximal run of ASCII letters and digits around it holds only 0-9a-fA-F):
  a piece of a hexadecimal id, e.g. the 16 digits in a row that about 0.5% of 32-hex
  Sparkov trans_num / generator ids contain. Limit: such a card glued to hex letters
  ("cafe4111111111111111") is not found. Likewise a chain inside a canonical UUID
  (8-4-4-4-12 hex digits and dashes, the token of letters, digits and dashes around it).
- Text is read twice: raw, and with escapes decoded, where a digit or separator may be
  written as a JSON escape (`\\u0034`, a surrogate pair, `\\t` `\\n` `\\r` `\\f` `\\/`) or a
  Python-style `\\xNN` (what `errors="backslashreplace"` and control-character escaping
  write), behind any number of backslashes (a JSON string inside a JSON string). Limit:
  escapes built from an escaped backslash (`\\u005c` + `u0034`) are not decoded.

Two policies
------------
- `redact_pans` (dead letters, parse-error reasons, anything echoing rejected input): OVER-broad
  on purpose, no Luhn check: every chain of 12 or more digits is replaced by `REDACTED` (12, as
  a `cc_num` may have 12 digits). We would rather lose an id or an epoch-millis timestamp in a
  rejected payload than leak a card; the source partition/offset kept next to the preview
  point to the original record in Kafka. Afterwards no chain of >= 12 digits is left, so no
  PAN form either.
- `redact_card_numbers` (free text of VALID records: `merchant`, `transaction_id`): product
  data, so only a chain holding a Luhn-valid 13..19-digit run is replaced (the whole chain:
  its other digits may be the rest of the card), and ordinary ids survive (a 32-hex id, a
  12-digit reference, a 13-digit number that fails Luhn, an epoch-millis stamp).
  `keyed_placeholder` gives a replacement that keeps ids distinct.

Cost (hot path: two short fields per valid record): an ASCII text with no run of 13
digit-or-separator characters returns after one `bytes.translate` and a substring test; a
32-hex id such as Sparkov's trans_num takes that path too. Measured with timeit: both fields
cost about 3% of `parse_transaction` (about 1 us of ~50 us on an idle 2-core dev box). Dead
letters: the 16 KiB preview costs milliseconds; `redact_pans_bytes` on a 1 MB payload dense
with escapes costs in the order of 100 ms (regex substitutions in C, one Python call per
escape of a digit or separator).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED-PAN]"
MAX_SEPARATOR_RUN = 3
OVERBROAD_MIN_DIGITS = 12
PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19

DEFAULT_MAX_BYTES = 16 * 1024
_TRUNCATION_MARK = "...[TRUNCATED]"

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SEP_CHARS = "._/-" + _DASHES


def is_separator(char: str) -> bool:
    """True for a character that may sit between two digits of a PAN form."""
    return char.isspace() or char in _SEP_CHARS


_RAW_SEP = r"[\s._/\-" + _DASHES + "]"


def _chain(min_digits: int) -> re.Pattern[str]:
    return re.compile(rf"\d(?:{_RAW_SEP}{{0,{MAX_SEPARATOR_RUN}}}\d){{{min_digits - 1},}}")


_OVERBROAD_CHAIN = _chain(OVERBROAD_MIN_DIGITS)
_CANDIDATE_CHAIN = _chain(PAN_MIN_DIGITS)
_MANY_DIGITS = re.compile(rf"\d(?:\D*\d){{{OVERBROAD_MIN_DIGITS - 1}}}")


def _trie(words: list[str]) -> str:
    """A regex matching exactly `words` (same length, lowercase hex), as a prefix tree."""
    if len(words[0]) == 1:
        return "[" + "".join(sorted(words)) + "]"
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[0], []).append(word[1:])
    return "(?:" + "|".join(h + _trie(rest) for h, rest in sorted(heads.items())) + ")"


def _bmp_escapes(wanted: Callable[[str], bool]) -> str:
    return _trie([f"{cp:04x}" for cp in range(0x10000)
                  if not 0xD800 <= cp < 0xE000 and wanted(chr(cp))])


# An escape that may stand for a digit or a separator, behind any number of backslashes (a
# JSON string inside a JSON string): \uXXXX of a digit or separator, a surrogate pair (decided
# in Python: astral digits are rare), a short \t \n \r \f \/, or a Python-style \xNN (what
# `errors="backslashreplace"` and control-character escaping write). Other escapes are left as
# they are: their hex digits then count as digits, which only makes chains longer.
_ESCAPE = re.compile(
    r"\\+(?:u(d[89ab][0-9a-f]{2})\\+u(d[c-f][0-9a-f]{2})"
    rf"|u({_bmp_escapes(lambda c: c.isdecimal() or is_separator(c))})"
    rf"|x({_trie([f'{b:02x}' for b in range(256) if chr(b).isdecimal() or is_separator(chr(b))])})"
    r"|([tnrf/]))",
    re.IGNORECASE,
)


# Hot-path pre-check: an ASCII text without backslash can hold a 13-digit chain only if it
# has 13 consecutive digit-or-separator characters; bytes.translate finds that in C.
_RUN_TABLE = bytes(
    ord("1") if chr(b).isdigit() or is_separator(chr(b)) else ord("0") for b in range(128)
) + b"0" * 128
_RUN = b"1" * PAN_MIN_DIGITS


def _may_hold_chain(text: str) -> bool:
    if text.isascii() and "\\" not in text:
        return _RUN in text.encode("ascii").translate(_RUN_TABLE)
    return True


class _EscapeView:
    """The escape-decoded reading of a text: one character per escape of a digit (that digit)
    or of a separator (a space), and the way back from a position in the reading to a span of
    the text."""

    __slots__ = ("text", "view", "_at", "_spans")

    def __init__(self, text: str) -> None:
        self.text = text
        self._at: list[int] = []  # view index of each escape, increasing
        self._spans: list[tuple[int, int]] = []  # its (start, end) in text
        self.view = _ESCAPE.sub(self._decode, text)

    def _decode(self, m: re.Match[str]) -> str:
        hi, lo, code, byte, short = m.groups()
        if short:
            char = " "
        elif hi:
            char = chr(0x10000 + ((int(hi, 16) - 0xD800) << 10) + int(lo, 16) - 0xDC00)
            if not char.isdecimal():
                return m.group()  # not a digit: left as it is, no position change
        else:
            char = chr(int(code or byte, 16))
            if not char.isdecimal():
                char = " "
        shift = 0 if not self._spans else self._at[-1] + 1 - self._spans[-1][1]
        self._at.append(m.start() + shift)
        self._spans.append((m.start(), m.end()))
        return char

    def span(self, i: int) -> tuple[int, int]:
        """(start, end) in the text of view character i."""
        k = bisect_right(self._at, i) - 1
        if k < 0:
            return i, i + 1
        if self._at[k] == i:
            return self._spans[k]
        pos = self._spans[k][1] + i - self._at[k] - 1
        return pos, pos + 1


def _substitute(
    text: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str | None]
) -> str:
    """Replace the chains `pattern` finds in the escape-decoded reading of `text`, then in the
    raw text. `repl(match)` returns the replacement, or None to keep the chain."""
    if "\\" in text:
        reading = _EscapeView(text)
        out, pos = [], 0
        for m in pattern.finditer(reading.view):
            new = repl(m)
            if new is not None:
                start, end = reading.span(m.start())[0], reading.span(m.end() - 1)[1]
                out.append(text[pos:start])
                out.append(new)
                pos = end
        if out:
            out.append(text[pos:])
            text = "".join(out)

    def raw(m: re.Match[str]) -> str:
        new = repl(m)
        return m.group() if new is None else new

    return pattern.sub(raw, text)


def luhn_valid(digits: str) -> bool:
    """Luhn check of a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def first_luhn_window(chain: str) -> str | None:
    """The first (leftmost, then longest) Luhn-valid run of 13..19 consecutive digits among
    the digits of `chain` (separators ignored), as ASCII digits; None if there is none."""
    digits = "".join(str(unicodedata.decimal(c)) for c in chain if c.isdecimal())
    for i in range(len(digits) - PAN_MIN_DIGITS + 1):
        for length in range(min(PAN_MAX_DIGITS, len(digits) - i), PAN_MIN_DIGITS - 1, -1):
            if luhn_valid(digits[i:i + length]):
                return digits[i:i + length]
    return None


_DECIMAL = re.compile(r"\d{1,12}\.\d+")
_EPOCH_MS = re.compile(r"\d{13}")
_HEX = frozenset("0123456789abcdefABCDEF")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _is_exempt(m: re.Match[str]) -> bool:
    """The chains the contract calls numbers or ids, not cards (module docstring)."""
    chain = m.group()
    if _EPOCH_MS.fullmatch(chain) and unicodedata.decimal(chain[0]) in (1, 2):
        return True
    if _DECIMAL.fullmatch(chain):
        return True
    text, start, end = m.string, m.start(), m.end()
    lo, hi = start, end
    while lo and (text[lo - 1].isascii() and text[lo - 1].isalnum() or text[lo - 1] == "-"):
        lo -= 1
    while hi < len(text) and (text[hi].isascii() and text[hi].isalnum() or text[hi] == "-"):
        hi += 1
    if _UUID.fullmatch(text[lo:hi]):
        return True
    if not (chain.isascii() and chain.isdigit()):
        return False
    while start and text[start - 1].isascii() and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isascii() and text[end].isalnum():
        end += 1
    token = text[start:end]
    return len(token) > len(chain) and all(c in _HEX for c in token)


def redact_pans(text: str) -> str:
    """Over-broad redaction (rejected input): every chain of >= 12 digits becomes `REDACTED`,
    in the escape-decoded reading and in the raw text. No Luhn check, on purpose."""
    if "\\" not in text and _MANY_DIGITS.search(text) is None:
        return text
    return _substitute(text, _OVERBROAD_CHAIN, lambda m: REDACTED)


def redact_card_numbers(text: str, replace: Callable[[str], str] | None = None) -> str:
    """Free text of a valid record: every chain holding a Luhn-valid 13..19-digit run is
    replaced, whole (its other digits go too: they may be the rest of the card).

    `replace(pan)` receives the first Luhn-valid run as ASCII digits and returns the
    replacement (default: `REDACTED`); e.g. a keyed token, so that two ids differing only by
    the card stay distinct. Text without a 13-digit chain returns after one or two searches.
    """
    if not _may_hold_chain(text) or ("\\" not in text and not _CANDIDATE_CHAIN.search(text)):
        return text

    def repl(m: re.Match[str]) -> str | None:
        if _is_exempt(m):
            return None
        pan = first_luhn_window(m.group())
        if pan is None:
            return None
        return REDACTED if replace is None else replace(pan)

    return _substitute(text, _CANDIDATE_CHAIN, repl)


def keyed_placeholder(tokenizer: Any) -> Callable[[str], str]:
    """A `replace` for `redact_card_numbers`: `[PAN-<first 12 hex of the keyed card token>]`.

    Decision: ids stay distinct and stable (a replay gives the same id, two ids differing
    only by the card do not collide in an upsert key), and nobody without the key can test a
    guessed card against it. `tokenizer` is a `schemas.card_token.CardTokenizer`.
    """
    return lambda pan: f"[PAN-{tokenizer.token(pan)[:12]}]"


def _strip_cut_fragment(text: str) -> str:
    """Drop the digits, separators, backslashes, U+FFFD and partial escapes that touch the end
    of a cut text, and a cut-off piece of the `REDACTED` mark.

    After this the text ends with a character that cannot continue a chain, so every chain
    left in it is a whole chain of the uncut text (not a prefix of a longer one).
    """
    end = len(text)
    while end and (text[end - 1].isdecimal() or is_separator(text[end - 1])
                   or text[end - 1] in "\\\ufffd" or _in_escape(text, end)):
        end -= 1
    text = text[:end]
    for k in range(len(REDACTED) - 1, 0, -1):
        if text.endswith(REDACTED[:k]):
            return text[:-k]
    return text


def _in_escape(text: str, end: int) -> bool:
    """True if text[:end] ends inside an escape (`\\uXXXX`, `\\xNN`, `\\t`...)."""
    tail = text[max(0, end - 6):end]
    i = tail.rfind("\\")
    return i >= 0 and _ESCAPE_PREFIX.fullmatch(tail[i:]) is not None


_ESCAPE_PREFIX = re.compile(r"\\(u[0-9a-f]{0,4}|x[0-9a-f]{0,2}|[tnrf/])", re.IGNORECASE)


def redact_payload(
    raw: bytes | str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    errors: str = "replace",
    clean: Callable[[str], str] | None = None,
) -> tuple[str, int]:
    """Make a raw record safe to store: decode, redact (over-broad), truncate safely.

    Returns `(safe_text, original_size_in_bytes)`; never raises. Bytes are decoded as UTF-8
    with the codec error handler `errors` (a `str` record is taken as its UTF-8, lone
    surrogates included); `clean(text)`, if given, runs on the decoded text before redaction
    (e.g. escaping control characters). The result is at most `max_bytes` bytes of UTF-8 plus
    the truncation marker.

    Cut rule (why no PAN prefix survives a cut): only the first `2 * max_bytes + 64` bytes are
    decoded; if that cut the record, the chain fragment touching the cut (digits, separators,
    a partial escape or character) is dropped first, so every chain in the head is a whole
    chain of the record. Redaction then leaves no chain of >= 12 digits. If the result is
    still too long it is cut at `max_bytes` and the fragment touching that cut is dropped too:
    what remains holds only whole chains of < 12 digits, so no 13..19-digit PAN form, and no
    prefix of one longer than 11 digits.
    """
    if raw is None:
        return "", 0
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else bytes(raw)
    size = len(data)
    limit = 2 * max_bytes + 64
    head = data[:limit].decode("utf-8", errors=errors)
    if clean is not None:
        head = clean(head)
    cut = size > limit
    if cut:
        head = _strip_cut_fragment(head)
    safe = redact_pans(head)
    encoded = safe.encode("utf-8", errors="surrogatepass")
    if len(encoded) > max_bytes:
        safe = _strip_cut_fragment(encoded[:max_bytes].decode("utf-8", errors="ignore"))
        cut = True
    return (safe + _TRUNCATION_MARK if cut else safe), size


def redact_pans_bytes(data: bytes) -> bytes:
    """`redact_pans` on raw bytes: the UTF-8 text is redacted, every other byte (invalid
    UTF-8 included) is kept exactly, so the result is the input unless a chain was found."""
    text = data.decode("utf-8", errors="surrogateescape")
    safe = redact_pans(text)
    return data if safe == text else safe.encode("utf-8", errors="surrogateescape")
