"""Operator commands: `fraudstream alerts`, `fraudstream review ...`, `fraudstream demo`.

Thin typer layer: flags and environment become a config, the logic lives in
`jobs/alerts_follow.py`, `jobs/cli/review.py` and `jobs/cli/demo.py`. Heavy or stack-dependent imports
(confluent-kafka, psycopg, the settings) stay inside the command functions so `--help` is
instant and works before the stack exists.

Exit codes: 0 ok, 1 a precise user-facing error (unknown alert id, stack not reachable, ...),
2 bad usage (typer's own).
"""

from __future__ import annotations

import getpass
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from jobs import alerts_follow
from jobs.cli import review
from schemas.alert import Alert

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ENV_ALERTS_TOPIC = "FRAUDSTREAM_ALERTS_TOPIC"
ENV_REVIEWER = "FRAUDSTREAM_REVIEWER"


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Any:
    """The stack settings, or a precise error when the foundation piece is missing."""
    try:
        from connectors.settings import load_settings  # noqa: PLC0415
    except ImportError as exc:
        raise _fail(f"connectors.settings is not available ({exc}); update your checkout") from exc
    try:
        return load_settings()
    except Exception as exc:  # settings raise their own precise errors; show them, no trace
        raise _fail(f"cannot load stack settings: {exc}. Run `fraudstream up` first.") from exc


@contextmanager
def stop_on_sigint() -> Iterator[threading.Event]:
    """Turn Ctrl-C into a stop flag, so loops end at their next poll and clean up.

    A second Ctrl-C falls back to the default handler (immediate KeyboardInterrupt).
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals only reach the main thread (e.g. under some test runners)
        return
    previous = signal.getsignal(signal.SIGINT)

    def _handler(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, _handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- alerts


def format_alert_line(alert: Alert) -> str:
    """One aligned, rich-markup line per alert for the streaming view (escaped text)."""
    time_s, card, amount, merchant, category, score, reasons = alerts_follow.alert_row(alert)
    merchant = merchant if len(merchant) <= 28 else merchant[:27] + "…"
    colour = "red" if alert.score >= 0.9 else "yellow"
    return (
        f"{time_s}  {card:>8}  {amount:>10}  {escape(merchant):<28}  {escape(category):<14}  "
        f"[{colour}]{score}[/]  {escape(reasons)}"
    )


ALERT_HEADER = (
    f"{'event time (UTC)':<19}  {'card':>8}  {'amount':>10}  {'merchant':<28}  "
    f"{'category':<14}  {'score':<5}  reasons"
)


def alerts_command(
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep waiting for new alerts until Ctrl-C."),
    ] = False,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning",
            help="With --follow, print the alerts already in the topic first "
            "(without --follow the existing alerts are always printed).",
        ),
    ] = False,
    max_alerts: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many alerts.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each alert as one JSON line (the wire form).")
    ] = False,
    topic: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_ALERTS_TOPIC,
            help=f"Alerts topic (env {ENV_ALERTS_TOPIC}; default: the stack's fraud-alerts).",
        ),
    ] = None,
) -> None:
    """Print alerts from the alerts topic as they arrive.

    Without --follow: print the alerts already in the topic, then exit.

    With --follow: wait for new ones until Ctrl-C or --max.

    Malformed messages are reported on stderr; they never stop the command.

    Offsets are never committed.
    """
    settings = _settings()
    from confluent_kafka import Consumer, KafkaException  # noqa: PLC0415

    topic = topic or settings.topic_alerts
    options = alerts_follow.FollowOptions(
        topic=topic, from_beginning=from_beginning, follow=follow, max_alerts=max_alerts
    )
    group_id = f"fraudstream-alerts-cli-{os.getpid()}"
    consumer = Consumer(alerts_follow.consumer_config(settings.kafka_bootstrap, group_id))
    header_shown = False

    def on_alert(alert: Alert) -> None:
        nonlocal header_shown
        if as_json:
            # Plain stdout: JSON lines must not be wrapped or styled.
            sys.stdout.write(alerts_follow.alert_json_line(alert) + "\n")
            sys.stdout.flush()
            return
        if not header_shown:
            out.print(f"[bold]{escape(ALERT_HEADER)}[/]", soft_wrap=True)
            header_shown = True
        out.print(format_alert_line(alert), soft_wrap=True)

    def on_malformed(partition: int, offset: int, why: str) -> None:
        if partition < 0:  # a consumer-level error, not a message
            err.print(f"[yellow]kafka:[/] {escape(why)}", soft_wrap=True)
            return
        err.print(f"[yellow]malformed alert[/] at partition {partition} offset {offset}: "
                  f"{escape(why)}", soft_wrap=True)

    if follow and not as_json:
        start = "the beginning" if from_beginning else "now"
        err.print(f"following [bold]{escape(topic)}[/] on {settings.kafka_bootstrap} from "
                  f"{start}; Ctrl-C to stop")
    try:
        with stop_on_sigint() as stop:
            stats = alerts_follow.follow(consumer, options, on_alert, on_malformed, stop.is_set)
    except LookupError as exc:
        raise _fail(
            f"{exc} on {settings.kafka_bootstrap}. Is the stack up (`fraudstream up`)?"
        ) from exc
    except KafkaException as exc:
        raise _fail(f"Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    finally:
        consumer.close()
    if not as_json:
        err.print(f"{stats.alerts} alert(s), {stats.malformed} malformed message(s)")


# --------------------------------------------------------------------------- review


@contextmanager
def _analyst_repository() -> Iterator[review.ReviewRepository]:
    """A `ReviewRepository` on a fresh analyst connection; precise error if unreachable."""
    settings = _settings()
    import psycopg  # noqa: PLC0415

    try:
        conninfo = settings.pg_conninfo("analyst")
    except Exception as exc:  # SettingsError: names the missing variable, never its value
        raise _fail(str(exc)) from exc
    try:
        conn = psycopg.connect(conninfo)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(
            f"cannot connect to Postgres {settings.pg_host}:{settings.pg_port} as the analyst "
            f"role: {first}. Is the stack up (`fraudstream up`)?"
        ) from exc
    try:
        yield review.ReviewRepository(conn)
    finally:
        conn.close()


def _fmt_time(at: datetime | None) -> str:
    return alerts_follow.format_time(at) if at is not None else "-"


def summary_table(rows: list[review.AlertSummary], width: int = 200) -> Table:
    """The `review list` table for a terminal `width` columns wide (masked card only).

    The id is what an analyst copies into `review show`, so it is never wrapped or cut.
    Columns that do not fit the width are left out (event time, category, merchant last;
    `review show` has everything) rather than squeezed into unreadable slivers.
    """
    show_review = len({r.review_status for r in rows}) > 1 or any(r.label for r in rows)
    columns: list[tuple[str, list[str], str]] = [
        ("transaction id", [escape(r.transaction_id) for r in rows], "left"),
        ("card", [r.card_masked for r in rows], "left"),
        ("amount", [f"{r.amount:,.2f}" for r in rows], "right"),
        ("score", [f"{r.score:.3f}" for r in rows], "right"),
    ]
    optional = [
        ("event time (UTC)",
         [r.event_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for r in rows], "left"),
        ("category", [escape(r.category) for r in rows], "left"),
        ("merchant", [escape(r.merchant) for r in rows], "left"),
    ]
    # A list of one status with no labels needs no review column; otherwise it is essential.
    if show_review:
        columns.append(("review", [r.review_status + (f": {r.label}" if r.label else "")
                                   for r in rows], "left"))

    def needed(cols: list[tuple[str, list[str], str]]) -> int:
        # box=None: columns are separated by their padding, two spaces.
        return sum(max(len(h), *(len(v) for v in vals)) + 2 for h, vals, _ in cols)

    for column in optional:
        if needed([*columns, column]) <= width:
            columns.append(column)
    table = Table(box=None, header_style="bold underline", pad_edge=False)
    for header, _, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for i in range(len(rows)):
        table.add_row(*(vals[i] for _, vals, _ in columns))
    return table


def detail_renderables(d: review.AlertDetail) -> list[Any]:
    """Panel of facts, reasons table and feature table for `review show`."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key, value in (
        ("transaction id", d.transaction_id),
        ("card", d.card_masked),
        ("event time", _fmt_time(d.event_time) + (" (late)" if d.is_late else "")),
        ("amount", f"{d.amount:,.2f}"),
        ("merchant", d.merchant),
        ("category", d.category),
        ("score / threshold", f"{d.score:.4f} / {d.threshold:.4f}"),
        ("model", d.model_version),
        ("alerted at", _fmt_time(d.created_at)),
        ("review status", d.review_status),
        ("label", d.label or "-"),
        ("reviewer", d.reviewer or "-"),
        ("reviewed at", _fmt_time(d.reviewed_at)),
        ("note", d.review_note or "-"),
    ):
        facts.add_row(key, escape(str(value)))
    reasons = Table(title="reasons", header_style="bold")
    for col in ("code", "feature", "value", "contribution"):
        reasons.add_column(col)
    for item in d.reasons or []:
        if isinstance(item, dict):
            reasons.add_row(*(escape(_cell(item.get(c))) for c in
                              ("code", "feature", "value", "contribution")))
        else:
            reasons.add_row(escape(str(item)), "", "", "")
    features = Table(title="feature snapshot", header_style="bold")
    features.add_column("feature")
    features.add_column("value", justify="right")
    for name, value in sorted((d.features or {}).items()):
        features.add_row(escape(name), _cell(value))
    return [Panel(facts, title=f"alert {escape(d.transaction_id)}"), reasons, features]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


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
        raise _fail(str(exc), code=2) from exc
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
            raise _fail(str(exc)) from exc
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
        raise _fail(f"label must be fraud or legit, not {label!r}", code=2)
    name = reviewer or os.environ.get("USER") or getpass.getuser()
    with _analyst_repository() as repo:
        try:
            result = repo.label(transaction_id, label, reviewer=name, note=note,
                                at=datetime.now(UTC))
        except (review.AlertNotFound, review.InvalidReview) as exc:
            raise _fail(str(exc)) from exc
    was = f" (was {result.previous_label})" if result.previous_label else ""
    out.print(f"{escape(result.transaction_id)}: labelled [bold]{result.label}[/]{was} by "
              f"{escape(result.reviewer)} at {_fmt_time(result.reviewed_at)}; status closed")


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
            raise _fail(f"cannot write {out_path}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    out.print(f"{count} label(s) written to {out_path}")


# --------------------------------------------------------------------------- demo


def _demo_opt(name: str, help_text: str, **kwargs: Any) -> Any:
    # typer prints the variable name next to the help ("env var: ...").
    return typer.Option(envvar=f"FRAUDSTREAM_DEMO_{name.upper()}", help=help_text, **kwargs)


def demo_command(
    cards: Annotated[int, _demo_opt("cards", "Number of cards to simulate.", min=1)] = 300,
    days: Annotated[int, _demo_opt("days", "Days of traffic to generate.", min=1)] = 30,
    rate: Annotated[
        float,
        _demo_opt("rate", "Produce rate in transactions/s, 0 = as fast as possible.", min=0.0),
    ] = 2000.0,
    seed: Annotated[
        int | None,
        _demo_opt("seed", "Generator seed (same seed, same traffic and transaction ids); "
                  "default: a new one per run, printed."),
    ] = None,
    parallelism: Annotated[
        int | None,
        _demo_opt("parallelism", "Job parallelism; default: the job's own.", min=1),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="Unbounded job, traffic produced while it runs; "
                     "live view until Ctrl-C."),
    ] = False,
    timeout: Annotated[
        float,
        _demo_opt("timeout", "Stop a bounded job that has not finished after this many "
                  "seconds.", min=10.0),
    ] = 600.0,
) -> None:
    """The one-command demo: stack, traffic with planted fraud, job, live view.

    Starts Kafka + Postgres (no Flink cluster) if needed.

    Produces CARDS x DAYS of transactions (default ~25k) to a fresh topic.

    Runs `fraudstream run --bounded` on the embedded MiniCluster (log in .fraudstream/logs/).

    Shows events/s, alerts, dead letters and the latest alerts until all is scored.
    """
    from jobs.cli import demo  # noqa: PLC0415

    config = demo.DemoConfig(cards=cards, days=days, rate=rate, seed=seed,
                             parallelism=parallelism, keep_running=keep_running,
                             timeout_s=timeout)
    try:
        with stop_on_sigint() as stop:
            code = demo.run_demo(config, console=out, stop=stop)
    except demo.DemoError as exc:
        raise _fail(str(exc)) from exc
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `alerts`, `review` and `demo` to the fraudstream app."""
    app.command("alerts")(alerts_command)
    app.add_typer(review_app, name="review")
    app.command("demo")(demo_command)
