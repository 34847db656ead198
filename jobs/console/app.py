"""The console's FastAPI application and the server that runs it on loopback.

    app = create_app(load_settings(), load_auth(os.environ, settings.secrets_file))
    serve(app, "127.0.0.1", 28090)                 # foreground (`fraudstream console`)
    server = BackgroundServer(app, "127.0.0.1", 0).start()   # tests: a thread, free port

Every response carries a strict Content-Security-Policy (scripts and styles from /static only,
no framing), `no-store` caching and `nosniff`; the session cookie is signed, HttpOnly and
SameSite=Strict (starlette's SessionMiddleware).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from jobs.console import routes_api, routes_auth, routes_pages
from jobs.console.auth import ConsoleAuth
from jobs.console.db import AnalystPool
from jobs.console.views import FILTERS
from jobs.console.web import SignInRequired, render, sign_in_url

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "fraudstream_console"
SESSION_MAX_AGE_S = 12 * 3600
DEFAULT_PORT = 28090
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(settings: Any, auth: ConsoleAuth, *, registry: str | None = None,
               pool: AnalystPool | None = None) -> FastAPI:
    """The console over `settings`' Postgres (analyst role) with `auth`'s users.

    `registry`: model registry root for what-if scoring (default: the package registry).
    """
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.pool.close()

    app = FastAPI(title="fraudstream console", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.auth = auth
    app.state.pool = pool or AnalystPool(settings.pg_conninfo("analyst"))
    app.state.scorers = routes_api.ScorerCache(registry)
    app.state.tokenizer = _tokenizer(settings)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(FILTERS)
    app.state.templates = Jinja2Templates(env=env)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # Added after the headers middleware, so it runs first (outermost).
    app.add_middleware(SessionMiddleware, secret_key=auth.session_key.reveal(),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S,
                       same_site="strict", https_only=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", status_code=exc.status_code,
                      title=f"Refused ({exc.status_code})", message=str(exc.detail))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (routes_auth.router, routes_pages.router, routes_api.router):
        app.include_router(router)
    return app


def _tokenizer(settings: Any) -> Any:
    from schemas.card_token import CardTokenizer

    key = settings.card_token_key.reveal()
    return CardTokenizer(key.encode()) if key else None


def check_loopback(host: str) -> None:
    """The console serves this machine only: refuse any host that is not a loopback address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc}") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                for a in addresses):
        raise ValueError(f"{host!r} is not a loopback address: the console listens on "
                         "loopback only (127.0.0.1, ::1, localhost)")


def _config(app: FastAPI, host: str, port: int) -> Any:
    import uvicorn

    check_loopback(host)
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          server_header=False, proxy_headers=False)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve in the foreground until Ctrl-C."""
    import uvicorn

    uvicorn.Server(_config(app, host, port)).run()


class BackgroundServer:
    """uvicorn in a daemon thread (port 0: a free one); `url` once started; `stop()`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(_config(app, host, port))
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
