"""schemas.alert: round trip, schema validation, no NaN on the wire."""

from __future__ import annotations

import json
import math

import pytest

from schemas.alert import Alert, AlertParseError, AlertReason, alert_to_json, parse_alert


def _alert(**over):
    fields = dict(
        transaction_id="t1", card_token="a" * 64, card_masked="****4242",
        event_time_ms=1_704_110_400_123, amount=812.5, merchant="fraud_Kirlin",
        category="shopping_net", score=0.93, threshold=0.5, model_version="m-1",
        reasons=(AlertReason("AMOUNT_HIGH", "amount", 812.5, 0.4),),
        features={"amount": 812.5, "count_1h": 3.0, "ratio": 0.1 + 0.2},
        is_late=False, source_partition=2, source_offset=17,
    )
    fields.update(over)
    return Alert(**fields)


def test_round_trip_is_exact():
    alert = _alert()
    back = parse_alert(alert_to_json(alert).encode())
    assert back == alert
    assert back.features["ratio"] == 0.1 + 0.2  # shortest repr round-trips bit-exactly


def test_event_time_is_iso_utc_millis():
    doc = json.loads(alert_to_json(_alert()))
    assert doc["event_time"] == "2024-01-01T12:00:00.123Z"


def test_non_finite_values_become_null():
    doc = json.loads(alert_to_json(_alert(features={"x": math.nan, "y": math.inf})))
    assert doc["features"] == {"x": None, "y": None}


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.pop("score"), "score"),
        (lambda d: d.update(card_masked="4111111111111111"), "card_masked"),
        (lambda d: d.update(score=1.5), "score"),
        (lambda d: d.update(extra=1), "<root>"),
        (lambda d: d.update(schema_version=3), "schema_version"),
        (lambda d: d.update(schema_version=True), "schema_version"),
        (lambda d: d["reasons"][0].update(direction="up"), "reasons/0/direction"),
        (lambda d: d["reasons"][0].pop("share"), "reasons/0"),
    ],
)
def test_invalid_alerts_are_rejected_with_the_field(mutate, where):
    doc = json.loads(alert_to_json(_alert()))
    mutate(doc)
    with pytest.raises(AlertParseError) as err:
        parse_alert(json.dumps(doc))
    assert where in str(err.value) or where == "<root>"


def test_v1_messages_from_before_are_still_read():
    doc = json.loads(alert_to_json(_alert()))
    doc["schema_version"] = 1
    for reason in doc["reasons"]:
        del reason["share"], reason["direction"]
    back = parse_alert(json.dumps(doc))
    assert back.schema_version == 1 and back.reasons[0].share is None
    with pytest.raises(AlertParseError, match="share"):  # v1 has no such field
        doc["reasons"][0]["share"] = 0.5
        parse_alert(json.dumps(doc))


def test_v2_reasons_carry_direction_and_share():
    alert = _alert(reasons=(AlertReason("AMOUNT_LOW", "amount", 11.47, 0.3, 0.25, "low"),))
    doc = json.loads(alert_to_json(alert))
    assert doc["schema_version"] == 2
    assert doc["reasons"][0]["direction"] == "low" and doc["reasons"][0]["share"] == 0.25
    assert parse_alert(json.dumps(doc)) == alert


def test_not_json_is_rejected():
    with pytest.raises(AlertParseError, match="not JSON"):
        parse_alert(b"{nope")


def test_features_to_dict_keeps_order_and_nulls_non_finite():
    from schemas.alert import features_to_dict

    assert features_to_dict(("a", "b"), [1, 2.5]) == {"a": 1.0, "b": 2.5}
    assert features_to_dict(("a", "b", "c"), [math.inf, 1.0, math.nan]) == {
        "a": None, "b": 1.0, "c": None,
    }
    with pytest.raises(ValueError):
        features_to_dict(("a",), [1.0, 2.0])


def test_features_to_json_is_the_json_of_the_dict():
    import json
    import random

    from schemas.alert import features_to_dict, features_to_json

    names = ("amount", 'q"uote', "neg", "tiny", "big", "zero")
    rng = random.Random(3)
    for _ in range(200):
        values = [rng.uniform(-1e6, 1e6), 1, -0.0, rng.random() * 1e-300, 1e300, 0]
        expected = json.dumps(features_to_dict(names, values), separators=(",", ":"))
        assert features_to_json(names, values) == expected
    assert features_to_json(("a", "b"), [math.nan, 1.0]) == '{"a":null,"b":1.0}'
    with pytest.raises(ValueError):
        features_to_json(("a",), [1.0, 2.0])


def test_the_alerts_table_stores_alert_fields_under_their_wire_names():
    """One place decides the stored alert: every column the job's alerts sink declares is an
    alert.v1 field (same name), so the JSON and the Postgres row cannot drift apart."""
    from connectors.postgres_sinks import ALERTS_SINK, SINK_TABLES
    from schemas.alert import ALERT_TABLE_FIELDS, alert_schema

    wire_fields = set(alert_schema()["properties"])
    assert set(ALERT_TABLE_FIELDS) <= wire_fields
    (alerts,) = [s for s in SINK_TABLES if s.name == ALERTS_SINK]
    assert alerts.column_names == ALERT_TABLE_FIELDS
