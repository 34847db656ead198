"""Flink's key-group assignment of an INT key, in plain Python (no JVM), to place shards evenly.

Flink sends a key to key group `murmurHash(key.hashCode()) % maxParallelism` and a key group
to subtask `keyGroup * parallelism // maxParallelism` (`KeyGroupRangeAssignment`); an INT key's
`hashCode()` is its value. Shard numbers 0..K-1 used as keys would land on key groups at
random (16 shards over 2 subtasks measured 9:7), so each shard gets the smallest key whose key
group is spread evenly over the range instead (`shard_keys`). tests/unit/test_java_ops.py
checks `key_group` against the JVM's own `KeyGroupRangeAssignment`.
"""

from __future__ import annotations

from functools import cache

_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def murmur_hash(code: int) -> int:
    """`org.apache.flink.util.MathUtils.murmurHash(int)`: a non-negative int."""
    h = (code * 0xCC9E2D51) & _MASK
    h = (_rotl(h, 15) * 0x1B873593) & _MASK
    h = (_rotl(h, 13) * 5 + 0xE6546B64) & _MASK
    h ^= 4
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    signed = h - (1 << 32) if h & 0x80000000 else h
    if signed >= 0:
        return signed
    return -signed if signed != -(1 << 31) else 0


def key_group(key: int, max_parallelism: int) -> int:
    """The key group of INT key `key`."""
    return murmur_hash(key) % max_parallelism


@cache
def shard_keys(shards: int, max_parallelism: int) -> tuple[int, ...]:
    """One INT key per shard, shard i in key group `i * max_parallelism // shards`.

    So any parallelism that divides `shards` gives every subtask the same number of shards.
    """
    if not 1 <= shards <= max_parallelism:
        raise ValueError(f"shards must be in 1..{max_parallelism}, got {shards}")
    wanted = {i * max_parallelism // shards: i for i in range(shards)}
    keys: list[int | None] = [None] * shards
    candidate, missing = 0, shards
    while missing:
        shard = wanted.get(key_group(candidate, max_parallelism))
        if shard is not None and keys[shard] is None:
            keys[shard] = candidate
            missing -= 1
        candidate += 1
    return tuple(k for k in keys if k is not None)
