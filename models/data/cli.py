"""`fraudstream generate` and `fraudstream load-kaggle`.

Both need the card-token key: `FRAUDSTREAM_CARD_TOKEN_KEY`, else the local stack's
`.fraudstream/secrets.env` (via `connectors.settings.load_settings`).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer


def _tokenizer():
    from schemas.card_token import KEY_ENV_VAR, CardTokenizer, MissingCardTokenKeyError

    try:
        return CardTokenizer.from_env()
    except MissingCardTokenKeyError as env_error:
        try:
            from connectors.settings import load_settings

            key = load_settings().card_token_key.reveal()
        except Exception:  # settings unavailable or malformed: report the env error
            key = ""
        if not key:
            raise typer.BadParameter(str(env_error), param_hint=KEY_ENV_VAR) from None
        return CardTokenizer(key.encode("utf-8"))


def _bootstrap(explicit: str | None) -> str:
    if explicit:
        return explicit
    from connectors.settings import load_settings

    return load_settings().kafka_bootstrap


def _summary(counts: Counter[str], total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rejected rows: {total}")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for reason, n in counts.most_common():
        table.add_row(reason, str(n))
    Console().print(table)


def _produce(records, topic: str, rate: float, bootstrap: str | None, total: int | None) -> None:
    """Produce with a progress bar; print the delivery accounting; exit 1 on any failure."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from connectors.kafka_producer import ProducerConfig, produce_transactions

    pconf = ProducerConfig(bootstrap=_bootstrap(bootstrap), topic=topic, rate=rate)
    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn()) as progress:
        task = progress.add_task(f"produce -> {topic}", total=total)
        stats = produce_transactions(
            records, pconf, on_progress=lambda k: progress.advance(task, k)
        )
    Console().print(
        f"sent {stats.sent}, delivered {stats.delivered}, failed {stats.failed} "
        f"in {stats.elapsed_s:.1f}s ({stats.rate:,.0f} msg/s)"
    )
    if stats.errors:
        _summary(stats.errors, stats.failed)
    if stats.failed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add `generate` and `load-kaggle` to the fraudstream CLI."""

    @app.command("generate")
    def generate_cmd(
        cards: int = typer.Option(1000, help="Number of cards.", envvar="FRAUDSTREAM_GEN_CARDS"),
        days: int = typer.Option(365, help="Days of traffic.", envvar="FRAUDSTREAM_GEN_DAYS"),
        seed: int = typer.Option(42, help="Random seed (same seed = same output).",
                                 envvar="FRAUDSTREAM_GEN_SEED"),
        start: str = typer.Option("2019-01-01", help="First day (YYYY-MM-DD, UTC).",
                                  envvar="FRAUDSTREAM_GEN_START"),
        out: Annotated[
            Path | None, typer.Option(help="Output file (.jsonl, .csv, .parquet).")
        ] = None,
        fmt: str | None = typer.Option(None, "--format", help="jsonl|csv|parquet (default: "
                                       "from the --out suffix)."),
        kafka: str | None = typer.Option(None, help="Produce to this Kafka topic instead."),
        rate: float = typer.Option(0.0, help="Messages per second to Kafka (0 = unthrottled).",
                                   envvar="FRAUDSTREAM_GEN_RATE"),
        bootstrap: str | None = typer.Option(
            None, help="Kafka bootstrap servers (default: the local stack's).",
            envvar="FRAUDSTREAM_KAFKA_BOOTSTRAP"),
        limit: int | None = typer.Option(None, help="Stop after this many transactions."),
        legit_during_episode: bool = typer.Option(False, help="Realism: keep legit traffic "
                                                  "during fraud episodes."),
        multiple_episodes: bool = typer.Option(False, help="Realism: extra fraud episodes."),
        impossible_travel: bool = typer.Option(False, help="Realism: card-present fraud far "
                                               "from home."),
        compromised_merchant: bool = typer.Option(False, help="Realism: fraud cards visited "
                                                  "a compromised merchant first."),
        relative_amounts: bool = typer.Option(False, help="Realism: fraud amounts relative "
                                              "to the card's usual spend."),
        realistic: bool = typer.Option(False, help="Turn on every realism option."),
    ) -> None:
        """Generate Sparkov-like card transactions to a file or a Kafka topic."""
        import itertools

        from rich.console import Console

        from models.data.generator import GeneratorConfig, expected_rows, generate
        from models.data.writers import with_progress, write_records

        if (out is None) == (kafka is None):
            raise typer.BadParameter("give exactly one of --out FILE or --kafka TOPIC")
        try:
            first_day = date.fromisoformat(start)
        except ValueError:
            raise typer.BadParameter("start must be YYYY-MM-DD", param_hint="--start") from None
        config = GeneratorConfig(
            cards=cards, days=days, seed=seed, start=first_day,
            legit_during_episode=legit_during_episode or realistic,
            multiple_episodes=multiple_episodes or realistic,
            impossible_travel=impossible_travel or realistic,
            compromised_merchant=compromised_merchant or realistic,
            relative_amounts=relative_amounts or realistic,
        )
        tokenizer = _tokenizer()
        total = expected_rows(config) if limit is None else limit
        records = generate(config, tokenizer)
        if limit is not None:
            records = itertools.islice(records, limit)
        console = Console()
        began = time.perf_counter()
        if out is not None:
            n = write_records(with_progress(records, total, f"generate -> {out.name}"), out, fmt)
            elapsed = time.perf_counter() - began
            console.print(f"wrote {n} transactions to {out} in {elapsed:.1f}s "
                          f"({n / max(elapsed, 1e-9):,.0f} rows/s)")
            return
        _produce(records, kafka, rate, bootstrap, total)

    @app.command("load-kaggle")
    def load_kaggle_cmd(
        path: Annotated[
            Path, typer.Argument(help="fraudTrain.csv / fraudTest.csv (Kaggle layout).")
        ],
        out: Annotated[Path | None, typer.Option(help="Write the valid rows here (.jsonl, .csv, "
                                                 ".parquet).")] = None,
        timezone: str = typer.Option("UTC", help="Time zone of trans_date_trans_time.",
                                     envvar="FRAUDSTREAM_KAGGLE_TZ"),
        show_rows: int = typer.Option(10, help="How many rejected rows to list."),
        kafka: str | None = typer.Option(None, help="Also replay the valid rows, in event-time "
                                         "order, to this Kafka topic."),
        rate: float = typer.Option(0.0, help="Messages per second to Kafka (0 = unthrottled).",
                                   envvar="FRAUDSTREAM_GEN_RATE"),
        bootstrap: str | None = typer.Option(
            None, help="Kafka bootstrap servers (default: the local stack's).",
            envvar="FRAUDSTREAM_KAFKA_BOOTSTRAP"),
    ) -> None:
        """Load a Kaggle-layout CSV: tokenize cards, validate, count rejected rows by reason.

        Optionally write the valid rows to a file and/or replay them to Kafka.
        """
        from rich.console import Console

        from models.data.kaggle import KaggleFormatError, load_kaggle_csv
        from models.data.writers import write_records
        from schemas.wire import format_event_time

        console = Console()
        began = time.perf_counter()
        try:
            result = load_kaggle_csv(path, _tokenizer(), timezone=timezone)
        except KaggleFormatError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(code=2) from None
        n_ok, n_bad = len(result.transactions), sum(result.rejected.values())
        console.print(f"{path}: {result.rows_read} rows, {n_ok} loaded, {n_bad} rejected "
                      f"({time.perf_counter() - began:.1f}s)")
        if result.transactions:
            frauds = sum(1 for t in result.transactions if t.label == 1)
            first = format_event_time(result.transactions[0].event_time_ms)
            last = format_event_time(result.transactions[-1].event_time_ms)
            console.print(f"fraud rate {frauds / n_ok:.3%}; event time {first} .. {last}")
        if n_bad:
            _summary(result.rejected, n_bad)
            for line, reason in result.rejected_rows[:show_rows]:
                console.print(f"  line {line}: {reason}")
        if out is not None:
            n = write_records(result.transactions, out)
            console.print(f"wrote {n} transactions to {out}")
        if kafka is not None:
            _produce(result.transactions, kafka, rate, bootstrap, n_ok)
