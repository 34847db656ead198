"""Reading shadow scores back from Postgres for `fraudstream model compare` (analyst role).

Each event the challenger shadowed, with the champion's score beside it and the best label
known: the analyst's verdict on the alert when there is one (`alerts.label`), else the ground
truth the record carried (`shadow_scores.label`). Parameterised SQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.champion_challenger import ScoredPair

_QUERY = """
SELECT (extract(epoch FROM s.event_time) * 1000)::bigint, s.amount,
       CASE a.label WHEN 'fraud' THEN 1 WHEN 'legit' THEN 0 ELSE s.label END,
       s.champion_score, s.challenger_score, s.champion_version
FROM shadow_scores s LEFT JOIN alerts a ON a.transaction_id = s.transaction_id
WHERE s.challenger_version = %(version)s
  AND (%(since)s::timestamptz IS NULL OR s.scored_at >= %(since)s::timestamptz)
"""


@dataclass(frozen=True)
class ShadowPairs:
    pairs: list[ScoredPair]
    champion_versions: list[str]
    champion_threshold: float
    challenger_threshold: float


def read_pairs(settings: Any, version: str, since_ms: int | None,
               registry: str | None = None) -> ShadowPairs:
    """The challenger `version`'s shadow scores (scored at or after `since_ms`, when given);
    both models' thresholds come from their registry metadata."""
    from datetime import UTC, datetime

    import psycopg

    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC) if since_ms is not None else None
    with psycopg.connect(settings.pg_conninfo("analyst")) as conn:
        rows = conn.execute(_QUERY, {"version": version, "since": since}).fetchall()
    pairs = [ScoredPair(int(t), float(a), None if lab is None else int(lab), float(c), float(x))
             for t, a, lab, c, x, _ in rows]
    champions = sorted({r[5] for r in rows}, key=lambda v: -sum(r[5] == v for r in rows))
    return ShadowPairs(pairs, champions, _threshold(champions[:1], registry),
                       _threshold([version], registry))


def _threshold(versions: list[str], registry: str | None) -> float:
    """A model's decision threshold from its registry metadata (LookupError if absent)."""
    import json

    from models.registry import version_dir

    for version in versions:
        path = version_dir(version, registry) / "metadata.json"
        try:
            return float(json.loads(path.read_text())["threshold"])
        except (OSError, ValueError, KeyError) as exc:
            raise LookupError(f"no threshold for model {version} in {path}: {exc}") from exc
    raise LookupError("no champion version in the shadow scores")
