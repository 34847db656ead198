"""What every route shares: the signed-in user, the CSRF check of POST forms, rendering.

`page_user` sends a signed-out browser to the sign-in page; `require_csrf` is a dependency of
every form POST (a test walks the routes to make sure of it); `render` adds the user and the
CSRF token every page's forms need.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from jobs.console.auth import CSRF_FIELD, SESSION_USER, csrf_ok, session_csrf


class SignInRequired(Exception):
    """Raised by `page_user`; the app answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def signed_in(request: Request) -> str | None:
    """The signed-in user's name, if the session names one that is still configured."""
    name = request.session.get(SESSION_USER)
    if isinstance(name, str) and name in request.app.state.auth.users:
        return name
    return None


def page_user(request: Request) -> str:
    """Dependency of every page: the user, or a redirect to sign in (back here after)."""
    name = signed_in(request)
    if name is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return name


async def require_csrf(request: Request) -> None:
    """Dependency of every POST form: 403 unless `csrf_token` is the session's token."""
    form = await request.form()
    if not csrf_ok(request.session, form.get(CSRF_FIELD)):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong: reload the "
                            "page and try again")


def sign_in_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` with the user, the CSRF token and `context`."""
    templates = request.app.state.templates
    context.setdefault("user", signed_in(request))
    context["csrf_token"] = session_csrf(request.session)
    context["csrf_field"] = CSRF_FIELD
    return templates.TemplateResponse(request, name, context, status_code=status_code)
