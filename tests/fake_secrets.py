"""Distinctive fake secrets, and a search for their bytes, for the quiet-secrets tests of every
tier (no secret value in SQL, pickled functions, the job graph, command lines or output)."""

from __future__ import annotations

from connectors.settings import SECRET_VARS

WRITER_PW = "fake-writer-pw-91c2e7aa"
ANALYST_PW = "fake-analyst-pw-3b7d10cc"
CARD_KEY = "fake-card-key-5d8a0b3f6e42"
FAKES = (WRITER_PW, ANALYST_PW, CARD_KEY)
SECRETS_ENV = dict(zip(SECRET_VARS, (WRITER_PW, ANALYST_PW, CARD_KEY), strict=True))


def leaks(text: str | bytes) -> list[str]:
    """The fakes whose bytes occur in `text`."""
    blob = text if isinstance(text, bytes) else text.encode()
    return [fake for fake in FAKES if fake.encode() in blob]
