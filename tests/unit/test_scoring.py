"""Scorer on a tiny model trained here: ONNX agreement, decisions, reasons, refusals."""

from __future__ import annotations

import json
import random

import numpy as np
import onnx
import pytest

from models import features as F
from models.reasons import REASON_GROUPS
from models.scoring import ModelMismatchError, Scorer
from models.training.candidates import make_model
from models.training.export import to_onnx_bytes
from tests.factories import HOME_LAT, HOME_LONG, ONE_DAY, ONE_HOUR, ONE_MINUTE, T0, txn

REASON_CODES = {c for g in REASON_GROUPS for c in (g.code, g.high, g.low)}


def tiny_stream(seed: int = 3, cards: int = 40, days: int = 30):
    """Legit daytime spending plus night bursts of large online purchases (label 1)."""
    rng = random.Random(seed)
    out = []
    for c in range(cards):
        t = T0
        while t < T0 + days * ONE_DAY:
            t += int(rng.expovariate(1 / (10 * ONE_HOUR)))
            out.append(
                txn(
                    card=f"card{c}",
                    amount=round(rng.gammavariate(2, 30), 2),
                    at=t,
                    category=rng.choice(("grocery_pos", "food_dining", "gas_transport")),
                    merchant=f"m{rng.randrange(30)}",
                    merchant_lat=HOME_LAT + rng.uniform(-0.5, 0.5),
                    merchant_long=HOME_LONG + rng.uniform(-0.5, 0.5),
                    label=0,
                )
            )
        if c % 4 == 0:
            start = T0 + rng.randrange(5, days - 2) * ONE_DAY + 11 * ONE_HOUR  # 23:00
            for k in range(8):
                out.append(
                    txn(
                        card=f"card{c}",
                        amount=round(rng.uniform(300, 1200), 2),
                        at=start + k * 7 * ONE_MINUTE,
                        category="shopping_net",
                        merchant=f"m{100 + k}",
                        label=1,
                    )
                )
    out.sort(key=lambda x: (x.event_time_ms, x.card_token, x.transaction_id))
    x = np.asarray([row for _, row in F.offline_features(out)], dtype=np.float32)
    y = np.asarray([t.label for t in out], dtype=np.int8)
    return x, y


@pytest.fixture(scope="module")
def data():
    return tiny_stream()


def metadata_for(x, y, **overrides):
    meta = {
        "feature_set_version": F.FEATURE_SET_VERSION,
        "feature_names": list(F.FEATURE_NAMES),
        "threshold": "0.5",
        "model_version": "tiny-test",
        "reference_values": np.median(x[y == 0], axis=0).astype(float).tolist(),
    }
    meta.update(overrides)
    return meta


@pytest.fixture(scope="module", params=["logreg", "hist_gbm"])
def tiny_model(request, data, tmp_path_factory):
    x, y = data
    model = make_model(request.param, seed=0)
    if request.param == "hist_gbm":
        model.set_params(max_iter=30, early_stopping=False)
    model.fit(x, y)
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    path.write_bytes(to_onnx_bytes(model, metadata_for(x, y)))
    return model, path


def test_onnx_matches_sklearn_within_1e4(tiny_model, data):
    model, path = tiny_model
    x, _ = data
    scorer = Scorer.load(path)
    onnx_scores = np.asarray(scorer.score_batch(x))
    assert np.max(np.abs(onnx_scores - model.predict_proba(x)[:, 1])) <= 1e-4


def test_scorer_reads_contract_from_metadata(tiny_model):
    _, path = tiny_model
    scorer = Scorer.load(path.parent)  # a directory works too
    assert scorer.model_version == "tiny-test"
    assert scorer.threshold == 0.5
    assert scorer.feature_names == F.FEATURE_NAMES
    assert scorer.feature_set_version == F.FEATURE_SET_VERSION


def test_tiny_model_separates_the_bursts(tiny_model, data):
    x, y = data
    scores = np.asarray(Scorer.load(tiny_model[1]).score_batch(x))
    assert scores[y == 1].mean() > 0.5 > scores[y == 0].mean()


def test_decide_batch_gives_reasons_only_for_alerts(tiny_model, data):
    x, y = data
    scorer = Scorer.load(tiny_model[1])
    rows = x.tolist()
    decisions = scorer.decide_batch(rows)
    assert len(decisions) == len(rows)
    assert any(d.is_alert for d in decisions) and any(not d.is_alert for d in decisions)
    for d in decisions:
        assert d.is_alert == (d.score >= scorer.threshold)
        if d.is_alert:
            assert len(d.reasons) == 3
            assert {r.code for r in d.reasons} <= REASON_CODES
            assert all(r.feature in F.FEATURE_NAMES for r in d.reasons)
        else:
            assert d.reasons == ()


def test_reasons_are_stable_ranked_and_name_real_values(tiny_model, data):
    x, y = data
    scorer = Scorer.load(tiny_model[1])
    row = x[np.flatnonzero(y == 1)[-1]].tolist()
    first = scorer.explain(row, top_k=5)
    assert first == scorer.explain(row, top_k=5)
    assert first == scorer.explain_batch([x[0].tolist(), row], top_k=5)[1]
    assert len({r.code for r in first}) == 5
    contributions = [r.contribution for r in first]
    assert contributions == sorted(contributions, reverse=True)
    assert contributions[0] > 0
    for r in first:
        assert r.value == pytest.approx(row[F.FEATURE_NAMES.index(r.feature)])


def test_score_batch_rejects_wrong_row_width(tiny_model):
    scorer = Scorer.load(tiny_model[1])
    assert scorer.score_batch([]) == []
    with pytest.raises(ValueError, match="features"):
        scorer.score_batch([[0.0] * (len(F.FEATURE_NAMES) - 1)])


def rewrite_metadata(path, tmp_path, **changes):
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    for k, v in changes.items():
        if v is None:
            props.pop(k, None)
        else:
            props[k] = v
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    out = tmp_path / "changed.onnx"
    onnx.save(model, str(out))
    return out


def test_refuses_other_feature_set_version(tiny_model, tmp_path):
    bad = rewrite_metadata(tiny_model[1], tmp_path, feature_set_version="card_activity_v0")
    with pytest.raises(ModelMismatchError, match="card_activity_v0"):
        Scorer.load(bad)


def test_refuses_other_feature_order(tiny_model, tmp_path):
    names = list(F.FEATURE_NAMES)
    names[2], names[3] = names[3], names[2]
    bad = rewrite_metadata(tiny_model[1], tmp_path, feature_names=json.dumps(names))
    with pytest.raises(ModelMismatchError, match="position 2"):
        Scorer.load(bad)


def test_refuses_model_without_contract_metadata(tiny_model, tmp_path):
    bad = rewrite_metadata(tiny_model[1], tmp_path, threshold=None)
    with pytest.raises(ModelMismatchError, match="threshold"):
        Scorer.load(bad)


def test_committed_default_model_fits_this_code():
    """The registry default (what the demo loads) must match the feature code."""
    scorer = Scorer.load()
    assert scorer.feature_names == F.FEATURE_NAMES
    assert 0.0 < scorer.threshold < 1.0
    row = [0.0] * len(F.FEATURE_NAMES)
    [score] = scorer.score_batch([row])
    assert 0.0 <= score <= 1.0
