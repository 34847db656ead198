"""What one real training run writes: the registry version (ONNX, metadata, report, plots), the
default pointer, no card number anywhere, and the drift reference of its validation window,
which `rebuild` regenerates from the metadata alone and refuses for data that are not the
training data.

One module for everything that reads the same run, so that it is trained once. In the
pipeline tier, not the unit tier: it runs the whole training pipeline (generation, Great
Expectations validation, three models, ONNX export, report and plots), ~10 s.
"""

from __future__ import annotations

import json
import shutil

import pytest

from models import features as F
from models.drift import REFERENCE_KEY, SCORE, DriftReference
from models.drift_reference import ReferenceError, load_reference, rebuild, write_reference
from models.features import FEATURE_NAMES


@pytest.fixture(scope="module")
def small_training(tmp_path_factory):
    """All three models trained on 40 cards x 60 days into a temporary registry (set as its
    default), and every PAN the generator made: `(result, registry, pans)`. Read-only for the
    tests: they copy it before changing it."""
    from models.training.config import TrainConfig
    from models.training.pipeline import run_training
    from schemas.card_token import CardTokenizer

    pans: set[str] = set()
    original = CardTokenizer.token

    def recording_token(self, pan):
        pans.add(pan)
        return original(self, pan)

    CardTokenizer.token = recording_token
    try:
        registry = tmp_path_factory.mktemp("registry")
        cfg = TrainConfig(cards=40, days=60, seed=5, registry_dir=registry, fraud_rate_max=0.2,
                          set_default=True, importance_rows=3000, threads=1)
        result = run_training(cfg, log=lambda _: None, command="fraudstream train --test")
    finally:
        CardTokenizer.token = original
    return result, registry, frozenset(pans)


def test_smoke_training_writes_a_complete_registry_version(small_training):
    result, registry, _ = small_training
    out = result.out_dir
    assert out == registry / F.FEATURE_SET_VERSION / result.model_version
    for name in ("model.onnx", "metadata.json", "report.md"):
        assert (out / name).is_file()
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == [
        "confusion.png",
        "feature_importance.png",
        "pr_curves.png",
        "score_distribution.png",
    ]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["feature_names"] == list(F.FEATURE_NAMES)
    assert set(meta["metrics"]["compared"]) == {"logreg", "random_forest", "hist_gbm"}
    assert meta["onnx_max_abs_diff"] <= 1e-4
    report = (out / "report.md").read_text()
    for model in ("Logistic regression", "Random forest", "HistGradientBoosting"):
        assert model in report


def test_smoke_model_is_the_default_and_scores(small_training):
    from models.scoring import Scorer

    result, registry, _ = small_training
    scorer = Scorer.load(registry / F.FEATURE_SET_VERSION / result.model_version)
    assert scorer.model_version == result.model_version
    assert scorer.threshold == pytest.approx(result.threshold)
    from models.registry import default_model_dir

    assert default_model_dir(registry) == result.out_dir
    assert result.test_metrics["roc_auc"] > 0.8  # learns something even from 40 cards


def test_no_card_number_in_any_training_output(small_training):
    result, registry, pans = small_training
    assert len(pans) == 40
    files = [p for p in registry.rglob("*") if p.is_file()]
    assert len(files) >= 7
    for path in files:
        blob = path.read_bytes()
        leaked = [p for p in pans if p.encode() in blob]
        assert not leaked, f"{path.name} contains a card number"


@pytest.fixture
def trained(small_training):
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
