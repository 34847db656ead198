"""ONNX export of a fitted scikit-learn classifier, bound to feature set card_activity_v1.

The graph takes one float32 input named `features` of shape (n, len(FEATURE_NAMES)) and
returns `label` and `probabilities` (n, 2) (ZipMap off, so the output is a plain tensor).
The model's contract lives in `metadata_props` (see `models.scoring.REQUIRED_METADATA`):
feature_set_version, feature_names (JSON), threshold, model_version, reference_values (JSON),
plus training_data and metrics (JSON) and reason_method.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.features import FEATURE_NAMES
from models.training.candidates import final_estimator

INPUT_NAME = "features"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def to_onnx_bytes(model, metadata: dict[str, object]) -> bytes:
    """Convert `model` and attach `metadata` (non-string values are JSON-encoded)."""
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(final_estimator(model)): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    props = {
        k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in metadata.items()
    }
    onnx.helper.set_model_props(onx, props)
    onx.producer_name = "fraudstream"
    onx.doc_string = "fraudstream card fraud model; contract in metadata_props"
    return onx.SerializeToString()


def onnx_probabilities(model_bytes: bytes | Path, x: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Fraud probability per row from the ONNX model (onnxruntime), in batches."""
    import onnxruntime as ort

    src = str(model_bytes) if isinstance(model_bytes, Path) else model_bytes
    session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = [
        session.run(["probabilities"], {name: x[i : i + batch].astype(np.float32)})[0][:, 1]
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def max_abs_difference(model, model_bytes: bytes, x: np.ndarray) -> float:
    """Largest |onnxruntime - scikit-learn| fraud probability over the rows of `x`."""
    sk = model.predict_proba(x)[:, 1]
    ort_p = onnx_probabilities(model_bytes, x)
    return float(np.max(np.abs(sk - ort_p))) if len(x) else 0.0
