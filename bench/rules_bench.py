"""Benchmark of analyst rules (`models.rules`): events/s of a 10-rule set over 100k rows.

Run: `python -m bench.rules_bench [--rows 100000] [--rules 10] [--seed 7]`
Prints events/s and µs per event for the job's call (`RuleSet.apply_events`: flat rows built
per event), the same for the rules that read features only (the vector is the row), the
rules alone over prebuilt rows (`apply_rows`), building the rows, and the mapping path
(`apply_batch` over dicts, as backtests use). Measures, never fails.
The rows come from the synthetic stream of `bench.features_bench` replayed through the
feature state; the decisions are a fixed 1 % of model alerts.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from bench.features_bench import synthetic_stream
from models import features as F
from models.rules import Rule, RuleSet, RuleVerdict, event_fields, event_row

# Ten rules in the shape analysts write: thresholds, category lists, velocity, flags, score.
RULES: tuple[tuple[str, str, str], ...] = (
    ("big-net", "amount > 2000 and category in ('shopping_net', 'misc_net')", "alert"),
    ("burst-1h", "count_1h >= 5 and sum_1h > 1500", "alert"),
    ("new-merchant-night", "merchant_is_new and is_night and amount > 500", "alert"),
    ("far-and-fast", "distance_from_home_km > 800 and speed_from_prev_kmh > 900", "alert"),
    ("odd-amount", "amount_zscore > 4 and card_txn_count >= 20", "alert"),
    ("score-plus-amount", "score > 0.4 and amount >= 1000", "alert"),
    ("grocery-spree", "category == 'grocery_pos' and count_24h > 12", "alert"),
    ("small-pos", "amount < 5 and category in ('grocery_pos', 'gas_transport')", "suppress"),
    ("test-merchant", "merchant == 'fraud_m0' or merchant == 'fraud_m1'", "suppress"),
    ("home-town", "distance_from_home_km < 1 and not merchant_is_new and amount < 50",
     "suppress"),
)


class _Decision:
    __slots__ = ("score", "is_alert")

    def __init__(self, score: float, is_alert: bool) -> None:
        self.score = score
        self.is_alert = is_alert


def build(rows: int, seed: int):
    """(transactions, feature vectors, decisions) for about `rows` events."""
    days = 30
    cards = max(1, rows // (days * 2))
    stream = synthetic_stream(cards, days, seed)
    while len(stream) < rows:
        cards *= 2
        stream = synthetic_stream(cards, days, seed)
    stream = stream[:rows]
    vectors = [v for _, v in F.offline_features(stream)]
    rng = random.Random(seed)
    decisions = []
    for _ in stream:
        score = rng.random() ** 8
        decisions.append(_Decision(score, rng.random() < 0.01))
    return stream, vectors, decisions


def rule_set(count: int) -> RuleSet:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rules = []
    for i in range(count):
        name, text, action = RULES[i % len(RULES)]
        rules.append(Rule(f"{name}-{i}" if i >= len(RULES) else name, text, action,
                          created_at=at))
    return RuleSet(rules)


def _best(fn, repeat: int) -> tuple[float, object]:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args(argv)

    txns, vectors, decisions = build(args.rows, args.seed)
    n = len(txns)
    rules = rule_set(args.rules)
    scores = [d.score for d in decisions]

    t_events, verdicts = _best(lambda: rules.apply_events(txns, vectors, decisions),
                               args.repeat)
    features_only = RuleSet(r for r in rules if r.identifiers <= set(F.FEATURE_NAMES))
    t_vec, _ = _best(lambda: features_only.apply_events(txns, vectors, decisions), args.repeat)
    t_rows, rows = _best(
        lambda: [event_row(t, v, s) for t, v, s in zip(txns, vectors, scores, strict=True)],
        args.repeat,
    )
    t_apply, row_verdicts = _best(lambda: rules.apply_rows(rows, decisions), args.repeat)
    fields = [event_fields(t, v, s) for t, v, s in zip(txns, vectors, scores, strict=True)]
    t_map, _ = _best(lambda: rules.apply_batch(zip(fields, decisions, strict=True)),
                     args.repeat)
    empty = RuleSet()
    t_empty, _ = _best(lambda: empty.apply_rows(rows, decisions), args.repeat)

    assert verdicts == row_verdicts and all(isinstance(v, RuleVerdict) for v in verdicts[:1])
    alerts_model = sum(d.is_alert for d in decisions)
    alerts_after = sum(v.is_alert for v in verdicts)
    by_rule = sum(bool(v.reasons) for v in verdicts)
    suppressed = sum(v.suppressed for v in verdicts)

    def line(label: str, seconds: float) -> str:
        return (f"  {label:<42} {n / seconds:>12,.0f} events/s  "
                f"{seconds / n * 1e6:7.2f} µs/event")

    print(f"rules bench: {len(rules)} rules ({sum(r.action == 'alert' for r in rules)} alert, "
          f"{sum(r.action == 'suppress' for r in rules)} suppress) over {n:,} rows, "
          f"best of {args.repeat}")
    print(line("apply_events (the job's call)", t_events))
    print(line(f"apply_events, the {len(features_only)} features-only rules", t_vec))
    print(line("apply_rows over prebuilt rows (rules only)", t_apply))
    print(line("event_row (building the flat rows, kept)", t_rows))
    print(line("apply_batch over dicts (backtest path)", t_map))
    print(line("apply_rows, no rules (floor)", t_empty))
    print(f"  model alerts {alerts_model:,} -> after rules {alerts_after:,}; events with a rule "
          f"reason {by_rule:,}; suppressed {suppressed:,}")


if __name__ == "__main__":
    main()
