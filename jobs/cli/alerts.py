"""`fraudstream alerts`: print alerts from the alerts topic (the reading and decoding is
`jobs.cli.alerts_follow`; this is the typer layer and the terminal format)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from connectors.kafka_logs import client_config
from jobs.cli import alerts_follow
from jobs.cli.common import err, fail, out, stack_settings, stop_on_sigint
from schemas.alert import Alert

ENV_ALERTS_TOPIC = "FRAUDSTREAM_ALERTS_TOPIC"


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
    settings = stack_settings()
    from confluent_kafka import Consumer, KafkaException  # noqa: PLC0415

    topic = topic or settings.topic_alerts
    options = alerts_follow.FollowOptions(
        topic=topic, from_beginning=from_beginning, follow=follow, max_alerts=max_alerts
    )
    group_id = f"fraudstream-alerts-cli-{os.getpid()}"
    consumer = Consumer(
        client_config(alerts_follow.consumer_config(settings.kafka_bootstrap, group_id))
    )
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
        raise fail(
            f"{exc} on {settings.kafka_bootstrap}. Is the stack up (`fraudstream up`)?"
        ) from exc
    except KafkaException as exc:
        raise fail(f"Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    finally:
        consumer.close()
    if not as_json:
        err.print(f"{stats.alerts} alert(s), {stats.malformed} malformed message(s)")


def register(app: typer.Typer) -> None:
    """Add `alerts` to the fraudstream CLI."""
    app.command("alerts")(alerts_command)
