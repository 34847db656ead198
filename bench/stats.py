"""Benchmark arithmetic: percentiles, rates, CPU and memory accounting.

Pure functions over numbers the harness measured, so the figures in a result can be checked by
unit tests (`tests/unit/test_bench_stats.py`). Nothing here reads a clock or a process table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of `values`, linear interpolation between closest ranks.

    Same definition as numpy's default (`method="linear"`): rank = q/100 * (n-1).
    Raises ValueError on an empty sequence or q outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = q / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


@dataclass(frozen=True)
class LatencySummary:
    """Distribution of per-alert latencies in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    min_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize_latencies(samples_ms: Sequence[float]) -> LatencySummary:
    """p50/p95/p99/max/mean/min of latency samples (ms). Raises ValueError when empty."""
    if not samples_ms:
        raise ValueError("no latency samples")
    ordered = sorted(samples_ms)
    return LatencySummary(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=float(ordered[-1]),
        mean_ms=sum(ordered) / len(ordered),
        min_ms=float(ordered[0]),
    )


def rate(events: int, seconds: float) -> float:
    """Events per second. Raises ValueError for a non-positive duration or negative count."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds}")
    if events < 0:
        raise ValueError(f"event count must not be negative, got {events}")
    return events / seconds


def cpu_seconds_per_1000(cpu_seconds: float, events: int) -> float:
    """CPU seconds spent per 1,000 events. Raises ValueError when no events were processed."""
    if events <= 0:
        raise ValueError("no events processed")
    return cpu_seconds * 1000.0 / events


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero (no figure to compare)."""
    if denominator == 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds of one process (user+system, incl. reaped children) at one time."""

    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def cpu_delta(before: CpuSample | None, after: CpuSample) -> float:
    """CPU seconds spent between two samples of one process.

    `before` is None for a process that started during the measurement (all its CPU counts).
    Raises ValueError if the counters went backwards (a different process reused the pid).
    """
    start = before.total_s if before is not None else 0.0
    delta = after.total_s - start
    if delta < -1e-9:
        raise ValueError(f"CPU counter went backwards ({start} -> {after.total_s})")
    return max(delta, 0.0)


def steady_rate(progress: Sequence[tuple[float, int]], low: float = 0.1, high: float = 0.9) -> (
    float | None
):
    """Rate between the first sample at >= low*final and the first at >= high*final count.

    `progress` is (seconds since start, cumulative events) in time order. This excludes start-up
    (JVM, job graph, model load) and the drain tail, so engines with different start costs can
    be compared on their processing speed. None when the samples cannot bracket the interval.
    """
    if not progress:
        return None
    final = progress[-1][1]
    if final <= 0:
        return None
    first = next(((t, n) for t, n in progress if n >= low * final), None)
    last = next(((t, n) for t, n in progress if n >= high * final), None)
    if first is None or last is None or last[0] <= first[0]:
        return None
    return (last[1] - first[1]) / (last[0] - first[0])


def steady_cost_per_1000(
    samples: Sequence[tuple[float, int, float]], low: float = 0.1, high: float = 0.9
) -> float | None:
    """CPU seconds per 1,000 events between low*final and high*final events processed.

    `samples` are (seconds, cumulative events, cumulative CPU seconds) in time order. Like
    `steady_rate`, this leaves out start-up (JVM, job graph, model load) and the drain tail.
    """
    if not samples:
        return None
    final = samples[-1][1]
    if final <= 0:
        return None
    first = next((s for s in samples if s[1] >= low * final), None)
    last = next((s for s in samples if s[1] >= high * final), None)
    if first is None or last is None or last[1] <= first[1]:
        return None
    return (last[2] - first[2]) * 1000.0 / (last[1] - first[1])


def linear_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (e.g. RSS bytes per second over a soak run).

    None with fewer than two distinct x values. A flat memory profile has a slope near zero.
    """
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var_x = sum((x - mean_x) ** 2 for x, _ in points)
    if var_x == 0:
        return None
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var_x


@dataclass(frozen=True)
class SizeSummary:
    """Bytes per item (e.g. serialized state per card)."""

    count: int
    mean_bytes: float
    p99_bytes: float
    max_bytes: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize_sizes(sizes: Iterable[int]) -> SizeSummary:
    """Mean/p99/max of byte sizes. Raises ValueError when empty."""
    values = list(sizes)
    if not values:
        raise ValueError("no sizes")
    return SizeSummary(
        count=len(values),
        mean_bytes=sum(values) / len(values),
        p99_bytes=percentile(values, 99),
        max_bytes=max(values),
    )


def latency_timeline(
    samples: Iterable[tuple[float, float]], bucket_s: float = 5.0
) -> list[dict[str, float]]:
    """Latency over the measured phase: `(sent_at_s, latency_ms)` pairs -> per-bucket rows.

    Buckets are `bucket_s` wide from the first send time; each row has the bucket start
    (seconds from the first send), the sample count, p50 and max. Shows whether a tail is one
    stall (start-up backlog, a checkpoint) or spread over the whole phase.
    """
    pairs = sorted(samples)
    if not pairs:
        return []
    if bucket_s <= 0:
        raise ValueError("bucket_s must be > 0")
    t0 = pairs[0][0]
    buckets: dict[int, list[float]] = {}
    for sent_at, latency_ms in pairs:
        buckets.setdefault(int((sent_at - t0) // bucket_s), []).append(latency_ms)
    return [
        {"t_s": round(i * bucket_s, 3), "count": len(v), "p50_ms": round(percentile(v, 50), 1),
         "max_ms": round(max(v), 1)}
        for i, v in sorted(buckets.items())
    ]
