"""How many VALID records the event-time future guard refuses on replayed sparse traffic.

Run: `python -m bench.future_guard_replay [--cards 15] [--days 3] [--seeds 60]
[--partitions 4] [--parallelism 1 2 4]`

Generates the demo's traffic for each seed, spreads it over partitions as our producer does
(key = card token; librdkafka's default partitioner is CRC32 of the key) and over source
subtasks as Flink's Kafka source does (partition p goes to subtask (start + p) % parallelism,
so the groups are those of p % parallelism), then runs each subtask's records in order through
the guard with the wall clock a year after the traffic: a replay read as fast as it arrives.
Prints the refused count per parallelism for the rule before 2026-12-02 (each partition's own
progress) and for the current one (`models.hot_path.EventTimeGuard`, the Python twin of the
source's Java rule). Every refusal here is a valid record dead-lettered. Measures, never fails.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable, Iterable

from models.hot_path import EventTimeGuard

DAY_MS = 86_400_000


class PerPartitionGuard:
    """The rule before 2026-12-02: ceiling = min(own progress, now) + bound."""

    def __init__(self, max_ahead_ms: int) -> None:
        self.max_ahead_ms = max_ahead_ms
        self._progress: dict[int, int] = {}

    def admits(self, partition: int, event_time_ms: int, now_ms: int) -> bool:
        seen = self._progress.get(partition)
        reference = now_ms if seen is None else min(seen, now_ms)
        if event_time_ms > reference + self.max_ahead_ms:
            return False
        if seen is None or event_time_ms > seen:
            self._progress[partition] = event_time_ms
        return True


RULES: dict[str, Callable[[int], object]] = {
    "per-partition (before)": PerPartitionGuard,
    "gap-aware (now)": EventTimeGuard,
}


def refused(records: Iterable[tuple[int, int]], make_guard: Callable[[int], object],
            parallelism: int, now_ms: int) -> int:
    """Refusals of (partition, event time) records in production order, one guard a subtask."""
    guards = [make_guard(DAY_MS) for _ in range(parallelism)]
    return sum(not guards[part % parallelism].admits(part, at, now_ms)  # type: ignore[attr-defined]
               for part, at in records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=15)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)

    from jobs.cli.demo.plan import episode_share
    from models.data.generator import GeneratorConfig, generate
    from schemas.card_token import CardTokenizer

    totals = {(rule, p): 0 for rule in RULES for p in args.parallelism}
    valid = 0
    for seed in range(args.seeds):
        cfg = GeneratorConfig(cards=args.cards, days=args.days, seed=seed,
                              episode_card_share=episode_share(args.days, args.cards))
        txns = list(generate(cfg, CardTokenizer(b"future-guard-replay-key")))
        records = [(zlib.crc32(t.card_token.encode("ascii")) % args.partitions, t.event_time_ms)
                   for t in txns]
        valid += len(records)
        now_ms = max(at for _, at in records) + 365 * DAY_MS
        for rule, make_guard in RULES.items():
            for p in args.parallelism:
                totals[(rule, p)] += refused(records, make_guard, p, now_ms)
    print(f"{args.seeds} seeds x {args.cards} cards x {args.days} days, {args.partitions} "
          f"partitions, {valid:,} valid records; valid records refused:")
    for rule in RULES:
        cells = ", ".join(f"parallelism {p}: {totals[(rule, p)]}" for p in args.parallelism)
        print(f"  {rule:24} {cells}")


if __name__ == "__main__":
    main()
