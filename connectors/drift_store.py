"""Drift per hour of event time: Postgres `scored_transactions` in, `feature_drift` out.

`compute` streams the scored events of a time range (server-side cursor, `features` jsonb and
`score`), bins every feature and the score against the reference of the model version that
scored them (registry `metadata.json` `drift_reference`, `models.drift`), and upserts one row
per (hour, model_version, feature) into `feature_drift` (migration 006; the clock features are
left out, see `models.drift.CLOCK_FEATURES`): recomputing an hour
replaces its rows, so the command is idempotent and can run as often as wanted. Hours are
UTC hours of event time; a range always covers whole hours (`since` is floored to the hour).
Runs as the writer role (SELECT on scored_transactions, INSERT/UPDATE on feature_drift); the
readers (`latest`, `series`) work with either role. Parameterised SQL only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.drift import SCORE, DriftReference

_SCORED = """
SELECT date_trunc('hour', event_time, 'UTC') AS hour, model_version, features, score
FROM scored_transactions
WHERE event_time >= %(since)s
  AND (%(until)s::timestamptz IS NULL OR event_time < %(until)s::timestamptz)
  AND (%(version)s::text IS NULL OR model_version = %(version)s::text)
"""

_UPSERT = """
INSERT INTO feature_drift (hour, model_version, feature, psi, rows, computed_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (hour, model_version, feature)
DO UPDATE SET psi = EXCLUDED.psi, rows = EXCLUDED.rows, computed_at = EXCLUDED.computed_at
"""

_LATEST = """
SELECT DISTINCT ON (model_version, feature) hour, model_version, feature, psi, rows
FROM feature_drift
WHERE rows >= %(min_rows)s AND (%(until)s::timestamptz IS NULL OR hour < %(until)s::timestamptz)
ORDER BY model_version, feature, hour DESC
"""

_SERIES = """
SELECT hour, model_version, feature, psi, rows FROM feature_drift
WHERE hour >= %(since)s
  AND (%(until)s::timestamptz IS NULL OR hour < %(until)s::timestamptz)
  AND (%(version)s::text IS NULL OR model_version = %(version)s::text)
ORDER BY hour, model_version, feature
"""


@dataclass(frozen=True)
class DriftRow:
    hour: datetime
    model_version: str
    feature: str
    psi: float
    rows: int


@dataclass
class ComputeResult:
    rows: list[DriftRow] = field(default_factory=list)
    events: int = 0  # scored events read
    skipped: dict[str, str] = field(default_factory=dict)  # model version -> why (no reference)
    skipped_events: int = 0

    @property
    def hours(self) -> list[tuple[datetime, str]]:
        return sorted({(r.hour, r.model_version) for r in self.rows})


def floor_hour(when: datetime) -> datetime:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.replace(minute=0, second=0, microsecond=0)


class _References:
    """Drift reference per model version, from the registry, loaded once."""

    def __init__(self, registry: str | None) -> None:
        self.registry = registry
        self.found: dict[str, DriftReference | None] = {}
        self.why: dict[str, str] = {}

    def get(self, version: str) -> DriftReference | None:
        if version not in self.found:
            self.found[version] = self._load(version)
        return self.found[version]

    def _load(self, version: str) -> DriftReference | None:
        from models.drift_reference import load_reference
        from models.registry import version_dir

        try:
            path = version_dir(version, self.registry)
            reference = load_reference(path)
        except (ValueError, KeyError, OSError) as exc:
            self.why[version] = f"cannot read its registry metadata: {exc}"
            return None
        if reference is None:
            self.why[version] = ("not in the registry" if not path.is_dir() else
                                 "no drift_reference in its metadata.json (run `fraudstream "
                                 "drift reference VERSION`)")
        return reference


def compute(settings: Any, since: datetime, until: datetime | None = None,
            model_version: str | None = None, registry: str | None = None,
            chunk_rows: int = 5000) -> ComputeResult:
    """PSI per hour, model version and series over the scored events in [since, until)
    (`since` floored to its hour), upserted into feature_drift. Returns what was written."""
    import psycopg

    refs = _References(registry)
    counts: dict[tuple[datetime, str], dict[str, np.ndarray]] = {}
    result = ComputeResult()
    params = {"since": floor_hour(since), "until": until, "version": model_version}
    with psycopg.connect(settings.pg_conninfo("writer")) as conn:
        with conn.transaction(), conn.cursor(name="fraudstream_drift") as cur:
            cur.itersize = chunk_rows
            cur.execute(_SCORED, params)
            while batch := cur.fetchmany(chunk_rows):
                result.events += len(batch)
                result.skipped_events += _add_batch(batch, refs, counts)
        for (hour, version), by_series in sorted(counts.items()):
            reference = refs.get(version)
            assert reference is not None
            series = reference.series()
            for name, c in by_series.items():
                n = int(c.sum())
                if n:
                    result.rows.append(DriftRow(hour, version, name, series[name].psi(c), n))
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_UPSERT, [(r.hour, r.model_version, r.feature, r.psi, r.rows)
                                      for r in result.rows])
    result.skipped = dict(refs.why)
    return result


def _add_batch(batch: list[tuple], refs: _References,
               counts: dict[tuple[datetime, str], dict[str, np.ndarray]]) -> int:
    """Add one fetched chunk's bin counts; returns the events of versions without reference."""
    groups: dict[tuple[datetime, str], list[tuple[dict, float]]] = defaultdict(list)
    for hour, version, features, score in batch:
        groups[(hour, version)].append((features or {}, score))
    skipped = 0
    for key, rows in groups.items():
        reference = refs.get(key[1])
        if reference is None:
            skipped += len(rows)
            continue
        acc = counts.setdefault(key, {})
        names = list(reference.features)
        matrix = np.array([[_number(f.get(n)) for n in names] for f, _ in rows], dtype=np.float64)
        columns = {n: matrix[:, j] for j, n in enumerate(names)}
        columns[SCORE] = np.array([_number(s) for _, s in rows], dtype=np.float64)
        for name, ref in reference.hourly_series().items():
            c = ref.counts(columns[name])
            acc[name] = acc[name] + c if name in acc else c
    return skipped


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def latest(settings: Any, min_rows: int = 1, role: str = "analyst",
           until: datetime | None = None) -> list[DriftRow]:
    """Per model version and series, the latest hour before `until` with at least `min_rows`
    rows."""
    return _read(settings, role, _LATEST, {"min_rows": min_rows, "until": until})


def series(settings: Any, since: datetime, until: datetime | None = None,
           model_version: str | None = None, role: str = "analyst") -> list[DriftRow]:
    """Every stored PSI of the hours in [since, until), optionally of one model version."""
    return _read(settings, role, _SERIES,
                 {"since": floor_hour(since), "until": until, "version": model_version})


def _read(settings: Any, role: str, query: str, params: dict) -> list[DriftRow]:
    import psycopg

    with psycopg.connect(settings.pg_conninfo(role)) as conn:
        return [DriftRow(h, v, f, float(p), int(n))
                for h, v, f, p, n in conn.execute(query, params).fetchall()]
