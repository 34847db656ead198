"""The console's pure parts: queue filters from a query string, the card-history window that
grows until nothing older can matter, and what the pages draw (reason bars, timeline, hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from jobs.console import queries, views
from jobs.console.whatif import from_ms, to_ms
from models.features import PROFILE_LIFETIME_MS

DAY_MS = 86_400_000


def test_queue_filter_from_params_and_back():
    f = queries.QueueFilter.from_params({
        "status": "closed", "score_min": "0.5", "score_max": "0.9", "age": "7d",
        "rule": "RULE:big-online", "model": "m1", "page": "3"})
    assert (f.status, f.score_min, f.score_max, f.age, f.rule, f.model_version, f.page) == (
        "closed", 0.5, 0.9, "7d", "big-online", "m1", 3)
    assert queries.QueueFilter.from_params(dict(
        pair.split("=") for pair in f.params().split("&"))) == f
    assert queries.QueueFilter.from_params({}) == queries.QueueFilter()
    assert queries.QueueFilter.from_params({"status": "all"}).status is None
    assert queries.QueueFilter.from_params({"page": "-4"}).page == 1


@pytest.mark.parametrize("params,message", [
    ({"status": "x' OR 1=1"}, "status"), ({"score_min": "high"}, "score_min"),
    ({"score_max": "1.5"}, "score_max"), ({"age": "1y"}, "age"), ({"page": "two"}, "page"),
    ({"rule": "r" * 201}, "rule")])
def test_queue_filter_refuses(params, message):
    with pytest.raises(queries.InvalidFilter, match=message):
        queries.QueueFilter.from_params(params)


def test_queue_where_uses_parameters_only():
    hostile = "x'); DELETE FROM alerts; --"
    where, params = queries._queue_where(queries.QueueFilter(rule=hostile, model_version=hostile))
    assert hostile not in where and "%s" in where
    assert hostile in params and params[1].obj == [{"code": f"RULE:{hostile}"}]


class FakeConn:
    """Answers card_history's range query from a list of event times (ms)."""

    def __init__(self, times_ms):
        self.times = times_ms
        self.windows = []

    def execute(self, sql, params):
        card, start, end = params
        self.windows.append((to_ms(start), to_ms(end)))
        rows = [(f"t{t}", from_ms(t), 1.0, "m", "misc_net", i, False, None, None)
                for i, t in enumerate(self.times) if to_ms(start) < t <= to_ms(end)]
        return type("R", (), {"fetchall": lambda self: rows})()


def test_card_history_reads_back_to_a_30_day_gap():
    now = 1_600_000_000_000
    busy = [now - d * DAY_MS for d in range(0, 100, 3)]  # every 3 days for 100 days
    old = [now - 200 * DAY_MS]  # before a gap of 100 days: cannot matter
    conn = FakeConn(busy + old)
    rows = queries.card_history(conn, "card", now, located=False)
    assert sorted(r.event_time_ms for r in rows) == sorted(busy)  # each once, nothing older
    # contiguous slices back from `now`, each at most 35 days, the last one empty
    assert conn.windows[0][1] == now
    assert all(newer[0] == older[1] for newer, older in pairwise(conn.windows))
    assert all(end - start <= 35 * DAY_MS for start, end in conn.windows)
    assert conn.windows[-1][0] <= min(busy) - PROFILE_LIFETIME_MS


def test_card_history_of_an_idle_card_is_one_read():
    conn = FakeConn([1_600_000_000_000 - 40 * DAY_MS])
    assert queries.card_history(conn, "card", 1_600_000_000_000, located=False) == []
    assert len(conn.windows) == 1


def test_reason_bars():
    bars = views.reason_bars([
        {"code": "RULE:big", "feature": "rule", "value": None, "contribution": None},
        {"code": "VELOCITY_1H", "feature": "count_1h", "value": 4.0, "contribution": 3.0},
        {"code": "AMOUNT_HIGH", "feature": "amount", "value": 900.0, "contribution": 1.0},
        {"code": "NEAR_HOME", "feature": "d", "value": 1.0, "contribution": 0.5, "share": 0.2},
        "not a reason"])
    assert [b.code for b in bars] == ["RULE:big", "VELOCITY_1H", "AMOUNT_HIGH", "NEAR_HOME"]
    assert bars[0].is_rule and bars[0].width == 0
    assert bars[1].share == pytest.approx(3.0 / 4.5) and bars[3].share == 0.2
    assert all(0 <= b.width <= views.BAR_WIDTH for b in bars)


def test_timeline_and_hour_bars():
    at = datetime(2091, 1, 1, tzinfo=UTC)
    events = [queries.CardEvent(f"t{i}", at + timedelta(hours=i), 10.0 * (i + 1), "m",
                                "misc_net", 0.1, "alert" if i == 2 else "pass", 5.0, False,
                                "closed" if i == 1 else None, "legit" if i == 1 else None)
              for i in range(4)]
    t = views.timeline(events, "t3")
    assert [d.css for d in t.dots] == ["pass", "legit", "alert", "this"]
    xs = [d.x for d in t.dots]
    assert xs == sorted(xs) and 0 <= xs[0] and xs[-1] <= t.width
    assert all(0 <= d.y <= t.height for d in t.dots)
    now = datetime(2091, 1, 2, 10, 30, tzinfo=UTC)
    bars = views.hour_bars([(datetime(2091, 1, 2, 9, tzinfo=UTC), 5),
                            (datetime(2091, 1, 2, 10, tzinfo=UTC), 10)], now, hours=4)
    assert [b[2] > 0 for b in bars.bars] == [False, False, True, True] and bars.peak == 10
    assert views.median([3.0, 1.0, 2.0, None]) == 2.0 and views.median([]) is None
