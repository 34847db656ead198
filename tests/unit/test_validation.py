"""Great Expectations suite on training input: good data passes, bad data stops training."""

from __future__ import annotations

import dataclasses

import pytest

from models.training.config import TrainConfig
from models.training.dataset import transactions_frame
from models.validation import DataValidationError, require_valid, validate_transactions
from tests.factories import ONE_MINUTE, T0, txn


def sample(n: int = 200, frauds: int = 4):
    return [
        txn(card=f"c{i % 7}", amount=10.0 + i, at=T0 + i * ONE_MINUTE, label=int(i < frauds))
        for i in range(n)
    ]


def test_clean_data_passes():
    report = validate_transactions(transactions_frame(sample()), 0.001, 0.05)
    assert report.success, report.render()
    assert len(report.checks) >= 15
    assert require_valid(report) is report


def test_bad_rows_fail_with_a_readable_report_naming_columns():
    rows = sample()
    rows[3] = dataclasses.replace(rows[3], amount=-5.0)
    rows[4] = dataclasses.replace(rows[4], category="crypto")
    rows[5] = dataclasses.replace(rows[5], transaction_id=rows[6].transaction_id)
    rows[7] = dataclasses.replace(rows[7], card_token="4111111111111111")
    rows[8] = dataclasses.replace(rows[8], label=None)
    report = validate_transactions(transactions_frame(rows), 0.001, 0.05)
    assert not report.success
    failed = {(c.expectation, c.column) for c in report.failures}
    assert ("expect_column_values_to_be_between", "amount") in failed
    assert ("expect_column_values_to_be_in_set", "category") in failed
    assert ("expect_column_values_to_be_unique", "transaction_id") in failed
    assert ("expect_column_values_to_not_match_regex", "card_token") in failed
    assert ("expect_column_values_to_not_be_null", "label") in failed
    text = report.render()
    assert "FAILED" in text and "[amount]" in text and "crypto" in text
    assert "4111111111111111" not in text  # a card number is never echoed
    with pytest.raises(DataValidationError) as err:
        require_valid(report)
    assert err.value.report is report


def test_fraud_rate_outside_band_fails():
    report = validate_transactions(transactions_frame(sample(frauds=60)), 0.001, 0.05)
    assert [(c.expectation, c.column) for c in report.failures] == [
        ("expect_column_mean_to_be_between", "label")
    ]


def test_training_stops_before_features_on_invalid_file(tmp_path):
    from models.training.pipeline import run_training

    rows = sample()
    rows[0] = dataclasses.replace(rows[0], amount=0.0)
    path = tmp_path / "bad.parquet"  # Parquet skips the wire parser: the suite is the gate
    transactions_frame(rows).to_parquet(path)
    registry = tmp_path / "registry"
    cfg = TrainConfig(input_path=path, registry_dir=registry, fraud_rate_max=0.05)
    with pytest.raises(DataValidationError, match="amount"):
        run_training(cfg, log=lambda _: None)
    assert not registry.exists()


def test_cli_exits_2_with_the_report(tmp_path):
    import typer
    from typer.testing import CliRunner

    from models.cli import register

    rows = sample()
    rows[1] = dataclasses.replace(rows[1], category="crypto")
    path = tmp_path / "bad.parquet"
    transactions_frame(rows).to_parquet(path)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["train", "--input", str(path), "--registry", str(tmp_path / "reg")]
    )
    assert result.exit_code == 2
    assert "category" in result.output and "failed validation" in result.output
