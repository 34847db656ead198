"""Unit tests for the demo's pure parts: job command, live view, summary, alert counting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from jobs.cli.alerts_follow import decode_alert
from jobs.cli.demo import job, plan, preflight, topics, view
from jobs.cli.demo.watcher import AlertWatcher
from schemas.alert import Alert, AlertReason, alert_to_json


def _alert(tx: str, score: float = 0.9) -> Alert:
    return Alert(
        transaction_id=tx, card_token="tok", card_masked="****4321",
        event_time_ms=1_704_110_400_000, amount=640.0, merchant="fraud_Demo",
        category="shopping_net", score=score, threshold=0.5, model_version="m1",
        reasons=(AlertReason("AMOUNT_VS_HISTORY", "amount_ratio_24h", 9.0, 0.5),
                 AlertReason("NIGHT", "is_night", 1.0, 0.2),
                 AlertReason("VELOCITY_1H", "count_1h", 4.0, 0.1)),
    )


def _text(*renderables) -> str:
    console = Console(record=True, width=160)
    for r in renderables:
        console.print(r, soft_wrap=True)
    return console.export_text()


def test_job_command_reads_this_runs_topic_from_earliest_in_its_own_group():
    cmd = plan.job_command("fraudstream-demo-x", "x", bounded=True, parallelism=1,
                           python="/venv/bin/python")
    assert cmd[:4] == ["/venv/bin/python", "-m", "jobs.cli", "run"]
    assert cmd[cmd.index("--source-topic") + 1] == "fraudstream-demo-x"
    assert "group_id=fraudstream-demo-x" in cmd and "start_from=earliest" in cmd
    assert "--bounded" in cmd
    assert cmd[cmd.index("--parallelism") + 1] == "1"
    unbounded = plan.job_command("t", "x", bounded=False, parallelism=None, python="py")
    assert "--bounded" not in unbounded and "--parallelism" not in unbounded


def test_run_id_is_utc_and_sortable():
    at = datetime(2026, 11, 22, 2, 31, 5, tzinfo=UTC)
    assert plan.new_run_id(at, "a1b2") == "20261122-023105-a1b2"


def test_only_demo_topics_older_than_a_day_are_stale():
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    names = [
        "fraudstream-demo-20261120-120000-aaaa",  # two days old
        "fraudstream-demo-20261122-110000-bbbb",  # an hour old: may still be running
        "fraudstream-demo-garbage",
        "transactions",
        "test-fraudstream-demo-20200101-000000-cccc",
    ]
    assert plan.stale_demo_topics(names, now) == ["fraudstream-demo-20261120-120000-aaaa"]


def _watcher(stats, run_ids, fraud_ids):
    return AlertWatcher(None, stats, run_ids, fraud_ids, threading.Lock())


def test_watcher_counts_only_this_runs_alerts_once_each():
    stats = view.DemoStats(run_id="r", topic="t")
    watcher = _watcher(stats, {"a", "b", "c"}, {"a", "c"})
    for tx in ("a", "a", "b", "other-run", "c"):
        watcher.handle(decode_alert(alert_to_json(_alert(tx))))
    assert (stats.alerts, stats.fraud_caught) == (3, 2)
    assert [a.transaction_id for a in stats.latest] == ["a", "b", "c"]


def test_latest_alerts_are_bounded():
    stats = view.DemoStats(run_id="r", topic="t")
    ids = {f"t{i}" for i in range(20)}
    watcher = _watcher(stats, ids, set())
    for i in range(20):
        watcher.handle(decode_alert(alert_to_json(_alert(f"t{i}"))))
    assert len(stats.latest) == view.LATEST_ALERTS_SHOWN
    assert stats.latest[-1].transaction_id == "t19"


def test_live_view_shows_counters_and_latest_reasons():
    stats = view.DemoStats(run_id="r", topic="t", phase="scoring", produced=30_000,
                           planted_fraud=120, scored=12_345, scored_rate=4_321.0, alerts=99,
                           fraud_caught=90, dlq=3)
    stats.latest.append(decode_alert(alert_to_json(_alert("x1"))))
    text = _text(view.render_live(stats))
    for fragment in ("scoring", "30,000", "12,345", "4,321", "99 (90 fraud)", "DLQ 3",
                     "****4321", "AMOUNT_VS_HISTORY", "640.00"):
        assert fragment in text, fragment


def test_summary_gives_recall_precision_and_next_commands():
    stats = view.DemoStats(run_id="r1", topic="t", produced=1000, planted_fraud=40,
                           malformed_sent=3, scored=1000, alerts=50, fraud_caught=36, dlq=3)
    stats.latest.append(decode_alert(alert_to_json(_alert("tx-last"))))
    text = _text(*view.summary_lines(stats, Path("/tmp/demo.log"), 12.0))
    assert "36 of 40 planted frauds (recall 90.0%, precision 72.0%)" in text
    assert "fraudstream review list" in text
    assert "fraudstream review show tx-last" in text
    assert "fraudstream alerts --from-beginning" in text
    assert "/tmp/demo.log" in text


def test_summary_without_alerts_has_no_division_error():
    stats = view.DemoStats(run_id="r1", topic="t", planted_fraud=5)
    text = _text(*view.summary_lines(stats, Path("x.log"), None))
    assert "0 of 5 planted frauds (recall 0.0%, precision 0.0%)" in text


def test_preflight_names_a_missing_default_model(monkeypatch):
    import models.scoring

    def no_default(_path):
        raise FileNotFoundError("no default model: /x/default.json is missing")

    monkeypatch.setattr(models.scoring, "resolve_model_path", no_default)
    assert preflight.preflight() == ["default model: no default model: /x/default.json is missing"]
    monkeypatch.setattr(models.scoring, "resolve_model_path", lambda _path: Path("/m.onnx"))
    assert preflight.preflight() == []


def test_episode_share_scales_with_run_length_and_keeps_a_few_episodes():
    assert plan.episode_share(365, 1000) == 0.98
    assert plan.episode_share(30, 300) == 0.98 * 30 / 365
    assert plan.episode_share(5, 30) == 0.1  # tiny run: ~3 planted episodes
    assert plan.episode_share(3, 1) == 0.98


def test_live_view_lists_reason_codes_only():
    stats = view.DemoStats(run_id="r", topic="t")
    stats.latest.append(decode_alert(alert_to_json(_alert("x1"))))
    text = _text(view.render_live(stats))
    assert "AMOUNT_VS_HISTORY, NIGHT, VELOCITY_1H" in text
    assert "amount_ratio_24h" not in text


def test_failure_cause_is_the_innermost_caused_by():
    log = "\n".join([
        "org.apache.flink.runtime.client.JobExecutionException: Job execution failed.",
        "Caused by: org.apache.flink.runtime.JobException: Recovery is suppressed",
        "        at org.apache.flink.Foo.bar(Foo.java:1)",
        "Caused by: pemja.core.PythonException: <class 'models.registry.RegistryError'>: ",
        "no default model: /x/default.json is missing",
        "        at /work/main/models/registry.default_version(registry.py:57)",
    ])
    assert job.failure_cause(log) == (
        "Caused by: pemja.core.PythonException: <class 'models.registry.RegistryError'>: \n"
        "no default model: /x/default.json is missing"
    )
    assert job.failure_cause("all good\njob finished") is None


def test_rate_is_taken_over_the_whole_sample_window():
    assert view.rate_of([(0.0, 0), (1.0, 500), (5.0, 1000)]) == 200.0
    assert view.rate_of([(0.0, 10)]) == 0.0
    assert view.rate_of([(2.0, 10), (2.0, 20)]) == 0.0
    assert view.rate_of([]) == 0.0


def test_watched_topics_follow_the_jobs_own_config(monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_ALERTS_TOPIC", "alerts-elsewhere")
    monkeypatch.delenv("FRAUDSTREAM_DLQ_TOPIC", raising=False)

    class Settings:
        kafka_bootstrap = "127.0.0.1:1"

    watched = topics.job_output_topics(Settings())
    assert watched == topics.OutputTopics(alerts="alerts-elsewhere", dlq="transactions.dlq")
