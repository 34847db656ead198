"""Evaluation metrics for a rare-event detector, and the cost-based threshold.

Accuracy means nothing at a 0.5 % base rate: we report PR-AUC (average precision), recall at
1 % false-positive rate, precision in the top k alerts per day, and ROC-AUC last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

DAY_MS = 86_400_000


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """Largest true-positive rate reachable with false-positive rate <= `max_fpr`."""
    fpr, tpr, _ = roc_curve(y, scores)
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def precision_top_k_per_day(
    y: np.ndarray, scores: np.ndarray, time_ms: np.ndarray, k: int
) -> float:
    """Share of fraud among the k highest-scored transactions of each UTC day (pooled)."""
    days = time_ms // DAY_MS
    hits = taken = 0
    for d in np.unique(days):
        idx = np.flatnonzero(days == d)
        top = idx[np.argsort(-scores[idx], kind="stable")[:k]]
        hits += int(y[top].sum())
        taken += len(top)
    return hits / taken if taken else 0.0


@dataclass(frozen=True)
class AtThreshold:
    threshold: float
    alerts: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    precision: float
    recall: float
    fpr: float
    alerts_per_day: float
    missed_fraud_amount: float
    cost: float


def at_threshold(
    y: np.ndarray,
    scores: np.ndarray,
    amount: np.ndarray,
    time_ms: np.ndarray,
    threshold: float,
    review_cost: float,
) -> AtThreshold:
    flag = scores >= threshold
    tp = int((flag & (y == 1)).sum())
    fp = int((flag & (y == 0)).sum())
    fn = int((~flag & (y == 1)).sum())
    tn = int((~flag & (y == 0)).sum())
    days = max(1.0, (int(time_ms.max()) - int(time_ms.min())) / DAY_MS) if len(y) else 1.0
    missed = float(amount[~flag & (y == 1)].sum())
    return AtThreshold(
        threshold=float(threshold),
        alerts=tp + fp,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=tn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        fpr=fp / (fp + tn) if fp + tn else 0.0,
        alerts_per_day=(tp + fp) / days,
        missed_fraud_amount=missed,
        cost=missed + review_cost * (tp + fp),
    )


def threshold_by_cost(
    y: np.ndarray, scores: np.ndarray, amount: np.ndarray, review_cost: float
) -> tuple[float, float]:
    """Threshold minimising `missed fraud $ + review_cost x alerts`; returns (threshold, cost).

    Candidates are the distinct scores (alert when score >= threshold). Ties in cost go to
    the higher threshold (fewer alerts).
    """
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    fraud_amount = np.where(y[order] == 1, amount[order], 0.0)
    total_fraud = fraud_amount.sum()
    # flagging the first i+1 rows (scores >= s[i]); only the last index of a tie group counts
    caught = np.cumsum(fraud_amount)
    alerts = np.arange(1, len(s) + 1)
    cost = (total_fraud - caught) + review_cost * alerts
    last_of_group = np.r_[s[1:] != s[:-1], True]
    cost = np.where(last_of_group, cost, np.inf)
    best = int(np.argmin(cost))
    if total_fraud <= cost[best]:  # flagging nothing is cheaper
        return float(np.nextafter(s[0], np.inf)), float(total_fraud)
    return float(s[best]), float(cost[best])


@dataclass(frozen=True)
class Metrics:
    pr_auc: float
    recall_at_1pct_fpr: float
    precision_top_k_per_day: float
    roc_auc: float
    rows: int
    frauds: int

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(y: np.ndarray, scores: np.ndarray, time_ms: np.ndarray, top_k: int) -> Metrics:
    return Metrics(
        pr_auc=float(average_precision_score(y, scores)),
        recall_at_1pct_fpr=recall_at_fpr(y, scores, 0.01),
        precision_top_k_per_day=precision_top_k_per_day(y, scores, time_ms, top_k),
        roc_auc=float(roc_auc_score(y, scores)),
        rows=int(len(y)),
        frauds=int(y.sum()),
    )
