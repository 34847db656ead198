"""Unit tests for the operator commands (`jobs/cli/alerts.py`, `jobs/cli/review/`, `jobs/cli/demo/
command.py`): argument handling, error paths and rendering (no stack)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from jobs.cli import alerts, common
from jobs.cli.alerts_follow import decode_alert
from jobs.cli.demo import command as demo_command
from jobs.cli.review import commands as review_commands
from jobs.cli.review import repository as review
from jobs.cli.review.render import detail_renderables, summary_table
from schemas.alert import Alert, AlertReason, alert_to_json


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    for area in (alerts, review_commands, demo_command):
        area.register(app)
    return app


@pytest.fixture
def no_stack(monkeypatch):
    """Settings that fail as they do before `fraudstream up` (no secrets)."""

    def _fail():
        raise RuntimeError("FRAUDSTREAM_PG_ANALYST_PASSWORD is not set")

    import connectors.settings

    monkeypatch.setattr(connectors.settings, "load_settings", _fail)


runner = CliRunner()


def test_registers_alerts_review_and_demo(app):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("alerts", "review", "demo"):
        assert name in result.output
    sub = runner.invoke(app, ["review", "--help"])
    for name in ("list", "show", "label", "export-labels"):
        assert name in sub.output


def test_label_rejects_unknown_label_before_connecting(app, no_stack):
    result = runner.invoke(app, ["review", "label", "tx-1", "maybe"])
    assert result.exit_code == 2
    assert "fraud or legit" in result.output


def test_list_rejects_unknown_status_before_connecting(app, no_stack):
    result = runner.invoke(app, ["review", "list", "--status", "pending"])
    assert result.exit_code == 2
    assert "status must be one of" in result.output


def test_alerts_max_must_be_positive(app):
    result = runner.invoke(app, ["alerts", "--max", "0"])
    assert result.exit_code == 2


def test_missing_stack_is_one_clear_error(app, no_stack):
    result = runner.invoke(app, ["review", "show", "tx-1"])
    assert result.exit_code == 1
    assert "fraudstream up" in result.output
    assert "Traceback" not in result.output


def _render(*renderables) -> str:
    console = Console(record=True, width=200)
    for r in renderables:
        console.print(r)
    return console.export_text()


def test_alert_line_escapes_markup_and_shows_no_token():
    alert = Alert(
        transaction_id="tx-9", card_token="tok_secretish", card_masked="****0007",
        event_time_ms=1_704_110_400_000, amount=12.0, merchant="[bold]evil[/bold]",
        category="misc_net", score=0.91, threshold=0.5, model_version="m1",
        reasons=(AlertReason("NIGHT", "is_night", 1.0, 0.3),), features={},
    )
    text = _render(alerts.format_alert_line(decode_alert(alert_to_json(alert))))
    assert "[bold]evil[/bold]" in text  # printed literally, not interpreted
    assert "****0007" in text
    assert "tok_secretish" not in text
    assert "NIGHT (is_night=1)" in text


def _detail(**overrides) -> review.AlertDetail:
    fields = dict(
        transaction_id="tx-7", card_masked="****1111",
        event_time=datetime(2024, 1, 1, 3, 0, tzinfo=UTC), amount=812.25, merchant="m",
        category="shopping_net", score=0.93, threshold=0.5,
        reasons=[{"code": "AMOUNT_VS_HISTORY", "feature": "amount_ratio_24h", "value": 9.5,
                  "contribution": 0.41}],
        features={"amount_ratio_24h": 9.5, "count_1h": 3.0}, model_version="m1",
        is_late=False, created_at=datetime(2024, 1, 1, 3, 0, 2, tzinfo=UTC),
        review_status="open", label=None, reviewer=None, review_note=None, reviewed_at=None,
    )
    fields.update(overrides)
    return review.AlertDetail(**fields)


def test_show_renders_reasons_and_feature_snapshot():
    text = _render(*detail_renderables(_detail()))
    assert "AMOUNT_VS_HISTORY" in text and "0.41" in text
    assert "amount_ratio_24h" in text and "count_1h" in text
    assert "0.9300 / 0.5000" in text
    assert "****1111" in text


def test_list_table_has_one_row_per_alert():
    rows = [
        review.AlertSummary(f"tx-{i}", "****1111", datetime(2024, 1, 1, tzinfo=UTC), 10.0 * i,
                            "m", "misc_net", 0.8, "m1", "open", None)
        for i in range(3)
    ]
    text = _render(summary_table(rows))
    assert all(f"tx-{i}" in text for i in range(3))
    assert "20.00" in text and "misc_net" in text and "2024-01-01 00:00" in text


def test_list_table_leaves_out_optional_columns_when_narrow():
    long_id = "f" * 32  # generator ids are 32 hex characters
    rows = [review.AlertSummary(long_id, "****1111", datetime(2024, 1, 1, tzinfo=UTC), 1234.5,
                                "fraud_Kirlin and Sons", "shopping_net", 0.8, "m1", "closed",
                                "fraud")]
    narrow = _render(summary_table(rows, width=80))
    assert long_id in narrow and "1,234.50" in narrow and "closed: fraud" in narrow
    assert "fraud_Kirlin" not in narrow  # dropped whole, never cut mid-word
    wide = _render(summary_table(rows, width=160))
    assert "fraud_Kirlin and Sons" in wide


def test_sigint_sets_the_stop_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with common.stop_on_sigint() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(2.0)
    assert signal.getsignal(signal.SIGINT) is before
