"""The `fraudstream` command: one typer app, subcommands registered by the area that owns them.

Each area module exposes `register(app)`; heavy imports (pyflink, sklearn) stay inside the
command functions so `fraudstream --help` is instant. Before any command runs, the log lines
of the Kafka clients it creates are sent to `<home>/logs/kafka-clients.log`
(`connectors.kafka_logs`), so the terminal shows only the command's own output.
"""

from __future__ import annotations

import typer

from bench import cli as bench_cli
from deploy.local import cli as stack_cli
from jobs.cli import alerts, check, console, drift, lifecycle, metrics, model, retrain, rules, run
from jobs.cli.demo import command as demo_command
from jobs.cli.review import commands as review_commands
from models import cli as model_cli
from models.data import cli as data_cli

app = typer.Typer(
    help="fraudstream: real-time card-fraud detection on Apache Flink.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _before_any_command() -> None:
    route_kafka_logs()


def route_kafka_logs() -> None:
    """Kafka client log lines to `<home>/logs/kafka-clients.log` (the home of the environment's
    settings); when the settings cannot be read, the command itself will say why, and the
    lines are dropped rather than printed."""
    from connectors.kafka_logs import LOG_FILE_NAME, log_to_file
    from connectors.settings import load_settings

    try:
        logs_dir = load_settings().logs_dir
    except Exception:  # noqa: BLE001 - a bad setting is reported by the command that needs it
        log_to_file(None)
        return
    log_to_file(logs_dir / LOG_FILE_NAME)


for _area in (
    stack_cli,  # up, down, status
    data_cli,  # generate, load-kaggle
    model_cli,  # train, evaluate
    run,  # run, submit
    lifecycle,  # stop
    alerts,  # alerts
    model,  # model list | promote | shadow | unshadow | compare
    rules,  # rules add | list | disable | test
    retrain,  # retrain [--when-due] (analyst labels -> candidate in shadow)
    metrics,  # metrics (the job's dashboard from Prometheus)
    drift,  # drift reference | compute | watch | report
    check,  # check outputs (Great Expectations over the Postgres outputs)
    review_commands,  # review list | show | label | export-labels
    demo_command,  # demo
    console,  # console (the analyst web console)
    bench_cli,  # bench
):
    _area.register(app)
