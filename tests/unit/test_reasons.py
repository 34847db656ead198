"""Reason codes an analyst can trust: direction against the legitimate median, the group's
feature that moved the score most, and its share of the log-odds. A linear log-odds model
makes every expected number exact."""

from __future__ import annotations

import math

import pytest

from models.features import FEATURE_NAMES
from models.reasons import REASON_DESCRIPTIONS, REASON_GROUPS, occlusion_variants, rank_reasons

INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _explain(row, reference, weights, top_k=13):
    """Scores of every occlusion variant under logit(x) = sum w_i (x_i - ref_i) - 1."""
    def score(x):
        z = sum(weights.get(n, 0.0) * (x[INDEX[n]] - reference[INDEX[n]])
                for n in FEATURE_NAMES) - 1
        return 1 / (1 + math.exp(-z))

    variants = occlusion_variants(row, reference)
    return rank_reasons(row, [score(v) for v in variants], top_k, reference)


def _base():
    reference = [1.0] * len(FEATURE_NAMES)
    return list(reference), reference


def test_a_small_amount_that_raises_the_score_is_named_low_not_high():
    row, reference = _base()
    reference[INDEX["amount"]] = 60.0
    row[INDEX["amount"]] = 11.47  # a small purchase the model finds suspicious (negative weight)
    (reason,) = [r for r in _explain(row, reference, {"amount": -0.2}) if r.feature == "amount"]
    assert reason.code == "AMOUNT_LOW" and reason.direction == "low"
    assert reason.value == pytest.approx(11.47)
    assert reason.contribution == pytest.approx(-0.2 * (11.47 - 60.0), rel=1e-6)


def test_the_group_names_the_feature_that_moved_the_score():
    row, reference = _base()
    row[INDEX["sum_1h"]] = 900.0  # the hour's amount matters; its one transaction does not
    weights = {"count_1h": 2.0, "sum_1h": 0.01}
    top = _explain(row, reference, weights)[0]
    assert top.code == "VELOCITY_1H_HIGH"
    assert top.feature == "sum_1h" and top.direction == "high"


def test_share_is_the_reasons_part_of_the_log_odds_above_the_median_row():
    row, reference = _base()
    row[INDEX["distance_from_home_km"]] = 801.0
    row[INDEX["merchant_is_new"]] = 2.0
    weights = {"distance_from_home_km": 0.003, "merchant_is_new": 0.6}
    reasons = {r.code: r for r in _explain(row, reference, weights)}
    # linear log-odds: additive, so the shares are exact and sum to 1
    assert reasons["FAR_FROM_HOME"].share == pytest.approx(2.4 / 3.0, rel=1e-6)
    assert reasons["NEW_MERCHANT"].share == pytest.approx(0.6 / 3.0, rel=1e-6)


def test_a_row_no_riskier_than_the_median_has_no_share_and_no_direction():
    row, reference = _base()
    reasons = _explain(row, reference, {"amount": 1.0})
    assert all(r.share is None and r.direction is None for r in reasons)
    assert {r.code for r in reasons} == {g.code for g in REASON_GROUPS}


def test_every_code_has_a_description():
    for group in REASON_GROUPS:
        for code in (group.code, group.high, group.low):
            assert code in REASON_DESCRIPTIONS
