"""The benchmark's input: N generated transactions as Kafka (key, value) pairs, cached on disk.

`load_or_generate(n, seed, settings)` returns the first `n` transactions (event-time order) of a
generated run with `cards` cards, as (card token bytes, wire JSON bytes) pairs. Generating 1M
records takes minutes, so the pairs are cached under `<home>/bench-cache/` keyed by n, seed,
cards and a fingerprint of the card-token key (tokens depend on it); every engine of a run and
every later run reads the same bytes. `preload(...)` writes them to a topic as fast as the
producer goes (large batches, linger) and returns when all are acknowledged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TXN_PER_CARD_DAY = 2.5  # DATA.md: ~2.5 transactions per card per day
TARGET_FRAUD_RATE = 0.005  # DATA.md: ~0.5 % fraud over a 2-year Sparkov-like run
FRAUDS_PER_EPISODE = 10.0


def episode_share(n: int, cards: int) -> float:
    """Share of cards with a fraud episode so that ~0.5 % of n events are fraud.

    The generator gives each chosen card one episode per run whatever the run's length, so a
    short benchmark run at the default share (0.98) would be ~40 % fraud (measured: 43 % for
    20k events over 11 days) and the model would alert on a large share of the traffic.
    """
    return min(0.98, TARGET_FRAUD_RATE * n / (FRAUDS_PER_EPISODE * cards))


def cache_path(home: Path, n: int, seed: int, cards: int, key: str) -> Path:
    fp = hashlib.sha256(key.encode()).hexdigest()[:10]
    return home / "bench-cache" / f"txns-v2-n{n}-s{seed}-c{cards}-k{fp}.tsv"


def _generate(n: int, seed: int, cards: int, key: str) -> Iterator[tuple[bytes, bytes]]:
    from models.data.generator import GeneratorConfig, generate
    from schemas.card_token import CardTokenizer
    from schemas.wire import to_json_bytes

    days = max(2, math.ceil(n / (cards * TXN_PER_CARD_DAY) * 1.8))
    config = GeneratorConfig(cards=cards, days=days, seed=seed,
                             episode_card_share=episode_share(n, cards))
    produced = 0
    for txn in generate(config, CardTokenizer(key.encode())):
        yield txn.card_token.encode(), to_json_bytes(txn)
        produced += 1
        if produced >= n:
            return
    raise RuntimeError(f"generator gave only {produced} of {n} transactions ({cards} cards, "
                       f"{days} days): raise --cards")


def load_or_generate(
    n: int, seed: int, cards: int, settings: Any,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[bytes, bytes]]:
    """The n (key, value) pairs, from the cache or generated (then cached)."""
    path = cache_path(settings.home, n, seed, cards, settings.card_token_key.reveal())
    pairs: list[tuple[bytes, bytes]] = []
    if path.is_file():
        with path.open("rb") as fh:
            for line in fh:
                key, _, value = line.rstrip(b"\n").partition(b"\t")
                pairs.append((key, value))
        if len(pairs) == n:
            if progress:
                progress(n)
            return pairs
        pairs = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for key, value in _generate(n, seed, cards, settings.card_token_key.reveal()):
            if b"\n" in value or b"\t" in key:
                raise RuntimeError("wire JSON contains a newline: cannot cache it line by line")
            fh.write(key + b"\t" + value + b"\n")
            pairs.append((key, value))
            if progress and len(pairs) % 10_000 == 0:
                progress(len(pairs))
    tmp.replace(path)
    if progress:
        progress(n)
    return pairs


def preload(
    pairs: list[tuple[bytes, bytes]], topic: str, bootstrap: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce all pairs to `topic`; return how many were acknowledged (raises on failure)."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "acks": "all",
    })
    acked = 0
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal acked
        if err is not None:
            failed.append(str(err))
        else:
            acked += 1

    for i, (key, value) in enumerate(pairs):
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
            if progress:
                progress(acked)
    remaining = producer.flush(120)
    if failed or remaining:
        raise KafkaException(f"preload failed: {len(failed)} errors ({failed[:1]}), "
                             f"{remaining} unflushed")
    if progress:
        progress(acked)
    return acked
