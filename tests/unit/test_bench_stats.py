"""The benchmark's own arithmetic: percentiles, rates, CPU accounting, slopes, sizes."""

from __future__ import annotations

import random

import pytest

from bench.stats import (
    CpuSample,
    cpu_delta,
    cpu_seconds_per_1000,
    linear_slope,
    percentile,
    rate,
    ratio,
    steady_rate,
    summarize_latencies,
    summarize_sizes,
)


def test_percentile_interpolates_between_closest_ranks():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    # rank = 0.5 * 3 = 1.5 -> halfway between 20 and 30
    assert percentile(values, 50) == pytest.approx(25.0)
    # rank = 0.99 * 3 = 2.97 -> 30 + 0.97 * 10
    assert percentile(values, 99) == pytest.approx(39.7)


def test_percentile_ignores_input_order():
    values = list(range(1, 101))
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    assert percentile(shuffled, 95) == percentile(values, 95) == pytest.approx(95.05)


def test_percentile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    values = [rng.expovariate(0.1) for _ in range(1001)]
    for q in (1, 50, 95, 99, 99.9):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_latencies():
    samples = [float(x) for x in range(1, 1001)]  # 1..1000 ms
    s = summarize_latencies(samples)
    assert s.count == 1000
    assert s.p50_ms == pytest.approx(500.5)
    assert s.p99_ms == pytest.approx(990.01)
    assert s.max_ms == 1000.0
    assert s.min_ms == 1.0
    assert s.mean_ms == pytest.approx(500.5)
    with pytest.raises(ValueError):
        summarize_latencies([])


def test_rate_and_cpu_per_1000():
    assert rate(200_000, 8.0) == 25_000
    assert cpu_seconds_per_1000(12.0, 200_000) == pytest.approx(0.06)
    with pytest.raises(ValueError):
        rate(10, 0)
    with pytest.raises(ValueError):
        cpu_seconds_per_1000(1.0, 0)


def test_ratio_none_without_denominator():
    assert ratio(30.0, 20.0) == 1.5
    assert ratio(1.0, 0.0) is None


def test_cpu_delta_counts_only_the_measured_interval():
    before = CpuSample(user_s=10.0, system_s=2.0)
    after = CpuSample(user_s=13.5, system_s=2.5)
    assert cpu_delta(before, after) == pytest.approx(4.0)
    # A process that started during the run is charged all its CPU.
    assert cpu_delta(None, after) == pytest.approx(16.0)
    with pytest.raises(ValueError):
        cpu_delta(after, before)


def test_steady_rate_excludes_startup_and_tail():
    # 10 s of start-up with nothing done, then 1,000 events/s for 10 s, then a 5 s idle tail.
    progress = [(float(t), 0) for t in range(0, 11)]
    progress += [(10.0 + t, 1000 * t) for t in range(1, 11)]
    progress += [(20.0 + t, 10_000) for t in range(1, 6)]
    assert steady_rate(progress) == pytest.approx(1000.0)
    assert steady_rate([]) is None
    assert steady_rate([(1.0, 0)]) is None


def test_linear_slope():
    points = [(float(t), 100.0 + 2.0 * t) for t in range(10)]
    assert linear_slope(points) == pytest.approx(2.0)
    assert linear_slope([(1.0, 5.0)]) is None
    assert linear_slope([(1.0, 5.0), (1.0, 6.0)]) is None


def test_summarize_sizes():
    s = summarize_sizes([100, 200, 300, 400])
    assert s.count == 4
    assert s.mean_bytes == 250.0
    assert s.max_bytes == 400
    assert s.p99_bytes == pytest.approx(397.0)
    with pytest.raises(ValueError):
        summarize_sizes([])


def test_steady_cost_leaves_out_startup_cpu():
    from bench.stats import steady_cost_per_1000

    # 20 CPU s of start-up before the first event, then 0.05 CPU s per 1,000 events.
    samples = [(0.0, 0, 0.0), (5.0, 0, 20.0)]
    samples += [(5.0 + t, 10_000 * t, 20.0 + 0.5 * t) for t in range(1, 11)]
    assert steady_cost_per_1000(samples) == pytest.approx(0.05)
    assert steady_cost_per_1000([]) is None


def test_latency_timeline_buckets_by_send_time():
    from bench.stats import latency_timeline

    samples = [(100.0, 10.0), (100.5, 30.0), (104.9, 20.0), (105.0, 5000.0), (112.0, 7.0)]
    rows = latency_timeline(samples, bucket_s=5.0)
    assert rows == [
        {"t_s": 0.0, "count": 3, "p50_ms": 20.0, "max_ms": 30.0},
        {"t_s": 5.0, "count": 1, "p50_ms": 5000.0, "max_ms": 5000.0},
        {"t_s": 10.0, "count": 1, "p50_ms": 7.0, "max_ms": 7.0},
    ]
    assert latency_timeline([]) == []
    with pytest.raises(ValueError):
        latency_timeline(samples, bucket_s=0)
