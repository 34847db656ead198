"""Feature and score drift: reference distributions and the population stability index (PSI).

Pure numpy, no I/O, no pyflink. `models.drift_reference` builds a model's reference from its
training data; `connectors.drift_store` applies `psi` per hour of scored events.

Reference (stored as `drift_reference` in a registry version's `metadata.json`): for every
feature of the model and for its score, the inner bin edges at the deciles (10 bins) of the
reference rows, and the share of reference rows in each bin. Bins are right-closed:
(-inf, e1], (e1, e2], ..., (ek, +inf). Edges are observed values (`inverted_cdf` quantiles),
deduplicated, so heavy atoms do not make empty slivers. A series with at most `bins`
distinct reference values (flags, one-hots, small counts) gets every value as an edge
instead: one bin per value, plus one above the largest (empty in the reference), so a flag
that is almost always 1, or a one-hot never set, still shows a change. Values are compared
as float32, the precision the model sees (the scorer feeds float32; training tables are
float32), so a value equal to an edge falls in the same bin online and offline.

PSI = sum over bins of (a - e) * ln(a / e), with a and e the actual and expected shares.
A bin empty on one side would make it infinite: both shares are floored at `EPSILON` (1e-4,
about one row in ten thousand) first. Thresholds (the usual credit-scoring reading):
    PSI < 0.1          stable
    0.1 <= PSI < 0.25  watch: a moderate shift, look at it
    PSI >= 0.25        drift: the population changed; the model's inputs are not what it
                       learnt on (retrain, or find the upstream change)
Hourly PSI leaves out the clock features (`CLOCK_FEATURES`: hour_of_day, is_night): within
one hour they are constant by construction, so their PSI against the whole day only says
which hour it is. Their reference is stored all the same (a daily comparison can use it).
PSI over few rows is biased upwards (about (bins - 1) / rows for a stable population), so
hours with few rows are reported with their row count and judged with care (`min_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10
EPSILON = 1e-4
WATCH_THRESHOLD = 0.1
DRIFT_THRESHOLD = 0.25
CLOCK_FEATURES = ("hour_of_day", "is_night")
SCORE = "score"  # the name of the score's series beside the features (no feature has it)
REFERENCE_KEY = "drift_reference"  # key in metadata.json
FORMAT_VERSION = 1


def level(psi: float | None) -> str:
    """'stable', 'watch' or 'drift' for a PSI value ('n/a' when there is none)."""
    if psi is None or math.isnan(psi):
        return "n/a"
    if psi >= DRIFT_THRESHOLD:
        return "drift"
    if psi >= WATCH_THRESHOLD:
        return "watch"
    return "stable"


def _finite32(values: Iterable[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    return arr.astype(np.float32)


def reference_edges(values: Iterable[float] | np.ndarray, bins: int = BINS) -> list[float]:
    """Inner bin edges for the finite `values` (float32, ascending): every distinct value
    when there are at most `bins` of them, else the 1/bins .. (bins-1)/bins quantiles as
    observed values, deduplicated. Empty input -> no edge (one bin)."""
    if bins < 2:
        raise ValueError("bins must be >= 2")
    arr = _finite32(values)
    if arr.size == 0:
        return []
    distinct = np.unique(arr)
    if len(distinct) <= bins:
        return [float(e) for e in distinct]
    qs = np.arange(1, bins) / bins
    edges = np.quantile(arr, qs, method="inverted_cdf")
    return [float(e) for e in np.unique(edges.astype(np.float32))]


def bin_counts(values: Iterable[float] | np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Rows per right-closed bin of `edges` (len(edges) + 1 counts); NaN/inf are skipped."""
    arr = _finite32(values)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float32), arr, side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)


def shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else np.full(c.shape, np.nan)


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray,
        epsilon: float = EPSILON) -> float:
    """PSI of `actual` against `expected`: shares or counts per bin (each normalised here),
    both floored at `epsilon`. NaN when `actual` holds no row. Always >= 0."""
    e = shares(expected)
    a = shares(actual)
    if e.shape != a.shape:
        raise ValueError(f"bin count differs: expected {e.shape[0]}, actual {a.shape[0]}")
    if np.isnan(a).any() or np.isnan(e).any():
        return float("nan")
    e = np.maximum(e, epsilon)
    a = np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class BinnedReference:
    """One series' reference: inner edges and the reference share of each bin."""

    edges: tuple[float, ...]
    proportions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.proportions) != len(self.edges) + 1:
            raise ValueError("proportions need one entry more than edges")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly ascending")

    @classmethod
    def of(cls, values: Iterable[float] | np.ndarray, bins: int = BINS) -> BinnedReference:
        arr = _finite32(values)
        edges = reference_edges(arr, bins)
        return cls(tuple(edges), tuple(float(p) for p in shares(bin_counts(arr, edges))))

    def counts(self, values: Iterable[float] | np.ndarray) -> np.ndarray:
        return bin_counts(values, self.edges)

    def psi(self, counts: Sequence[float] | np.ndarray) -> float:
        return psi(self.proportions, counts)

    def as_json(self) -> dict[str, list[float]]:
        return {"edges": list(self.edges), "proportions": [round(p, 8) for p in self.proportions]}


@dataclass(frozen=True)
class DriftReference:
    """A model's reference distributions: one `BinnedReference` per feature and the score."""

    features: dict[str, BinnedReference]
    score: BinnedReference
    rows: int
    source: str
    bins: int = BINS

    def series(self) -> dict[str, BinnedReference]:
        """Every series by name: the features in model order, then `score`."""
        return {**self.features, SCORE: self.score}

    def hourly_series(self) -> dict[str, BinnedReference]:
        """The series an hourly PSI is meaningful for: all but `CLOCK_FEATURES`."""
        return {k: v for k, v in self.series().items() if k not in CLOCK_FEATURES}

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "method": (f"right-closed bins at the {self.bins}-quantiles of the reference rows "
                       f"(float32); PSI with shares floored at {EPSILON:g}; watch >= "
                       f"{WATCH_THRESHOLD:g}, drift >= {DRIFT_THRESHOLD:g} (models.drift)"),
            "bins": self.bins,
            "rows": self.rows,
            "source": self.source,
            # a list, not an object: metadata.json is written with sorted keys, and the
            # features keep the model's order
            "features": [{"name": name, **ref.as_json()} for name, ref in self.features.items()],
            "score": self.score.as_json(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DriftReference:
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown drift reference format {doc.get('format')!r}")

        def one(d: Mapping[str, Any]) -> BinnedReference:
            return BinnedReference(tuple(float(e) for e in d["edges"]),
                                   tuple(float(p) for p in d["proportions"]))

        return cls(
            features={str(d["name"]): one(d) for d in doc["features"]},
            score=one(doc["score"]),
            rows=int(doc["rows"]),
            source=str(doc["source"]),
            bins=int(doc.get("bins", BINS)),
        )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> DriftReference | None:
        """The reference in a registry `metadata.json` document, None when it has none."""
        doc = metadata.get(REFERENCE_KEY)
        return None if doc is None else cls.from_json(doc)


def build_reference(x: np.ndarray, feature_names: Sequence[str], scores: np.ndarray,
                    source: str, bins: int = BINS) -> DriftReference:
    """Reference from a feature matrix (rows x features, in `feature_names` order) and the
    model's scores of the same rows."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"x must be rows x {len(feature_names)} features, got {x.shape}")
    if len(scores) != x.shape[0]:
        raise ValueError("one score per row")
    if x.shape[0] == 0:
        raise ValueError("no reference rows")
    features = {name: BinnedReference.of(x[:, j], bins) for j, name in enumerate(feature_names)}
    return DriftReference(features, BinnedReference.of(scores, bins), int(x.shape[0]), source,
                          bins)


def psi_by_series(reference: DriftReference, columns: Mapping[str, np.ndarray]
                  ) -> dict[str, tuple[float, int]]:
    """(PSI, rows) per series of `reference` found in `columns` (name -> values)."""
    out: dict[str, tuple[float, int]] = {}
    for name, ref in reference.series().items():
        if name in columns:
            counts = ref.counts(columns[name])
            out[name] = (ref.psi(counts), int(counts.sum()))
    return out
