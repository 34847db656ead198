"""The alerting rules (deploy/monitoring/alerts.yml) on synthetic series, with Prometheus' own
rule tester (`promtool test rules`, Debian's prometheus package): each rule fires on the
situation it is for and stays quiet on a healthy job, and a down drift exporter fires nothing.
Annotations are left out of the comparison (their text is for people)."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from deploy.local.prometheus import RULES_FILE

JOB = 'job_name="fraudstream-scoring",job_id="j1"'
JOB_LABELS = {"job_name": "fraudstream-scoring", "job_id": "j1"}  # per-job alerts keep them
OP = "flink_taskmanager_job_task_operator_"
ALERTS = ("FraudstreamJobNotRunning", "FraudstreamNoInput", "FraudstreamDeadLetterRate",
          "FraudstreamAlertRateJump", "FraudstreamSourceLagGrowing",
          "FraudstreamCheckpointFailures", "FraudstreamJobRestarting")


def _series(name: str, values: str, labels: str = JOB) -> dict:
    return {"series": f"{name}{{{labels}}}", "values": values}


def _fires(alert: str, at: str, severity: str = "warning") -> dict:
    return {"eval_time": at, "alertname": alert,
            "exp_alerts": [{"exp_labels": {"severity": severity}}]}


def _quiet(alert: str, at: str) -> dict:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def _with_labels(case: dict, labels: dict) -> dict:
    case["exp_alerts"][0]["exp_labels"].update(labels)
    return case


def _healthy(minutes: int) -> list[dict]:
    """A running job reading 100 records per 15 s, 1 % alerts, nothing pending."""
    n = minutes * 4
    return [
        _series("flink_jobmanager_job_uptime", f"15000+15000x{n}"),
        _series("flink_jobmanager_job_numRestarts", f"0x{n}"),
        _series("flink_jobmanager_job_numberOfFailedCheckpoints", f"2x{n}"),
        _series(OP + "fraudstream_events_in", f"0+100x{n}", JOB + ',subtask_index="0"'),
        _series(OP + "fraudstream_model_version_scored", f"0+100x{n}",
                JOB + ',subtask_index="0",model_version="v1"'),
        _series(OP + "fraudstream_alerts", f"0+1x{n}", JOB + ',subtask_index="0"'),
        _series(OP + "pendingRecords", f"0x{n}", JOB + ',subtask_index="0"'),
    ]


def _replace(series: list[dict], name: str, values: str) -> list[dict]:
    return [dict(s, values=values) if s["series"].startswith(name + "{") else s for s in series]


def _tests() -> list[dict]:
    sub = JOB + ',subtask_index="0"'
    return [
        {   # the job stops at 75 s: its metrics go stale
            "interval": "15s",
            "input_series": [_series("flink_jobmanager_job_uptime", "15000+15000x4 stale")],
            "alert_rule_test": [_quiet("FraudstreamJobNotRunning", "1m"),
                                _fires("FraudstreamJobNotRunning", "3m", "critical")],
        },
        {   # input stops at 4 min, the job keeps running
            "interval": "15s",
            "input_series": _replace(_healthy(25), OP + "fraudstream_events_in",
                                     "0+100x16 1600x84"),
            "alert_rule_test": [_quiet("FraudstreamNoInput", "12m"),
                                _fires("FraudstreamNoInput", "20m")],
        },
        {   # 10 % dead letters
            "interval": "15s",
            "input_series": [*_healthy(10),
                             _series(OP + "fraudstream_reason_dead_letters", "0+10x40",
                                     sub + ',reason="amt"')],
            "alert_rule_test": [_quiet("FraudstreamDeadLetterRate", "3m"),
                                _fires("FraudstreamDeadLetterRate", "10m")],
        },
        {   # 1 % alerts for 80 min, then 10 %
            "interval": "15s",
            "input_series": _replace(_healthy(100), OP + "fraudstream_alerts",
                                     "0+1x320 320+10x80"),
            "alert_rule_test": [_quiet("FraudstreamAlertRateJump", "75m"),
                                _fires("FraudstreamAlertRateJump", "100m")],
        },
        {   # the backlog grows by 1,000 records per 15 s
            "interval": "15s",
            "input_series": _replace(_healthy(30), OP + "pendingRecords", "20000+1000x120"),
            "alert_rule_test": [_quiet("FraudstreamSourceLagGrowing", "5m"),
                                _fires("FraudstreamSourceLagGrowing", "25m")],
        },
        {   # a checkpoint fails at 10 min (after the 2 start-up trigger failures)
            "interval": "15s",
            "input_series": _replace(_healthy(15),
                                     "flink_jobmanager_job_numberOfFailedCheckpoints",
                                     "0 1 2x38 3x20"),
            "alert_rule_test": [_quiet("FraudstreamCheckpointFailures", "1m"),
                                _quiet("FraudstreamCheckpointFailures", "9m"),
                                _with_labels(_fires("FraudstreamCheckpointFailures", "11m"),
                                             JOB_LABELS)],
        },
        {   # one restart at 5 min
            "interval": "15s",
            "input_series": _replace(_healthy(10), "flink_jobmanager_job_numRestarts",
                                     "0x20 1x20"),
            "alert_rule_test": [_quiet("FraudstreamJobRestarting", "4m"),
                                _with_labels(_fires("FraudstreamJobRestarting", "6m"),
                                             JOB_LABELS)],
        },
        {   # healthy job, drift exporter down, unreached reporter ports: nothing fires
            "interval": "15s",
            "input_series": [*_healthy(100),
                             _series("up", "0x400", 'job="fraudstream-drift",'
                                     'instance="127.0.0.1:29464"'),
                             _series("up", "0x400", 'job="flink",instance="127.0.0.1:29255"')],
            "alert_rule_test": [_quiet(name, at) for name in ALERTS for at in ("5m", "100m")],
        },
    ]


def _promtool() -> str:
    """promtool comes with Debian's prometheus package, installed here when missing as `up
    --monitoring` does (an integration test for that reason: it may need apt)."""
    from deploy.local.prometheus import ensure_prometheus_binary

    ensure_prometheus_binary()
    found = shutil.which("promtool")
    assert found, "Debian's prometheus package is installed but has no promtool"
    return found


def test_every_rule_is_tested_and_has_a_severity():
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert tuple(r["alert"] for r in rules) == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" in rule
    # tests/integration/test_monitoring.py swaps the job matcher: one spelling only
    matchers = set(re.findall(r'job_name=~?"[^"]*"', RULES_FILE.read_text()))
    assert matchers == {'job_name=~"fraudstream-scoring.*"'}


def test_rules_fire_on_their_situation_and_only_then(tmp_path):
    promtool = _promtool()
    rules = yaml.safe_load(RULES_FILE.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    spec = {"rule_files": ["alerts.yml"], "evaluation_interval": "15s", "tests": _tests()}
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(spec))
    check = subprocess.run([promtool, "check", "rules", str(RULES_FILE)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
