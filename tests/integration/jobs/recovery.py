"""Recovery runs of the scoring job on the standalone cluster (tests/integration/test_recovery.py).

One pre-filled source topic of `EVENTS` transactions is shared by every run (producing it once
saves ~10 s a test); a run first deletes the rows of those transaction ids, then submits the job
with exactly-once alerts into its own topic and its own checkpoint/savepoint directories,
disrupts it at the given row counts (each time after a checkpoint completed since the last
disruption), waits until the (resumed) job has written every row AND completed a checkpoint
triggered after that (so every alert transaction is committed), cancels it, and collects what
the checks need: rows, alert rows, and the alert keys read with `read_committed` from the
topic.

Runs are UNBOUNDED: a bounded KafkaSource restored from a savepoint or a retained checkpoint
reads to its stopping offsets and then never finishes (its recreated enumerator never sends
NoMoreSplits: FLINK-31006 / FLINK-33466, open in flink-sql-connector-kafka 5.0.0-2.2), so
resuming a bounded job is not something the tests (or docs/operations.md) rely on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from models.data.generator import GeneratorConfig, generate
from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction
from schemas.transaction import Transaction
from schemas.wire import transaction_to_wire
from tests.integration.jobs.harness import REPO, produce
from tests.integration.jobs.streams import Record

EVENTS = 100_000
# ~1,000 cards x 42 days ~ 101k transactions; the first EVENTS in event-time order.
GENERATOR = GeneratorConfig(cards=1000, start=date(2020, 3, 1), days=42, seed=11)
JOB_TIMEOUT_S = 420


def source_records(tokenizer: CardTokenizer, run: str) -> list[Record]:
    """EVENTS generated transactions, ids prefixed by `run`; `Record.txn` is the parsed one."""
    import dataclasses
    import json

    out: list[Record] = []
    for txn in generate(GENERATOR, tokenizer):
        if len(out) == EVENTS:
            break
        txn = dataclasses.replace(txn, transaction_id=f"{run}-{txn.transaction_id}")
        payload = json.dumps(transaction_to_wire(txn), separators=(",", ":")).encode()
        parsed = parse_transaction(payload, tokenizer)
        out.append(Record(parsed.card_token.encode(), payload, parsed))
    assert len(out) == EVENTS, len(out)
    return out


@dataclass
class Source:
    topic: str
    records: list[Record]
    ids: list[str]
    txns: list[Transaction]
    offline: dict = field(default_factory=dict)  # transaction id -> offline feature vector


@dataclass
class Outcome:
    """What a recovery run left behind."""

    rows: list[tuple]  # (transaction_id, decision, features) from scored_transactions
    alert_rows: set[str]  # transaction ids in the alerts table
    topic_keys: list[str]  # alert keys on the topic, read_committed, duplicates kept
    rows_at_disruptions: list[int]
    job_ids: list[str]
    seconds: float
    notes: dict = field(default_factory=dict)


@dataclass
class Run:
    """One recovery run's names and settings (unique per test)."""

    stack: object
    cluster: object
    source: Source
    name: str
    alerts_topic: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def checkpoint_dir(self) -> str:
        return (self.stack.home / "flink" / "recovery" / self.run_id / "checkpoints").as_uri()

    @property
    def savepoint_dir(self) -> str:
        return (self.stack.home / "flink" / "recovery" / self.run_id / "savepoints").as_uri()

    def job_settings(self, **overrides: object) -> dict[str, object]:
        settings: dict[str, object] = {
            "source_topic": self.source.topic,
            "dlq_topic": f"{self.alerts_topic}-dlq",
            "alerts_topic": self.alerts_topic,
            "group_id": f"recovery-{self.name}-{self.run_id}",
            "bounded": "false",
            "parallelism": 2,
            "alerts_delivery": "exactly-once",
            "transactional_id_prefix": f"recovery-{self.name}-{self.run_id}",
            "checkpoint_interval_ms": 2000,
            "checkpoint_dir": self.checkpoint_dir,
            "savepoint_dir": self.savepoint_dir,
            "restart_attempts": 30,
            "restart_delay_ms": 1000,
            "job_name": f"recovery-{self.name}",
        }
        settings.update(overrides)
        return settings

    def submit(self, extra: list[str] = (), **overrides: object) -> str:
        """`fraudstream submit` (detached) with this run's settings; returns the job id."""
        cmd = [sys.executable, "-m", "jobs.cli", "submit", "--jobmanager",
               self.cluster.address.removeprefix("http://"), *extra]
        for key, value in self.job_settings(**overrides).items():
            cmd += ["--set", f"{key}={value}"]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                             env=dict(os.environ), check=False)
        match = re.search(r"JobID\s+([0-9a-f]{32})", out.stdout + out.stderr)
        assert match, (out.stdout + out.stderr)[-3000:]
        return match.group(1)


def prepare_source(stack, topic: str) -> Source:
    """Fill `topic` (already created) with the EVENTS records of a fresh run id."""
    tokenizer = CardTokenizer(stack.card_token_key.reveal().encode())
    records = source_records(tokenizer, uuid.uuid4().hex[:8])
    produce(stack.kafka_bootstrap, topic, records)
    return Source(topic, records, [r.txn.transaction_id for r in records],
                  [r.txn for r in records])


def scored_count(conn, ids: list[str]) -> int:
    return conn.execute(
        "SELECT count(*) FROM scored_transactions WHERE transaction_id = ANY(%s)", (ids,)
    ).fetchone()[0]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _latest_checkpoints(cluster, job_id: str) -> dict:
    """The `latest` section of the job's checkpoint statistics; {} while there is none."""
    try:
        return cluster.rest(f"/jobs/{job_id}/checkpoints")["latest"] or {}
    except Exception:  # noqa: BLE001 - not reachable / not yet there
        return {}


def last_checkpoint_triggered_ms(cluster, job_id: str) -> float:
    """Trigger time (epoch ms) of the job's latest COMPLETED checkpoint; 0 if none."""
    latest = _latest_checkpoints(cluster, job_id).get("completed")
    return float((latest or {}).get("trigger_timestamp") or 0)


def restored(cluster, job_id: str) -> dict:
    """What the job restored from (its checkpoint statistics' `latest.restored`), once it has."""
    return wait_for(lambda: _latest_checkpoints(cluster, job_id).get("restored"), 120,
                    f"job {job_id} to restore a checkpoint")


def _connect(conninfo: str):
    import psycopg

    return psycopg.connect(conninfo, autocommit=True)


@dataclass(frozen=True)
class Disruption:
    """One disruption of a run: once the job has written `at_rows` rows and completed a
    checkpoint since the previous disruption, `act(job_id)` disrupts it and returns the id of
    a job that replaces it, or None when the same job recovers. `act` also checks what it
    alone can see (which checkpoint or savepoint the job restored) before it returns."""

    at_rows: int
    act: Callable[[str], str | None]


def _wait_before(run: Run, job_id: str, at_rows: int, since_ms: float) -> int:
    """Wait until `at_rows` rows are written and the job completed a checkpoint triggered
    after `since_ms`; returns the rows written then."""
    ids = run.source.ids
    with _connect(run.stack.pg_conninfo("writer")) as conn:
        wait_for(lambda: scored_count(conn, ids) >= at_rows, 240, f"{at_rows} rows")
        # generous: after a broker restart the exactly-once producers' transactions must
        # recover before a checkpoint can complete
        wait_for(lambda: last_checkpoint_triggered_ms(run.cluster, job_id) > since_ms, 180,
                 "a checkpoint since the previous disruption")
        return scored_count(conn, ids)


def run_with_disruptions(run: Run, disruptions: list[Disruption]) -> Outcome:
    """Submit, apply each disruption in turn (see `Disruption`), wait until the job has
    written every row and completed a checkpoint after that, then collect the outcome.
    Deletes its rows first. Connections are opened per phase: a disruption may restart
    Postgres.

    Several disruptions share one run of EVENTS rows: the checks at the end hold for every
    one of them (a row lost or an alert duplicated at any step shows there), and a run costs
    ~100 s of the suite's budget."""
    from deploy.local.postgres import PostgresServer

    stack, ids = run.stack, run.source.ids
    with _connect(PostgresServer(stack).admin_conninfo(stack.pg_database)) as admin:
        admin.execute("DELETE FROM scored_transactions WHERE transaction_id = ANY(%s)", (ids,))
        admin.execute("DELETE FROM alerts WHERE transaction_id = ANY(%s)", (ids,))
    started = time.monotonic()
    jobs = [run.submit()]
    at_disruptions: list[int] = []
    try:
        since_ms = 0.0
        for step in disruptions:
            at_disruptions.append(_wait_before(run, jobs[-1], step.at_rows, since_ms))
            assert at_disruptions[-1] < len(ids), "the job finished before the disruption"
            replacement = step.act(jobs[-1])
            if replacement:
                jobs.append(replacement)
            since_ms = time.time() * 1000
        with _connect(stack.pg_conninfo("writer")) as conn:
            wait_for(lambda: scored_count(conn, ids) == len(ids), JOB_TIMEOUT_S, "every row",
                     every=1.0)
        all_rows_at_ms = time.time() * 1000
        wait_for(lambda: last_checkpoint_triggered_ms(run.cluster, jobs[-1]) > all_rows_at_ms,
                 120, "a checkpoint after the last row (commits the last alerts)")
        seconds = time.monotonic() - started
    finally:
        try:
            run.cluster.cancel_job(jobs[-1])
        except Exception:  # noqa: BLE001 - already gone
            pass
    with _connect(stack.pg_conninfo("writer")) as conn:
        rows = conn.execute(
            "SELECT transaction_id, decision, features FROM scored_transactions"
            " WHERE transaction_id = ANY(%s)", (ids,)
        ).fetchall()
        alert_rows = {r[0] for r in conn.execute(
            "SELECT transaction_id FROM alerts WHERE transaction_id = ANY(%s)", (ids,))}
    keys = read_committed_keys(stack.kafka_bootstrap, run.alerts_topic)
    return Outcome(rows, alert_rows, keys, at_disruptions, jobs, seconds)


def read_committed_keys(bootstrap: str, topic: str, timeout: float = 60.0) -> list[str]:
    """Every key on `topic` as a `read_committed` consumer sees it, to the end of each
    partition (librdkafka's partition EOF counts transaction markers); duplicates kept."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"recovery-read-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        at_end: set[int] = set()
        keys: list[str] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(parts):
            assert time.monotonic() < deadline, f"{topic}: no end after {timeout:.0f} s"
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise AssertionError(f"reading {topic}: {msg.error()}")
            at_end.discard(msg.partition())
            keys.append(msg.key().decode())
        return keys
    finally:
        consumer.close()


def taskmanager_pid_of_job(cluster, job_id: str) -> int:
    """The pid of a TaskManager running a subtask of the job's scoring vertex."""
    job = cluster.rest(f"/jobs/{job_id}")
    vertex = next(v for v in job["vertices"] if "score-shard" in v["name"])
    tms = cluster.rest(f"/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    live = set(cluster.taskmanager_pids())
    for tm in tms:
        port = int(tm["endpoint"].rsplit(":", 1)[1])
        for line in listening.splitlines():
            if f":{port} " in line:
                m = re.search(r"pid=(\d+)", line)
                if m and int(m.group(1)) in live:
                    return int(m.group(1))
    raise AssertionError(f"no live TaskManager pid for {tms}")


def path_of(uri: str) -> Path:
    """The local path of a file URI (`file:///x` as we write them, `file:/x` as Flink does)."""
    from urllib.parse import urlparse

    return Path(urlparse(uri).path)
