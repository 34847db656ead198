"""`fraudstream console`: the analyst web console (jobs/console/) on a loopback address."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape

from jobs.cli.common import fail, out, stack_settings

ENV_HOST = "FRAUDSTREAM_CONSOLE_HOST"
ENV_PORT = "FRAUDSTREAM_CONSOLE_PORT"


def console(
    host: Annotated[str, typer.Option(
        envvar=ENV_HOST, help=f"Loopback address to listen on (env {ENV_HOST}).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        envvar=ENV_PORT, min=1, max=65535, help=f"Port (env {ENV_PORT}).")] = 28090,
) -> None:
    """Serve the analyst console: alert queue, alert pages with labelling, overview, and
    what-if scoring (POST /api/score). Sign in as `analyst` with FRAUDSTREAM_CONSOLE_PASSWORD
    (generated into .fraudstream/secrets.env by `fraudstream up`), or as a user of
    FRAUDSTREAM_CONSOLE_USERS (name:password,...)."""
    settings = stack_settings()
    import psycopg  # noqa: PLC0415 - keeps --help fast

    from connectors.settings import SettingsError
    from jobs.console.app import check_loopback, create_app, serve
    from jobs.console.auth import ConsoleConfigError, load_auth

    try:
        check_loopback(host)
        auth = load_auth(os.environ, settings.secrets_file)
        conninfo = settings.pg_conninfo("analyst")
    except (ValueError, ConsoleConfigError, SettingsError) as exc:
        raise fail(str(exc)) from exc
    try:
        psycopg.connect(conninfo).close()
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise fail(f"cannot connect to Postgres {settings.pg_host}:{settings.pg_port} as the "
                   f"analyst role: {first}. Is the stack up (`fraudstream up`)?") from exc
    app = create_app(settings, auth)
    where = f"[{host}]" if ":" in host else host
    out.print(f"fraudstream console on [bold]http://{where}:{port}/[/] for "
              f"{escape(', '.join(auth.names))}; Ctrl-C stops it")
    try:
        serve(app, host, port)
    except OSError as exc:  # port taken
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def register(app: typer.Typer) -> None:
    """Add the `console` command to the fraudstream CLI."""
    app.command("console")(console)
