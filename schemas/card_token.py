"""Card tokenization: the only place a card number (PAN) is turned into something storable.

A PAN becomes a keyed HMAC-SHA256 token (64 lowercase hex characters) plus its last four
digits. The key is a secret from the environment (`FRAUDSTREAM_CARD_TOKEN_KEY`); the same key
gives the same token for the same card, so the token works as the Kafka key and the per-card
state key, while nobody without the key can test a guessed card number against it.

Decision: the key is the UTF-8 bytes of the environment string as given (whatever
`fraudstream up` generated); no hex decoding, so any non-empty secret works.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

KEY_ENV_VAR = "FRAUDSTREAM_CARD_TOKEN_KEY"
PAN_MIN_DIGITS = 12
PAN_MAX_DIGITS = 19
MIN_KEY_BYTES = 16


class InvalidPanError(ValueError):
    """A card number that is not 12..19 ASCII digits. The message never contains the PAN."""


class MissingCardTokenKeyError(RuntimeError):
    """The tokenization key is not configured."""


def validate_pan(pan: str) -> str:
    """Return `pan` if it is 12..19 ASCII digits, else raise `InvalidPanError` (no PAN echoed)."""
    if not isinstance(pan, str):
        raise InvalidPanError("card number must be a string of digits")
    if not (pan.isascii() and pan.isdigit()):
        raise InvalidPanError("card number must contain digits only")
    if not PAN_MIN_DIGITS <= len(pan) <= PAN_MAX_DIGITS:
        raise InvalidPanError(
            f"card number must have {PAN_MIN_DIGITS}..{PAN_MAX_DIGITS} digits, got {len(pan)}"
        )
    return pan


class CardTokenizer:
    """Keyed HMAC-SHA256 tokenizer. Immutable; safe to share between threads.

    `token(pan)` and `last4(pan)` validate the PAN first (`InvalidPanError`).
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("card token key must be bytes")
        if not key:
            raise ValueError("card token key must not be empty")
        self._key = bytes(key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CardTokenizer:
        """Build from `FRAUDSTREAM_CARD_TOKEN_KEY` (UTF-8 bytes of the value).

        Raises `MissingCardTokenKeyError` if unset, empty or shorter than `MIN_KEY_BYTES`
        (an operator-supplied secret must be strong; the constructor itself only refuses an
        empty key so tests can use short literals). The key is never printed.
        """
        env = os.environ if environ is None else environ
        value = env.get(KEY_ENV_VAR, "")
        if len(value.encode("utf-8")) < MIN_KEY_BYTES:
            state = "is not set" if not value else f"is shorter than {MIN_KEY_BYTES} bytes"
            raise MissingCardTokenKeyError(
                f"{KEY_ENV_VAR} {state}: export a secret of at least {MIN_KEY_BYTES} "
                "characters (`fraudstream up` generates one into .fraudstream/secrets.env)"
            )
        return cls(value.encode("utf-8"))

    def token(self, pan: str) -> str:
        """The card token: HMAC-SHA256(key, pan) as 64 lowercase hex characters."""
        validate_pan(pan)
        return hmac.new(self._key, pan.encode("ascii"), hashlib.sha256).hexdigest()

    def last4(self, pan: str) -> str:
        """The last four digits, the only part of a PAN a reviewer may see."""
        return validate_pan(pan)[-4:]

    def __repr__(self) -> str:
        return "CardTokenizer(key=***)"
