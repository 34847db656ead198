"""`fraudstream demo`: its flags (each with a FRAUDSTREAM_DEMO_* variable) become a
`DemoConfig` for `run.run_demo`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jobs.cli.common import fail, out, stop_on_sigint
from jobs.cli.demo.plan import DemoConfig, DemoError


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
    from jobs.cli.demo.run import run_demo  # noqa: PLC0415 - keeps --help fast

    config = DemoConfig(cards=cards, days=days, rate=rate, seed=seed, parallelism=parallelism,
                        keep_running=keep_running, timeout_s=timeout)
    try:
        with stop_on_sigint() as stop:
            code = run_demo(config, console=out, stop=stop)
    except DemoError as exc:
        raise fail(str(exc)) from exc
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `demo` to the fraudstream CLI."""
    app.command("demo")(demo_command)
