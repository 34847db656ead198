"""PSI, reference bins and the drift exporter (models.drift, connectors.drift_metrics); named
apart from tests/integration/test_drift.py (pytest needs unique basenames here)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.drift import (
    DRIFT_THRESHOLD,
    EPSILON,
    SCORE,
    WATCH_THRESHOLD,
    BinnedReference,
    DriftReference,
    bin_counts,
    build_reference,
    level,
    psi,
    psi_by_series,
    reference_edges,
)


def test_psi_matches_the_textbook_formula():
    expected = [0.25, 0.25, 0.25, 0.25]
    actual = [0.1, 0.2, 0.3, 0.4]
    want = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert psi(expected, actual) == pytest.approx(want)
    # counts are normalised: 10x the rows, same PSI
    assert psi(expected, [10, 20, 30, 40]) == pytest.approx(want)


def test_psi_of_identical_distributions_is_zero_and_an_empty_bin_stays_finite():
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.0)
    # all actual rows in a bin the reference never saw: large but finite (epsilon floor)
    shifted = psi([1.0, 0.0], [0.0, 1.0])
    assert math.isfinite(shifted)
    assert shifted == pytest.approx(2 * (1 - EPSILON) * math.log(1 / EPSILON))  # ~18.4


def test_psi_without_actual_rows_is_nan_and_bin_count_mismatch_is_an_error():
    assert math.isnan(psi([0.5, 0.5], [0, 0]))
    with pytest.raises(ValueError, match="bin count"):
        psi([0.5, 0.5], [1, 2, 3])


def test_levels_follow_the_documented_thresholds():
    assert (WATCH_THRESHOLD, DRIFT_THRESHOLD) == (0.1, 0.25)
    assert level(0.0) == level(0.0999) == "stable"
    assert level(0.1) == level(0.2499) == "watch"
    assert level(0.25) == level(3.0) == "drift"
    assert level(None) == level(float("nan")) == "n/a"


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12).flatmap(
    lambda e: st.tuples(st.just(e), st.lists(st.floats(0.0, 1.0), min_size=len(e),
                                              max_size=len(e)))))
def test_psi_is_never_negative(pair):
    expected, actual = pair
    if sum(expected) == 0 or sum(actual) == 0:
        return
    value = psi(expected, actual)
    assert value >= -1e-12


def test_decile_edges_of_a_continuous_feature_give_ten_equal_bins():
    values = np.random.default_rng(1).lognormal(3.5, 1.0, 20_000)
    edges = reference_edges(values)
    assert len(edges) == 9 and edges == sorted(edges)
    shares = bin_counts(values, edges) / len(values)
    assert np.allclose(shares, 0.1, atol=0.002)


def test_a_discrete_feature_gets_one_bin_per_value_plus_one_above():
    flag = np.array([1.0] * 95 + [0.0] * 5)  # almost always 1 (like merchant_is_new)
    ref = BinnedReference.of(flag)
    assert ref.edges == (0.0, 1.0)
    assert ref.proportions == pytest.approx((0.05, 0.95, 0.0))
    # a change of the flag's rate shows, although no decile separates 0 from 1
    assert ref.psi(ref.counts([1.0] * 50 + [0.0] * 50)) > DRIFT_THRESHOLD
    # a one-hot never set in the reference: any 1 lands in the bin above
    never = BinnedReference.of(np.zeros(1000))
    assert never.edges == (0.0,) and never.proportions == (1.0, 0.0)
    assert never.psi(never.counts([0.0] * 80 + [1.0] * 20)) > DRIFT_THRESHOLD


def test_bins_are_right_closed_and_compare_in_float32():
    edges = [float(np.float32(4.99)), 10.0]
    # 4.99 as float64 is above its float32 rounding, but is the same value to the model
    assert bin_counts([4.99, 5.0, 10.0, 10.01, float("nan"), float("inf")], edges).tolist() == [
        1, 2, 1]


def test_same_population_is_stable_and_a_scaled_one_drifts():
    rng = np.random.default_rng(7)
    ref = BinnedReference.of(rng.gamma(2.0, 30.0, 50_000))
    same = ref.psi(ref.counts(rng.gamma(2.0, 30.0, 2_000)))
    scaled = ref.psi(ref.counts(3.0 * rng.gamma(2.0, 30.0, 2_000)))
    assert same < WATCH_THRESHOLD / 2
    assert scaled > DRIFT_THRESHOLD


def test_reference_json_round_trip_and_series_order():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=500), rng.integers(0, 2, 500)]).astype(np.float32)
    ref = build_reference(x, ["a", "flag"], rng.random(500), source="unit test")
    doc = ref.as_json()
    again = DriftReference.from_json(doc)
    assert list(again.series()) == ["a", "flag", SCORE]
    assert again.rows == 500 and again.source == "unit test"
    for name, series in ref.series().items():
        assert again.series()[name].edges == series.edges
        assert again.series()[name].proportions == pytest.approx(series.proportions, abs=1e-8)
    assert DriftReference.from_metadata({"threshold": "0.5"}) is None
    assert DriftReference.from_metadata({"drift_reference": doc}).rows == 500
    with pytest.raises(ValueError, match="format"):
        DriftReference.from_json({**doc, "format": 99})


def test_psi_by_series_uses_the_columns_it_is_given():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 2)).astype(np.float32)
    ref = build_reference(x, ["a", "b"], rng.random(2000), source="t")
    got = psi_by_series(ref, {"a": rng.normal(size=800) + 2.0, "b": rng.normal(size=800)})
    assert set(got) == {"a", "b"}
    assert got["a"][0] > DRIFT_THRESHOLD and got["b"][0] < WATCH_THRESHOLD
    assert got["a"][1] == 800


def test_build_reference_refuses_misshaped_input():
    with pytest.raises(ValueError, match="features"):
        build_reference(np.zeros((3, 2)), ["a"], np.zeros(3), "t")
    with pytest.raises(ValueError, match="one score per row"):
        build_reference(np.zeros((3, 1)), ["a"], np.zeros(2), "t")


def test_metrics_expose_the_latest_psi_per_feature_and_drop_stale_labels():
    from prometheus_client import generate_latest

    from connectors.drift_metrics import DriftMetrics
    from connectors.drift_store import DriftRow

    hour = datetime(2020, 3, 1, 14, tzinfo=UTC)
    metrics = DriftMetrics()
    metrics.update([DriftRow(hour, "v1", "amount", 0.6, 300),
                    DriftRow(hour, "v1", "count_1h", 0.12, 300),
                    DriftRow(hour, "v1", "score", 0.01, 300)], now_s=1000.0)
    text = generate_latest(metrics.registry).decode()
    assert 'fraudstream_feature_psi{feature="amount",model_version="v1"} 0.6' in text
    assert 'fraudstream_feature_psi_rows{feature="amount",model_version="v1"} 300.0' in text
    assert 'fraudstream_drift_features{level="drift",model_version="v1"} 1.0' in text
    assert 'fraudstream_drift_features{level="watch",model_version="v1"} 1.0' in text
    assert "fraudstream_drift_last_success_seconds 1000.0" in text
    metrics.update([DriftRow(hour, "v1", "score", 0.02, 300)], now_s=1001.0)
    text = generate_latest(metrics.registry).decode()
    assert 'feature="amount"' not in text
    assert 'fraudstream_drift_features{level="drift",model_version="v1"} 0.0' in text


def test_parse_when_accepts_durations_and_iso_times():
    from jobs.cli.drift import parse_when

    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_when("90m", now) == datetime(2026, 1, 2, 10, 30, tzinfo=UTC)
    assert parse_when("24h", now) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_when("7d", now) == datetime(2025, 12, 26, 12, 0, tzinfo=UTC)
    assert parse_when("2020-03-01T05:00", now) == datetime(2020, 3, 1, 5, tzinfo=UTC)
    assert parse_when("2020-03-01T05:00+02:00", now).utcoffset().total_seconds() == 7200


def test_the_report_draws_a_png(tmp_path):
    from models.drift_plot import plot_drift

    hours = [datetime(2020, 3, 1, h, tzinfo=UTC) for h in range(6)]
    points = [(h, "amount", 0.02 if i < 3 else 0.9) for i, h in enumerate(hours)]
    points += [(h, "count_1h", 0.01) for h in hours] + [(h, SCORE, 0.05) for h in hours]
    out = plot_drift(points, tmp_path / "d.png", "test", ["amount", "count_1h"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_drift([], tmp_path / "e.png", "empty")


def test_hourly_drift_leaves_out_the_clock_features():
    from models.drift import CLOCK_FEATURES

    rng = np.random.default_rng(5)
    names = ["amount", "hour_of_day", "is_night"]
    x = np.column_stack([rng.random(300), rng.integers(0, 24, 300), rng.integers(0, 2, 300)])
    ref = build_reference(x, names, rng.random(300), source="t")
    assert set(CLOCK_FEATURES) == {"hour_of_day", "is_night"}
    assert list(ref.hourly_series()) == ["amount", SCORE]
    assert set(ref.series()) == {*names, SCORE}  # the reference keeps them
