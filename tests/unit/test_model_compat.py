"""Model compatibility (`models.model_compat`): may a registry version replace or shadow the
running model? Small ONNX models are built here with `onnx.helper`, in a temporary registry."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from models import registry as R
from models.features import FEATURE_NAMES, FEATURE_SET_VERSION
from models.model_compat import (
    ModelReadError,
    check_candidate,
    compare,
    describe_model,
    describe_version,
)


def build_onnx(version: str, *, features=FEATURE_NAMES, input_name="features", width=None,
               batch=None, input_type="float", extra_input=False, output="probabilities",
               meta_overrides=None, drop_meta=()) -> bytes:
    """A tiny logistic model in the project's ONNX contract (MatMul -> Softmax)."""
    from onnx import TensorProto, helper, numpy_helper

    n = len(features) if width is None else width
    elem = {"float": TensorProto.FLOAT, "int64": TensorProto.INT64}[input_type]
    inputs = [helper.make_tensor_value_info(input_name, elem, [batch, n])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, 1]))
    weights = numpy_helper.from_array(
        np.linspace(-0.01, 0.01, n * 2, dtype=np.float32).reshape(n, 2), "w"
    )
    nodes = [
        helper.make_node("Cast", [input_name], ["x"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output], axis=1),
        helper.make_node("ArgMax", [output], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "fixture", inputs,
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, 2])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "feature_set_version": FEATURE_SET_VERSION,
        "feature_names": json.dumps(list(features)),
        "threshold": "0.5",
        "model_version": version,
        "model_kind": "logistic",
        "reference_values": json.dumps([0.0] * len(features)),
        **(meta_overrides or {}),
    }
    for key in drop_meta:
        meta.pop(key)
    helper.set_model_props(model, meta)
    return model.SerializeToString()


def register(root, version, data: bytes | None = None, sidecar="auto", **kwargs):
    d = root / FEATURE_SET_VERSION / version
    d.mkdir(parents=True)
    data = build_onnx(version, **kwargs) if data is None else data
    (d / "model.onnx").write_bytes(data)
    if sidecar == "auto":
        sidecar = {"model_version": version, "feature_names": list(FEATURE_NAMES),
                   "onnx_bytes": len(data)}
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
        (d / "metadata.json").write_text(text)
    return d


@pytest.fixture
def registry(tmp_path):
    register(tmp_path, "current")
    return tmp_path


@pytest.fixture
def current(registry):
    return describe_version("current", registry)


def verdict(registry, current, version, **kwargs):
    register(registry, version, **kwargs)
    return check_candidate(current, version, registry)


def test_the_fixture_model_is_one_the_scorer_loads(registry):
    from models.scoring import Scorer

    scorer = Scorer.load(R.version_dir("current", registry))
    assert len(scorer.score_batch([[1.0] * len(FEATURE_NAMES)] * 3)) == 3


def test_the_package_default_is_compatible_with_itself():
    current = describe_model(R.default_model_dir(R.PACKAGE_REGISTRY))
    assert current.inputs[0].name == "features" and current.inputs[0].shape == (None, 35)
    result = check_candidate(current, R.default_version(R.PACKAGE_REGISTRY), R.PACKAGE_REGISTRY)
    assert result.compatible, result.summary()
    assert result.reason == "compatible" and result.notes == ()


def test_a_retrained_model_is_compatible_and_the_differences_are_notes(registry, current):
    result = verdict(registry, current, "next",
                     meta_overrides={"threshold": "0.71", "model_kind": "hist_gbm",
                                     "reference_values": json.dumps([1.0] * 35)})
    assert result.compatible, result.summary()
    assert result.notes == ("threshold 0.5 -> 0.71", "model kind logistic -> hist_gbm",
                            "reason-code reference values differ")
    assert result.summary() == (
        "next is compatible with current (threshold 0.5 -> 0.71; model kind logistic -> "
        "hist_gbm; reason-code reference values differ)"
    )


def test_sha256_is_checked_when_the_sidecar_has_one(registry, current):
    data = build_onnx("good")
    digest = hashlib.sha256(data).hexdigest()
    ok = verdict(registry, current, "good", data=data,
                 sidecar={"model_version": "good", "onnx_bytes": len(data),
                          "onnx_sha256": digest.upper()})
    assert ok.compatible, ok.summary()
    changed = build_onnx("bad")
    bad = verdict(registry, current, "bad", data=changed,
                  sidecar={"model_version": "bad", "onnx_bytes": len(changed),
                           "onnx_sha256": digest})
    assert bad.problems == (
        f"model.onnx checksum mismatch: sha256 {hashlib.sha256(changed).hexdigest()[:12]}..., "
        f"metadata.json recorded {digest[:12]}...",
    )


SWAPPED = (FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:])
FEWER = FEATURE_NAMES[:-1]
MORE = (*FEATURE_NAMES, "velocity_5m")


@pytest.mark.parametrize("kwargs,sidecar,problem", [
    ({"features": SWAPPED}, None,
     "feature order differs at position 0: 'log_amount' where the current model has 'amount'"),
    ({"features": FEWER}, None, "removed ['category_other']"),
    ({"features": MORE}, None, "added ['velocity_5m']"),
    ({"meta_overrides": {"feature_set_version": "card_activity_v2"}}, None,
     "feature set 'card_activity_v2' differs from the current 'card_activity_v1'"),
    ({"drop_meta": ("reference_values",)}, None, "model metadata lacks reference_values"),
    ({"meta_overrides": {"threshold": "high"}}, None, "corrupt model metadata"),
    ({"meta_overrides": {"feature_names": "{not json"}}, None, "corrupt model metadata"),
    ({"input_name": "input"}, None, "ONNX input is named 'input', the current model's 'features'"),
    ({"batch": 1}, None, "fixes the batch size at 1"),
    ({"width": 36}, None, "differs in width from the current features: float[?, 35]"),
    ({"input_type": "int64"}, None, "is int64, not float32"),
    ({"extra_input": True}, None, "the model takes 2 inputs, the job feeds one"),
    ({"output": "probs"}, None, "ONNX output 'probabilities' (the score the job reads) is missing"),
    ({"meta_overrides": {"model_version": "other"}}, None,
     "metadata names version 'other', the registry directory is 'cand'"),
    ({}, {"model_version": "cand", "onnx_bytes": 12}, "metadata.json recorded 12"),
    ({}, {"model_version": "cand", "onnx_bytes": 12}, "the file changed after registration"),
    ({}, {"model_version": "zzz"}, "metadata.json names version 'zzz'"),
    ({}, {"model_version": "cand", "feature_names": list(SWAPPED)},
     "metadata.json lists other features"),
    ({}, "{broken", "metadata.json unreadable"),
    ({}, "[1, 2]", "metadata.json is not a JSON object"),
])
def test_incompatible_candidates_say_why(registry, current, kwargs, sidecar, problem):
    result = verdict(registry, current, "cand", sidecar=sidecar or "auto", **kwargs)
    assert not result.compatible
    assert any(problem in p for p in result.problems), result.problems
    assert result.summary().startswith("cand is NOT compatible with current: ")


def test_missing_or_broken_candidates(registry, current):
    gone = check_candidate(current, "ghost", registry)
    assert not gone.compatible and "not in the registry" in gone.reason
    assert "invalid model version" in check_candidate(current, "../x", registry).reason
    (registry / FEATURE_SET_VERSION / "empty").mkdir()
    assert "model file missing" in check_candidate(current, "empty", registry).reason
    register(registry, "junk", data=b"\x00not onnx at all\xff" * 10)
    assert "is not an ONNX model" in check_candidate(current, "junk", registry).reason
    with pytest.raises(ModelReadError, match="model file missing"):
        describe_model(registry / "nowhere.onnx")


def test_no_sidecar_is_a_note_not_a_problem(registry, current):
    result = verdict(registry, current, "bare", sidecar=None)
    assert result.compatible and "no metadata.json" in result.notes[0]


def test_compare_is_pure_over_descriptions(registry, current):
    register(registry, "b", features=SWAPPED)
    candidate = describe_version("b", registry)
    assert candidate.feature_names == SWAPPED and candidate.size and len(candidate.sha256) == 64
    assert not compare(current, candidate).compatible
    assert compare(current, current).compatible
    assert compare(candidate, candidate).problems  # the code's feature order still rules
