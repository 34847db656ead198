"""Sign in and sign out.

A successful sign-in starts a new session (new CSRF token, the user's name); a refused one
answers 401 after a short pause (so guessing is slow) and says only that the pair is wrong.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from jobs.console.auth import (
    SESSION_CSRF,
    SESSION_USER,
    new_csrf_token,
    safe_next,
    session_csrf,
)
from jobs.console.web import render, require_csrf, signed_in

router = APIRouter()
REFUSAL_PAUSE_S = 0.5
MAX_FIELD_CHARS = 1000


@router.get("/login")
def login_form(request: Request, next: str = "/queue") -> Response:  # noqa: A002 - URL name
    if signed_in(request):
        return RedirectResponse(safe_next(next), status_code=303)
    names = request.app.state.auth.names
    return render(request, "login.html", next=safe_next(next),
                  default_name=names[0] if len(names) == 1 else "")


@router.post("/login", dependencies=[Depends(require_csrf)])
async def login(
    request: Request,
    username: str = Form("", max_length=MAX_FIELD_CHARS),
    password: str = Form("", max_length=MAX_FIELD_CHARS),
    next: str = Form("/queue", max_length=MAX_FIELD_CHARS),  # noqa: A002 - form field name
) -> Response:
    name = username.strip()
    if not request.app.state.auth.check(name, password):
        await asyncio.sleep(REFUSAL_PAUSE_S)
        return render(request, "login.html", status_code=401, next=safe_next(next),
                      default_name=name, error="Wrong user name or password.")
    request.session.clear()
    request.session[SESSION_USER] = name
    request.session[SESSION_CSRF] = new_csrf_token()
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    request.session.clear()
    session_csrf(request.session)  # the sign-in form needs one
    return RedirectResponse("/login", status_code=303)
