"""The analyst console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by the fixture when missing and run as root) driven by selenium
against the console served by uvicorn on a free loopback port, over the stack's Postgres.

The tests make their own alerts and card history (as the superuser, deleted afterwards), with
event times in 2091 so they lead the queue: sign in (a wrong password refused first), the
queue and its filters, an alert page, labelling with the keyboard (f / n), the label in
Postgres, forged forms refused (wrong or missing CSRF token, a cross-site form), the overview.
Screenshots of every page go to <home>/logs/console-screenshots/<run>/ (the path is printed);
with FRAUDSTREAM_DOCS_SCREENSHOT=1 the alert page's also replaces docs/console.png.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from deploy.local.postgres import PostgresServer
from jobs.console.app import BackgroundServer, create_app
from jobs.console.auth import ConsoleAuth

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "browser test password"
ALERT_TIME = datetime(2091, 3, 14, 2, 41, 7, tzinfo=UTC)
WAIT_S = 15


def _chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; Debian's packages are installed when missing."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    if os.geteuid() != 0:
        pytest.skip("headless Chromium is missing: apt-get install -y chromium chromium-driver "
                    "(this test installs them itself when run as root)")
    print("\ninstalling Debian's chromium and chromium-driver for the browser tests ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium",
                 "chromium-driver", "fonts-dejavu-core"]):
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=900, check=False)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}"
    return shutil.which("chromium"), shutil.which("chromedriver")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def world(stack):
    """A card with two weeks of history, three alerts on it (one closed legit, one raised by
    an analyst rule); rows deleted after the module."""
    prefix = f"console-{uuid.uuid4().hex[:8]}"
    card = f"tok-{prefix}"
    rule = f"night-online-{prefix[-4:]}"
    admin = psycopg.connect(PostgresServer(stack).admin_conninfo(stack.pg_database),
                            autocommit=True)
    history = []
    for day in range(14, 0, -1):  # the card's usual: one or two small buys a day near home
        for k in range(1 + day % 2):
            at = ALERT_TIME - timedelta(days=day, hours=5 * k + 3)
            history.append((f"{prefix}-h{day}-{k}", at, 12.5 + 7 * ((day + k) % 5),
                            "fraud_Kub-Lindgren", "grocery_pos", 0.01 + day / 1000, 8.0 + k))
    for i, minutes in enumerate((52, 37, 21)):  # a burst online, far from home, at night
        history.append((f"{prefix}-b{i}", ALERT_TIME - timedelta(minutes=minutes),
                        310.0 + 90 * i, "fraud_Terry-Huel", "shopping_net", 0.55 + i / 10,
                        1480.0))
    alerts = {
        "main": (f"{prefix}-main", ALERT_TIME, 948.17, "fraud_Schumm PLC", "shopping_net",
                 0.993, [("VELOCITY_1H", "count_1h", 4.0, 2.1),
                         ("AMOUNT_HIGH", "amount", 948.17, 1.4),
                         ("FAR_FROM_HOME", "distance_from_home_km", 1481.3, 0.6)]),
        "rule": (f"{prefix}-rule", ALERT_TIME - timedelta(minutes=12), 490.0,
                 "fraud_Terry-Huel", "shopping_net", 0.71,
                 [(f"RULE:{rule}", "rule", None, None), ("VELOCITY_1H", "count_1h", 3.0, 0.9)]),
        "closed": (f"{prefix}-closed", ALERT_TIME - timedelta(days=6), 212.0,
                   "fraud_Kub-Lindgren", "grocery_pos", 0.88,
                   [("AMOUNT_HIGH", "amount", 212.0, 1.1)]),
    }
    features = {"amount": 948.17, "count_1h": 4.0, "sum_1h": 2058.17, "count_24h": 4.0,
                "distance_from_home_km": 1481.3, "speed_from_prev_kmh": 3.2,
                "merchant_is_new": 1.0, "category_is_new": 0.0, "hour_of_day": 2.0,
                "is_night": 1.0, "category_shopping_net": 1.0, "category_grocery_pos": 0.0}
    for tx, at, amount, merchant, category, score, distance in history:
        _scored(admin, card, tx, at, amount, merchant, category, score, "pass",
                {**features, "amount": amount, "distance_from_home_km": distance})
    for tx, at, amount, merchant, category, score, reasons in alerts.values():
        listed = [{"code": c, "feature": f, "value": v, "contribution": w}
                  for c, f, v, w in reasons]
        _scored(admin, card, tx, at, amount, merchant, category, score, "alert", features)
        admin.execute(
            "INSERT INTO alerts (transaction_id, card_token, card_masked, event_time, amount,"
            " merchant, category, score, threshold, reasons, features, model_version)"
            " VALUES (%s, %s, '****4242', %s, %s, %s, %s, %s, 0.8231, %s, %s, 'console-test')",
            (tx, card, at, amount, merchant, category, score, Jsonb(listed), Jsonb(features)))
    admin.execute(
        "UPDATE alerts SET review_status = 'closed', label = 'legit', reviewer = 'reviewer2',"
        " review_note = 'customer confirmed', reviewed_at = %s WHERE transaction_id = %s",
        (ALERT_TIME - timedelta(days=5), alerts["closed"][0]))
    yield {"prefix": prefix, "card": card, "rule": rule, "alerts": {k: v[0] for k, v in
                                                                     alerts.items()},
           "history": sum(at >= ALERT_TIME - timedelta(days=14)  # the page's window
                          for at in [h[1] for h in history] + [a[1] for a in alerts.values()])}
    for table in ("alerts", "scored_transactions"):
        admin.execute(f"DELETE FROM {table} WHERE transaction_id LIKE %s",  # noqa: S608
                      (prefix + "%",))
    admin.close()


def _scored(conn, card, tx, at, amount, merchant, category, score, decision, features):
    conn.execute(
        "INSERT INTO scored_transactions (transaction_id, card_token, card_last4, event_time,"
        " amount, merchant, category, score, decision, reasons, features, model_version)"
        " VALUES (%s, %s, '4242', %s, %s, %s, %s, %s, %s, '[]', %s, 'console-test')",
        (tx, card, at, amount, merchant, category, score, decision, Jsonb(features)))


@pytest.fixture(scope="module")
def console(stack, world):
    auth = ConsoleAuth({"analyst": PASSWORD}, secrets.token_urlsafe(32))
    server = BackgroundServer(create_app(stack, auth)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shots(stack):
    folder = stack.logs_dir / "console-screenshots" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _chromium()
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


# --------------------------------------------------------------------------- helpers
def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition, message=f"waiting for {what}")


def _element(driver, element_id: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    return _wait(driver, EC.presence_of_element_located((By.ID, element_id)), f"#{element_id}")


def _shot(driver, folder: Path, name: str) -> Path:
    """A full-page screenshot (the window is stretched to the page's height)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height), 700), 4000))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    driver.set_window_size(1400, 1000)
    return path


def _sign_in(driver, console, password: str = PASSWORD, next_path: str = "/queue") -> None:
    driver.get(console.url + next_path)
    _element(driver, "password").send_keys(password)
    driver.find_element("id", "sign-in").click()


def _review(stack, tx: str) -> tuple:
    with psycopg.connect(stack.pg_conninfo("analyst")) as conn:
        return conn.execute(
            "SELECT review_status, label, reviewer, review_note, reviewed_at FROM alerts"
            " WHERE transaction_id = %s", (tx,)).fetchone()


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


# --------------------------------------------------------------------------- tests
def test_wrong_password_is_refused(browser, console, shots):
    browser.delete_all_cookies()
    _sign_in(browser, console, password="not the password")
    assert "Wrong user name or password" in _element(browser, "login-error").text
    assert "/login" in browser.current_url
    _shot(browser, shots, "1-login-refused")
    browser.get(console.url + "/queue")  # still signed out
    assert "/login" in browser.current_url and browser.find_elements("id", "login-form")


def test_sign_in_queue_alert_and_label_with_the_keyboard(browser, console, world, shots,
                                                         stack):
    browser.delete_all_cookies()
    _sign_in(browser, console)
    _wait(browser, lambda d: "/queue" in d.current_url, "the queue after sign-in")
    assert _element(browser, "who").text == "analyst"
    ids = world["alerts"]
    links = [a.text for a in browser.find_elements("css selector", "a.alert-link")]
    assert links[:2] == [ids["main"], ids["rule"]], "the test's open alerts lead the queue"
    _shot(browser, shots, "2-queue")

    browser.find_element("link text", ids["main"]).click()
    assert _element(browser, "alert-id").text == ids["main"]
    codes = [c.text for c in browser.find_elements("css selector", "#reasons td.code")]
    assert codes == ["VELOCITY_1H", "AMOUNT_HIGH", "FAR_FROM_HOME"]
    dots = browser.find_elements("css selector", "#timeline circle")
    assert len(dots) == world["history"]  # every event of the card in the window
    assert len(browser.find_elements("css selector", "#timeline circle.this")) == 1
    assert "1481 km" in _element(browser, "distance").text
    _shot(browser, shots, "3-alert")

    _press(browser, "n")  # n: write a note; f/l typed there stay text
    browser.switch_to.active_element.send_keys("card holder abroad? no: fl")
    _press(browser, "\ue00c")  # Escape leaves the note
    before = datetime.now(UTC)
    _press(browser, "f")
    assert "Labelled fraud by analyst" in _element(browser, "labelled-notice").text
    status, label, reviewer, note, reviewed_at = _review(stack, ids["main"])
    assert (status, label, reviewer, note) == ("closed", "fraud", "analyst",
                                                "card holder abroad? no: fl")
    assert before - timedelta(seconds=5) <= reviewed_at <= datetime.now(UTC)
    path = _shot(browser, shots, "4-alert-labelled")
    if os.environ.get("FRAUDSTREAM_DOCS_SCREENSHOT") == "1":
        from PIL import Image

        with Image.open(shots / "3-alert.png") as page:  # the top: facts, reasons, history
            page.crop((0, 0, page.width, min(page.height, 1160))).save(
                REPO / "docs" / "console.png", optimize=True)
        print(f"copied the top of {shots / '3-alert.png'} to docs/console.png")
    assert path.stat().st_size > 10_000


def test_queue_filters(browser, console, world, shots):
    browser.delete_all_cookies()
    _sign_in(browser, console, next_path=f"/queue?status=all&rule={world['rule']}")
    ids = world["alerts"]
    _wait(browser, lambda d: "/queue" in d.current_url, "the filtered queue")
    listed = [a.text for a in browser.find_elements("css selector", "a.alert-link")]
    assert listed == [ids["rule"]]
    browser.get(console.url + "/queue?status=closed&model=console-test&score_min=0.8")
    listed = [a.text for a in browser.find_elements("css selector", "a.alert-link")]
    assert ids["closed"] in listed and ids["rule"] not in listed
    browser.get(console.url + "/queue?status=all&model=console-test&score_min=0.95")
    listed = [a.text for a in browser.find_elements("css selector", "a.alert-link")]
    assert listed == [ids["main"]]
    browser.get(console.url + "/queue?score_min=2")
    assert "between 0 and 1" in _element(browser, "filter-error").text


def test_forged_forms_are_refused(browser, console, world, stack):
    browser.delete_all_cookies()
    tx = world["alerts"]["rule"]
    _sign_in(browser, console, next_path=f"/alert?id={tx}")
    _element(browser, "label-form")
    # a wrong token, then none at all (the page's form, altered)
    for script in ("document.querySelector('#label-form input[name=csrf_token]').value = 'forged';",
                   "document.querySelector('#label-form input[name=csrf_token]').remove();"):
        browser.get(console.url + f"/alert?id={tx}")
        _element(browser, "label-form")
        browser.execute_script(script)
        _press(browser, "l")
        assert "CSRF token missing or wrong" in _element(browser, "error-message").text
    # another site's form posting to the console: the SameSite cookie stays home
    page = (f"<html><body><form method='post' action='{console.url}/alert/label'>"
            f"<input name='id' value='{tx}'><input name='label' value='legit'>"
            "<input name='csrf_token' value='guess'></form>"
            "<script>document.forms[0].submit()</script></body></html>")
    browser.get("data:text/html;charset=utf-8," + page)
    _wait(browser, lambda d: d.current_url.startswith(console.url), "the forged post")
    assert "CSRF token missing or wrong" in _element(browser, "error-message").text
    assert _review(stack, tx)[:2] == ("open", None), "no forged label reached Postgres"


def test_overview(browser, console, world, shots):
    browser.delete_all_cookies()
    _sign_in(browser, console, next_path="/overview")
    _element(browser, "hours")
    models = _element(browser, "models").text
    assert "console-test" in models
    assert browser.find_elements("id", "drift")
    _shot(browser, shots, "5-overview")
