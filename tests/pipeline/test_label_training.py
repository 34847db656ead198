"""Retraining from analyst labels, end to end: generated traffic stored as the job stores it,
analyst labels over it, one real training run to a registered candidate (never the default)
and its comparison against the default, report and candidate record included.

In the pipeline tier, not the unit tier: it runs the whole training pipeline (Great
Expectations validation, fitting, ONNX export, report and plots), ~7 s.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, date, datetime

import pytest

from models import features as F
from models.training.labels import (
    TRUTH_ANALYST,
    TRUTH_PASSED_LEGIT,
    TRUTH_RECORD,
    AnalystLabel,
    StoredRow,
)


@pytest.fixture
def registry(tmp_path):
    """A temporary registry holding a copy of the package's default model as its default."""
    from models.registry import default_model_dir, set_default

    default = default_model_dir(None)
    shutil.copytree(default, tmp_path / F.FEATURE_SET_VERSION / default.name,
                    ignore=shutil.ignore_patterns("plots"))
    set_default(default.name, tmp_path)
    return tmp_path


def test_labels_to_a_registered_candidate_compared_with_the_default(registry):
    from models.data.generator import GeneratorConfig, generate
    from models.registry import default_version
    from models.training.config import TrainConfig
    from models.training.from_labels import LabelRun, run_label_training
    from models.training.retrain_policy import last_candidate
    from schemas.card_token import CardTokenizer

    gen = GeneratorConfig(cards=100, start=date(2020, 3, 1), days=20, seed=7,
                          episode_card_share=0.2)
    stream = list(generate(gen, CardTokenizer(b"k")))
    # no ground truth on passed rows: only the analyst, or "passed, taken as legit"
    rows = [StoredRow(t.transaction_id, t.event_time_ms, t.label == 1,
                      t if t.label else dataclasses.replace(t, label=None)) for t in stream]
    frauds = [t for t in stream if t.label]
    reviewed = datetime(2026, 1, 1, tzinfo=UTC)
    labels = [AnalystLabel(t.transaction_id, 1, t.event_time_ms, reviewed) for t in frauds]
    labels.append(AnalystLabel(frauds[5].transaction_id, 0, frauds[5].event_time_ms, reviewed))
    before = default_version(registry)
    now = datetime(2026, 12, 2, 8, tzinfo=UTC)
    cfg = TrainConfig(registry_dir=registry, models=("logreg",),  # the loop, not the models
                      fraud_rate_max=0.2, importance_rows=2_000)
    done = run_label_training(LabelRun(cfg, "test labels", stream[0].event_time_ms,
                                       stream[-1].event_time_ms),
                              labels, lambda lo, start, end: rows, log=lambda _: None,
                              now=now)

    version = done.result.model_version
    assert version == "labels-20261202T080000Z"
    assert default_version(registry) == before  # a candidate, never the default
    assert (done.result.out_dir / "model.onnx").is_file()
    w = done.window
    assert w.labels_used == len(frauds) and w.disagreements == 1  # the later label wins
    relabelled = next(t for t in w.txns if t.transaction_id == frauds[5].transaction_id)
    assert relabelled.label == 0
    assert w.sources[TRUTH_ANALYST] == len(frauds) and w.sources[TRUTH_RECORD] == 0
    assert w.sources[TRUTH_PASSED_LEGIT] == len(stream) - len(frauds)
    meta = json.loads((done.result.out_dir / "metadata.json").read_text())
    c = done.comparison
    assert c.rows == meta["training_data"]["test_rows"] and c.frauds > 0
    assert c.default.version == before and c.candidate.version == version
    assert c.candidate.metrics.pr_auc == pytest.approx(meta["metrics"]["test"]["pr_auc"],
                                                       abs=1e-3)
    assert meta["comparison"]["default"]["at_threshold"]["cost"] == c.default.at.cost
    assert meta["labels"]["made_at"] == now.isoformat()
    report = done.report_path.read_text()
    assert report.index("## Candidate vs the current default") < report.index("## Data")
    assert f"`{before}`" in report and "passed, taken as legit" in report
    assert f"fraudstream model promote {version}" in report
    found = last_candidate(registry)
    assert (found.version, found.made_at, found.labels_through) == (version, now, reviewed)
    assert found.data_end_ms == stream[-1].event_time_ms
