"""Memory-soak arithmetic: is an engine's memory flat while it keeps up with a fixed rate?

Pure functions over the samples `bench.soak` measured, unit-tested in
`tests/unit/test_bench_soak.py`. Nothing here reads a clock, a process table or a database.

Definitions (issue 5: "process memory flat over a 10-minute run at 70 % of the measured
maximum rate"):
- Samples are (seconds since the fixed-rate production began, RSS bytes) of one process, or of
  all engine processes summed per sampling sweep (`sum_series`).
- Measured window: `warmup_s <= t <= end_s` (end_s = the soak's duration). The warm-up leaves
  out JIT, heap sizing, caches and Kafka buffers filling; samples during start-up (t < 0) and
  the clean stop (t > end_s) are kept in the result but never judged.
- RSS start / end: the median of the samples in the first / last `edge_s` seconds of the
  window (one garbage-collection phase cannot decide the verdict); peak: the window's maximum.
- Slope: least-squares fit of RSS over the whole window, in MiB per minute.
- Flat: growth (end - start) below `Tolerance.growth_share` of the start RSS AND slope below
  `Tolerance.slope_mib_per_min`, with at least `Tolerance.min_samples` samples in the window.
  Defaults 5 % and 1 MiB/min: a 1 MiB/min leak is 1.4 GiB a day, and 5 % of a ~150 MiB Python
  process is ~7 MiB (of a ~1 GiB JVM, 50 MiB; there the slope limit is the tighter one).
- Kept up: the engine persisted (rows in its own `scored_transactions`) at least
  `Tolerance.min_persisted_share` (95 %) of the events produced. A stalled engine allocates
  nothing new, so its memory is "flat" for the wrong reason: the verdict is then never flat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from bench.stats import linear_slope, percentile

MIB = 2**20


@dataclass(frozen=True)
class Tolerance:
    """What "flat" means; recorded in every soak result."""

    growth_share: float = 0.05  # end - start < 5 % of start
    slope_mib_per_min: float = 1.0  # least-squares slope < 1 MiB/min
    min_samples: int = 3  # samples in the measured window to judge at all
    min_persisted_share: float = 0.95  # the engine kept up: persisted >= 95 % of produced

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def method_note(self, edge_s: float) -> str:
        """The result note stating how the verdict was reached, from these very limits."""
        return (
            "soak: RSS of every engine process sampled from /proc; start/end = median of the "
            f"first/last {edge_s:g} s of the measured window (after the warm-up), slope = least "
            f"squares; flat = growth < {self.growth_share * 100:g} % of the start RSS and slope "
            f"< {self.slope_mib_per_min:g} MiB/min, and only if the engine persisted >= "
            f"{self.min_persisted_share * 100:g} % of the events produced (bench/soak_stats.py)"
        )


def soak_rate(rate: float | None, max_rate: float | None, share: float = 0.7) -> int:
    """Events/s to soak at: `rate` when given, else `share` of `max_rate` (rounded).

    `max_rate` is the engine's measured steady throughput (`bench throughput`). Raises
    ValueError when neither is given or the result is not positive.
    """
    if rate is not None:
        chosen = rate
    elif max_rate is not None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"rate share must be within (0, 1], got {share}")
        chosen = max_rate * share
    else:
        raise ValueError("give a rate, or the measured maximum rate and a share of it")
    out = round(chosen)
    if out <= 0:
        raise ValueError(f"soak rate must be positive, got {chosen}")
    return out


def in_window(samples: Iterable[tuple[float, float]], start_s: float,
              end_s: float) -> list[tuple[float, float]]:
    """The samples with start_s <= t <= end_s, in time order."""
    return sorted((t, v) for t, v in samples if start_s <= t <= end_s)


def sum_series(series: Iterable[Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Sum several processes' samples taken in the same sweeps (same t) into one series.

    A process absent from a sweep (not started yet, or gone) adds nothing to that sweep.
    """
    totals: dict[float, float] = {}
    for points in series:
        for t, v in points:
            totals[t] = totals.get(t, 0.0) + v
    return sorted(totals.items())


@dataclass(frozen=True)
class RssSummary:
    """Memory of one process (or of the engine's sum) over the measured window."""

    samples: int
    start_bytes: float | None
    end_bytes: float | None
    peak_bytes: float | None
    growth_bytes: float | None
    growth_share: float | None
    slope_mib_per_min: float | None
    flat: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def summarize_rss(samples: Iterable[tuple[float, float]], warmup_s: float, end_s: float,
                  edge_s: float = 30.0, tolerance: Tolerance = Tolerance()) -> RssSummary:
    """Start/end/peak RSS, growth and slope over [warmup_s, end_s] and whether it is flat."""
    window = in_window(samples, warmup_s, end_s)
    if len(window) < tolerance.min_samples:
        return RssSummary(len(window), None, None, None, None, None, None, False,
                          f"too few samples ({len(window)} < {tolerance.min_samples}) "
                          f"in the measured window")
    first_t, last_t = window[0][0], window[-1][0]
    head = [v for t, v in window if t <= first_t + edge_s]
    tail = [v for t, v in window if t >= last_t - edge_s]
    start = percentile(head, 50)
    end = percentile(tail, 50)
    peak = max(v for _t, v in window)
    slope = linear_slope(window)  # bytes per second
    slope_min = None if slope is None else slope * 60.0 / MIB
    growth = end - start
    share = growth / start if start > 0 else None
    problems = []
    if share is None:
        problems.append("no starting RSS")
    elif share >= tolerance.growth_share:
        problems.append(f"grew {share:.1%} (limit {tolerance.growth_share:.0%})")
    if slope_min is None:
        problems.append("no slope (all samples at one time)")
    elif slope_min >= tolerance.slope_mib_per_min:
        problems.append(f"slope {slope_min:.2f} MiB/min (limit "
                        f"{tolerance.slope_mib_per_min:g})")
    return RssSummary(
        samples=len(window), start_bytes=start, end_bytes=end, peak_bytes=peak,
        growth_bytes=growth, growth_share=share, slope_mib_per_min=slope_min,
        flat=not problems, reason="; ".join(problems) or "within tolerance",
    )


def kept_up(produced: int, persisted: int, min_share: float = 0.95) -> bool:
    """Whether the engine persisted at least `min_share` of what was produced."""
    if produced <= 0:
        return False
    return persisted >= min_share * produced


def soak_verdict(total: RssSummary, processes: Sequence[RssSummary], produced: int,
                 persisted: int, tolerance: Tolerance = Tolerance(),
                 error: str | None = None) -> str:
    """One word (or short phrase) for the table.

    "failed: ..." when the engine died; "not kept up" when it persisted < 95 % of what was
    produced (a stalled engine is never "flat"); "too few samples"; "growing" when the summed
    RSS or any process judged on enough samples is not flat; else "flat". Processes with too
    few samples in the window (a short-lived helper, a client that exited) do not decide,
    but they still count in the sum.
    """
    if error:
        return f"failed: {error}"
    if not kept_up(produced, persisted, tolerance.min_persisted_share):
        return "not kept up"
    judged = [p for p in processes if p.samples >= tolerance.min_samples]
    if total.samples < tolerance.min_samples or not judged:
        return "too few samples"
    if not total.flat or not all(p.flat for p in judged):
        return "growing"
    return "flat"
