"""`POST /api/score`: what-if scoring of one transaction (JSON as on the wire,
schemas/json/transaction.v1.json) with the card's history from Postgres (`whatif`).

Authentication: HTTP Basic with a console user (scripts, curl), or the browser's session
cookie plus its CSRF token in the `X-CSRF-Token` header. The body must be
`application/json`: a cross-site HTML form cannot send that, so a browser that cached Basic
credentials cannot be made to post here from another site.
`?model=VERSION` scores with that registry version instead of the default model.

    curl -u analyst:$FRAUDSTREAM_CONSOLE_PASSWORD -H 'Content-Type: application/json' \
         --data @txn.json http://127.0.0.1:28090/api/score
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jobs.console import queries, whatif
from jobs.console.auth import CSRF_HEADER, csrf_ok
from jobs.console.web import signed_in
from schemas.card_token import CardTokenizer
from schemas.parse import TransactionParseError, parse_transaction

router = APIRouter()
MAX_BODY_BYTES = 64 * 1024


class ScorerCache:
    """Models loaded once each (the default under the key None), shared by all requests."""

    def __init__(self, registry: str | None = None) -> None:
        self._registry = registry
        self._models: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def get(self, version: str | None) -> Any:
        from models.registry import default_model_dir, version_dir
        from models.scoring import Scorer

        with self._lock:
            if version not in self._models:
                path = (default_model_dir(self._registry) if version is None
                        else version_dir(version, self._registry))
                self._models[version] = Scorer.load(path)
            return self._models[version]


def _problem(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="fraudstream console"'} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def api_user(request: Request) -> tuple[str | None, JSONResponse | None]:
    """(user, None) when authenticated, else (None, the refusal)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, _problem(401, "malformed Basic credentials")
        name, _, password = decoded.partition(":")
        if request.app.state.auth.check(name, password):
            return name, None
        return None, _problem(401, "wrong user name or password")
    name = signed_in(request)
    if name is None:
        return None, _problem(401, "sign in (session cookie) or send Basic credentials")
    if not csrf_ok(request.session, request.headers.get(CSRF_HEADER)):
        return None, _problem(403, f"{CSRF_HEADER} header missing or wrong")
    return name, None


@router.post("/api/score")
async def score(request: Request, model: str | None = None) -> JSONResponse:
    user, refusal = api_user(request)
    if refusal is not None:
        return refusal
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _problem(415, "send the transaction as application/json")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _problem(413, f"a transaction is at most {MAX_BODY_BYTES} bytes")
    tokenizer = request.app.state.tokenizer
    if tokenizer is None and _has_card_number(body):
        return _problem(422, "cc_num needs FRAUDSTREAM_CARD_TOKEN_KEY, which the console does "
                        "not have: send card_token and card_last4", field="cc_num")
    try:
        txn = parse_transaction(body, tokenizer or _NO_KEY)
    except TransactionParseError as exc:
        return _problem(422, f"not a valid transaction: {exc.reason}", field=exc.field)
    try:
        scorer = await run_in_threadpool(request.app.state.scorers.get, model)
    except (ValueError, LookupError, OSError) as exc:
        return _problem(404, f"model {model!r} cannot be loaded: {exc}")
    result = await run_in_threadpool(_what_if, request.app.state.pool, txn, scorer)
    result["scored_by"] = user
    return JSONResponse(result)


def _what_if(pool: Any, txn: Any, scorer: Any) -> dict[str, Any]:
    located = pool.fact("location_columns", queries.has_location_columns)
    with pool.connection() as conn:
        rows = queries.card_history(conn, txn.card_token, txn.event_time_ms, located)
    history = whatif.history_before(rows, txn)
    return whatif.score_what_if(txn, whatif.rebuild_state(history, txn), scorer)


# Parses card_token requests when the console has no card key (cc_num is refused before).
_NO_KEY = CardTokenizer(b"the console has no card token key")


def _has_card_number(body: bytes) -> bool:
    try:
        obj = json.loads(body)
    except ValueError:
        return False  # the parser names the problem
    return isinstance(obj, dict) and "cc_num" in obj
