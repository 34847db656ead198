"""`fraudstream review list | show | label | export-labels`: the typer layer over
`ReviewRepository` (analyst role), printed by `render`."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from jobs.cli.common import fail, out, stack_settings
from jobs.cli.review import repository as review
from jobs.cli.review.render import detail_renderables, format_at, summary_table

ENV_REVIEWER = "FRAUDSTREAM_REVIEWER"


@contextmanager
def _analyst_repository() -> Iterator[review.ReviewRepository]:
    """A `ReviewRepository` on a fresh analyst connection; precise error if unreachable."""
    settings = stack_settings()
    import psycopg  # noqa: PLC0415

    try:
        conninfo = settings.pg_conninfo("analyst")
    except Exception as exc:  # SettingsError: names the missing variable, never its value
        raise fail(str(exc)) from exc
    try:
        conn = psycopg.connect(conninfo)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(
            f"cannot connect to Postgres {settings.pg_host}:{settings.pg_port} as the analyst "
            f"role: {first}. Is the stack up (`fraudstream up`)?"
        ) from exc
    try:
        yield review.ReviewRepository(conn)
    finally:
        conn.close()


review_app = typer.Typer(
    help="Review alerts in Postgres as the analyst role: list, show, label, export-labels.",
    no_args_is_help=True,
)


@review_app.command("list")
def review_list(
    status: Annotated[
        str, typer.Option(help="open, in_review, closed, or all.")
    ] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows.")] = 20,
) -> None:
    """List alerts, most recent event first."""
    try:
        wanted = review.validate_status(status)
    except review.InvalidReview as exc:
        raise fail(str(exc), code=2) from exc
    with _analyst_repository() as repo:
        rows = repo.list_alerts(status=wanted, limit=limit)
        counts = repo.count_by_status()
    if rows:
        out.print(summary_table(rows, out.width))
    else:
        out.print(f"no {'' if status == 'all' else status + ' '}alerts")
    out.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@review_app.command("show")
def review_show(transaction_id: Annotated[str, typer.Argument(help="Alert transaction id.")]) \
        -> None:
    """Show one alert with its reasons and feature snapshot."""
    with _analyst_repository() as repo:
        try:
            detail = repo.get(transaction_id)
        except review.AlertNotFound as exc:
            raise fail(str(exc)) from exc
    for part in detail_renderables(detail):
        out.print(part)


@review_app.command("label")
def review_label(
    transaction_id: Annotated[str, typer.Argument(help="Alert transaction id.")],
    label: Annotated[str, typer.Argument(help="fraud or legit.")],
    note: Annotated[str | None, typer.Option(help="Free-text note kept with the label.")] = None,
    reviewer: Annotated[
        str | None,
        typer.Option(envvar=ENV_REVIEWER, help=f"Who labels (env {ENV_REVIEWER}, default $USER)."),
    ] = None,
) -> None:
    """Label an alert fraud or legit and close it (labels are kept for retraining)."""
    if label not in review.LABELS:
        raise fail(f"label must be fraud or legit, not {label!r}", code=2)
    name = reviewer or os.environ.get("USER") or getpass.getuser()
    with _analyst_repository() as repo:
        try:
            result = repo.label(transaction_id, label, reviewer=name, note=note,
                                at=datetime.now(UTC))
        except (review.AlertNotFound, review.InvalidReview) as exc:
            raise fail(str(exc)) from exc
    was = f" (was {result.previous_label})" if result.previous_label else ""
    out.print(f"{escape(result.transaction_id)}: labelled [bold]{result.label}[/]{was} by "
              f"{escape(result.reviewer)} at {format_at(result.reviewed_at)}; status closed")


@review_app.command("export-labels")
def review_export_labels(
    out_path: Annotated[Path, typer.Option("--out", help="CSV file to write.")] = Path(
        "labels.csv"
    ),
) -> None:
    """Write every labelled alert to CSV for retraining.

    Columns: transaction_id, label, reviewed_at, model_version, score, event_time.
    """
    with _analyst_repository() as repo:
        tmp = out_path.with_name(out_path.name + ".tmp")
        try:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                count = repo.export_labels(fh)
            tmp.replace(out_path)  # never leave a half-written file under the real name
        except OSError as exc:
            raise fail(f"cannot write {out_path}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    out.print(f"{count} label(s) written to {out_path}")


def register(app: typer.Typer) -> None:
    """Add the `review` command group to the fraudstream CLI."""
    app.add_typer(review_app, name="review")
