"""Shared test doubles that stand in for a real component where a test is about something else."""

from __future__ import annotations

from dataclasses import dataclass

from models import features as F
from schemas.alert import AlertReason


@dataclass(frozen=True)
class FakeDecision:
    score: float
    is_alert: bool
    reasons: tuple


class FakeScorer:
    """Stand-in model: score = amount / 1000 (capped), alert at >= 0.5."""

    model_version = "fake-1"
    threshold = 0.5
    feature_names = F.FEATURE_NAMES

    def __init__(self):
        self.calls = 0

    def decide_batch(self, rows):
        self.calls += 1
        out = []
        for row in rows:
            score = min(1.0, row[0] / 1000.0)
            alert = score >= self.threshold
            reasons = (AlertReason("AMOUNT_HIGH", "amount", row[0], 0.3),) if alert else ()
            out.append(FakeDecision(score, alert, reasons))
        return out
