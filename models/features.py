"""Feature set `card_activity_v1`: per-card features computed from a compact, versioned state.

One pure-Python module used by the streaming job (Flink keyed state) and by training
(`offline_features`), so online and offline features are the same numbers.

Contract
--------
- `update(state, txn)` mutates `state` in place and returns the feature vector of `txn` in
  `FEATURE_NAMES` order. Features describe the card's PAST as held in the state plus this
  transaction: window counts/sums/max include this transaction; history comparisons
  (ratio to mean, z-score, novelty, time/speed since previous) use only what came before it.
- `update` never reads the clock: time is the transaction's event time.
- The state holds primitives only and serializes to a versioned binary layout
  (`state_to_bytes` / `state_from_bytes`); no pickle, so savepoints survive code moves.
  A serialized round trip is exact: features after a round trip equal features without one.

Out-of-order events
-------------------
Windows are relative to the event's OWN time `t`, over what the state holds: an event
counts in a window of length W if its time is in `(t - W, t]`. Events with a later event time
that already arrived are therefore NOT counted for a late event (it sees the card as it was at
its own time, minus anything still in flight). The event-time entries are kept sorted, so
arrival order does not matter for the window features. The "previous transaction" for
`log_seconds_since_prev` is the latest held event at or before `t`; speed is measured from the
location of the latest event by event time held (`|dt|` is used for a late event).
History statistics (mean, z-score, novelty) are order-dependent by nature: they include every
transaction that arrived before this one.

Bounds (why the state stays small)
----------------------------------
- Window entries: only the last 7 days (the widest window), at most `MAX_WINDOW_EVENTS`
  (oldest dropped first: counts saturate at that cap; documented limit).
- Merchants: 16-bit CRC32 hashes of the last `MAX_MERCHANTS` distinct merchants (collisions
  possible and accepted: a collision can only make a new merchant look known).
- Categories: a bitmask over `CATEGORIES` (+1 bit for anything else).
- Amount history: count, sum and Welford mean/M2 of log1p(amount) (no list).
- The whole state is useless once the card has been idle for `PROFILE_LIFETIME_MS` (30 days):
  `expire` returns True then and the caller clears it; `next_expiry_ms` says when.
Measured sizes and per-event cost: `python -m bench.features_bench`.
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator

from schemas.transaction import CATEGORIES, Transaction

FEATURE_SET_VERSION: str = "card_activity_v1"
STATE_FORMAT_VERSION: int = 1

ONE_HOUR_MS = 3_600_000
ONE_DAY_MS = 24 * ONE_HOUR_MS
WINDOW_1H_MS = ONE_HOUR_MS
WINDOW_24H_MS = ONE_DAY_MS
WINDOW_7D_MS = 7 * ONE_DAY_MS
# The card profile (history stats, novelty sets, last location) is kept while the card is
# active and dropped after this much event-time inactivity; the velocity windows are shorter.
PROFILE_LIFETIME_MS: int = 30 * ONE_DAY_MS

MAX_WINDOW_EVENTS = 128
MAX_MERCHANTS = 48
NO_PREVIOUS_SECONDS = PROFILE_LIFETIME_MS / 1000.0  # value used when the card has no past event
MAX_SPEED_KMH = 5_000.0  # faster than any airliner: clip so outliers do not dominate
MIN_TRAVEL_SECONDS = 60.0  # speed over less than a minute is measured over one minute
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3})  # 22:00-03:59 event-time hours

# CATEGORIES (schemas.transaction) fixes the bit index and the one-hot position.
_OTHER_CATEGORY = len(CATEGORIES)
_CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}

_NUMERIC_FEATURES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "count_1h",
    "sum_1h",
    "count_24h",
    "sum_24h",
    "max_amount_24h",
    "mean_amount_24h",
    "count_7d",
    "sum_7d",
    "amount_to_mean_ratio",
    "amount_zscore",
    "card_txn_count",
    "log_seconds_since_prev",
    "distance_from_home_km",
    "speed_from_prev_kmh",
    "merchant_is_new",
    "category_is_new",
    "hour_of_day",
    "is_night",
)
FEATURE_NAMES: tuple[str, ...] = _NUMERIC_FEATURES + tuple(
    f"category_{name}" for name in (*CATEGORIES, "other")
)

FEATURE_DESCRIPTIONS: dict[str, str] = {
    "amount": "transaction amount ($)",
    "log_amount": "log(1 + amount)",
    "count_1h": "card transactions in the last hour, this one included",
    "sum_1h": "card amount in the last hour, this one included ($)",
    "count_24h": "card transactions in the last 24 h, this one included",
    "sum_24h": "card amount in the last 24 h, this one included ($)",
    "max_amount_24h": "largest card amount in the last 24 h, this one included ($)",
    "mean_amount_24h": "mean card amount in the last 24 h, this one included ($)",
    "count_7d": "card transactions in the last 7 days, this one included",
    "sum_7d": "card amount in the last 7 days, this one included ($)",
    "amount_to_mean_ratio": "amount / the card's mean past amount (1 when no past)",
    "amount_zscore": "z-score of log(1+amount) vs the card's past (0 with < 2 past)",
    "card_txn_count": "past transactions in the card profile",
    "log_seconds_since_prev": "log(1 + seconds since the card's previous transaction)",
    "distance_from_home_km": "great-circle km from the card's home to the merchant",
    "speed_from_prev_kmh": "km/h needed to travel from the previous merchant (capped 5000)",
    "merchant_is_new": "1 if the merchant is not among the card's recent merchants",
    "category_is_new": "1 if the card never used this category before",
    "hour_of_day": "event-time hour (0-23)",
    "is_night": "1 if the hour is in 22:00-03:59",
}
for _name in (*CATEGORIES, "other"):
    FEATURE_DESCRIPTIONS[f"category_{_name}"] = f"1 if the category is {_name}"

_N_NUMERIC = len(_NUMERIC_FEATURES)
_N_FEATURES = len(FEATURE_NAMES)


class StateVersionError(ValueError):
    """Serialized state has an unknown format version or a corrupt layout."""


class CardState:
    """Everything the feature set remembers about one card. Primitives only.

    `times_ms`/`amounts` are parallel lists sorted by event time (window entries, last 7 days).
    `last_time_ms` is the greatest event time seen (-1 when the state is new).
    """

    __slots__ = (
        "times_ms",
        "amounts",
        "count",
        "amount_sum",
        "log_mean",
        "log_m2",
        "last_time_ms",
        "last_lat",
        "last_long",
        "category_mask",
        "merchants",
    )

    def __init__(self) -> None:
        self.times_ms: list[int] = []
        self.amounts: list[float] = []
        self.count: int = 0
        self.amount_sum: float = 0.0
        self.log_mean: float = 0.0
        self.log_m2: float = 0.0
        self.last_time_ms: int = -1
        self.last_lat: float = 0.0
        self.last_long: float = 0.0
        self.category_mask: int = 0
        self.merchants: list[int] = []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardState):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        return (
            f"CardState(count={self.count}, window_events={len(self.times_ms)}, "
            f"last_time_ms={self.last_time_ms}, merchants={len(self.merchants)})"
        )


def new_state() -> CardState:
    """A state for a card never seen (or cleared)."""
    return CardState()


_sin = math.sin
_cos = math.cos
_asin = math.asin
_sqrt = math.sqrt
_RAD = math.pi / 180.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (mean Earth radius 6371 km)."""
    p1 = lat1 * _RAD
    p2 = lat2 * _RAD
    sdp = _sin((p2 - p1) * 0.5)
    sdl = _sin((lon2 - lon1) * _RAD * 0.5)
    a = sdp * sdp + _cos(p1) * _cos(p2) * sdl * sdl
    if a >= 1.0:
        return 20015.086796020572  # half the circumference (antipodes)
    return 12742.0 * _asin(_sqrt(a))


def merchant_hash(merchant: str) -> int:
    """Stable 16-bit merchant id (CRC32; Python's `hash` is salted per process)."""
    return zlib.crc32(merchant.encode("utf-8")) & 0xFFFF


def category_index(category: str) -> int:
    """Position of `category` in `CATEGORIES`; unknown categories map to `other`."""
    return _CATEGORY_INDEX.get(category, _OTHER_CATEGORY)


def update(state: CardState, txn: Transaction) -> list[float]:
    """Add `txn` to `state` (in place) and return its features in `FEATURE_NAMES` order."""
    t = txn.event_time_ms
    if state.last_time_ms >= 0 and t - state.last_time_ms >= PROFILE_LIFETIME_MS:
        # Idle card: forget the profile here, so the result does not depend on whether the
        # stream's clean-up timer fired before this event arrived.
        _reset(state)
    amount = float(txn.amount)
    times = state.times_ms
    amounts = state.amounts

    # --- history comparisons: only the past -------------------------------------------
    n = state.count
    log_amount = math.log1p(amount) if amount > 0 else 0.0
    if n > 0:
        mean_amount = state.amount_sum / n
        ratio = amount / mean_amount if mean_amount > 0 else 1.0
    else:
        ratio = 1.0
    if n > 1:
        std = math.sqrt(state.log_m2 / (n - 1))
        zscore = (log_amount - state.log_mean) / std if std > 1e-9 else 0.0
    else:
        zscore = 0.0

    # previous event at or before t (window entries are sorted by time)
    pos = bisect_right(times, t)
    if pos > 0:
        seconds_since_prev = (t - times[pos - 1]) / 1000.0
    elif state.last_time_ms >= 0 and state.last_time_ms <= t:
        seconds_since_prev = (t - state.last_time_ms) / 1000.0
    else:
        seconds_since_prev = NO_PREVIOUS_SECONDS
    if seconds_since_prev > NO_PREVIOUS_SECONDS:
        seconds_since_prev = NO_PREVIOUS_SECONDS

    lat = txn.merchant_lat
    lon = txn.merchant_long
    if state.last_time_ms >= 0:
        dt_s = abs(t - state.last_time_ms) / 1000.0
        if dt_s < MIN_TRAVEL_SECONDS:
            dt_s = MIN_TRAVEL_SECONDS
        speed = haversine_km(state.last_lat, state.last_long, lat, lon) / (dt_s / 3600.0)
        if speed > MAX_SPEED_KMH:
            speed = MAX_SPEED_KMH
    else:
        speed = 0.0
    distance_home = haversine_km(txn.home_lat, txn.home_long, lat, lon)

    m_hash = merchant_hash(txn.merchant)
    merchant_new = m_hash not in state.merchants
    c_idx = category_index(txn.category)
    c_bit = 1 << c_idx
    category_new = not (state.category_mask & c_bit)

    # --- windows: past entries in (t - W, t] plus this event --------------------------
    # entries in (t - W, t] are times[lo:pos]; slices and sum/max run in C
    lo_7d = bisect_right(times, t - WINDOW_7D_MS, 0, pos)
    lo_24h = bisect_right(times, t - WINDOW_24H_MS, lo_7d, pos)
    lo_1h = bisect_right(times, t - WINDOW_1H_MS, lo_24h, pos)
    count_7d = pos - lo_7d + 1
    sum_7d = amount + sum(amounts[lo_7d:pos])
    count_24h = pos - lo_24h + 1
    past_24h = amounts[lo_24h:pos]
    sum_24h = amount + sum(past_24h)
    max_24h = max(amount, max(past_24h)) if past_24h else amount
    count_1h = pos - lo_1h + 1
    sum_1h = amount + sum(amounts[lo_1h:pos])

    hour = (t // ONE_HOUR_MS) % 24

    # --- fold this event into the state ------------------------------------------------
    times.insert(pos, t)
    amounts.insert(pos, amount)
    state.count = n + 1
    state.amount_sum += amount
    delta = log_amount - state.log_mean
    state.log_mean += delta / (n + 1)
    state.log_m2 += delta * (log_amount - state.log_mean)
    if t >= state.last_time_ms:
        state.last_time_ms = t
        state.last_lat = lat
        state.last_long = lon
    state.category_mask |= c_bit
    merchants = state.merchants
    if not merchant_new:
        merchants.remove(m_hash)
    merchants.append(m_hash)  # most recent last
    if len(merchants) > MAX_MERCHANTS:
        del merchants[0]
    _prune(state, state.last_time_ms - WINDOW_7D_MS)

    features = [0.0] * _N_FEATURES
    features[0] = amount
    features[1] = log_amount
    features[2] = float(count_1h)
    features[3] = sum_1h
    features[4] = float(count_24h)
    features[5] = sum_24h
    features[6] = max_24h
    features[7] = sum_24h / count_24h
    features[8] = float(count_7d)
    features[9] = sum_7d
    features[10] = ratio
    features[11] = zscore
    features[12] = float(n)
    features[13] = math.log1p(seconds_since_prev)
    features[14] = distance_home
    features[15] = speed
    features[16] = 1.0 if merchant_new else 0.0
    features[17] = 1.0 if category_new else 0.0
    features[18] = float(hour)
    features[19] = 1.0 if hour in NIGHT_HOURS else 0.0
    features[_N_NUMERIC + c_idx] = 1.0
    return features


def _reset(state: CardState) -> None:
    fresh = CardState()
    for slot in CardState.__slots__:
        setattr(state, slot, getattr(fresh, slot))


def _prune(state: CardState, keep_after_ms: int) -> None:
    """Drop window entries at or before `keep_after_ms`, and the oldest beyond the cap."""
    times = state.times_ms
    cut = bisect_right(times, keep_after_ms)
    over = len(times) - cut - MAX_WINDOW_EVENTS
    if over > 0:
        cut += over
    if cut:
        del times[:cut]
        del state.amounts[:cut]


def expire(state: CardState, now_ms: int) -> bool:
    """Drop what is too old relative to `now_ms` (usually the timer/watermark time).

    Window entries older than 7 days are dropped. Returns True when the card has been idle
    for `PROFILE_LIFETIME_MS`: the whole state is then useless and the caller should clear it.
    """
    _prune(state, now_ms - WINDOW_7D_MS)
    return state.last_time_ms < 0 or now_ms - state.last_time_ms >= PROFILE_LIFETIME_MS


def next_expiry_ms(state: CardState) -> int | None:
    """When a timer should fire so `expire` can clear the state (None for an empty state).

    One timer per card is enough: window entries are pruned on every `update`, so only the
    idle-card clean-up needs a timer. Re-register it after each update (the time moves).
    """
    if state.last_time_ms < 0:
        return None
    return state.last_time_ms + PROFILE_LIFETIME_MS


# --- serialization -----------------------------------------------------------------------
# Layout v1 (little endian):
#   B version | H n_window | B n_merchants | q last_time_ms | I count | d amount_sum
#   | d log_mean | d log_m2 | d last_lat | d last_long | I category_mask
#   | n_window x i (time offset ms back from last_time_ms) | n_window x d amounts
#   | n_merchants x H merchant hashes
# Offsets are int32 ms: 7 days = 6.0e8 < 2^31, and entries are pruned to 7 days.
_HEADER = struct.Struct("<BHBqIdddddI")


def state_to_bytes(state: CardState) -> bytes:
    """Serialize `state` (exact round trip) in layout `STATE_FORMAT_VERSION`."""
    n = len(state.times_ms)
    header = _HEADER.pack(
        STATE_FORMAT_VERSION,
        n,
        len(state.merchants),
        state.last_time_ms,
        state.count,
        state.amount_sum,
        state.log_mean,
        state.log_m2,
        state.last_lat,
        state.last_long,
        state.category_mask,
    )
    base = state.last_time_ms
    offsets = array("i", [base - t for t in state.times_ms])
    return b"".join(
        (
            header,
            offsets.tobytes(),
            array("d", state.amounts).tobytes(),
            array("H", state.merchants).tobytes(),
        )
    )


def state_from_bytes(data: bytes) -> CardState:
    """Rebuild a state written by `state_to_bytes`.

    Raises `StateVersionError` for an unknown format version or a truncated/corrupt payload.
    """
    if not data:
        raise StateVersionError("empty card state payload")
    version = data[0]
    if version != STATE_FORMAT_VERSION:
        raise StateVersionError(
            f"card state format version {version} is not supported by {FEATURE_SET_VERSION} "
            f"(expected {STATE_FORMAT_VERSION}); restore from a compatible savepoint or "
            "start the job without state"
        )
    if len(data) < _HEADER.size:
        raise StateVersionError(f"card state payload truncated: {len(data)} bytes")
    (
        _,
        n,
        n_merchants,
        last_time_ms,
        count,
        amount_sum,
        log_mean,
        log_m2,
        last_lat,
        last_long,
        category_mask,
    ) = _HEADER.unpack_from(data, 0)
    expected = _HEADER.size + n * 4 + n * 8 + n_merchants * 2
    if len(data) != expected:
        raise StateVersionError(f"card state payload has {len(data)} bytes, layout says {expected}")
    pos = _HEADER.size
    offsets = array("i")
    offsets.frombytes(data[pos : pos + 4 * n])
    pos += 4 * n
    amounts = array("d")
    amounts.frombytes(data[pos : pos + 8 * n])
    pos += 8 * n
    merchants = array("H")
    merchants.frombytes(data[pos : pos + 2 * n_merchants])

    state = CardState()
    state.times_ms = [last_time_ms - o for o in offsets]
    state.amounts = amounts.tolist()
    state.count = count
    state.amount_sum = amount_sum
    state.log_mean = log_mean
    state.log_m2 = log_m2
    state.last_time_ms = last_time_ms
    state.last_lat = last_lat
    state.last_long = last_long
    state.category_mask = category_mask
    state.merchants = merchants.tolist()
    return state


def offline_features(txns: Iterable[Transaction]) -> Iterator[tuple[Transaction, list[float]]]:
    """Features for each transaction, per card, in the given order (the parity reference).

    Pass transactions in event-time order to get what an in-order stream produces. The state
    starts afresh for a card idle for `PROFILE_LIFETIME_MS`, exactly as `update` does online.
    """
    states: dict[str, CardState] = defaultdict(CardState)
    for txn in txns:
        yield txn, update(states[txn.card_token], txn)
