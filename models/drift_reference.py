"""Drift reference of a registry model version: build it, check it, store it in the sidecar.

Training stores it (`models.training.pipeline`): the validation window's feature rows and
the exported ONNX model's scores of them (out-of-sample, the same float32 scores the job
writes). A model trained before that (the committed default) gets it afterwards with
`fraudstream drift reference VERSION`: its `training_data.source` says how it was generated
("generated: 1000 cards x 365 days, seed 42"); the generator is deterministic and features do
not depend on the tokenization key, so regenerating with the same config and the training
split gives the same validation rows. That is checked, not assumed: row, fraud and split
counts must equal the metadata's, and the model's PR-AUC on the regenerated validation rows
must equal the recorded one (1e-3; the record is scikit-learn's, ours onnxruntime's).
`--cards/--days` build from a smaller deterministic sample instead (same seed, the same
60/20/20 time split; recorded as a sample in `source`, nothing to check against).

Only `metadata.json` changes: the scorer reads the ONNX file's own metadata, and the sidecar
checks of `models.model_compat` look at its version, features and `onnx_bytes`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.drift import REFERENCE_KEY, DriftReference, build_reference
from models.features import FEATURE_NAMES

_GENERATED = re.compile(r"^generated: (\d+) cards x (\d+) days, seed (\d+)$")
PR_AUC_TOLERANCE = 1e-3
Log = Callable[[str], None]


class ReferenceError(RuntimeError):
    """The reference cannot be rebuilt faithfully (unknown source, data differ from training)."""


def reference_from_rows(x: np.ndarray, onnx_model: bytes | Path, source: str) -> DriftReference:
    """Reference of feature rows `x` and the ONNX model's scores of them."""
    from models.training.export import onnx_probabilities

    return build_reference(x, FEATURE_NAMES, onnx_probabilities(onnx_model, x), source)


@dataclass(frozen=True)
class Rebuilt:
    reference: DriftReference
    checks: tuple[str, ...]  # what was verified against the metadata, readable


def generated_config(metadata: dict) -> tuple[int, int, int]:
    """(cards, days, seed) of a model trained on generated data, from its sidecar."""
    source = str(metadata.get("training_data", {}).get("source", ""))
    match = _GENERATED.match(source)
    if not match:
        raise ReferenceError(
            f"training data {source!r} was not generated: rebuild the reference from the "
            "same file with `fraudstream train`, or pass --cards/--days for a generated sample"
        )
    cards, days, seed = (int(g) for g in match.groups())
    return cards, days, seed


def rebuild(version_path: Path, cards: int | None = None, days: int | None = None,
            log: Log = print) -> Rebuilt:
    """Regenerate the training data of the version in `version_path` (or a smaller sample
    with `cards`/`days`), take the validation window, score it with the version's ONNX model
    and return the reference. Raises ReferenceError when the data are not the training data."""
    from models.training.config import TrainConfig
    from models.training.dataset import build_features, generate_transactions, split_by_time

    metadata = json.loads((version_path / "metadata.json").read_text())
    t_cards, t_days, seed = generated_config(metadata)
    sample = cards is not None or days is not None
    cfg = TrainConfig(cards=cards or t_cards, days=days or t_days, seed=seed)
    log(f"generating {cfg.cards} cards x {cfg.days} days (seed {seed}) ...")
    txns = generate_transactions(cfg)
    log(f"{len(txns):,} transactions; features ...")
    table = build_features(txns)
    frauds = int(table.y.sum())
    del txns
    split = split_by_time(table, cfg.train_fraction, cfg.validation_fraction)
    val = split.validation
    checks: list[str] = []
    if not sample:
        td = metadata["training_data"]
        got = {"rows": len(table), "frauds": frauds,
               "split_boundaries_ms": list(split.boundaries_ms),
               "validation_rows": len(val)}
        for key, value in got.items():
            if td.get(key) != value:
                raise ReferenceError(f"regenerated data differ from the training data: {key} "
                                     f"{value} != {td.get(key)} (generator or features changed)")
        checks.append(f"rows {len(table):,}, frauds {frauds:,}, split boundaries and "
                      f"validation rows {len(val):,} equal the training run's")
    log(f"scoring {len(val):,} validation rows with the ONNX model ...")
    source_text = metadata["training_data"]["source"]
    if sample:
        source_text = f"generated sample: {cfg.cards} cards x {cfg.days} days, seed {seed}"
    reference = reference_from_rows(val.x, version_path / "model.onnx",
                                    f"validation window of {source_text}")
    if not sample:
        checks.append(_check_pr_auc(metadata, val, version_path / "model.onnx"))
    return Rebuilt(reference, tuple(checks))


def _check_pr_auc(metadata: dict, val, onnx_path: Path) -> str:
    from sklearn.metrics import average_precision_score

    from models.training.export import onnx_probabilities

    recorded = float(metadata["metrics"]["validation"]["pr_auc"])
    got = float(average_precision_score(val.y, onnx_probabilities(onnx_path, val.x)))
    if abs(got - recorded) > PR_AUC_TOLERANCE:
        raise ReferenceError(f"the model's validation PR-AUC on the regenerated rows is "
                             f"{got:.5f}, the training run recorded {recorded:.5f}")
    return f"validation PR-AUC {got:.5f} (recorded {recorded:.5f})"


def write_reference(version_path: Path, reference: DriftReference) -> Path:
    """Store `reference` in the version's metadata.json (same layout as training writes)."""
    path = version_path / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata[REFERENCE_KEY] = reference.as_json()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def load_reference(version_path: Path) -> DriftReference | None:
    """The stored reference of a registry version directory (None when it has none)."""
    path = version_path / "metadata.json"
    if not path.is_file():
        return None
    return DriftReference.from_metadata(json.loads(path.read_text()))
