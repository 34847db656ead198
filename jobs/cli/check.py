"""`fraudstream check outputs`: Great Expectations over the job's Postgres output tables.

Runs the checkpoint of `models.output_quality` as the analyst role (read-only transactions)
through GX's SQL data source, prints which expectations failed per table and renders the
data docs (HTML) under `<home>/data_docs/outputs/`. Exit 0 when every expectation holds,
1 when one fails (or the database cannot be read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.common import err, fail, out, stack_settings

check_app = typer.Typer(help="Data quality checks.", no_args_is_help=True)


@check_app.command("outputs")
def outputs(
    since: Annotated[str, typer.Option(
        "--since", help="Rows with event time (aggregates: window start; dead letters: time "
        "of rejection) since: a duration (90m, 24h, 7d), an ISO date/time, or 'all'.")] = "24h",
    schema: Annotated[str, typer.Option(
        help="Schema holding the four tables (a scratch copy, for instance).")] = "public",
    docs: Annotated[Path | None, typer.Option(
        help="Data docs folder (default <home>/data_docs/outputs).")] = None,
) -> None:
    """Check scored_transactions, alerts, aggregates and rejected_events: ids unique, scores
    in [0, 1], decisions, alerts matched by their scored row, masked cards only, no event time
    in the future, positive counts, dead letters with a reason. Exit 1 names what failed."""
    from jobs.cli.drift import parse_when
    from models.output_quality import OutputCheckError, check_outputs, connection_string

    settings = stack_settings()
    start = None if since.strip().lower() == "all" else parse_when(since)
    try:
        user, password = settings.credentials("analyst")
    except Exception as exc:  # noqa: BLE001 - SettingsError names the variable
        raise fail(str(exc)) from exc
    url = connection_string(settings.pg_host, settings.pg_port, settings.pg_database, user)
    docs_dir = docs or settings.home / "data_docs" / "outputs"
    try:
        report = check_outputs(url, password, docs_dir, schema=schema, since=start)
    except (ValueError, OutputCheckError) as exc:
        raise fail(f"cannot check the outputs: {exc}") from exc
    (out if report.success else err).print(report.render(), soft_wrap=True, markup=False)
    if not report.success:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(check_app, name="check")
