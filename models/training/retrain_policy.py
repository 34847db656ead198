"""When is a new candidate due? (`fraudstream retrain --when-due`, issue 14.3)

Two triggers, either suffices:
- labels: at least `min_labels` analyst labels given since the last candidate made from
  labels (reviewed after the latest review time it used; all labels when there is none);
- drift (optional, with `drift_threshold`): the `drift_hours` most recent hours of the
  running model's `feature_drift` rows (hours with enough scored rows; quiet hours are
  skipped, not counted as calm) each have some feature, or the score, with PSI at or above
  the threshold, and all of them lie after the event time the last candidate trained up to
  (one drift episode does not retrain again and again on the same rows).
The record of the last candidate is its registry `metadata.json` (`labels`: `made_at`,
`labels_through`, `data_end_ms`), written by `models.training.from_labels`.
Pure: the caller reads Postgres (`connectors.label_store`) and passes what it found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from models.registry import list_versions, version_dir

LABELS_KEY = "labels"


@dataclass(frozen=True)
class RetrainPolicy:
    min_labels: int = 100
    drift_threshold: float | None = None  # None: drift never triggers
    drift_hours: int = 6
    drift_min_rows: int = 100  # hours with fewer scored rows are skipped (PSI biased upwards)

    def __post_init__(self) -> None:
        if self.min_labels < 1 or self.drift_hours < 1 or self.drift_min_rows < 1:
            raise ValueError("min_labels, drift_hours and drift_min_rows must be at least 1")
        if self.drift_threshold is not None and self.drift_threshold <= 0:
            raise ValueError("drift_threshold must be positive")


@dataclass(frozen=True)
class LastCandidate:
    version: str
    made_at: datetime
    labels_through: datetime | None  # latest review time among the labels it used
    data_end_ms: int | None  # latest event time it trained or was compared on


@dataclass(frozen=True)
class DriftHour:
    hour: datetime
    max_psi: float
    feature: str  # the feature (or 'score') with that PSI


@dataclass(frozen=True)
class PolicyInput:
    new_labels: int
    last: LastCandidate | None
    drift_version: str | None = None  # the model version the drift rows are of
    drift: Sequence[DriftHour] | None = None  # newest first; None: no feature_drift table


@dataclass(frozen=True)
class PolicyDecision:
    due: bool
    reasons: list[str] = field(default_factory=list)  # why due (empty when not)
    checks: list[str] = field(default_factory=list)  # every check, for the operator


def last_candidate(registry: str | Path | None = None) -> LastCandidate | None:
    """The most recently made registry version that `train --labels` made, if any."""
    found: list[LastCandidate] = []
    for version in list_versions(registry):
        path = version_dir(version, registry) / "metadata.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8")).get(LABELS_KEY)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not record.get("made_at"):
            continue
        through = record.get("labels_through")
        found.append(LastCandidate(
            version, datetime.fromisoformat(record["made_at"]),
            datetime.fromisoformat(through) if through else None, record.get("data_end_ms")))
    return max(found, key=lambda c: c.made_at, default=None)


def decide(policy: RetrainPolicy, seen: PolicyInput) -> PolicyDecision:
    reasons: list[str] = []
    checks: list[str] = []
    since = ("since candidate " + seen.last.version) if seen.last else "(no candidate yet)"
    label_check = f"{seen.new_labels:,} new labels {since}; due at {policy.min_labels:,}"
    checks.append(label_check)
    if seen.new_labels >= policy.min_labels:
        reasons.append(label_check)
    if policy.drift_threshold is None:
        checks.append("drift: not checked (no --drift-threshold)")
    elif seen.drift is None:
        checks.append("drift: no feature_drift table (drift monitoring not set up)")
    else:
        verdict = _drift_verdict(policy, seen)
        checks.append(verdict[1])
        if verdict[0]:
            reasons.append(verdict[1])
    return PolicyDecision(bool(reasons), reasons, checks)


def _drift_verdict(policy: RetrainPolicy, seen: PolicyInput) -> tuple[bool, str]:
    threshold, hours = policy.drift_threshold, policy.drift_hours
    after = seen.last.data_end_ms if seen.last and seen.last.data_end_ms is not None else None
    recent = [h for h in (seen.drift or ())
              if after is None or h.hour.timestamp() * 1000 > after][:hours]
    of = f" of {seen.drift_version}" if seen.drift_version else ""
    if len(recent) < hours:
        return False, (f"drift{of}: {len(recent)} hour(s) with data after the last candidate's "
                       f"rows; due after {hours} hours at PSI >= {threshold:g}")
    calm = [h for h in recent if h.max_psi < threshold]
    worst = max(recent, key=lambda h: h.max_psi)
    if calm:
        return False, (f"drift{of}: {len(calm)} of the last {hours} hours below PSI "
                       f"{threshold:g} (max {worst.max_psi:.3f}, {worst.feature})")
    return True, (f"drift{of}: PSI >= {threshold:g} in each of the last {hours} hours "
                  f"(max {worst.max_psi:.3f}, {worst.feature}, "
                  f"{recent[-1].hour:%Y-%m-%d %H:00} .. {recent[0].hour:%Y-%m-%d %H:00} UTC)")
