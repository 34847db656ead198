"""Review workflow on the real Postgres: rows inserted as the writer, reviewed as the analyst.

Covers `jobs.cli.review.repository.ReviewRepository` on a real analyst connection and the typer
commands (`fraudstream review list|show|label|export-labels`) through CliRunner.
"""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import typer
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from jobs.cli.review import commands as review_commands
from jobs.cli.review.repository import AlertNotFound, InvalidReview, ReviewRepository

pytestmark = pytest.mark.integration

# Event times far in the future keep the test rows at the top of `review list`.
BASE_TIME = datetime(2090, 1, 1, tzinfo=UTC)
INJECTION = "x' OR '1'='1"


@pytest.fixture
def settings(stack):
    """The running stack's settings (the conftest's session fixture brings the stack up)."""
    return stack


@pytest.fixture
def alert_ids(pg_writer, pg_admin):
    """Three open alerts inserted as the writer; deleted again after the test (by the admin:
    the writer may not DELETE, migration 004)."""
    prefix = f"ops-review-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i}" for i in range(3)]
    for i, tx in enumerate(ids):
        pg_writer.execute(
            "INSERT INTO alerts (transaction_id, card_token, card_masked, event_time, amount,"
            " merchant, category, score, threshold, reasons, features, model_version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                tx, f"tok-{i}", f"****000{i}", BASE_TIME + timedelta(minutes=i),
                500.0 + i, "fraud_Test Merchant", "shopping_net", 0.9 + i / 100, 0.5,
                Jsonb([{"code": "AMOUNT_VS_HISTORY", "feature": "amount_ratio_24h",
                        "value": 7.5, "contribution": 0.4}]),
                Jsonb({"amount_ratio_24h": 7.5, "count_1h": 2.0}),
                "model-test-1",
            ),
        )
    yield ids
    pg_admin.execute("DELETE FROM alerts WHERE transaction_id LIKE %s", (prefix + "%",))


@pytest.fixture
def analyst(pg_analyst):
    """The repository on the conftest's analyst connection (autocommit); the CLI tests below
    cover a transactional connection."""
    return ReviewRepository(pg_analyst)


def _row(settings, tx: str) -> tuple:
    with psycopg.connect(settings.pg_conninfo("writer")) as conn:
        return conn.execute(
            "SELECT review_status, label, reviewer, review_note, reviewed_at, score"
            " FROM alerts WHERE transaction_id = %s",
            (tx,),
        ).fetchone()


def test_list_and_show_as_analyst(analyst, alert_ids):
    listed = [a.transaction_id for a in analyst.list_alerts(status="open", limit=3)]
    assert listed == list(reversed(alert_ids))  # most recent event first
    detail = analyst.get(alert_ids[0])
    assert detail.card_masked == "****0000"
    assert detail.reasons[0]["code"] == "AMOUNT_VS_HISTORY"
    assert detail.features == {"amount_ratio_24h": 7.5, "count_1h": 2.0}
    assert detail.review_status == "open" and detail.label is None


def test_label_persists_and_closes(analyst, alert_ids, settings):
    at = datetime(2090, 1, 2, 9, 30, tzinfo=UTC)
    result = analyst.label(alert_ids[1], "fraud", reviewer="alice", at=at, note="called card")
    assert result.previous_label is None
    assert _row(settings, alert_ids[1])[:5] == ("closed", "fraud", "alice", "called card", at)
    again = analyst.label(alert_ids[1], "legit", reviewer="bob", at=at + timedelta(hours=1))
    assert again.previous_label == "fraud"
    assert _row(settings, alert_ids[1])[1] == "legit"
    # the other alerts are untouched
    assert _row(settings, alert_ids[0])[0] == "open"
    assert [a.transaction_id for a in analyst.list_alerts(status="closed", limit=1000)
            if a.transaction_id in alert_ids] == [alert_ids[1]]


def test_unknown_and_injection_ids_change_nothing(analyst, alert_ids, settings):
    at = datetime(2090, 1, 2, tzinfo=UTC)
    for bad in ("no-such-alert", INJECTION, alert_ids[0] + "' --"):
        with pytest.raises(AlertNotFound):
            analyst.label(bad, "fraud", reviewer="mallory", at=at)
        with pytest.raises(AlertNotFound):
            analyst.get(bad)
    note = "'); UPDATE alerts SET label = 'fraud'; --"
    analyst.label(alert_ids[2], "legit", reviewer=INJECTION, at=at, note=note)
    assert _row(settings, alert_ids[2])[1:4] == ("legit", INJECTION, note)
    assert [_row(settings, tx)[1] for tx in alert_ids[:2]] == [None, None]
    with pytest.raises(InvalidReview):
        analyst.label(alert_ids[0], "fraud; DROP TABLE alerts", reviewer="x", at=at)


def test_analyst_role_cannot_touch_scoring_columns(settings, alert_ids):
    with psycopg.connect(settings.pg_conninfo("analyst")) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE alerts SET score = 0 WHERE transaction_id = %s", (alert_ids[0],))


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    review_commands.register(app)
    return app


runner = CliRunner()


def test_cli_list_show_label_export(app, alert_ids, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_REVIEWER", "carol")
    listed = runner.invoke(app, ["review", "list", "--limit", "3"])
    assert listed.exit_code == 0, listed.output
    assert all(tx in listed.output for tx in alert_ids)

    shown = runner.invoke(app, ["review", "show", alert_ids[0]])
    assert shown.exit_code == 0, shown.output
    assert "AMOUNT_VS_HISTORY" in shown.output and "count_1h" in shown.output

    labelled = runner.invoke(app, ["review", "label", alert_ids[0], "fraud", "--note", "ok"])
    assert labelled.exit_code == 0, labelled.output
    status, label, reviewer, note, reviewed_at, score = _row(settings, alert_ids[0])
    assert (status, label, reviewer, note) == ("closed", "fraud", "carol", "ok")
    assert reviewed_at is not None

    out = tmp_path / "labels.csv"
    exported = runner.invoke(app, ["review", "export-labels", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    rows = {r["transaction_id"]: r for r in csv.DictReader(out.open())}
    assert rows[alert_ids[0]]["label"] == "fraud"
    assert rows[alert_ids[0]]["model_version"] == "model-test-1"
    assert float(rows[alert_ids[0]]["score"]) == score
    assert alert_ids[1] not in rows  # unlabelled alerts are not training labels


def test_cli_unknown_id_is_exit_1(app, alert_ids):
    for command in (["review", "show", INJECTION], ["review", "label", "nope", "legit"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert "no alert with transaction id" in result.output
