"""Flink's key-group assignment of the scorer's keys, in plain Python (no JVM), to place shards.

Flink sends a key to key group `murmurHash(key.hashCode()) % maxParallelism` and a key group
to subtask `keyGroup * parallelism // maxParallelism` (`KeyGroupRangeAssignment`). PyFlink's
`key_by(..., key_type=Types.LONG())` keys the stream by a one-field `Row` holding a
`java.lang.Long`, whose `hashCode()` is `62 + Long.hashCode(v)` (an INSERT row,
`RowUtils.deepHashCodeRow`; measured in the JVM, see the test). Until 2026-12-02 this
module modelled a plain INT key, so the "even" placement was not even in the job
(measured: 370 vs 156 shard batches/s on two subtasks). Shard numbers 0..K-1 used as keys
would land on key groups at random, so each shard gets the smallest key whose key group is
spread evenly over the range (`shard_keys`).
tests/unit/test_java_ops.py checks `key_group` against the JVM's own assignment of such Rows.
"""

from __future__ import annotations

from functools import cache

_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _to_int32(x: int) -> int:
    """Java int overflow: the low 32 bits of `x` as a signed int."""
    x &= _MASK
    return x - (1 << 32) if x & 0x80000000 else x


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
    signed = _to_int32(h)
    if signed >= 0:
        return signed
    return -signed if signed != -(1 << 31) else 0


def row_of_long_hash(value: int) -> int:
    """`Row.of(Long.valueOf(value)).hashCode()` for a RowKind.INSERT row."""
    long_hash = _to_int32(value ^ ((value & 0xFFFFFFFFFFFFFFFF) >> 32))
    return _to_int32(62 + long_hash)


def key_group(key: int, max_parallelism: int) -> int:
    """The key group of the scorer key `key` (a one-field Row holding Long `key`)."""
    return murmur_hash(row_of_long_hash(key)) % max_parallelism


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
