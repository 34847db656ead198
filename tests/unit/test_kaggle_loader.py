"""Acceptance 3: the Kaggle-layout loader on a fixture in the exact layout.

`tests/fixtures/kaggle_sample.csv`: the 23-column header with the unnamed index column, 7 valid
rows (13..19-digit card numbers, 3- and 4-digit zips, quoted merchants with commas, rows out
of time order, empty optional fields) and 15 malformed rows, one per reason below.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from models.data.kaggle import HEADER, KaggleFormatError, load_kaggle_csv
from schemas.card_token import CardTokenizer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kaggle_sample.csv"
TOK = CardTokenizer(b"kaggle-loader-test-token-key")

EXPECTED_REJECTED = Counter(
    {
        "cc_num: not 12-19 digits": 2,
        "amt: not a number": 1,
        "amt: out of range [0, 1e+06]": 2,
        "category: not one of the 14 categories": 1,
        "trans_date_trans_time: not YYYY-MM-DD HH:MM:SS": 1,
        "trans_date_trans_time: not a valid date and time": 1,
        "row: has 15 columns, expected 23": 1,
        "trans_num: duplicate": 1,
        "is_fraud: not 0 or 1": 1,
        "zip: not 1-5 digits": 1,
        "lat: out of range [-90, 90]": 1,
        "row: blank line": 1,
        "row: not valid UTF-8": 1,
    }
)


@pytest.fixture(scope="module")
def result():
    return load_kaggle_csv(FIXTURE, TOK)


def test_header_is_the_exact_kaggle_layout():
    first_line = FIXTURE.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert first_line == ",".join(HEADER) and HEADER[0] == "" and len(HEADER) == 23


def test_valid_rows_load_and_every_bad_row_is_counted_by_reason(result):
    assert len(result.transactions) == 7
    assert result.rejected == EXPECTED_REJECTED
    assert result.rows_read == 7 + sum(EXPECTED_REJECTED.values())
    assert len(result.rejected_rows) == sum(EXPECTED_REJECTED.values())
    lines = [line for line, _ in result.rejected_rows]
    assert lines == sorted(lines) and all(line > 1 for line in lines)


def test_rows_are_sorted_by_event_time_card_and_id(result):
    keys = [(t.event_time_ms, t.card_token, t.transaction_id) for t in result.transactions]
    assert keys == sorted(keys)
    assert result.transactions[0].event_time_ms == 1_546_300_818_000  # 2019-01-01 00:00:18Z


def test_card_numbers_are_tokenized_strings_never_floats(result):
    by_id = {t.transaction_id: t for t in result.transactions}
    fraud = by_id["f7c8a0bc25e36bc9c8e4a0d3a6ad5a8d"]
    assert fraud.card_token == TOK.token("4992346398065154184")  # all 19 digits kept
    assert fraud.card_last4 == "4184" and fraud.label == 1
    assert by_id["1f76529f8574734946361c461b024d99"].card_last4 == "7322"  # 12 digits
    text = repr(result)
    for pan in ("4992346398065154184", "2703186189652095", "630423337322"):
        assert pan not in text
    assert not re.search(r"\d{12,}", " ".join(reason for _, reason in result.rejected_rows))


def test_zip_is_zero_padded_and_fields_are_mapped(result):
    by_id = {t.transaction_id: t for t in result.transactions}
    ma = by_id["f7c8a0bc25e36bc9c8e4a0d3a6ad5a8d"]
    assert ma.zip == "01085" and ma.state == "MA" and ma.birth_year == 1987
    assert (ma.amount, ma.category, ma.merchant) == (
        843.91, "shopping_net", "fraud_Kozey, Boehm and Wehner"
    )
    assert (ma.home_lat, ma.home_long, ma.merchant_lat, ma.city_pop) == (
        42.1386, -72.7541, 42.529553, 40984
    )
    sparse = by_id["c3d7a9e0f9b84b0c9a6f3b5d1e2a4c6f"]
    assert (sparse.zip, sparse.gender, sparse.state, sparse.birth_year) == ("00501", None, None,
                                                                            None)


def test_event_time_comes_from_trans_date_not_unix_time(result):
    first = result.transactions[0]
    assert first.event_time_ms != 1_325_376_018_000  # the shifted unix_time column


def test_timezone_option_shifts_naive_times():
    ny = load_kaggle_csv(FIXTURE, TOK, timezone="America/New_York")
    assert ny.transactions[0].event_time_ms == 1_546_300_818_000 + 5 * 3_600_000


def test_wrong_header_is_a_format_error(tmp_path):
    bad = tmp_path / "no_index.csv"
    bad.write_text(",".join(HEADER[1:]) + "\n")
    with pytest.raises(KaggleFormatError, match="header"):
        load_kaggle_csv(bad, TOK)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(KaggleFormatError, match="empty"):
        load_kaggle_csv(empty, TOK)


def test_load_kaggle_command_prints_counts(tmp_path, monkeypatch):
    from models.data.cli import register

    monkeypatch.setenv("FRAUDSTREAM_CARD_TOKEN_KEY", "cli-test-token-key-0123456789")
    app = typer.Typer()
    register(app)
    out = tmp_path / "loaded.jsonl"
    run = CliRunner().invoke(app, ["load-kaggle", str(FIXTURE), "--out", str(out)])
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())  # rich wraps at the terminal width (80 in CI)
    assert "7 loaded, 15 rejected" in text
    assert "trans_num: duplicate" in text
    written = out.read_text()
    assert len(written.splitlines()) == 7
    assert "4992346398065154184" not in written and "cc_num" not in written
