"""Training: metrics, cost threshold, time split, reading input files. (What one real training
run writes: test_training_outputs.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from models.training.dataset import FeatureTable, split_by_time
from models.training.metrics import (
    at_threshold,
    precision_top_k_per_day,
    recall_at_fpr,
    threshold_by_cost,
)

DAY = 86_400_000


def test_threshold_by_cost_trades_missed_fraud_against_reviews():
    y = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    amount = np.array([100.0, 100.0, 5.0, 5.0, 30.0, 5.0])
    # review 10: flag top 2 -> cost 30 + 20 = 50; top 5 -> 0 + 50; top 2 wins the tie (fewer)
    th, cost = threshold_by_cost(y, scores, amount, review_cost=10.0)
    assert (th, cost) == (0.8, 50.0)
    # cheap reviews: catch everything
    th, cost = threshold_by_cost(y, scores, amount, review_cost=1.0)
    assert (th, cost) == (0.5, 5.0)
    # expensive reviews: flag nothing
    th, cost = threshold_by_cost(y, scores, amount, review_cost=1000.0)
    assert th > 0.9 and cost == 230.0
    a = at_threshold(y, scores, amount, np.arange(6) * DAY, 0.8, 10.0)
    assert (a.true_positives, a.false_positives, a.false_negatives) == (2, 0, 1)
    assert a.cost == 50.0 and a.missed_fraud_amount == 30.0


def test_recall_at_fpr_and_top_k():
    y = np.array([0] * 100 + [1] * 4)
    scores = np.r_[np.linspace(0, 0.5, 100), [0.9, 0.8, 0.45, 0.1]]
    assert recall_at_fpr(y, scores, 0.01) == 0.5  # only 1 legit may exceed -> 2 frauds above
    times = np.r_[np.zeros(100, dtype=np.int64), [0, 0, DAY, DAY]]
    # day 0: top 2 = two frauds; day 1: top 2 = the two frauds of that day
    assert precision_top_k_per_day(y, scores, times, 2) == 1.0


def test_split_by_time_never_overlaps():
    t = np.arange(0, 100 * DAY, DAY // 4, dtype=np.int64)
    table = FeatureTable(
        np.zeros((len(t), 2), np.float32), np.zeros(len(t), np.int8), t, np.ones(len(t))
    )
    s = split_by_time(table, 0.6, 0.2)
    assert s.train.time_ms.max() < s.validation.time_ms.min()
    assert s.validation.time_ms.max() < s.test.time_ms.min()
    assert len(s.train) + len(s.validation) + len(s.test) == len(t)
    assert s.boundaries_ms[1] % DAY == 0 and s.boundaries_ms[2] % DAY == 0


def test_reads_kaggle_csv_tokenized_and_jsonl_round_trip(tmp_path):
    from pathlib import Path

    from models.training.dataset import read_transactions

    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "kaggle_sample.csv"
    txns = read_transactions(fixture, b"test-key-0123456789")
    assert txns and all(len(t.card_token) == 64 for t in txns)
    raw = fixture.read_text(encoding="utf-8", errors="replace")
    assert all(t.card_token not in raw for t in txns)
    from models.data.writers import write_csv, write_jsonl

    path = tmp_path / "t.jsonl"  # what `fraudstream generate --out t.jsonl` writes
    write_jsonl(txns, path)
    assert read_transactions(path, b"unused-key-0123456789") == txns
    generated_csv = tmp_path / "t.csv"  # a generator CSV is not mistaken for the Kaggle layout
    write_csv(txns, generated_csv)
    assert read_transactions(generated_csv, b"unused-key-0123456789") == txns
    from models.training.dataset import transactions_frame

    parquet = tmp_path / "t.parquet"
    transactions_frame(txns).to_parquet(parquet)
    assert read_transactions(parquet, b"unused-key-0123456789") == txns


def test_a_malformed_jsonl_record_stops_reading_with_the_file_and_field(tmp_path):
    from models.training.dataset import DatasetError, read_transactions

    path = tmp_path / "bad.jsonl"
    path.write_text('{"schema_version": 1, "transaction_id": "t1"}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl: not a valid transaction record: \w+"):
        read_transactions(path, b"unused-key-0123456789")
