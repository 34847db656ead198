"""`run_demo`: the demo's orchestration, step by step (see the package docstring)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from connectors.kafka_logs import client_config
from jobs.cli.demo.context import Baseline, DemoRun
from jobs.cli.demo.counters import db_now
from jobs.cli.demo.job import explain_failure, start_job
from jobs.cli.demo.live import EXIT_STOPPED, EXIT_TIMEOUT, watch_job
from jobs.cli.demo.plan import (
    DEMO_TOPIC_PREFIX,
    DemoConfig,
    DemoError,
    new_run_id,
    stale_demo_topics,
)
from jobs.cli.demo.preflight import preflight
from jobs.cli.demo.topics import (
    create_topic,
    delete_topics,
    end_offsets,
    job_output_topics,
    list_topics,
)
from jobs.cli.demo.traffic import BackgroundSender, Traffic, generate_traffic, produce_before_job
from jobs.cli.demo.view import DemoStats, summary_lines
from jobs.cli.demo.watcher import AlertWatcher


def run_demo(config: DemoConfig, console: Console, stop: threading.Event) -> int:
    """Run the demo; return the process exit code (0 ok). Raises DemoError when blocked."""
    missing = preflight()
    if missing:
        raise DemoError(
            "the demo cannot run, missing pieces:\n  - " + "\n  - ".join(missing)
        )

    from deploy.local.stack import ensure_up  # noqa: PLC0415

    console.print("[bold]1/4[/] local stack (Kafka, Postgres; no Flink cluster) ...")
    try:
        settings = ensure_up(
            flink_cluster=False, report=lambda line: console.print("  " + escape(line))
        )
    except Exception as exc:  # StackError: one line naming the cause and the log file
        raise DemoError(f"the local stack did not come up: {exc}") from exc

    started = datetime.now(UTC)
    run_id = new_run_id(started, os.urandom(2).hex())
    run = DemoRun(
        config=config, settings=settings, console=console, stop=stop,
        stats=DemoStats(run_id=run_id, topic=DEMO_TOPIC_PREFIX + run_id),
        lock=threading.Lock(), topics=job_output_topics(settings), started=started,
        seed=config.seed if config.seed is not None else int(started.timestamp()) % 1_000_000,
    )
    bootstrap = settings.kafka_bootstrap
    delete_topics(bootstrap, stale_demo_topics(list_topics(bootstrap), started))
    create_topic(bootstrap, run.source_topic, settings.kafka_partitions)
    try:
        return _run_on_topic(run)
    finally:
        # The scored results live in Postgres and the alerts topic; the source topic goes.
        delete_topics(bootstrap, [run.source_topic])


def _run_on_topic(run: DemoRun) -> int:
    """Steps 2-4 of `run_demo` on the run's fresh topic; returns the exit code."""
    import psycopg  # noqa: PLC0415

    traffic = generate_traffic(run)
    run.stats.planted_fraud = len(traffic.fraud_ids)
    consumer, dlq_start = _alerts_consumer(run)
    watcher = AlertWatcher(consumer, run.stats, set(traffic.run_ids), set(traffic.fraud_ids),
                           run.lock)
    watcher.start()
    config = run.config
    run.console.print(f"[bold]3/4[/] producing {len(traffic.records):,} transactions "
                      f"({run.stats.planted_fraud} planted fraud) to {run.source_topic} at "
                      f"{'max' if not config.rate else f'{config.rate:,.0f}/s'}"
                      f"{' while the job runs' if config.keep_running else ''} ...")
    conn = psycopg.connect(run.settings.pg_conninfo("analyst"))
    try:
        baseline = Baseline(db_now(conn), dlq_start, sorted(traffic.run_ids))
        return _produce_and_score(run, traffic, conn, baseline, watcher)
    finally:
        watcher.stop.set()
        watcher.join(timeout=5)
        consumer.close()
        conn.close()


def _alerts_consumer(run: DemoRun) -> tuple[Any, int]:
    """A consumer assigned to the alerts topic at its current end (before any scoring), and
    the DLQ topic's record count now."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer(client_config({
        "bootstrap.servers": run.settings.kafka_bootstrap,
        "group.id": f"fraudstream-demo-view-{run.run_id}",
        "enable.auto.commit": False,
    }))
    alerts = run.topics.alerts
    consumer.assign([
        TopicPartition(alerts, p, end) for p, end in end_offsets(consumer, alerts).items()
    ])
    return consumer, sum(end_offsets(consumer, run.topics.dlq).values())


def _produce_and_score(run: DemoRun, traffic: Traffic, conn: Any, baseline: Baseline,
                       watcher: AlertWatcher) -> int:
    """Produce the traffic (first, or while an unbounded job runs), run the job with the live
    view, then print the summary; returns the exit code."""
    sender = None
    if run.config.keep_running:
        sender = BackgroundSender(run, traffic)
    else:
        produce_before_job(run, traffic)
        if run.stop.is_set():
            run.console.print("stopped before the job started")
            return EXIT_STOPPED
    job, log_path = start_job(run)
    job_started = time.monotonic()
    if sender is not None:
        sender.start()
    code = watch_job(run, job, conn, baseline, watcher)
    job_seconds = time.monotonic() - job_started
    if sender is not None:
        sender.join(timeout=30)
    return _report(run, code, log_path, job_seconds, sender.error if sender else None)


def _report(run: DemoRun, code: int, log_path: Path, job_seconds: float,
            sender_error: BaseException | None) -> int:
    """The summary, then what went wrong if anything did; returns the demo's exit code."""
    console, stats, config = run.console, run.stats, run.config
    console.print()
    for line in summary_lines(stats, log_path, job_seconds):
        console.print(line, soft_wrap=True)
    if sender_error is not None:
        console.print(f"[red]producing traffic failed:[/] {escape(str(sender_error))}")
        return 1
    if code == EXIT_STOPPED and run.stop.is_set():
        console.print("stopped by Ctrl-C before the job had read all the traffic")
        return code
    if code == EXIT_TIMEOUT:
        console.print(f"[red]the scoring job did not finish within {config.timeout_s:.0f} s[/] "
                      "(--timeout); it was stopped")
    elif code != 0:
        console.print(f"[red]the scoring job ended with exit code {code}[/]")
    elif not config.keep_running and stats.scored < stats.produced:
        console.print(
            f"[yellow]warning:[/] the job finished but only {stats.scored:,} of "
            f"{stats.produced:,} transactions are in scored_transactions",
            soft_wrap=True,
        )
        code = 1
    else:
        return 0
    explain_failure(console, log_path)
    return code
