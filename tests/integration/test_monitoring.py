"""Monitoring on the real stack (issue 12): the scoring job runs on the standalone cluster with
Prometheus up (`ensure_up(monitoring=True)` starts it when needed), over events timed now, two
malformed records and an analyst rule published while it runs. Then:

1. Prometheus holds a series of every job metric (jobs/job_metrics.PROMETHEUS_NAMES) and of
   the Kafka source's lag metrics for this job, with the right values (events in, dead letters
   by reason, rule hits, the model version that scored, decision latency under a minute), and
   EVERY query of the Grafana dashboard returns data; `fraudstream metrics` shows it and
   `--plot` writes the PNGs.
2. An alerting rule fires when the job stops: a second, fast Prometheus (1 s scrape and
   evaluation) runs the committed rules with `for:` set to 0s and this job's name in the job
   matcher; FraudstreamJobNotRunning is quiet while the job runs and fires after the cancel.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.local import prometheus as prom
from deploy.local.kafka import CONTROL_TOPIC_CONFIG, create_topics
from jobs.cli.metrics import load_panels, render_expr
from jobs.job_metrics import PREFIX, PROMETHEUS_NAMES
from schemas.card_token import CardTokenizer
from schemas.wire import transaction_to_wire
from tests.integration.jobs.harness import produce
from tests.integration.jobs.recovery import wait_for
from tests.integration.jobs.streams import Record, valid_records

pytestmark = [pytest.mark.integration, pytest.mark.flink_cluster]

REPO = Path(__file__).resolve().parents[2]
PER_HALF = 600
MALFORMED = (b"not json at all", b'{"schema_version": 1}')
RULE = "montest-big"
SOURCE_LAG = (PREFIX + "pendingRecords",
              PREFIX + "KafkaSourceReader_KafkaConsumer_records_lag_max")


@pytest.fixture(scope="module")
def monitored(flink_cluster):
    """The stack with Prometheus; the cluster must run the reporter (bootstrap built it)."""
    from deploy.local.stack import ensure_up

    settings = ensure_up(flink_cluster=True, monitoring=True)
    config = (flink_cluster.conf_dir / "config.yaml").read_text()
    assert "metrics.reporter.prom.factory.class" in config, (
        "this Flink cluster was started without the Prometheus reporter: run "
        "deploy/local/bootstrap.sh, then `fraudstream down && fraudstream up --flink-cluster`")
    return settings


def _now_records(records: list[Record]) -> list[Record]:
    """The records with event times from now on (1 ms apart), so decision latency is real."""
    start = int(time.time() * 1000)
    out = []
    for i, record in enumerate(records):
        txn = dataclasses.replace(record.txn, event_time_ms=start + i)
        out.append(Record(record.key, json.dumps(transaction_to_wire(txn)).encode(), txn))
    return out


def _cli(env: dict[str, str], *args: str):
    from jobs.cli import app

    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def run(monitored, flink_cluster, pg_writer_module):
    """Submit the job, feed it, wait until every event is scored; cancel it at the end."""
    flink_cluster.ensure_taskmanagers()
    stack = monitored
    tag = uuid.uuid4().hex[:8]
    names = {k: f"test-mon-{k}-{tag}" for k in ("src", "dlq", "alerts", "control")}
    create_topics(stack.kafka_bootstrap, (names["src"], names["dlq"], names["alerts"]), 2)
    create_topics(stack.kafka_bootstrap, (names["control"],), 1, CONTROL_TOPIC_CONFIG)
    job_name = f"fraudstream-scoring-montest-{tag}"
    settings = {
        "source_topic": names["src"], "dlq_topic": names["dlq"],
        "alerts_topic": names["alerts"], "control_topic": names["control"],
        "group_id": f"test-mon-{tag}", "bounded": "false", "job_name": job_name,
        "checkpoint_interval_ms": 5000,
    }
    cmd = [sys.executable, "-m", "jobs.cli", "submit", "--jobmanager",
           flink_cluster.address.removeprefix("http://")]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    match = re.search(r"JobID\s+([0-9a-f]{32})", done.stdout + done.stderr)
    assert match, (done.stdout + done.stderr)[-3000:]
    job = match.group(1)
    env = {"FRAUDSTREAM_CONTROL_TOPIC": names["control"]}
    tokenizer = CardTokenizer(stack.card_token_key.reveal().encode())
    records = valid_records(tokenizer, tag, 2 * PER_HALF, raw_pan_every=0)
    ids = [r.txn.transaction_id for r in records]
    try:
        wait_for(lambda: flink_cluster.job_state(job) == "RUNNING", 120, "the job to run")
        produce(stack.kafka_bootstrap, names["src"], _now_records(records[:PER_HALF]))
        added = _cli(env, "rules", "add", RULE, "--when", "amount > 100", "--action", "alert")
        assert added.exit_code == 0, added.output
        time.sleep(3)  # the rule reaches both scorer subtasks
        produce(stack.kafka_bootstrap, names["src"],
                [*_now_records(records[PER_HALF:]), *(Record(None, m) for m in MALFORMED)])
        query = "SELECT count(*) FROM scored_transactions WHERE transaction_id = ANY(%s)"
        wait_for(lambda: pg_writer_module.execute(query, (ids,)).fetchone()[0] == len(ids), 180,
                 f"{len(ids)} scored rows")
        versions = {r[0] for r in pg_writer_module.execute(
            "SELECT DISTINCT model_version FROM scored_transactions WHERE transaction_id = "
            "ANY(%s)", (ids,))}
        yield {"job": job, "job_name": job_name, "events": len(ids), "versions": versions,
               "settings": stack}
    finally:
        try:
            if flink_cluster.job_state(job) not in ("CANCELED", "FAILED", "FINISHED"):
                flink_cluster.cancel_job(job)
        except Exception:  # noqa: BLE001 - already gone
            pass
        from confluent_kafka.admin import AdminClient

        AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics(
            list(names.values()))


@pytest.fixture(scope="module")
def pg_writer_module(stack):
    import psycopg

    with psycopg.connect(stack.pg_conninfo("writer"), autocommit=True) as conn:
        yield conn


def _sum(url: str, expr: str) -> float | None:
    result = prom.query(url, expr)
    return float(result[0]["value"][1]) if result else None


def _by(url: str, expr: str, label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in prom.query(url, expr)}


def test_every_metric_and_every_dashboard_query_has_data(run, tmp_path):
    url = run["settings"].prometheus_url
    job = f'job_name="{run["job_name"]}"'
    total = run["events"] + len(MALFORMED)
    counts = {  # each TaskManager is scraped on its own clock: wait for the last counts
        f"sum({PREFIX}fraudstream_events_in{{{job}}})": total,
        f"sum({PREFIX}fraudstream_model_version_scored{{{job}}})": run["events"],
        f"sum({PREFIX}fraudstream_reason_dead_letters{{{job}}})": len(MALFORMED),
    }
    settled = prom.wait_for(lambda: all(_sum(url, q) == n for q, n in counts.items()), 60)
    assert settled, {q: (_sum(url, q), n) for q, n in counts.items()}
    missing = [name for name in (*PROMETHEUS_NAMES, *SOURCE_LAG)
               if not prom.query(url, f"{name}{{{job}}}")]
    assert missing == []

    assert _sum(url, f"sum({PREFIX}fraudstream_events_valid{{{job}}})") == run["events"]
    reasons = _by(url, f"sum by (reason) ({PREFIX}fraudstream_reason_dead_letters{{{job}}})",
                  "reason")
    assert sum(reasons.values()) == len(MALFORMED) and "payload" in reasons
    scored = _by(url, f"sum by (model_version) "
                      f"({PREFIX}fraudstream_model_version_scored{{{job}}})", "model_version")
    assert scored == {v: run["events"] for v in run["versions"]}
    hits = _by(url, f"sum by (rule) ({PREFIX}fraudstream_rule_hits{{{job}}})", "rule")
    assert set(hits) == {RULE} and 0 < hits[RULE] <= PER_HALF
    assert _sum(url, f"sum({PREFIX}fraudstream_alerts{{{job}}})") >= hits[RULE]
    buckets = _by(url, f"sum by (le) ({PREFIX}fraudstream_le_decision_latency_ms{{{job}}})",
                  "le")
    assert buckets["+Inf"] == run["events"]
    assert buckets["60000"] == run["events"], "events timed now took over a minute"
    assert _by(url, f"sum by (le) ({PREFIX}fraudstream_le_score{{{job}}})",
               "le")["+Inf"] == run["events"]
    assert 0 < _sum(url, f"max({PREFIX}fraudstream_state_bytes_max{{{job}}})") < 4096
    assert _sum(url, f"sum({PREFIX}fraudstream_state_writes{{{job}}})") > 0

    def empty_queries() -> list[str]:
        empty = []
        for panel in load_panels():
            for target in panel.targets:
                expr = render_expr(target.expr, run["job_name"], "1m")
                if not prom.query(url, expr):
                    empty.append(f"{panel.title}: {expr}")
        return empty

    # a rate() needs two scrapes of a series: the last ones appeared with the last events
    prom.wait_for(lambda: not empty_queries(), 30)
    assert empty_queries() == []

    # the summary shows rates: wait until each dead-letter reason and the rule has two scrapes
    rates = {f"sum by (reason) (rate({PREFIX}fraudstream_reason_dead_letters{{{job}}}[1m]))":
             len(reasons), f"sum by (rule) (rate({PREFIX}fraudstream_rule_hits{{{job}}}[1m]))": 1}
    assert prom.wait_for(lambda: all(len(prom.query(url, q)) == n for q, n in rates.items()), 30)
    shown = _cli({"COLUMNS": "200"}, "metrics", "--job", run["job_name"])
    assert shown.exit_code == 0, shown.output
    assert "Dead letters" in shown.output and "payload" in shown.output, shown.output
    assert RULE in shown.output, shown.output
    plotted = _cli({}, "metrics", "--job", run["job_name"], "--plot",
                   str(tmp_path / "plots"), "--minutes", "5")
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "plots" / "dashboard.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((tmp_path / "plots").glob("*.png"))) == len(load_panels()) + 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fast_rules(job_name: str) -> str:
    """The committed rules with `for: 0s` and this job only in the job matcher."""
    text = prom.RULES_FILE.read_text()
    text = re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s", text)
    return text.replace('job_name=~"fraudstream-scoring.*"',
                        f'job_name="{job_name}"')


def test_job_not_running_alert_fires_when_the_job_stops(run, flink_cluster, tmp_path):
    fast = prom.PrometheusServer(
        dataclasses.replace(run["settings"], home=tmp_path / "fast-prometheus",
                            prometheus_port=_free_port()),
        interval="1s", rules=_fast_rules(run["job_name"]))
    fast.start()
    try:
        url = fast.address

        def state() -> str | None:
            for alert in prom.alerts(url):
                if alert["labels"]["alertname"] == "FraudstreamJobNotRunning":
                    return alert["state"]
            return None

        job = f'job_name="{run["job_name"]}"'
        assert prom.wait_for(lambda: prom.query(url, f"flink_jobmanager_job_uptime{{{job}}}"),
                             30), "the fast Prometheus never scraped the running job"
        time.sleep(3)  # a few evaluations with the job running
        assert state() is None
        flink_cluster.cancel_job(run["job"])
        fired = prom.wait_for(lambda: state() == "firing", 60, interval=0.5)
        assert fired, f"FraudstreamJobNotRunning did not fire; alerts: {prom.alerts(url)}"
    finally:
        fast.stop()
