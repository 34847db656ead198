"""Control messages (`models.control`): one versioned envelope for model and rule changes,
keyed for a compacted topic; strict parsing; a state that a compacted replay reproduces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.control import (
    KEY_CHAMPION,
    KEY_SHADOW,
    ControlMessage,
    ControlMessageError,
    ControlState,
    decode_record,
)
from models.rules import Rule, RuleSet
from tests.property_settings import property_settings

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RULE = Rule("big-net", "amount > 2000 and category in ('shopping_net', 'misc_net')",
            created_at=AT)


def test_each_kind_has_its_shape_and_key():
    cases = [
        (ControlMessage.promote("hist_gbm-v2", AT), KEY_CHAMPION,
         {"v": 1, "kind": "model.promote", "version": "hist_gbm-v2",
          "issued_at": "2024-05-01T12:00:00.000Z"}),
        (ControlMessage.shadow("hist_gbm-v3", AT), KEY_SHADOW,
         {"v": 1, "kind": "model.shadow", "version": "hist_gbm-v3",
          "issued_at": "2024-05-01T12:00:00.000Z"}),
        (ControlMessage.unshadow("hist_gbm-v3", AT), KEY_SHADOW,
         {"v": 1, "kind": "model.unshadow", "version": "hist_gbm-v3",
          "issued_at": "2024-05-01T12:00:00.000Z"}),
        (ControlMessage.put_rule(RULE, AT), "rule:big-net",
         {"v": 1, "kind": "rule.put", "rule": RULE.to_dict(),
          "issued_at": "2024-05-01T12:00:00.000Z"}),
        (ControlMessage.disable_rule("big-net", AT), "rule:big-net",
         {"v": 1, "kind": "rule.disable", "name": "big-net",
          "issued_at": "2024-05-01T12:00:00.000Z"}),
    ]
    for message, key, doc in cases:
        assert message.key == key
        assert json.loads(message.to_json()) == doc
        assert ControlMessage.from_json(message.to_json()) == message
        k, v = message.to_record()
        assert decode_record(k, v) == message and k == key.encode()
    assert ControlMessage.put_rule(RULE, AT).rule_name == "big-net"


def test_issued_at_defaults_to_now_in_utc_milliseconds():
    before = datetime.now(UTC) - timedelta(seconds=1)
    message = ControlMessage.promote("v1")
    assert before <= message.issued_at <= datetime.now(UTC)
    assert message.issued_at.microsecond % 1000 == 0
    plus = ControlMessage.promote("v1", datetime(2024, 1, 1, 2, 0, 0, 999999,
                                                 tzinfo=timezone(timedelta(hours=2))))
    assert plus.issued_at == datetime(2024, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)


@pytest.mark.parametrize("build,message", [
    (lambda: ControlMessage("model.delete", version="v1"), "unknown kind"),
    (lambda: ControlMessage.promote(""), "model version"),
    (lambda: ControlMessage.promote("../etc"), "model version"),
    (lambda: ControlMessage.promote(".hidden"), "model version"),
    (lambda: ControlMessage.promote("a/b"), "model version"),
    (lambda: ControlMessage.promote("x" * 129), "model version"),
    (lambda: ControlMessage("model.promote", version="v1", rule=RULE), "model version only"),
    (lambda: ControlMessage("rule.put"), "needs a rule"),
    (lambda: ControlMessage("rule.put", rule=RULE, version="v1"), "no model version"),
    (lambda: ControlMessage("rule.put", rule=RULE, rule_name="other"), "differs"),
    (lambda: ControlMessage.disable_rule("Big Net"), "rule name"),
    (lambda: ControlMessage("rule.disable", rule_name="x", version="v"), "rule name only"),
    (lambda: ControlMessage.promote("v1", datetime(2024, 1, 1)), "timezone-aware"),
])
def test_constructor_checks_fields_fit_the_kind(build, message):
    with pytest.raises(ControlMessageError, match=message):
        build()


GOOD = {"v": 1, "kind": "model.promote", "version": "v2", "issued_at": "2024-05-01T12:00:00Z"}
GOOD_PUT = {"v": 1, "kind": "rule.put", "rule": RULE.to_dict(),
            "issued_at": "2024-05-01T12:00:00Z"}


@pytest.mark.parametrize("doc,message", [
    ({**GOOD, "v": 2}, "version 2 is not supported"),
    ({**GOOD, "v": True}, "version True"),
    ({**GOOD, "v": "1"}, "version '1'"),
    ({k: v for k, v in GOOD.items() if k != "v"}, "version None"),
    ({**GOOD, "kind": "model.retire"}, "unknown kind"),
    ({**GOOD, "kind": None}, "unknown kind"),
    ({**GOOD, "extra": 1}, r"unknown fields \['extra'\]"),
    ({**GOOD, "rule": RULE.to_dict()}, r"unknown fields \['rule'\]"),
    ({k: v for k, v in GOOD.items() if k != "issued_at"}, r"missing fields \['issued_at'\]"),
    ({**GOOD, "version": 2}, "version must be a string"),
    ({**GOOD, "version": "../../x"}, "model version"),
    ({**GOOD, "issued_at": "2024-05-01T12:00:00"}, "offset"),
    ({**GOOD, "issued_at": 1714564800}, "issued_at must be a string"),
    ({**GOOD_PUT, "rule": {**RULE.to_dict(), "extra": 1}}, r"rule has unknown fields"),
    ({**GOOD_PUT, "rule": {**RULE.to_dict(), "v": 1}}, r"unknown fields \['v'\]"),
    ({**GOOD_PUT, "rule": "amount > 5"}, "must be a JSON object"),
    ({**GOOD_PUT, "rule": {**RULE.to_dict(), "expression": "amount >> 5"}},
     "bad expression: .* at column 9"),
    ({**GOOD_PUT, "rule": {**RULE.to_dict(), "expression": "__import__('os')"}},
     "unknown identifier '__import__'"),
    ({**GOOD_PUT, "rule": {**RULE.to_dict(), "name": "Big"}}, "rule name"),
    ({"v": 1, "kind": "rule.disable", "name": 5, "issued_at": "2024-05-01T12:00:00Z"},
     "name must be a string"),
    ({"v": 1, "kind": "rule.disable", "name": "a b", "issued_at": "2024-05-01T12:00:00Z"},
     "rule name"),
])
def test_parsing_is_strict(doc, message):
    with pytest.raises(ControlMessageError, match=message):
        ControlMessage.from_json(json.dumps(doc))


@pytest.mark.parametrize("text,message", [
    ('{"v":1,"kind":"model.promote","version":"a","version":"b",'
     '"issued_at":"2024-05-01T12:00:00Z"}', "duplicate key 'version'"),
    ('{"v": NaN}', "NaN"),
    ("[]", "JSON object"),
    ("", "not valid JSON"),
    (b"\xc3\x28", "not UTF-8"),
    ('{"v":1,"pad":"' + "x" * (20 * 1024 * 1024) + '"}', "longer than"),
    (None, "expected JSON text"),
])
def test_parsing_rejects_bad_documents(text, message):
    with pytest.raises(ControlMessageError, match=message):
        ControlMessage.from_json(text)


def test_decode_record_checks_the_key_and_passes_tombstones():
    promote = ControlMessage.promote("v2", AT)
    assert decode_record("model:champion", promote.to_json()) == promote
    assert decode_record(b"rule:big-net", None) is None
    assert decode_record("model:shadow", None) is None
    with pytest.raises(ControlMessageError, match="does not match"):
        decode_record("model:shadow", promote.to_json())
    with pytest.raises(ControlMessageError, match="does not match"):
        decode_record("rule:other", ControlMessage.put_rule(RULE, AT).to_json())
    for key in ("model:challenger", "rule:", "rule:Big", "rules:x", "", "x" * 500):
        with pytest.raises(ControlMessageError, match="unknown control key"):
            decode_record(key, promote.to_json())
    with pytest.raises(ControlMessageError, match="without a key"):
        decode_record(None, promote.to_json())
    with pytest.raises(ControlMessageError, match="not UTF-8"):
        decode_record(b"\xff", None)


def test_state_follows_the_messages():
    s = ControlState()
    assert (s.champion, s.shadow, len(s.rules)) == (None, None, 0)
    s = s.apply(ControlMessage.promote("v2", AT))
    s = s.apply(ControlMessage.shadow("v3", AT))
    s = s.apply(ControlMessage.put_rule(RULE, AT))
    assert (s.champion, s.shadow, [r.name for r in s.rules]) == ("v2", "v3", ["big-net"])
    off = Rule(RULE.name, RULE.expression, enabled=False, created_at=AT)
    s2 = s.apply(ControlMessage.put_rule(off, AT))
    assert s2.rules.get("big-net") == off and not s2.rules.active
    # unshadow clears the shadow whatever version it names (see the module docstring)
    assert s.apply(ControlMessage.unshadow("v9", AT)).shadow is None
    assert len(s.apply(ControlMessage.disable_rule("big-net", AT)).rules) == 0
    assert len(s.apply(ControlMessage.disable_rule("never-was", AT)).rules) == 1
    # tombstones clear their key
    assert s.apply_record(KEY_CHAMPION, None).champion is None
    assert s.apply_record(KEY_SHADOW, None).shadow is None
    assert len(s.apply_record("rule:big-net", None).rules) == 0
    assert s.apply_record(*ControlMessage.promote("v4", AT).to_record()).champion == "v4"


# --- property: a compacted replay ends in the live state ------------------------------------

versions = st.sampled_from(["v1", "v2", "hist_gbm-gen1000c365d-s42"])
names = st.sampled_from(["a", "b", "big-net"])
expressions = st.sampled_from(["amount > 5", "true", "category == 'travel' and is_night"])
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.just(UTC))


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["promote", "shadow", "unshadow", "put", "disable", "tomb"]))
    at = draw(times)
    if kind in ("promote", "shadow", "unshadow"):
        return getattr(ControlMessage, kind)(draw(versions), at)
    if kind == "put":
        rule = Rule(draw(names), draw(expressions), draw(st.sampled_from(["alert", "suppress"])),
                    draw(st.booleans()), at)
        return ControlMessage.put_rule(rule, at)
    if kind == "disable":
        return ControlMessage.disable_rule(draw(names), at)
    return draw(st.sampled_from([KEY_CHAMPION, KEY_SHADOW, "rule:a", "rule:big-net"]))


def _record(item):
    return (item, None) if isinstance(item, str) else item.to_record()


def _summary(state: ControlState):
    return state.champion, state.shadow, [(r, r.to_json()) for r in state.rules.rules]


@property_settings(200)
@given(st.lists(messages(), max_size=25))
def test_a_compacted_replay_ends_in_the_live_state(items):
    records = [_record(i) for i in items]
    live = ControlState()
    for key, value in records:
        live = live.apply_record(key, value)
    last: dict = {}
    for key, value in records:  # log compaction: the last record per key, in offset order
        last.pop(key, None)
        last[key] = value
    replayed = ControlState()
    for key, value in last.items():
        replayed = replayed.apply_record(key, value)
    assert _summary(replayed) == _summary(live)


@property_settings(200)
@given(messages())
def test_message_json_round_trip(item):
    if isinstance(item, str):
        return
    text = item.to_json()
    back = ControlMessage.from_json(text)
    assert back == item and back.to_json() == text and back.key == item.key


def test_rule_sets_in_state_are_rule_sets():
    assert isinstance(ControlState().rules, RuleSet)
