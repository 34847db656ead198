"""The console over HTTP (starlette's TestClient, no browser) on the stack's Postgres: queue
filters and paging, hostile filter values, labelling and its refusals, what the analyst role
lets it do, and the what-if API's answers for a card it has never seen.

Alerts are the test's own (event times in 2092, deleted afterwards by the superuser).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from deploy.local.postgres import PostgresServer
from jobs.console.app import create_app
from jobs.console.auth import ConsoleAuth
from jobs.console.queries import PAGE_SIZE

with warnings.catch_warnings():  # starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

PASSWORD = "http test password"
BASE = datetime(2092, 6, 1, tzinfo=UTC)
HOSTILE = ("x' OR '1'='1", "'; DROP TABLE alerts; --", "%", "\\", "RULE:%")


@pytest.fixture(scope="module")
def alerts(stack):
    prefix = f"console-http-{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PostgresServer(stack).admin_conninfo(stack.pg_database),
                            autocommit=True)
    ids = [f"{prefix}-{i:03d}" for i in range(PAGE_SIZE + 5)]
    for i, tx in enumerate(ids):
        admin.execute(
            "INSERT INTO alerts (transaction_id, card_token, card_masked, event_time, amount,"
            " merchant, category, score, threshold, reasons, features, model_version)"
            " VALUES (%s, %s, '****0001', %s, 99.0, 'fraud_M', 'misc_net', %s, 0.5, %s,"
            " '{}', %s)",
            (tx, f"tok-{prefix}", BASE + timedelta(minutes=i), 0.5 + (i % 50) / 100,
             Jsonb([{"code": f"RULE:{prefix}" if i % 10 == 0 else "AMOUNT_HIGH"}]),
             prefix))
    yield prefix, ids
    admin.execute("DELETE FROM alerts WHERE transaction_id LIKE %s", (prefix + "%",))
    admin.close()


@pytest.fixture(scope="module")
def client(stack):
    app = create_app(stack, ConsoleAuth({"analyst": PASSWORD}, "h" * 32))
    with TestClient(app) as client:
        token = _token(client.get("/login").text)
        client.post("/login", data={"username": "analyst", "password": PASSWORD,
                                    "csrf_token": token})
        yield client


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _listed(html: str) -> list[str]:
    return re.findall(r'class="alert-link" href="/alert\?id=[^"]*">([^<]+)<', html)


def test_filters_and_paging(client, alerts):
    prefix, ids = alerts
    first = client.get("/queue", params={"model": prefix, "status": "all"})
    assert first.status_code == 200
    newest = list(reversed(ids))
    assert _listed(first.text) == newest[:PAGE_SIZE]
    assert f"{len(ids)} alert(s), page 1 of 2" in first.text
    second = client.get("/queue", params={"model": prefix, "status": "all", "page": 2})
    assert _listed(second.text) == newest[PAGE_SIZE:]
    by_rule = client.get("/queue", params={"model": prefix, "rule": f"RULE:{prefix}"})
    assert _listed(by_rule.text) == [tx for tx in newest if int(tx[-3:]) % 10 == 0]
    band = client.get("/queue", params={"model": prefix, "score_min": "0.9",
                                        "score_max": "0.95", "age": "1h"})
    assert sorted(_listed(band.text)) == sorted(
        tx for tx in ids if 0.9 - 1e-9 <= 0.5 + (int(tx[-3:]) % 50) / 100 <= 0.95 + 1e-9)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_match_nothing(client, alerts, value):
    for name in ("rule", "model"):
        response = client.get("/queue", params={name: value, "status": "all"})
        assert response.status_code == 200 and _listed(response.text) == []
    assert client.get("/queue", params={"status": value}).status_code == 400
    assert client.get("/alert", params={"id": value}).status_code == 404


def test_label_and_refusals(client, alerts, stack):
    _, ids = alerts
    tx = ids[3]
    token = _token(client.get("/alert", params={"id": tx}).text)
    bad = client.post("/alert/label", data={"id": tx, "label": "maybe", "csrf_token": token})
    assert bad.status_code == 400 and "fraud or legit" in bad.text
    missing = client.post("/alert/label", data={"id": "nope", "label": "fraud",
                                                "csrf_token": token})
    assert missing.status_code == 404
    done = client.post("/alert/label", data={"id": tx, "label": "legit", "note": "ok",
                                             "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and "labelled=1" in done.headers["location"]
    with psycopg.connect(stack.pg_conninfo("analyst")) as conn:
        row = conn.execute("SELECT review_status, label, reviewer, review_note FROM alerts"
                           " WHERE transaction_id = %s", (tx,)).fetchone()
    assert row == ("closed", "legit", "analyst", "ok")


def test_console_connects_as_the_analyst_role(client):
    pool = client.app.state.pool
    with pool.connection() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "fraudstream_analyst"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE alerts SET score = 0 WHERE false")


def test_what_if_for_a_new_card_and_refusals(client):
    wire = {"schema_version": 1, "transaction_id": f"whatif-{uuid.uuid4().hex[:8]}",
            "event_time": "2092-06-01T03:00:00Z", "card_token": "ab" * 32,
            "card_last4": "1234", "amt": 1250.0, "merchant": "fraud_New", "category":
            "shopping_net", "merch_lat": 40.0, "merch_long": -100.0, "lat": 35.0,
            "long": -80.0, "city_pop": 1000}
    basic = base64.b64encode(f"analyst:{PASSWORD}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {basic}"}
    got = client.post("/api/score", content=json.dumps(wire), headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["history"]["events"] == 0 and body["exact"] is True
    assert body["features"]["card_txn_count"] == 0.0 and body["decision"] in ("alert", "pass")
    assert body["reasons"] and body["rules_applied"] is False
    unknown = client.post("/api/score", params={"model": "no-such-version"},
                          content=json.dumps(wire), headers=headers)
    assert unknown.status_code == 404
    bad = client.post("/api/score", content=json.dumps({**wire, "amt": -1}), headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "amt"
    # the browser's way: session cookie plus the CSRF header
    token = _token(client.get("/overview").text)
    browser = client.post("/api/score", content=json.dumps(wire),
                          headers={"Content-Type": "application/json", "X-CSRF-Token": token})
    assert browser.status_code == 200 and browser.json()["score"] == body["score"]
