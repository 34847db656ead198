"""The peer's per-minute aggregates: the scoring job's tumbling windows, in plain Python (no I/O).

The job (`jobs.scoring_job.aggregate_sql`) writes, per tumbling event-time window of
`JobConfig.aggregate_window_ms` and per category and per merchant, txn_count, amount_sum,
alert_count and mean_score to the `aggregates` table (upsert on window_start, dimension, key).
`WindowAggregates` keeps the same sums for the open windows and hands over the closed ones:

- A window [start, end) fires when the watermark reaches end - 1 (Flink's `isWindowFired`:
  `windowEnd - 1 <= watermark`); `close(watermark_ms)` returns its rows and forgets it.
- An event whose window has already fired (end - 1 <= the last watermark given to `close`) is
  left out, as Flink's window operator drops it. That is NOT the `is_late` flag (event time <=
  watermark): a late-flagged event whose window is still open is counted, as in the job.
- At the end of a bounded input Flink emits the MAX watermark, so every window fires:
  `close(MAX_WATERMARK_MS)`.

Rows are in the `aggregates` table's column order (`AGGREGATE_COLUMNS`); window_start and
window_end are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from jobs.config import JobConfig

AGGREGATE_COLUMNS = (
    "window_start", "window_end", "dimension", "key", "txn_count", "amount_sum",
    "alert_count", "mean_score",
)
AGGREGATE_KEY = ("window_start", "dimension", "key")  # the table's primary key
DEFAULT_WINDOW_MS: int = next(
    f.default for f in fields(JobConfig) if f.name == "aggregate_window_ms"
)
NO_WATERMARK_MS = -(2**63)  # Flink's Long.MIN_VALUE: nothing has fired
MAX_WATERMARK_MS = 2**63 - 1  # Flink's Long.MAX_VALUE, emitted at the end of a bounded input
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class WindowAggregates:
    """Open tumbling windows: start -> ({category: sums}, {merchant: sums}).

    sums = [txn_count, amount_sum, alert_count, score_sum]; mean_score = score_sum / txn_count
    (Flink's AVG of a DOUBLE).
    """

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        if window_ms < 1:
            raise ValueError(f"window_ms must be >= 1, got {window_ms}")
        self.window_ms = window_ms
        self.fired_through_ms = NO_WATERMARK_MS  # the last watermark given to close()
        self._open: dict[int, tuple[dict[str, list], dict[str, list]]] = {}

    def add(self, event_time_ms: int, category: str, merchant: str, amount: float,
            is_alert: bool, score: float) -> bool:
        """Count one scored event; False (left out) when its window has already fired."""
        start = event_time_ms - event_time_ms % self.window_ms  # floor, also before 1970
        if start + self.window_ms - 1 <= self.fired_through_ms:
            return False
        window = self._open.get(start)
        if window is None:
            window = self._open[start] = ({}, {})
        for sums_by_key, key in ((window[0], category), (window[1], merchant)):
            sums = sums_by_key.get(key)
            if sums is None:
                sums_by_key[key] = [1, amount, 1 if is_alert else 0, score]
            else:
                sums[0] += 1
                sums[1] += amount
                sums[2] += 1 if is_alert else 0
                sums[3] += score
        return True

    def close(self, watermark_ms: int) -> list[tuple]:
        """Rows of every open window with end - 1 <= watermark_ms (oldest first), forgotten.

        The watermark never moves back: a smaller one than before closes nothing new.
        """
        if watermark_ms <= self.fired_through_ms:
            return []
        self.fired_through_ms = watermark_ms
        size = self.window_ms
        due = sorted(s for s in self._open if s + size - 1 <= watermark_ms)
        rows: list[tuple] = []
        for start in due:
            categories, merchants = self._open.pop(start)
            begin, end = _utc(start), _utc(start + size)
            for dimension, sums_by_key in (("category", categories), ("merchant", merchants)):
                for key, (count, amount_sum, alerts, score_sum) in sums_by_key.items():
                    rows.append((begin, end, dimension, key, count, amount_sum, alerts,
                                 score_sum / count))
        return rows

    @property
    def open_windows(self) -> int:
        return len(self._open)
