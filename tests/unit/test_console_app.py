"""The console's gatekeeping without a database: sign-in, sessions, CSRF on every POST,
the API's authentication, security headers, loopback only, and the users' configuration.

The app gets a pool that fails the test if a refused request ever reaches Postgres.
"""

from __future__ import annotations

import base64
import re
import warnings

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from connectors.settings import StackSettings
from jobs.console import auth as A
from jobs.console.app import SECURITY_HEADERS, check_loopback, create_app
from jobs.console.web import require_csrf

PASSWORD = "correct horse battery"


class NoDatabase:
    """Stands in for the analyst pool: any use is a test failure."""

    def connection(self):
        raise AssertionError("a refused request reached the database")

    def fact(self, name, compute):
        raise AssertionError("a refused request reached the database")

    def close(self):
        pass


@pytest.fixture
def app():
    auth = A.ConsoleAuth({"analyst": PASSWORD, "bob": "bobs password"}, "s" * 32)
    return create_app(StackSettings(), auth, pool=NoDatabase())


@pytest.fixture
def client(app):
    return TestClient(app)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _sign_in(client, user="analyst", password=PASSWORD):
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": token, "next": "/overview"},
                       follow_redirects=False)


def test_pages_send_a_signed_out_browser_to_sign_in(client):
    for path in ("/queue", "/alert?id=x", "/overview", "/"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_sign_in_then_out(client):
    response = _sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/overview"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert PASSWORD not in response.headers["set-cookie"]
    assert client.get("/login", follow_redirects=False).status_code == 303  # already in
    token = _csrf(client.get("/login?next=/x", follow_redirects=True).text)
    assert client.post("/logout", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("user,password", [("analyst", "wrong"), ("bob", PASSWORD),
                                           ("nobody", PASSWORD), ("", "")])
def test_wrong_credentials_are_refused(client, user, password):
    response = _sign_in(client, user, password)
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_sign_in_without_or_with_a_wrong_csrf_token_is_refused(client):
    client.get("/login")
    for token in (None, "forged", ""):
        data = {"username": "analyst", "password": PASSWORD, "next": "/queue"}
        if token is not None:
            data["csrf_token"] = token
        assert client.post("/login", data=data, follow_redirects=False).status_code == 403


def test_label_form_needs_the_session_token(client):
    _sign_in(client)
    for token in (None, "forged"):
        data = {"id": "tx-1", "label": "fraud"}
        if token:
            data["csrf_token"] = token
        response = client.post("/alert/label", data=data)
        assert response.status_code == 403 and "CSRF" in response.text


def test_a_token_of_another_session_is_refused(app):
    first, second = TestClient(app), TestClient(app)
    _sign_in(first)
    _sign_in(second)
    stolen = _csrf(first.get("/login?next=/x", follow_redirects=True).text)
    response = second.post("/alert/label", data={"id": "x", "label": "fraud",
                                                 "csrf_token": stolen})
    assert response.status_code == 403


def test_every_post_route_checks_csrf(app):
    """Every form POST depends on require_csrf; the JSON API checks its header itself."""
    def walk(routes):
        for route in routes:
            inner = getattr(route, "original_router", None)  # an included router
            yield from walk(inner.routes) if inner is not None else (route,)

    posts = [r for r in walk(app.routes) if "POST" in (getattr(r, "methods", None) or ())]
    assert {r.path for r in posts} == {"/login", "/logout", "/alert/label", "/api/score"}
    for route in posts:
        calls = {d.call for d in route.dependant.dependencies}
        assert (require_csrf in calls) or route.path == "/api/score", route.path


def test_api_authentication(client):
    body = b'{"schema_version": 1}'
    json_type = {"Content-Type": "application/json"}
    assert client.post("/api/score", content=body, headers=json_type).status_code == 401
    bad = base64.b64encode(b"analyst:nope").decode()
    refused = client.post("/api/score", content=body,
                          headers={**json_type, "Authorization": f"Basic {bad}"})
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    good = base64.b64encode(f"analyst:{PASSWORD}".encode()).decode()
    as_form = client.post("/api/score", content=body, headers={
        "Content-Type": "text/plain", "Authorization": f"Basic {good}"})
    assert as_form.status_code == 415  # what a cross-site form could send
    invalid = client.post("/api/score", content=body,
                          headers={**json_type, "Authorization": f"Basic {good}"})
    assert invalid.status_code == 422 and invalid.json()["field"]
    _sign_in(client)  # a session without the CSRF header is not enough
    assert client.post("/api/score", content=body, headers=json_type).status_code == 403


def test_security_headers(client):
    response = client.get("/login")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("target,expected", [
    ("/alert?id=1", "/alert?id=1"), ("//evil.example", "/queue"), ("https://x", "/queue"),
    ("/\\evil", "/queue"), (None, "/queue"), ("/a\nb", "/queue")])
def test_redirect_after_sign_in_stays_on_the_site(target, expected):
    assert A.safe_next(target) == expected


def test_loopback_only():
    for host in ("127.0.0.1", "localhost", "::1"):
        check_loopback(host)
    for host in ("0.0.0.0", "8.8.8.8"):
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(host)


def test_users_from_the_environment(tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"{A.PASSWORD_ENV}=from-the-file\n{A.SESSION_KEY_ENV}={'k' * 20}\n")
    single = A.load_auth({}, secrets)
    assert single.names == ("analyst",) and single.check("analyst", "from-the-file")
    assert "from-the-file" not in repr(single)
    pairs = A.load_auth({A.USERS_ENV: "alice:alice-pass, bob:bob-secret"}, secrets)
    assert pairs.names == ("alice", "bob")
    assert pairs.check("bob", "bob-secret") and not pairs.check("alice", "bob-secret")
    for bad in ("alice", "alice:short", "a:longenough,a:longenough2", ":nameless1"):
        with pytest.raises(A.ConsoleConfigError):
            A.load_auth({A.USERS_ENV: bad}, secrets)
    with pytest.raises(A.ConsoleConfigError, match=A.PASSWORD_ENV):
        A.load_auth({}, tmp_path / "missing.env")
    with pytest.raises(A.ConsoleConfigError, match=A.SESSION_KEY_ENV):
        A.load_auth({A.PASSWORD_ENV: "long enough"}, tmp_path / "missing.env")


def test_csrf_ok():
    assert A.csrf_ok({A.SESSION_CSRF: "t" * 10}, "t" * 10)
    for session, given in (({}, "x"), ({A.SESSION_CSRF: "abc"}, None),
                           ({A.SESSION_CSRF: "abc"}, "abd"), ({A.SESSION_CSRF: ""}, "")):
        assert not A.csrf_ok(session, given)


def test_up_generates_the_console_secrets(tmp_path):
    from deploy.local.stack import CONSOLE_SECRET_VARS, LOCAL_SECRET_VARS, ensure_secrets

    assert CONSOLE_SECRET_VARS == A.GENERATED_SECRETS
    assert set(CONSOLE_SECRET_VARS) <= set(ensure_secrets(tmp_path, {}, LOCAL_SECRET_VARS))
    auth = A.load_auth({}, tmp_path / "secrets.env")
    assert auth.names == (A.DEFAULT_USER,) and len(auth.session_key.reveal()) >= 24
