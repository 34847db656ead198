"""Benchmark of the card_activity_v1 feature code: per-event `update` cost and state size.

Run: `python -m bench.features_bench [--cards 1000] [--days 30] [--seed 7]`
Prints µs per event for `update` alone and for the job's full cycle (bytes -> state ->
update -> bytes), and the serialized bytes per card (mean, p99, max). Measures, never fails.
Uses the project generator when it is importable, else a synthetic stream of the same rate.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from models import features as F
from schemas.transaction import Transaction


def synthetic_stream(cards: int, days: int, seed: int) -> list[Transaction]:
    rng = random.Random(seed)
    start = 1_704_067_200_000
    out = []
    for c in range(cards):
        lat, lon = rng.uniform(30, 45), rng.uniform(-120, -75)
        rate = rng.uniform(0.5, 5.0)  # per day
        t = start
        end = start + days * F.ONE_DAY_MS
        while True:
            t += int(rng.expovariate(rate) * F.ONE_DAY_MS)
            if t >= end:
                break
            out.append(
                Transaction(
                    transaction_id=f"{c}-{t}",
                    event_time_ms=t,
                    card_token=f"card{c}",
                    card_last4="0000",
                    amount=round(rng.gammavariate(1.5, 45), 2),
                    merchant=f"fraud_m{rng.randrange(700)}",
                    category=rng.choice(F.CATEGORIES),
                    merchant_lat=lat + rng.uniform(-1, 1),
                    merchant_long=lon + rng.uniform(-1, 1),
                    home_lat=lat,
                    home_long=lon,
                    city_pop=1000,
                )
            )
    out.sort(key=lambda x: x.event_time_ms)
    return out


def generated_stream(cards: int, days: int, seed: int) -> list[Transaction] | None:
    try:
        from models.data.generator import GeneratorConfig, generate
        from schemas.card_token import CardTokenizer
    except ImportError:
        return None
    return list(
        generate(
            GeneratorConfig(cards=cards, days=days, seed=seed),
            CardTokenizer(b"bench-key-0123456789"),
        )
    )


def machine_reference_ns() -> float:
    """CPU ns per iteration of a fixed pure-Python loop: says how fast this core is right now
    (CPython 3.11 on an unloaded modern core: about 30-40 ns)."""
    n = 1_000_000
    c0 = time.process_time()
    x = 0.0
    for i in range(n):
        x += i * 0.5
    return (time.process_time() - c0) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    stream = generated_stream(args.cards, args.days, args.seed)
    source = "project generator"
    if stream is None:
        stream = synthetic_stream(args.cards, args.days, args.seed)
        source = "synthetic stream (generator not importable)"
    print(f"{len(stream):,} events, {args.cards} cards, {args.days} days ({source})")

    states: dict[str, F.CardState] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    for txn in stream:
        state = states.get(txn.card_token)
        if state is None:
            state = states[txn.card_token] = F.new_state()
        F.update(state, txn)
    update_us = (time.perf_counter() - t0) / len(stream) * 1e6
    update_cpu_us = (time.process_time() - c0) / len(stream) * 1e6

    stored: dict[str, bytes] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    for txn in stream:
        raw = stored.get(txn.card_token)
        state = F.state_from_bytes(raw) if raw is not None else F.new_state()
        F.update(state, txn)
        stored[txn.card_token] = F.state_to_bytes(state)
    cycle_us = (time.perf_counter() - t0) / len(stream) * 1e6
    cycle_cpu_us = (time.process_time() - c0) / len(stream) * 1e6

    print(f"machine reference loop:          {machine_reference_ns():6.1f} CPU ns/iteration")
    sizes = sorted(len(v) for v in stored.values())
    p99 = sizes[min(len(sizes) - 1, int(0.99 * len(sizes)))]
    print(f"update only:                     {update_us:6.2f} us/event ({update_cpu_us:.2f} CPU)")
    print(f"bytes->state->update->bytes:     {cycle_us:6.2f} us/event ({cycle_cpu_us:.2f} CPU)")
    print(
        f"serialized state per card: mean {statistics.mean(sizes):.0f} B, "
        f"p99 {p99} B, max {sizes[-1]} B (cap by layout: "
        f"{F._HEADER.size + F.MAX_WINDOW_EVENTS * 12 + F.MAX_MERCHANTS * 2} B)"
    )


if __name__ == "__main__":
    main()
