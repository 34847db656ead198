"""Scorer: the ONNX model bound to feature set `card_activity_v1`, with decision and reasons.

Loaded once per operator (Flink `open()`), then called per batch of feature rows:
    scorer = Scorer.load()                 # default registry model
    decisions = scorer.decide_batch(rows)  # rows from models.features.update(...)

`load` refuses a model whose metadata names another feature-set version or another feature
order than `models.features` (`ModelMismatchError`): a model must never silently read
features it was not trained on. Reason codes: see `models.reasons` (occlusion method).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from models.features import FEATURE_NAMES, FEATURE_SET_VERSION
from models.reasons import occlusion_variants, rank_reasons
from schemas.alert import AlertReason

__all__ = ["Decision", "ModelMismatchError", "Scorer"]

REQUIRED_METADATA = (
    "feature_set_version",
    "feature_names",
    "threshold",
    "model_version",
    "reference_values",
)


class ModelMismatchError(Exception):
    """The model file does not fit this code: other feature set, feature order, or metadata
    missing/corrupt. Raised at load time so a job fails at startup, not mid-stream."""


@dataclass(frozen=True, slots=True)
class Decision:
    score: float
    is_alert: bool
    reasons: tuple[AlertReason, ...]


def resolve_model_path(path: str | Path | None) -> Path:
    """`None` -> the registry's default model; a directory -> its `model.onnx`; else the file."""
    if path is None:
        from models.registry import default_model_dir

        path = default_model_dir()
    p = Path(path)
    if p.is_dir():
        p = p / "model.onnx"
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    return p


class Scorer:
    """Scores feature rows with onnxruntime. Construct with `Scorer.load(...)`."""

    def __init__(self, session, metadata: dict[str, str], source: Path | str) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]
        self._proba_output = "probabilities" if "probabilities" in outputs else outputs[-1]
        self.metadata = metadata
        self.source = source
        self.model_version: str = metadata["model_version"]
        self.threshold: float = float(metadata["threshold"])
        self.feature_names: tuple[str, ...] = tuple(json.loads(metadata["feature_names"]))
        self.feature_set_version: str = metadata["feature_set_version"]
        self.reference_values: list[float] = [
            float(v) for v in json.loads(metadata["reference_values"])
        ]

    @classmethod
    def load(cls, path: str | Path | None = None, *, intra_op_threads: int = 1) -> Scorer:
        """Load and check a model (see module docstring). `intra_op_threads=1` suits one
        scorer per Flink operator; raise it for offline bulk scoring."""
        source = resolve_model_path(path)
        return cls._open(str(source), source, intra_op_threads)

    @classmethod
    def from_bytes(cls, onnx: bytes, source: str = "<bytes>") -> Scorer:
        """A scorer from the ONNX file's bytes (a model promoted through the control topic),
        checked exactly like `load`; `source` names it in errors."""
        return cls._open(onnx, source, 1)

    @classmethod
    def _open(cls, model: str | bytes, source: Path | str, intra_op_threads: int) -> Scorer:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelMismatchError(f"{source}: not a loadable ONNX model: {exc}") from exc
        metadata = dict(session.get_modelmeta().custom_metadata_map)
        check_metadata(metadata, source)
        check_input_shape(session, source)
        return cls(session, metadata, Path(source) if isinstance(source, Path) else source)

    def score_batch(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """Fraud probability per row; one onnxruntime run for all rows."""
        if len(rows) == 0:
            return []
        import numpy as np

        x = np.asarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected rows of {len(self.feature_names)} features, got shape {x.shape}"
            )
        proba = self._session.run([self._proba_output], {self._input: x})[0]
        return proba[:, 1].astype(float).tolist()

    def explain(self, row: Sequence[float], top_k: int = 3) -> list[AlertReason]:
        """Top reason codes for one row (occlusion; one batched run)."""
        return self.explain_batch([row], top_k)[0]

    def explain_batch(
        self, rows: Sequence[Sequence[float]], top_k: int = 3
    ) -> list[list[AlertReason]]:
        """Reasons for many rows with ONE onnxruntime run over all occlusion variants."""
        if len(rows) == 0:
            return []
        variants = [occlusion_variants(r, self.reference_values) for r in rows]
        per_row = len(variants[0])
        flat = [v for vs in variants for v in vs]
        scores = self.score_batch(flat)
        return [
            rank_reasons(rows[i], scores[i * per_row : (i + 1) * per_row], top_k,
                         self.reference_values)
            for i in range(len(rows))
        ]

    def decide_batch(self, rows: Sequence[Sequence[float]], top_k: int = 3) -> list[Decision]:
        """Score, threshold, and reasons for the alerts only (passes get no reasons)."""
        scores = self.score_batch(rows)
        alert_idx = [i for i, s in enumerate(scores) if s >= self.threshold]
        reasons = dict(
            zip(alert_idx, self.explain_batch([rows[i] for i in alert_idx], top_k), strict=True)
        )
        return [Decision(s, i in reasons, tuple(reasons.get(i, ()))) for i, s in enumerate(scores)]


def check_input_shape(session, source: Path | str = "<model>") -> None:
    """Raise `ModelMismatchError` unless the model takes one float input of
    `len(FEATURE_NAMES)` columns (any batch size)."""
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if len(inputs) == 1 else None
    if shape is None or len(shape) != 2 or shape[1] != len(FEATURE_NAMES):
        described = [(i.name, i.shape) for i in inputs]
        raise ModelMismatchError(
            f"{source}: model input {described} is not one [batch, {len(FEATURE_NAMES)}] "
            "float input"
        )


def check_metadata(metadata: dict[str, str], source: Path | str = "<model>") -> None:
    """Raise `ModelMismatchError` unless the metadata fits this code's feature set."""
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ModelMismatchError(f"{source}: model metadata lacks {', '.join(missing)}")
    if metadata["feature_set_version"] != FEATURE_SET_VERSION:
        raise ModelMismatchError(
            f"{source}: model was trained on feature set {metadata['feature_set_version']!r}, "
            f"this code computes {FEATURE_SET_VERSION!r}"
        )
    try:
        names = tuple(json.loads(metadata["feature_names"]))
        reference = json.loads(metadata["reference_values"])
        float(metadata["threshold"])
    except (ValueError, TypeError) as exc:
        raise ModelMismatchError(f"{source}: corrupt model metadata: {exc}") from exc
    if names != FEATURE_NAMES:
        diff = next(
            (i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES, strict=False)) if a != b),
            min(len(names), len(FEATURE_NAMES)),
        )
        raise ModelMismatchError(
            f"{source}: model feature order differs from {FEATURE_SET_VERSION} at position "
            f"{diff} ({len(names)} model features, {len(FEATURE_NAMES)} in code)"
        )
    if len(reference) != len(FEATURE_NAMES):
        raise ModelMismatchError(f"{source}: reference_values has {len(reference)} entries")
