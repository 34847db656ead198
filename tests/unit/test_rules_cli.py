"""`fraudstream rules test` and `rules add` without a stack: the back-test over a generated
file, and a malformed expression refused with its column before anything is published."""

from __future__ import annotations

import re
from datetime import date

from typer.testing import CliRunner

from jobs.cli import app
from models.data.generator import GeneratorConfig, generate
from models.data.writers import write_jsonl
from models.rules import Rule, backtest, read_rows
from schemas.card_token import CardTokenizer


def test_backtest_prints_the_rules_hits_precision_and_recall(tmp_path):
    history = tmp_path / "history.jsonl"
    config = GeneratorConfig(cards=40, start=date(2024, 1, 1), days=20, seed=3)
    write_jsonl(generate(config, CardTokenizer(b"k" * 32)), history)
    expression = "amount > 300 and category in ('shopping_net', 'misc_net')"
    result = CliRunner().invoke(app, ["rules", "test", "big-net", "--when", expression,
                                      "--input", str(history)])
    assert result.exit_code == 0, result.output
    expected = backtest(Rule("big-net", expression), read_rows(history))
    assert expected.hits > 0 and expected.frauds > 0  # the file can tell precision apart
    row = re.search(r"big-net\W+([\d,]+)\W+([\d,]+)", result.output)
    assert row, result.output
    assert int(row.group(2).replace(",", "")) == expected.hits
    assert f"{expected.precision:.1%}" in result.output


def test_a_malformed_rule_is_refused_with_its_column():
    result = CliRunner().invoke(app, ["rules", "add", "broken", "--when", "amount >> 5"])
    assert result.exit_code == 1
    assert "column 9" in result.output or "column 8" in result.output, result.output
