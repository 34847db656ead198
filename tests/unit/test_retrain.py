"""`fraudstream retrain --when-due` (issue 14.3): the policy's decisions (new labels, sustained
drift after the last candidate), the record of the last candidate in the registry, what the
command reads for the policy, and its flow: not due -> nothing trained; due -> train from
the database's labels, shadow with `model shadow`'s own function, print the promote command."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from jobs.cli import app
from models.training.retrain_policy import (
    DriftHour,
    LastCandidate,
    PolicyInput,
    RetrainPolicy,
    decide,
    last_candidate,
)

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _hours(*psi: float, latest: datetime = NOW) -> list[DriftHour]:
    """Newest first, one per hour."""
    return [DriftHour(latest - i * HOUR, p, "amount") for i, p in enumerate(psi)]


def test_labels_trigger_at_the_minimum():
    policy = RetrainPolicy(min_labels=50)
    assert not decide(policy, PolicyInput(49, None)).due
    yes = decide(policy, PolicyInput(50, None))
    assert yes.due and "50 new labels (no candidate yet)" in yes.reasons[0]
    assert "drift: not checked" in yes.checks[-1]


def test_drift_must_be_sustained_over_the_last_hours():
    policy = RetrainPolicy(min_labels=1000, drift_threshold=0.25, drift_hours=3)
    due = decide(policy, PolicyInput(0, None, "v1", _hours(0.3, 0.26, 0.9)))
    assert due.due and "PSI >= 0.25 in each of the last 3 hours (max 0.900" in due.reasons[0]
    assert "of v1" in due.reasons[0]
    calm = decide(policy, PolicyInput(0, None, "v1", _hours(0.3, 0.1, 0.9)))
    assert not calm.due and "1 of the last 3 hours below PSI 0.25" in calm.checks[1]
    short = decide(policy, PolicyInput(0, None, "v1", _hours(0.3, 0.3)))
    assert not short.due and "2 hour(s)" in short.checks[1]
    assert not decide(policy, PolicyInput(0, None, None, None)).due  # no feature_drift table
    assert "no feature_drift table" in decide(policy, PolicyInput(0, None)).checks[1]


def test_drift_the_last_candidate_already_trained_on_does_not_retrain_again():
    policy = RetrainPolicy(min_labels=1000, drift_threshold=0.25, drift_hours=2)
    hours = _hours(0.5, 0.5, 0.5)
    trained_up_to = int((NOW - 2 * HOUR).timestamp() * 1000)
    last = LastCandidate("labels-x", NOW, None, trained_up_to)
    assert decide(policy, PolicyInput(0, last, "v1", hours)).due  # NOW and NOW-1h are later
    last = LastCandidate("labels-x", NOW, None, trained_up_to + 3_600_000)
    assert not decide(policy, PolicyInput(0, last, "v1", hours)).due


def test_either_trigger_suffices_and_both_are_reported():
    policy = RetrainPolicy(min_labels=10, drift_threshold=0.2, drift_hours=1)
    both = decide(policy, PolicyInput(10, None, "v1", _hours(0.3)))
    assert both.due and len(both.reasons) == 2 and len(both.checks) == 2


@pytest.mark.parametrize("bad", [{"min_labels": 0}, {"drift_hours": 0},
                                 {"drift_threshold": 0.0}, {"drift_min_rows": 0}])
def test_policy_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        RetrainPolicy(**bad)


def _version(root, name: str, labels: dict | None) -> None:
    d = root / "card_activity_v1" / name
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"x")
    meta = {"model_version": name}
    if labels is not None:
        meta["labels"] = labels
    (d / "metadata.json").write_text(json.dumps(meta))


def test_last_candidate_is_the_latest_made_from_labels(tmp_path):
    assert last_candidate(tmp_path) is None
    _version(tmp_path, "hist_gbm-gen", None)
    _version(tmp_path, "labels-b", {"made_at": "2026-11-01T00:00:00+00:00",
                                    "labels_through": "2026-10-31T10:00:00+00:00",
                                    "data_end_ms": 5})
    _version(tmp_path, "labels-a", {"made_at": "2026-11-20T00:00:00+00:00",
                                    "labels_through": None, "data_end_ms": 7})
    assert last_candidate(tmp_path) == LastCandidate(
        "labels-a", datetime(2026, 11, 20, tzinfo=UTC), None, 7)


def test_policy_input_counts_labels_after_the_last_candidate(tmp_path, monkeypatch):
    from connectors import label_store
    from jobs.cli import retrain

    _version(tmp_path, "labels-a", {"made_at": "2026-11-20T00:00:00+00:00",
                                    "labels_through": "2026-11-19T08:00:00+00:00"})
    seen = {}

    @contextmanager
    def connect(conninfo):
        seen["conninfo"] = conninfo
        yield "conn"

    monkeypatch.setattr("psycopg.connect", connect)
    monkeypatch.setattr(label_store, "count_labels_after",
                        lambda conn, after: seen.setdefault("after", after) and 12)
    monkeypatch.setattr(label_store, "drift_hours",
                        lambda conn, limit, min_rows: ("v9", _hours(0.4)[:limit]))
    settings = SimpleNamespace(pg_conninfo=lambda role: f"role={role}")
    got = retrain.policy_input(settings, RetrainPolicy(drift_threshold=0.2, drift_hours=1),
                               str(tmp_path))
    assert seen == {"conninfo": "role=analyst",
                    "after": datetime(2026, 11, 19, 8, tzinfo=UTC)}
    assert (got.new_labels, got.last.version, got.drift_version) == (12, "labels-a", "v9")
    assert [h.max_psi for h in got.drift] == [0.4]
    no_drift = retrain.policy_input(settings, RetrainPolicy(), str(tmp_path))
    assert no_drift.drift is None  # drift not read without --drift-threshold


@pytest.fixture
def flow(monkeypatch):
    """The retrain command with its Postgres reads, training and publishing replaced."""
    from jobs.cli import retrain

    calls: dict = {"train": [], "shadow": []}
    state = {"new_labels": 0}
    monkeypatch.setattr(retrain, "stack_settings", lambda: SimpleNamespace())
    monkeypatch.setattr(retrain, "policy_input",
                        lambda settings, policy, registry: PolicyInput(state["new_labels"],
                                                                       None))

    def train(cfg, labels, since, until, history_days, log):
        calls["train"].append((cfg, labels, since, until, history_days))
        result = SimpleNamespace(model_version="labels-20261202T120000Z")
        return SimpleNamespace(result=result, report_path="/r/report.md")

    monkeypatch.setattr("models.cli.train_from_labels", train)
    monkeypatch.setattr(retrain, "publish_shadow",
                        lambda version, registry: calls["shadow"].append((version, registry)))
    return calls, state


def test_not_due_trains_nothing(flow):
    calls, _ = flow
    result = CliRunner().invoke(app, ["retrain", "--when-due", "--min-labels", "5"])
    assert result.exit_code == 0, result.output
    assert "0 new labels" in result.output and "not due: nothing trained" in result.output
    assert calls == {"train": [], "shadow": []}


def test_due_trains_from_the_database_registers_and_shadows(flow):
    calls, state = flow
    state["new_labels"] = 7
    result = CliRunner().invoke(app, ["retrain", "--when-due", "--min-labels", "5",
                                      "--registry", "/tmp/reg", "--models", "logreg",
                                      "--since", "2026-11-01"])
    assert result.exit_code == 0, result.output
    (cfg, labels, since, until, history), = calls["train"]
    assert (labels, since, until, history) == ("db", "2026-11-01", None, 35.0)
    assert cfg.models == ("logreg",) and str(cfg.registry_dir) == "/tmp/reg"
    assert not cfg.set_default
    assert calls["shadow"] == [("labels-20261202T120000Z", "/tmp/reg")]
    assert "fraudstream model promote labels-20261202T120000Z" in result.output


def test_no_shadow_registers_only(flow):
    calls, state = flow
    state["new_labels"] = 7
    result = CliRunner().invoke(app, ["retrain", "--when-due", "--min-labels", "5",
                                      "--no-shadow"])
    assert result.exit_code == 0, result.output
    assert len(calls["train"]) == 1 and calls["shadow"] == []
    assert "fraudstream model shadow labels-20261202T120000Z" in result.output


def test_shadow_goes_through_the_model_shadow_command(monkeypatch):
    from jobs.cli import model, retrain

    published = []
    monkeypatch.setattr(model, "_checked_model", lambda version, registry: b"onnx-bytes")
    monkeypatch.setattr(model, "stack_settings", lambda: "settings")
    monkeypatch.setattr(model, "_publish", lambda settings, message: published.append(message))
    retrain.publish_shadow("labels-x", "/tmp/reg")
    (message,) = published
    assert (message.kind, message.version) == ("model.shadow", "labels-x")
