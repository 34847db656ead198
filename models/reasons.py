"""Reason codes: why the scorer flagged a transaction, in terms an analyst can check.

Method (occlusion against the legitimate population, documented in every model report):
the features are grouped into reason groups (correlated features such as `amount` and
`log_amount` share one group, so neither hides the other). The reference is the per-feature
MEDIAN over legitimate training rows (model metadata `reference_values`). For a row, one
batched onnxruntime run scores the row, each group set to its reference, each single feature
set to its reference, and the whole row at the reference. Then, per group:
- `contribution`: the drop in log-odds when the group is set to the reference,
  `logit(score(row)) - logit(score(row with the group at reference))` (log-odds rather than
  probability because alerts sit near 1.0, where probability differences vanish);
- `feature` / `value`: the group's feature whose own occlusion moved the score most (not
  simply the group's first feature: `VELOCITY_1H` names `sum_1h` when the hour's amount, not
  its single transaction, is what counts);
- `direction`: that value against the legitimate median, `high` or `low` (None when equal),
  and the code says it (`AMOUNT_HIGH` vs `AMOUNT_LOW`: an $11 purchase is never "high");
- `share`: the contribution as a share of the row's log-odds above the all-reference row,
  `contribution / (logit(score(row)) - logit(score(reference row)))`. Occlusion is not
  additive, so the shares of a row's reasons need not sum to 1; None when the row scores no
  higher than the reference.
Groups are ranked by contribution (largest first); the top k become reasons. Model-agnostic,
exact for the deployed ONNX model, stable (same row, same model -> same reasons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.features import CATEGORIES, FEATURE_NAMES
from schemas.alert import AlertReason


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """A group of features explained together. `code` names the group; `high`/`low` are the
    reason codes when its leading feature is above/below the legitimate median."""

    code: str
    features: tuple[str, ...]
    description: str
    high: str = ""
    low: str = ""

    def code_for(self, direction: str | None) -> str:
        """The reason code for a direction (`high`, `low`, or None: the group's own code)."""
        if direction == "high" and self.high:
            return self.high
        if direction == "low" and self.low:
            return self.low
        return self.code


REASON_GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("AMOUNT", ("amount", "log_amount"), "the amount itself",
                "AMOUNT_HIGH", "AMOUNT_LOW"),
    ReasonGroup("AMOUNT_VS_CARD", ("amount_to_mean_ratio", "amount_zscore"),
                "amount against the card's own history",
                "AMOUNT_ABOVE_CARD_USUAL", "AMOUNT_BELOW_CARD_USUAL"),
    ReasonGroup("VELOCITY_1H", ("count_1h", "sum_1h"), "transactions in the last hour",
                "VELOCITY_1H_HIGH", "VELOCITY_1H_LOW"),
    ReasonGroup("VELOCITY_24H",
                ("count_24h", "sum_24h", "max_amount_24h", "mean_amount_24h"),
                "transactions in the last 24 h", "VELOCITY_24H_HIGH", "VELOCITY_24H_LOW"),
    ReasonGroup("VELOCITY_7D", ("count_7d", "sum_7d"), "activity over 7 days",
                "VELOCITY_7D_HIGH", "VELOCITY_7D_LOW"),
    ReasonGroup("CARD_HISTORY", ("card_txn_count",), "how much history the card has",
                "CARD_HISTORY_LONG", "CARD_HISTORY_SHORT"),
    ReasonGroup("TIME_SINCE_PREVIOUS", ("log_seconds_since_prev",),
                "time since the card's previous transaction", "LONG_SINCE_PREVIOUS",
                "RAPID_SUCCESSION"),
    ReasonGroup("DISTANCE_FROM_HOME", ("distance_from_home_km",), "merchant's distance from home",
                "FAR_FROM_HOME", "NEAR_HOME"),
    ReasonGroup("TRAVEL_SPEED", ("speed_from_prev_kmh",), "travel speed from the previous one",
                "IMPOSSIBLE_TRAVEL", "TRAVEL_SPEED_LOW"),
    ReasonGroup("MERCHANT_NOVELTY", ("merchant_is_new",), "merchant seen before by the card",
                "NEW_MERCHANT", "KNOWN_MERCHANT"),
    ReasonGroup("CATEGORY_NOVELTY", ("category_is_new",), "category used before by the card",
                "NEW_CATEGORY", "KNOWN_CATEGORY"),
    ReasonGroup("TIME_OF_DAY", ("hour_of_day", "is_night"), "time of day / night",
                "UNUSUAL_HOUR_LATE", "UNUSUAL_HOUR_EARLY"),
    ReasonGroup("CATEGORY", tuple(f"category_{c}" for c in (*CATEGORIES, "other")),
                "merchant category", "RISKY_CATEGORY", "CATEGORY_OTHER_THAN_USUAL"),
)

# Every code a reason can carry -> what it means (reports, consoles).
REASON_DESCRIPTIONS: dict[str, str] = {
    code: f"{g.description} ({label})"
    for g in REASON_GROUPS
    for code, label in ((g.code, "vs legitimate median"), (g.high, "above the legitimate "
                        "median"), (g.low, "below the legitimate median"))
    if code
}

_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
GROUP_INDICES: tuple[tuple[int, ...], ...] = tuple(
    tuple(_INDEX[f] for f in g.features) for g in REASON_GROUPS
)
N_FEATURES = len(FEATURE_NAMES)


def _check_groups_cover_features() -> None:
    covered = sorted(i for idx in GROUP_INDICES for i in idx)
    if covered != list(range(N_FEATURES)):
        raise RuntimeError("reason groups must cover every feature exactly once")


_check_groups_cover_features()

# Layout of `occlusion_variants`: row, one per group, one per feature, the reference row.
_GROUPS_AT = 1
_FEATURES_AT = _GROUPS_AT + len(REASON_GROUPS)
_REFERENCE_AT = _FEATURES_AT + N_FEATURES
VARIANTS_PER_ROW = _REFERENCE_AT + 1


def occlusion_variants(row, reference) -> list[list[float]]:
    """The row, then one copy per reason group with that group at `reference`, one per
    feature with that feature at `reference`, and the reference row itself
    (`VARIANTS_PER_ROW` rows in all)."""
    base = [float(v) for v in row]
    out = [base]
    for idx in GROUP_INDICES:
        variant = base.copy()
        for i in idx:
            variant[i] = reference[i]
        out.append(variant)
    for i in range(N_FEATURES):
        variant = base.copy()
        variant[i] = reference[i]
        out.append(variant)
    out.append([float(v) for v in reference])
    return out


_EPS = 1e-7


def logit(p: float) -> float:
    """log(p / (1 - p)) with p clipped to [1e-7, 1 - 1e-7] (float32 scores saturate)."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def rank_reasons(row, scores: list[float], top_k: int, reference) -> list[AlertReason]:
    """Reasons (the alert contract's `AlertReason`), best first, from the scores of
    `occlusion_variants(row, reference)`."""
    if len(scores) != VARIANTS_PER_ROW:
        raise ValueError(f"expected {VARIANTS_PER_ROW} variant scores, got {len(scores)}")
    base = logit(scores[0])
    above_reference = base - logit(scores[_REFERENCE_AT])
    reasons = []
    for g, (group, idx) in enumerate(zip(REASON_GROUPS, GROUP_INDICES, strict=True)):
        lead = max(idx, key=lambda i: (base - logit(scores[_FEATURES_AT + i]), -i))
        value, ref = float(row[lead]), float(reference[lead])
        direction = "high" if value > ref else "low" if value < ref else None
        contribution = base - logit(scores[_GROUPS_AT + g])
        share = contribution / above_reference if above_reference > 1e-9 else None
        reasons.append(AlertReason(group.code_for(direction), FEATURE_NAMES[lead], value,
                                   contribution, share, direction))
    reasons.sort(key=lambda r: (-r.contribution, r.code))
    return reasons[:top_k]
