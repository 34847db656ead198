"""Champion vs challenger on the same events: what `fraudstream model compare` prints.

Pure Python. Input: one `ScoredPair` per event the challenger shadowed (from Postgres
`shadow_scores`, with the analyst's label where there is one, else the ground truth the
record carried). Output: for each model, at its own threshold and at each of `thresholds`,
the alerts, alerts per day of event time, and on the labelled events precision, recall and
cost. Cost is the one training chooses thresholds by (models/report: missed fraud amount +
`review_cost` per alert), so the numbers compare with the model reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ONE_DAY_MS = 86_400_000
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class ScoredPair:
    event_time_ms: int
    amount: float
    label: int | None  # 1 fraud, 0 legitimate, None unknown
    champion_score: float
    challenger_score: float


@dataclass(frozen=True, slots=True)
class AtThreshold:
    """One model's decisions at one threshold."""

    threshold: float
    alerts: int
    alerts_per_day: float
    labelled: int
    true_positives: int
    false_positives: int
    false_negatives: int
    missed_fraud_amount: float
    cost: float  # missed fraud amount + review cost per alert (labelled events)

    @property
    def precision(self) -> float | None:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        frauds = self.true_positives + self.false_negatives
        return self.true_positives / frauds if frauds else None


@dataclass(frozen=True, slots=True)
class Comparison:
    events: int
    labelled: int
    days: float
    champion: AtThreshold  # at the champion's own threshold
    challenger: AtThreshold  # at the challenger's own threshold
    sweep: tuple[tuple[AtThreshold, AtThreshold], ...]  # (champion, challenger) per threshold


def at_threshold(pairs: Sequence[ScoredPair], challenger: bool, threshold: float,
                 days: float, review_cost: float) -> AtThreshold:
    """One side's counts at `threshold` (scores >= threshold alert, as in the job)."""
    alerts = tp = fp = fn = labelled = 0
    missed = labelled_alerts = 0.0
    for pair in pairs:
        score = pair.challenger_score if challenger else pair.champion_score
        flagged = score >= threshold
        alerts += flagged
        if pair.label is None:
            continue
        labelled += 1
        labelled_alerts += flagged
        if pair.label == 1 and flagged:
            tp += 1
        elif pair.label == 1:
            fn += 1
            missed += pair.amount
        elif flagged:
            fp += 1
    return AtThreshold(
        threshold=threshold, alerts=alerts, alerts_per_day=alerts / days if days else 0.0,
        labelled=labelled, true_positives=tp, false_positives=fp, false_negatives=fn,
        missed_fraud_amount=round(missed, 2),
        cost=round(missed + review_cost * labelled_alerts, 2),
    )


def compare(pairs: Iterable[ScoredPair], champion_threshold: float,
            challenger_threshold: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
            review_cost: float = 25.0) -> Comparison:
    """Both models on the same events (see module docstring). Days: the span of event time,
    at least one hour's worth, so a short shadow run does not divide by zero."""
    rows = list(pairs)
    if rows:
        span = max(p.event_time_ms for p in rows) - min(p.event_time_ms for p in rows)
        days = max(span, ONE_DAY_MS / 24) / ONE_DAY_MS
    else:
        days = 0.0
    return Comparison(
        events=len(rows),
        labelled=sum(p.label is not None for p in rows),
        days=days,
        champion=at_threshold(rows, False, champion_threshold, days, review_cost),
        challenger=at_threshold(rows, True, challenger_threshold, days, review_cost),
        sweep=tuple(
            (at_threshold(rows, False, t, days, review_cost),
             at_threshold(rows, True, t, days, review_cost))
            for t in thresholds
        ),
    )
