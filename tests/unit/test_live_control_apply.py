"""LiveControl: control records in, champion/shadow/rules out; bad records refused, nothing
raised, the configuration kept. Real ONNX models (variants of the committed default)."""

from __future__ import annotations

import pytest

from models.control import ControlMessage
from models.live_control import LiveControl
from models.rules import Rule
from models.scoring import Scorer
from tests.model_variants import variant_bytes


@pytest.fixture(scope="module")
def default_scorer():
    return Scorer.load()


@pytest.fixture(scope="module")
def v2_onnx():
    return variant_bytes("test-v2", threshold=0.25)


def test_promote_swaps_the_champion_and_a_tombstone_restores_the_default(default_scorer,
                                                                            v2_onnx):
    control = LiveControl(default_scorer)
    outcome = control.apply(*ControlMessage.promote("test-v2", onnx=v2_onnx).to_record())
    assert outcome.accepted, outcome.detail
    assert control.champion.model_version == "test-v2"
    assert control.champion.threshold == 0.25
    assert control.apply("model:champion", None).accepted
    assert control.champion is default_scorer


def test_shadow_then_unshadow(default_scorer, v2_onnx):
    control = LiveControl(default_scorer)
    assert control.apply(*ControlMessage.shadow("test-v2", onnx=v2_onnx).to_record()).accepted
    assert control.shadow.model_version == "test-v2"
    assert control.champion is default_scorer
    assert control.apply(*ControlMessage.unshadow("test-v2").to_record()).accepted
    assert control.shadow is None


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: ControlMessage.promote("test-v3", onnx=variant_bytes(
            "test-v3", drop_last_feature=True)).to_record(), "feature order differs"),
        (lambda: ControlMessage.promote("test-v4", onnx=b"not onnx").to_record(),
         "not a loadable ONNX model"),
        (lambda: ControlMessage.promote("other-name", onnx=variant_bytes("test-v5"))
         .to_record(), "the model file is version 'test-v5'"),
        (lambda: ControlMessage.promote("test-v6").to_record(), "carries no model file"),
        (lambda: (b"model:champion", b'{"v":2,"kind":"model.promote"}'), "not supported"),
        (lambda: (b"bogus", b"{}"), "unknown control key"),
        (lambda: (b"rule:x", b"\xff\xfe"), "rule:x"),
    ],
)
def test_bad_records_are_refused_and_change_nothing(default_scorer, v2_onnx, make, fragment):
    control = LiveControl(default_scorer)
    control.apply(*ControlMessage.promote("test-v2", onnx=v2_onnx).to_record())
    before = control.describe()
    outcome = control.apply(*make())
    assert not outcome.accepted
    assert fragment in outcome.detail
    assert control.describe() == before
    assert control.champion.model_version == "test-v2"


def test_rules_are_put_and_disabled(default_scorer):
    control = LiveControl(default_scorer)
    rule = Rule("big-net", "amount > 2000 and category in ('shopping_net', 'misc_net')")
    assert control.apply(*ControlMessage.put_rule(rule).to_record()).accepted
    assert [r.name for r in control.rules] == ["big-net"] and control.rules.active
    assert control.apply(*ControlMessage.disable_rule("big-net").to_record()).accepted
    assert not control.rules.active


def test_the_same_records_give_the_same_configuration(default_scorer, v2_onnx):
    """What a restore does: replay the accepted records (broadcast state) into a new one."""
    records = [
        ControlMessage.promote("test-v2", onnx=v2_onnx).to_record(),
        ControlMessage.put_rule(Rule("night", "is_night and amount > 500")).to_record(),
        ControlMessage.shadow("test-v2", onnx=v2_onnx).to_record(),
    ]
    first, second = LiveControl(default_scorer), LiveControl(default_scorer)
    for record in records:
        assert first.apply(*record).accepted
    for record in reversed(records):  # broadcast state has no order: one record per key
        assert second.apply(*record).accepted
    assert first.describe() == second.describe()
