"""The drift reference builder: training stores it; `rebuild` regenerates the same one from
the metadata alone and refuses data that are not the training data; the committed default
model carries one and its sidecar still passes the compatibility checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.drift import REFERENCE_KEY, SCORE, DriftReference
from models.drift_reference import ReferenceError, load_reference, rebuild, write_reference
from models.features import FEATURE_NAMES


@pytest.fixture
def trained(small_training):
    """A small model trained into a temporary registry (conftest: shared, read-only)."""
    return small_training[0]


def test_training_stores_the_reference_of_its_validation_window(trained):
    meta = json.loads((trained.out_dir / "metadata.json").read_text())
    ref = DriftReference.from_json(meta[REFERENCE_KEY])
    assert list(ref.series()) == [*FEATURE_NAMES, SCORE]
    assert ref.rows == meta["training_data"]["validation_rows"]
    assert ref.source == "validation window of generated: 40 cards x 60 days, seed 5"
    for name, series in ref.series().items():
        assert len(series.proportions) == len(series.edges) + 1
        assert sum(series.proportions) == pytest.approx(1.0, abs=1e-6), name
    assert len(ref.features["amount"].edges) == 9  # continuous: deciles
    # the drift reference lives in the sidecar only: the ONNX metadata stays the contract
    import onnx

    props = {p.key for p in onnx.load(str(trained.out_dir / "model.onnx")).metadata_props}
    assert REFERENCE_KEY not in props


def test_rebuild_regenerates_exactly_what_training_stored(trained):
    stored = load_reference(trained.out_dir)
    built = rebuild(trained.out_dir, log=lambda _: None)
    assert built.reference.as_json() == stored.as_json()
    assert any("PR-AUC" in c for c in built.checks)
    assert any("split boundaries" in c for c in built.checks)


def test_rebuild_refuses_data_that_are_not_the_training_data(trained, tmp_path):
    copy = tmp_path / trained.out_dir.name
    shutil.copytree(trained.out_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["training_data"]["frauds"] += 1  # as if the generator had changed since training
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ReferenceError, match="frauds"):
        rebuild(copy, log=lambda _: None)
    meta["training_data"]["source"] = "file fraudTrain.csv"
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ReferenceError, match="not generated"):
        rebuild(copy, log=lambda _: None)


def test_a_smaller_sample_is_labelled_as_such_and_written_atomically(trained, tmp_path):
    copy = tmp_path / trained.out_dir.name
    shutil.copytree(trained.out_dir, copy)
    built = rebuild(copy, cards=20, days=30, log=lambda _: None)
    assert built.checks == ()
    assert built.reference.source.startswith("validation window of generated sample: 20 cards")
    before = json.loads((copy / "metadata.json").read_text())
    write_reference(copy, built.reference)
    after = json.loads((copy / "metadata.json").read_text())
    assert after.pop(REFERENCE_KEY) == built.reference.as_json()
    before.pop(REFERENCE_KEY)
    assert after == before
    assert not list(copy.glob(".*.tmp"))


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
