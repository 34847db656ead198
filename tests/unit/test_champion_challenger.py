"""Champion vs challenger arithmetic on hand-made events."""

from __future__ import annotations

import pytest

from models.champion_challenger import ONE_DAY_MS, ScoredPair, compare


def test_counts_precision_recall_and_cost_per_side():
    pairs = [
        ScoredPair(0, 100.0, 1, 0.9, 0.4),  # fraud: champion catches, challenger misses
        ScoredPair(ONE_DAY_MS, 50.0, 1, 0.2, 0.8),  # fraud: challenger catches
        ScoredPair(ONE_DAY_MS, 10.0, 0, 0.7, 0.1),  # legit: champion false alarm
        ScoredPair(2 * ONE_DAY_MS, 5.0, None, 0.95, 0.95),  # unlabelled: both alert
    ]
    result = compare(pairs, champion_threshold=0.5, challenger_threshold=0.5,
                     thresholds=(0.5,), review_cost=25.0)
    assert (result.events, result.labelled, result.days) == (4, 3, 2.0)
    champ, chall = result.champion, result.challenger
    assert (champ.alerts, champ.true_positives, champ.false_positives, champ.false_negatives) \
        == (3, 1, 1, 1)
    assert champ.precision == 0.5 and champ.recall == 0.5
    assert champ.missed_fraud_amount == 50.0 and champ.cost == 50.0 + 2 * 25.0
    assert (chall.alerts, chall.true_positives, chall.false_positives) == (2, 1, 0)
    assert chall.precision == 1.0 and chall.cost == 100.0 + 25.0
    assert champ.alerts_per_day == pytest.approx(1.5)
    assert result.sweep[0] == (champ, chall)


def test_no_labels_and_no_events():
    result = compare([ScoredPair(0, 1.0, None, 0.9, 0.1)], 0.5, 0.5)
    assert result.champion.precision is None and result.champion.recall is None
    assert compare([], 0.5, 0.5).events == 0
