"""`fraudstream demo`: the README's one-command demo, end to end on the local stack.

Steps (each says what is missing if it cannot run):
1. Preflight: the pieces the demo drives (stack control, generator, producer, scoring job CLI,
   default model) must be importable / present.
2. Stack up without a Flink cluster (`deploy.local.stack.ensure_up`): Kafka and Postgres.
3. A fresh source topic for this run (`fraudstream-demo-<run id>`, deleted when the run ends),
   so a bounded job reads exactly this run's traffic; the job's usual DLQ / alerts topics and
   tables receive the results.
4. Generated traffic with planted fraud episodes (plus a few malformed records, to show the
   dead-letter path) produced to that topic at `rate` per second: before the job starts
   (bounded), or while it runs (`keep_running`, unbounded job).
5. The scoring job on the embedded MiniCluster as a subprocess (`fraudstream run`, its own
   session so stopping it reaches its JVM), logs to `<home>/logs/demo-<run id>.log`.
6. A live view (rich Live): events/s scored and scored so far (Postgres), alerts and planted
   frauds caught (alerts topic, only this run's transactions), DLQ records, latest alerts with
   reasons; it ends when the bounded job finishes, or on Ctrl-C with `keep_running`.
7. A summary (exact per-run counts, recall/precision on the planted fraud) and the commands
   to look further; on failure the job's root cause and the log tail.

Pure parts (`DemoStats`, `render_live`, `summary_lines`, `job_command`) take everything as
parameters and are unit-tested; `run_demo` is the orchestration.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from jobs.alerts_follow import MalformedAlert, decode_alert, event_time, top_reason_codes
from schemas.alert import Alert

DEMO_TOPIC_PREFIX = "fraudstream-demo-"
LATEST_ALERTS_SHOWN = 6

# Malformed records produced with the traffic so the DLQ count is visibly non-zero. None holds
# a card number: the dead-letter table keeps raw payloads.
MALFORMED_RECORDS: tuple[bytes, ...] = (
    b"{this is not json",
    json.dumps({"schema_version": 99, "transaction_id": "demo-bad-version"}).encode(),
    json.dumps({"transaction_id": "demo-missing-fields"}).encode(),
)


class DemoError(RuntimeError):
    """The demo cannot run; the message says what is missing and how to get it."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Built by `fraudstream demo` from its flags."""

    cards: int = 300
    days: int = 30
    rate: float = 2000.0  # transactions/s produced; 0 = as fast as possible
    seed: int | None = None  # None: a fresh seed per run (printed, so a run can be repeated)
    start: date = date(2020, 6, 1)
    keep_running: bool = False
    timeout_s: float = 600.0
    parallelism: int | None = None  # None: the job's default
    refresh_s: float = 1.0


# --------------------------------------------------------------------------- pure parts


@dataclass(slots=True)
class DemoStats:
    """What the live view shows; updated by the pollers, rendered by `render_live`."""

    run_id: str
    topic: str
    phase: str = "starting"
    produced: int = 0
    planted_fraud: int = 0
    malformed_sent: int = 0
    scored: int = 0
    scored_rate: float = 0.0  # events/s over the last refresh
    peak_rate: float = 0.0  # highest events/s seen over one refresh
    alerts: int = 0
    fraud_caught: int = 0
    dlq: int = 0
    malformed_alerts: int = 0
    elapsed_s: float = 0.0
    latest: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=LATEST_ALERTS_SHOWN)
    )


def render_live(stats: DemoStats) -> Group:
    """The live panel: counters on top, the latest alerts with their reasons below."""
    counters = Table.grid(padding=(0, 3))
    for _ in range(4):
        counters.add_column()
    counters.add_row(
        f"[bold]phase[/] {escape(stats.phase)}",
        f"[bold]elapsed[/] {stats.elapsed_s:5.0f} s",
        f"[bold]produced[/] {stats.produced:,}",
        f"[bold]planted fraud[/] {stats.planted_fraud:,}",
    )
    counters.add_row(
        f"[bold]scored[/] {stats.scored:,}",
        f"[bold]events/s[/] {stats.scored_rate:,.0f}",
        f"[bold]alerts[/] {stats.alerts:,} ({stats.fraud_caught:,} fraud)",
        f"[bold]DLQ[/] {stats.dlq:,}",
    )
    latest = Table(title="latest alerts", header_style="bold", expand=True,
                   box=box.SIMPLE_HEAD, pad_edge=False)
    # Fixed-width facts keep their width; the reasons column takes what is left and is cut.
    for name, width in (("event time (UTC)", 16), ("card", 8), ("amount", 9),
                        ("category", 12), ("score", 5)):
        latest.add_column(name, no_wrap=True, min_width=width,
                          justify="right" if name in ("amount", "score") else "left")
    latest.add_column("top reasons", overflow="ellipsis", no_wrap=True, ratio=1)
    for alert in reversed(stats.latest):
        latest.add_row(
            event_time(alert).strftime("%Y-%m-%d %H:%M"),
            alert.card_masked,
            f"{alert.amount:,.2f}",
            escape(alert.category),
            f"{alert.score:.3f}",
            escape(top_reason_codes(alert, 3)),
        )
    return Group(counters, latest)


def summary_lines(stats: DemoStats, log_path: Path, job_seconds: float | None) -> list[str]:
    """The closing summary (rich markup) with the commands to look further."""
    lines = [
        f"[bold]demo run {escape(stats.run_id)}[/] (topic {escape(stats.topic)})",
        f"  produced     {stats.produced:,} transactions, {stats.planted_fraud:,} planted fraud, "
        f"{stats.malformed_sent} malformed",
        f"  scored       {stats.scored:,}"
        + (f" in {job_seconds:.0f} s of job time (JVM start included)" if job_seconds else "")
        + (f", peak {stats.peak_rate:,.0f} events/s" if stats.peak_rate else ""),
        f"  alerts       {stats.alerts:,}",
    ]
    if stats.planted_fraud:
        recall = stats.fraud_caught / stats.planted_fraud
        precision = stats.fraud_caught / stats.alerts if stats.alerts else 0.0
        lines.append(
            f"  caught       {stats.fraud_caught:,} of {stats.planted_fraud:,} planted frauds "
            f"(recall {recall:.1%}, precision {precision:.1%})"
        )
    lines += [
        f"  dead letters {stats.dlq:,}",
        f"  job log      {log_path}",
        "",
        "Look further:",
        "  fraudstream review list               # open alerts in Postgres (analyst role)",
    ]
    if stats.latest:
        lines.append(
            f"  fraudstream review show {escape(stats.latest[-1].transaction_id)}"
            "   # one alert, reasons and features"
        )
    lines.append("  fraudstream alerts --from-beginning   # the alerts topic")
    return lines


def job_command(
    topic: str, run_id: str, *, bounded: bool, parallelism: int | None, python: str
) -> list[str]:
    """`fraudstream run` for the demo: this run's topic, its own consumer group, from earliest."""
    cmd = [python, "-m", "jobs.cli", "run", "--source-topic", topic]
    cmd += ["--set", f"group_id=fraudstream-demo-{run_id}", "--set", "start_from=earliest"]
    if bounded:
        cmd.append("--bounded")
    if parallelism is not None:
        cmd += ["--parallelism", str(parallelism)]
    return cmd


def episode_share(days: int, cards: int, min_episodes: int = 3) -> float:
    """Share of cards with a fraud episode so a short run keeps a realistic fraud rate.

    The generator's default (0.98 of cards get one episode per run) is calibrated on 1-2 year
    runs (~0.5-1 % fraud); a 30-day demo would otherwise be ~12 % fraud. Scaling by the run
    length keeps it near 1 %; a tiny run still gets about `min_episodes` planted episodes.
    """
    return min(0.98, max(0.98 * days / 365, min_episodes / cards))


def rate_of(samples: Iterable[tuple[float, int]]) -> float:
    """Events per second between the first and last (time s, count) sample; 0 if undefined."""
    points = list(samples)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return 0.0
    return max(0.0, (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]))


def new_run_id(now: datetime, suffix: str) -> str:
    """A sortable, unique id for one demo run, e.g. `20261122-023105-a1b2`."""
    return now.astimezone(UTC).strftime("%Y%m%d-%H%M%S") + f"-{suffix}"


def stale_demo_topics(names: Iterable[str], now: datetime,
                      max_age: timedelta = timedelta(hours=24)) -> list[str]:
    """Source topics of demo runs started more than `max_age` before `now`.

    A run deletes its own topic when it ends; this finds those left by runs that crashed,
    without touching a demo that may still be running. Names that do not parse are kept.
    """
    stale = []
    for name in names:
        if not name.startswith(DEMO_TOPIC_PREFIX):
            continue
        stamp = name[len(DEMO_TOPIC_PREFIX):][:15]
        try:
            started = datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        if now - started > max_age:
            stale.append(name)
    return sorted(stale)


# --------------------------------------------------------------------------- preflight

# (module, attribute, what it is, who provides it)
_REQUIRED = (
    ("deploy.local.stack", "ensure_up", "local stack control", "foundation"),
    ("connectors.settings", "load_settings", "stack settings", "foundation"),
    ("models.data.generator", "generate", "traffic generator", "data"),
    ("connectors.kafka_producer", "produce_transactions", "Kafka producer", "data"),
    ("schemas.card_token", "CardTokenizer", "card tokenizer", "data"),
    ("jobs.cli.run", "register", "scoring job CLI (`fraudstream run`)", "job"),
    ("jobs.scoring_job", None, "scoring job", "job"),
)


def preflight() -> list[str]:
    """Names of the missing pieces, one precise line each (empty when all is there)."""
    missing = []
    for module, attr, what, _owner in _REQUIRED:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{what}: cannot import {module} ({exc})")
            continue
        if attr and not hasattr(mod, attr):
            missing.append(f"{what}: {module}.{attr} is missing")
    try:
        default_model_path()
    except DemoError as exc:
        missing.append(str(exc))
    return missing


def default_model_path() -> Path:
    """The default model the job loads (`models.scoring.resolve_model_path(None)`, i.e. the
    registry's default); DemoError naming what is missing if there is none."""
    try:
        from models.scoring import resolve_model_path  # noqa: PLC0415
    except ImportError as exc:
        raise DemoError(f"default model: cannot import models.scoring ({exc})") from exc
    try:
        return resolve_model_path(None)
    except Exception as exc:  # RegistryError / FileNotFoundError: their text names the file
        raise DemoError(f"default model: {exc}") from exc


# --------------------------------------------------------------------------- side effects


class _AlertWatcher(threading.Thread):
    """Consumes the alerts topic from the offsets it had when the demo started.

    Counts distinct alerts of this run's transactions (the topic is shared and at-least-once)
    and the planted frauds among them; keeps the latest few for the live view.
    """

    def __init__(self, consumer: Any, stats: DemoStats, run_ids: set[str],
                 fraud_ids: set[str], lock: threading.Lock) -> None:
        super().__init__(name="demo-alert-watcher", daemon=True)
        self._consumer = consumer
        self._stats = stats
        self._run_ids = run_ids
        self._fraud_ids = fraud_ids
        self._lock = lock
        self._seen: set[str] = set()
        self.stop = threading.Event()
        self.last_message_at = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self._consumer.poll(0.3)
            if msg is None or msg.error() is not None:
                continue
            self.last_message_at = time.monotonic()
            try:
                alert = decode_alert(msg.value())
            except MalformedAlert:
                with self._lock:
                    self._stats.malformed_alerts += 1
                continue
            self.handle(alert)

    def handle(self, alert: Alert) -> None:
        tx = alert.transaction_id
        if tx not in self._run_ids or tx in self._seen:
            return
        self._seen.add(tx)
        with self._lock:
            self._stats.alerts += 1
            if tx in self._fraud_ids:
                self._stats.fraud_caught += 1
            self._stats.latest.append(alert)


@dataclass(frozen=True, slots=True)
class OutputTopics:
    alerts: str
    dlq: str


def job_output_topics(settings: Any) -> OutputTopics:
    """The alerts and DLQ topics the job subprocess will write: resolved exactly as it does
    (`jobs.config.build_config`: flags > FRAUDSTREAM_* env > stack settings > defaults)."""
    from jobs.config import build_config  # noqa: PLC0415

    cfg = build_config({}, stack={"kafka_bootstrap": settings.kafka_bootstrap})
    return OutputTopics(alerts=cfg.alerts_topic, dlq=cfg.dlq_topic)


def _end_offsets(consumer: Any, topic: str) -> dict[int, int]:
    from confluent_kafka import TopicPartition  # noqa: PLC0415

    md = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error is not None:
        return {}
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in md.partitions
    }


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)
    futures[topic].result(timeout=30)


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete topics, best effort (cleanup must never fail a demo)."""
    if not names:
        return
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def _list_topics(bootstrap: str) -> list[str]:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    return list(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def _scored_since(conn: Any, since: datetime) -> int:
    """Rows inserted into scored_transactions since `since` (database clock): the live count.

    Cheap enough to poll every second. It counts every writer's inserts, so it is exact only
    when the demo job is the one writing; the summary uses `_scored_of_run`.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM scored_transactions WHERE scored_at >= %s", (since,))
        (count,) = cur.fetchone()
    conn.rollback()
    return int(count)


def _scored_of_run(conn: Any, run_ids: list[str]) -> int:
    """How many of this run's transactions are in scored_transactions (exact; ~1 s for 25k)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM scored_transactions WHERE transaction_id = ANY(%s)", (run_ids,)
        )
        (count,) = cur.fetchone()
    conn.rollback()
    return int(count)


def _db_now(conn: Any) -> datetime:
    with conn.cursor() as cur:
        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
    conn.rollback()
    return now


def _produce(settings: Any, topic: str, records: Iterable[Any], rate: float,
             on_progress: Callable[[int], None], stop: threading.Event) -> Any:
    """Produce transactions with the project's producer; Ctrl-C (`stop`) ends it early.

    Returns its `DeliveryStats`; DemoError if any message was not delivered.
    """
    from connectors.kafka_producer import ProducerConfig, produce_transactions  # noqa: PLC0415

    def until_stopped() -> Iterable[Any]:
        for record in records:
            if stop.is_set():
                return
            yield record

    delivery = produce_transactions(
        until_stopped(), ProducerConfig(bootstrap=settings.kafka_bootstrap, topic=topic,
                                        rate=rate), on_progress=on_progress,
    )
    if delivery.failed:
        raise DemoError(f"{delivery.failed} transactions were not delivered to {topic}: "
                        f"{dict(delivery.errors)}")
    return delivery


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
    seed = config.seed if config.seed is not None else int(started.timestamp()) % 1_000_000
    topic = DEMO_TOPIC_PREFIX + run_id
    stats = DemoStats(run_id=run_id, topic=topic)
    _delete_topics(settings.kafka_bootstrap,
                   stale_demo_topics(_list_topics(settings.kafka_bootstrap), started))
    _create_topic(settings.kafka_bootstrap, topic, settings.kafka_partitions)
    try:
        return _run_on_topic(config, settings, console, stop, stats, started, seed)
    finally:
        # The scored results live in Postgres and the alerts topic; the source topic goes.
        _delete_topics(settings.kafka_bootstrap, [topic])


def _run_on_topic(config: DemoConfig, settings: Any, console: Console, stop: threading.Event,
                  stats: DemoStats, started: datetime, seed: int) -> int:
    """Steps 2-4 of `run_demo` on the run's fresh topic; returns the exit code."""
    from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: PLC0415

    from models.data.generator import GeneratorConfig, generate  # noqa: PLC0415
    from schemas.card_token import CardTokenizer  # noqa: PLC0415

    run_id, topic = stats.run_id, stats.topic
    lock = threading.Lock()
    topics = job_output_topics(settings)

    # Generate first (in memory: the default size is a few tens of thousands of records),
    # so the live view knows the run's ids and planted frauds.
    console.print(f"[bold]2/4[/] generating {config.cards} cards x {config.days} days "
                  f"(seed {seed}) ...")
    gen_cfg = GeneratorConfig(cards=config.cards, days=config.days, seed=seed,
                              start=config.start,
                              episode_card_share=episode_share(config.days, config.cards))
    tokenizer = CardTokenizer(settings.card_token_key.encode())
    records = list(generate(gen_cfg, tokenizer))
    run_ids = {r.transaction_id for r in records}
    fraud_ids = {r.transaction_id for r in records if r.label == 1}
    stats.planted_fraud = len(fraud_ids)

    # The alerts watcher starts at the alerts topic's current end, before any scoring.
    watcher_consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"fraudstream-demo-view-{run_id}",
        "enable.auto.commit": False,
    })
    watcher_consumer.assign([
        TopicPartition(topics.alerts, p, end)
        for p, end in _end_offsets(watcher_consumer, topics.alerts).items()
    ])
    dlq_start = sum(_end_offsets(watcher_consumer, topics.dlq).values())
    watcher = _AlertWatcher(watcher_consumer, stats, run_ids, fraud_ids, lock)
    watcher.start()

    console.print(f"[bold]3/4[/] producing {len(records):,} transactions "
                  f"({stats.planted_fraud} planted fraud) to {topic} at "
                  f"{'max' if not config.rate else f'{config.rate:,.0f}/s'}"
                  f"{' while the job runs' if config.keep_running else ''} ...")
    import psycopg  # noqa: PLC0415

    conn = psycopg.connect(settings.pg_conninfo("analyst"))
    db_start = _db_now(conn)

    def send(on_progress: Callable[[int], None]) -> None:
        """All generated records, then the malformed ones (to show the dead-letter path)."""
        delivery = _produce(settings, topic, records, config.rate, on_progress, stop)
        bad = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        for payload in MALFORMED_RECORDS:
            bad.produce(topic, payload)
        bad.flush(10)
        with lock:
            stats.produced = delivery.sent
            stats.malformed_sent = len(MALFORMED_RECORDS)

    def count(sent_since_last: int) -> None:
        with lock:
            stats.produced += sent_since_last

    sender: threading.Thread | None = None
    sender_error: list[BaseException] = []
    if config.keep_running:
        # The job is unbounded: traffic flows while it runs, so the live rate is real time.
        def send_in_background() -> None:
            try:
                send(count)
            except BaseException as exc:  # reported after the live view ends
                sender_error.append(exc)
                stop.set()

        sender = threading.Thread(target=send_in_background, name="demo-producer", daemon=True)
    else:
        # A bounded job reads up to the offsets that exist when it starts: produce first.
        stats.phase = "producing"
        with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task("producing", total=len(records))

            def count_and_show(sent_since_last: int) -> None:
                count(sent_since_last)
                progress.advance(task, sent_since_last)

            send(count_and_show)
        if stop.is_set():
            watcher.stop.set()
            conn.close()
            console.print("stopped before the job started")
            return 130

    log_path = settings.logs_dir / f"demo-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = job_command(topic, run_id, bounded=not config.keep_running,
                      parallelism=config.parallelism, python=sys.executable)
    console.print(f"[bold]4/4[/] scoring job on the embedded MiniCluster "
                  f"({'until Ctrl-C' if config.keep_running else 'bounded'}); log: {log_path}")
    job_started = time.monotonic()
    with log_path.open("wb") as log:
        job = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                               cwd=Path(__file__).resolve().parents[2],
                               start_new_session=True)
    if sender is not None:
        sender.start()
    code = _live(config, settings, topics, console, stats, lock, job, conn, db_start,
                 sorted(run_ids), watcher, dlq_start, stop, started)
    job_seconds = time.monotonic() - job_started
    if sender is not None:
        sender.join(timeout=30)
    watcher.stop.set()
    watcher.join(timeout=5)
    watcher_consumer.close()
    conn.close()
    console.print()
    for line in summary_lines(stats, log_path, job_seconds):
        console.print(line, soft_wrap=True)
    if sender_error:
        console.print(f"[red]producing traffic failed:[/] {escape(str(sender_error[0]))}")
        return 1
    if code == 130 and stop.is_set():
        console.print("stopped by Ctrl-C before the job had read all the traffic")
        return code
    if code == 124:
        console.print(f"[red]the scoring job did not finish within {config.timeout_s:.0f} s[/] "
                      "(--timeout); it was stopped")
        _explain_failure(console, log_path)
        return code
    if code != 0:
        console.print(f"[red]the scoring job ended with exit code {code}[/]")
        _explain_failure(console, log_path)
        return code
    if not config.keep_running and stats.scored < stats.produced:
        console.print(
            f"[yellow]warning:[/] the job finished but only {stats.scored:,} of "
            f"{stats.produced:,} transactions are in scored_transactions",
            soft_wrap=True,
        )
        _explain_failure(console, log_path)
        return 1
    return 0


def _live(config: DemoConfig, settings: Any, topics: OutputTopics, console: Console,
          stats: DemoStats,
          lock: threading.Lock, job: subprocess.Popen, conn: Any, db_start: datetime,
          run_ids: list[str],
          watcher: _AlertWatcher, dlq_start: int, stop: threading.Event, started: datetime) -> int:
    """Refresh the live view until the job ends (bounded), Ctrl-C, or the timeout."""
    from confluent_kafka import Consumer  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    meta = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                     "group.id": f"fraudstream-demo-meta-{stats.run_id}"})
    stats.phase = "scoring"
    # (time, scored) samples: the rate is taken over the last ~5 s, since the JDBC sink
    # flushes in bursts (every second or 500 rows) and one refresh would swing wildly.
    samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=6)
    deadline = time.monotonic() + config.timeout_s
    code: int | None = None
    try:
        with Live(render_live(stats), console=console, refresh_per_second=4,
                  transient=False) as live:
            while True:
                now = time.monotonic()
                scored = _scored_since(conn, db_start)
                dlq = sum(_end_offsets(meta, topics.dlq).values()) - dlq_start
                samples.append((now, scored))
                with lock:
                    stats.scored = scored
                    stats.scored_rate = rate_of(samples)
                    stats.peak_rate = max(stats.peak_rate, stats.scored_rate)
                    stats.dlq = dlq
                    stats.elapsed_s = (datetime.now(UTC) - started).total_seconds()
                live.update(render_live(stats))
                code = job.poll()
                if code is not None:
                    break
                if stop.is_set():
                    stats.phase = "stopping (Ctrl-C)"
                    live.update(render_live(stats))
                    code = _stop_job(job)
                    code = 0 if config.keep_running else 130
                    break
                if not config.keep_running and now > deadline:
                    stats.phase = "timeout"
                    _stop_job(job)
                    code = 124
                    break
                stop.wait(config.refresh_s)
            # The alerts already written may still be in flight to the watcher: drain briefly.
            stats.phase = "finishing"
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 3.0:
                if time.monotonic() - watcher.last_message_at < 1.0:
                    quiet_since = time.monotonic()
                time.sleep(0.3)
            stats.scored = _scored_of_run(conn, run_ids)  # exact, for the last frame
            stats.scored_rate = 0.0
            stats.dlq = sum(_end_offsets(meta, topics.dlq).values()) - dlq_start
            stats.elapsed_s = (datetime.now(UTC) - started).total_seconds()
            stats.phase = "done" if code == 0 else f"ended ({code})"
            live.update(render_live(stats))
    finally:
        meta.close()
        if job.poll() is None:
            _stop_job(job)
    return code


def _stop_job(job: subprocess.Popen, grace_s: float = 20.0) -> int:
    """Stop the job subprocess: SIGINT to its process group, then SIGTERM, then SIGKILL."""
    import signal  # noqa: PLC0415

    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if job.poll() is not None:
            break
        try:
            os.killpg(job.pid, sig)  # the job's own session: its JVM and Python workers
        except ProcessLookupError:
            break
        try:
            job.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return job.returncode if job.returncode is not None else -9


def failure_cause(log_text: str, context: int = 2) -> str | None:
    """The innermost `Caused by:` of a Java/Flink stack trace in a log, with the next lines
    (a Python exception raised in a Flink worker is reported that way); None if there is none.
    """
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Caused by:")]
    if not starts:
        return None
    first = starts[-1]
    picked = [lines[first]]
    for line in lines[first + 1: first + 1 + context]:
        if line.lstrip().startswith("at "):
            break
        picked.append(line)
    return "\n".join(picked)


def _explain_failure(console: Console, log_path: Path) -> None:
    """Print the root cause (if the log has one) and the last log lines."""
    try:
        cause = failure_cause(log_path.read_text(errors="replace"))
    except OSError:
        cause = None
    if cause:
        console.print(f"[bold]cause:[/] {escape(cause)}", soft_wrap=True)
    console.print(f"last lines of {log_path}:")
    console.print(escape(_tail(log_path, 10)), soft_wrap=True)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(cannot read {path})"
