"""Who may use the console, and proof that a form came from the console itself.

Users (read once at start-up, from the environment, else `<home>/secrets.env`):
  FRAUDSTREAM_CONSOLE_USERS     optional, `name:password` pairs separated by commas
                                (`alice:s3cret,bob:other`); each name signs its own labels
  FRAUDSTREAM_CONSOLE_PASSWORD  the password of the single user `analyst`, used when
                                FRAUDSTREAM_CONSOLE_USERS is unset (`fraudstream up` generates it)
  FRAUDSTREAM_CONSOLE_SESSION_KEY  signs the session cookie (`fraudstream up` generates it);
                                changing it signs everybody out

Sessions are starlette's signed cookie (itsdangerous): it holds the signed-in name and the
session's CSRF token, never a password. Every POST form carries that token in `csrf_token`
and is refused (403) when it is missing or differs (`csrf_ok`); the JSON API takes it in the
`X-CSRF-Token` header, or HTTP Basic credentials instead of the cookie.
Passwords are compared in constant time, and every configured user is checked, so the
answer's timing says nothing about which names exist.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.settings import Secret, read_env_file

USERS_ENV = "FRAUDSTREAM_CONSOLE_USERS"
PASSWORD_ENV = "FRAUDSTREAM_CONSOLE_PASSWORD"
SESSION_KEY_ENV = "FRAUDSTREAM_CONSOLE_SESSION_KEY"
# What `fraudstream up` generates for the local stack (deploy/local/stack.py names the same).
GENERATED_SECRETS = (PASSWORD_ENV, SESSION_KEY_ENV)
DEFAULT_USER = "analyst"
MIN_PASSWORD_CHARS = 8
MIN_SESSION_KEY_CHARS = 16
MAX_NAME_CHARS = 64

SESSION_USER = "user"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class ConsoleConfigError(RuntimeError):
    """A console secret is missing or malformed; the message names the variable (never the
    value) and the fix."""


@dataclass(frozen=True)
class ConsoleAuth:
    """The console's users and its cookie-signing key (both hidden from `repr`)."""

    users: Mapping[str, Secret] = field(repr=False)
    session_key: Secret = field(repr=False)

    def __post_init__(self) -> None:  # plain strings are accepted and held as Secret
        users = {n: p if isinstance(p, Secret) else Secret(p) for n, p in self.users.items()}
        object.__setattr__(self, "users", users)
        if not isinstance(self.session_key, Secret):
            object.__setattr__(self, "session_key", Secret(self.session_key))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.users)

    def check(self, name: str, password: str) -> bool:
        """True when `password` is `name`'s. Compares against every user, always."""
        given_name = name.encode("utf-8", "surrogatepass")
        given = password.encode("utf-8", "surrogatepass")
        ok = False
        for user, secret in self.users.items():
            name_ok = hmac.compare_digest(given_name, user.encode("utf-8"))
            password_ok = hmac.compare_digest(given, secret.reveal().encode("utf-8"))
            ok |= name_ok & password_ok
        return ok


def parse_users(text: str) -> dict[str, Secret]:
    """`name:password[,name:password...]` -> {name: password}; `ConsoleConfigError` on a
    malformed pair, a repeated or over-long name, or a password under 8 characters."""
    users: dict[str, Secret] = {}
    for raw in text.split(","):
        pair = raw.strip()
        if not pair:
            continue
        name, sep, password = pair.partition(":")
        name = name.strip()
        if not sep or not name:
            raise ConsoleConfigError(f"{USERS_ENV}: each entry must be name:password")
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise ConsoleConfigError(f"{USERS_ENV}: user name {name[:20]!r}... is not allowed")
        if name in users:
            raise ConsoleConfigError(f"{USERS_ENV}: user {name!r} appears twice")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ConsoleConfigError(
                f"{USERS_ENV}: the password of {name!r} is shorter than {MIN_PASSWORD_CHARS}")
        users[name] = Secret(password)
    if not users:
        raise ConsoleConfigError(f"{USERS_ENV} is set but names no user")
    return users


def load_auth(env: Mapping[str, str], secrets_file: Path) -> ConsoleAuth:
    """Users and session key from `env`, else from `secrets_file` (see module docstring)."""
    file_values = read_env_file(secrets_file)

    def value(name: str) -> str:
        return env.get(name) or file_values.get(name, "")

    fix = f"run `fraudstream up` (it generates it into {secrets_file}) or export it"
    users_text = value(USERS_ENV)
    if users_text:
        users = parse_users(users_text)
    else:
        password = value(PASSWORD_ENV)
        if not password:
            raise ConsoleConfigError(f"{PASSWORD_ENV} is not set and not in {secrets_file}: "
                                     f"{fix}, or set {USERS_ENV}")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ConsoleConfigError(f"{PASSWORD_ENV} is shorter than {MIN_PASSWORD_CHARS}")
        users = {DEFAULT_USER: Secret(password)}
    key = value(SESSION_KEY_ENV)
    if len(key) < MIN_SESSION_KEY_CHARS:
        state = "is not set" if not key else f"is shorter than {MIN_SESSION_KEY_CHARS} characters"
        raise ConsoleConfigError(f"{SESSION_KEY_ENV} {state}: {fix}")
    return ConsoleAuth(users=users, session_key=Secret(key))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def session_csrf(session: dict) -> str:
    """The session's CSRF token, made on first use (also for the signed-out login form)."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = session[SESSION_CSRF] = new_csrf_token()
    return token


def csrf_ok(session: Mapping, submitted: object) -> bool:
    """True only when the session has a token and `submitted` is exactly it."""
    expected = session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "surrogatepass"))


def safe_next(target: str | None, default: str = "/queue") -> str:
    """A redirect target after sign-in: a path on this site only (no `//host`, no scheme)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return default
    return target
