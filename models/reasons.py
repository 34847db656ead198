"""Reason codes: why the scorer flagged a transaction.

Method (occlusion against the legitimate population, documented in every model report):
the features are grouped into reason groups (correlated features such as `amount` and
`log_amount` share one group, so neither hides the other). For a row, each group is in turn
replaced by its reference values, the per-feature MEDIAN over legitimate training rows
(stored in the model metadata as `reference_values`), and all variants are scored in one
batched onnxruntime run. A group's contribution is the drop in log-odds,
`logit(score(row)) - logit(score(row with the group at reference))`: how much of the evidence
that group carries. Log-odds rather than probability because alerts sit near 1.0, where
probability differences vanish while the evidence still differs. Groups are ranked by
contribution (largest first); the top k become reason codes. This is model-agnostic, exact
for the deployed ONNX model, and stable (same row, same model -> same reasons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.features import CATEGORIES, FEATURE_NAMES
from schemas.alert import AlertReason


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    code: str
    features: tuple[str, ...]
    description: str


REASON_GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("AMOUNT_HIGH", ("amount", "log_amount"), "the amount itself"),
    ReasonGroup(
        "AMOUNT_UNUSUAL_FOR_CARD",
        ("amount_to_mean_ratio", "amount_zscore"),
        "amount far from the card's own history",
    ),
    ReasonGroup("VELOCITY_1H", ("count_1h", "sum_1h"), "many/large transactions in 1 h"),
    ReasonGroup(
        "VELOCITY_24H",
        ("count_24h", "sum_24h", "max_amount_24h", "mean_amount_24h"),
        "many/large transactions in 24 h",
    ),
    ReasonGroup("VELOCITY_7D", ("count_7d", "sum_7d"), "activity over 7 days"),
    ReasonGroup("CARD_HISTORY_SHORT", ("card_txn_count",), "little history for the card"),
    ReasonGroup(
        "RAPID_SUCCESSION", ("log_seconds_since_prev",), "little time since the previous one"
    ),
    ReasonGroup("FAR_FROM_HOME", ("distance_from_home_km",), "merchant far from home"),
    ReasonGroup("IMPOSSIBLE_TRAVEL", ("speed_from_prev_kmh",), "travel speed from previous"),
    ReasonGroup("NEW_MERCHANT", ("merchant_is_new",), "merchant not seen for the card"),
    ReasonGroup("NEW_CATEGORY", ("category_is_new",), "category never used by the card"),
    ReasonGroup("UNUSUAL_HOUR", ("hour_of_day", "is_night"), "time of day / night"),
    ReasonGroup(
        "RISKY_CATEGORY",
        tuple(f"category_{c}" for c in (*CATEGORIES, "other")),
        "merchant category",
    ),
)

_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
GROUP_INDICES: tuple[tuple[int, ...], ...] = tuple(
    tuple(_INDEX[f] for f in g.features) for g in REASON_GROUPS
)


def _check_groups_cover_features() -> None:
    covered = sorted(i for idx in GROUP_INDICES for i in idx)
    if covered != list(range(len(FEATURE_NAMES))):
        raise RuntimeError("reason groups must cover every feature exactly once")


_check_groups_cover_features()


def occlusion_variants(row, reference) -> list[list[float]]:
    """The row, then one copy per reason group with that group set to `reference`."""
    base = [float(v) for v in row]
    out = [base]
    for idx in GROUP_INDICES:
        variant = base.copy()
        for i in idx:
            variant[i] = reference[i]
        out.append(variant)
    return out


_EPS = 1e-7


def logit(p: float) -> float:
    """log(p / (1 - p)) with p clipped to [1e-7, 1 - 1e-7] (float32 scores saturate)."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def rank_reasons(row, scores: list[float], top_k: int) -> list[AlertReason]:
    """Reasons (the alert contract's `AlertReason`), best first, from the scores of
    `occlusion_variants(row, ...)` (the first score is the row's own)."""
    base = logit(scores[0])
    reasons = []
    for group, idx, occluded in zip(REASON_GROUPS, GROUP_INDICES, scores[1:], strict=True):
        lead = idx[0]
        if group.code == "RISKY_CATEGORY":  # name the active one-hot column
            lead = max(idx, key=lambda i: row[i])
        reasons.append(
            AlertReason(
                group.code, FEATURE_NAMES[lead], float(row[lead]), base - logit(occluded)
            )
        )
    reasons.sort(key=lambda r: (-r.contribution, r.code))
    return reasons[:top_k]
