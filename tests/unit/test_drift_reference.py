"""The committed default model carries a drift reference and its sidecar still passes the
compatibility checks. (The reference a training stores, and `rebuild`:
test_training_outputs.py.)"""

from __future__ import annotations

import json

import numpy as np

from models.drift import REFERENCE_KEY, SCORE, DriftReference
from models.features import FEATURE_NAMES


def test_the_committed_default_model_has_a_reference_and_stays_compatible():
    from models import model_compat
    from models.registry import default_model_dir, default_version

    path = default_model_dir()
    meta = json.loads((path / "metadata.json").read_text())
    ref = DriftReference.from_json(meta[REFERENCE_KEY])
    assert ref.rows == meta["training_data"]["validation_rows"] == 176_541
    assert list(ref.series()) == [*FEATURE_NAMES, SCORE]
    assert meta["onnx_bytes"] == (path / "model.onnx").stat().st_size
    current = model_compat.describe_model(path)
    assert current.sidecar_problem is None
    verdict = model_compat.check_candidate(current, default_version())
    assert verdict.compatible, verdict.summary()
    # the score reference comes from the ONNX model: deciles of its validation scores
    assert np.allclose(ref.score.proportions, 0.1, atol=0.01)
