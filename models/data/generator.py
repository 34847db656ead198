"""Synthetic card transactions with the statistical shape of the Sparkov data (see DATA.md).

`generate(config, tokenizer)` yields `Transaction`s in event-time order (ties: card token, then
transaction id). Same config (seed included) -> identical output, whatever the consumer does.

How it works (vectorised with numpy; no per-row Python except building the records):
1. A plan, drawn once from the seed: cards (profile = gender x age band x rural/urban, home
   from Faker's offline US places, fixed daily rate), ~700 merchants named `fraud_<Company>`,
   fraud episodes (card, day, 2..19 transactions in 1..2 days, mostly at night, tight amount
   bands per category) and the days on which each fraud card's legit traffic is removed.
2. Legit traffic in chunks of `chunk_days`: Poisson counts per card and day (daily rate x
   weekday x month factor), hour / category / gamma amount per the card's profile, merchant
   uniformly within +-1 degree of home. Each chunk has its own seeded stream, so output does
   not depend on memory or on how far the consumer reads.
3. Each chunk's legit rows plus the plan's fraud rows of those days are sorted and emitted.

Realism options (all off by default = Sparkov parity) are documented on `GeneratorConfig`.
Memory: the plan holds a cards x days boolean matrix and all fraud rows; a chunk holds about
cards x chunk_days x 2.5 rows.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from models.data import profiles as P
from models.data.geo import haversine_km, us_places
from schemas.card_token import CardTokenizer
from schemas.transaction import SCHEMA_VERSION, Transaction

_EPOCH = date(1970, 1, 1)
_LAST_DAY = date(2100, 1, 1)  # exclusive
_DAY_S = 86_400
_NIGHT = np.array(P.NIGHT_HOURS)
_DAYTIME = np.array([h for h in range(24) if h not in P.NIGHT_HOURS])
_CATS = len(P.CATEGORIES)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Frozen; built at the entry point (CLI flags) or in tests.

    Fraud (Sparkov parity): `episode_card_share` of the cards get one fraud episode during the
    run, so the fraud rate depends on the run length (~0.5 % for 2 years, ~1 % for 1 year).
    `fraud_drift` front-loads episodes (share of episodes drawn from a linearly decreasing
    density; 0 = uniform in time), so the monthly fraud rate drifts down over the run. The
    default 1/3 reproduces Sparkov's split: ~0.6 % in the first 18 months of a 2-year run,
    ~0.4 % in the last 6 (fraudTrain 0.579 %, fraudTest 0.386 %).

    Realism options Sparkov lacks (off by default):
    - `legit_during_episode`: keep the card's legit traffic on episode days.
    - `multiple_episodes`: each card gets Poisson(`extra_episodes_mean`) extra episodes.
    - `impossible_travel`: card-present fraud happens at a place >= 800 km from home.
    - `compromised_merchant`: a share (`compromised_share`) of fraud cards visited one
      compromised gas station 1..30 days before their episode (a legit transaction there).
    - `relative_amounts`: fraud amounts are at least 3..8x the card's typical legit amount.
    """

    cards: int = 1000
    start: date = date(2019, 1, 1)
    days: int = 365
    seed: int = 42
    merchants_per_category: int = 50
    episode_card_share: float = 0.98
    frauds_per_episode_mean: float = 10.0
    fraud_night_share: float = P.FRAUD_NIGHT_SHARE
    fraud_drift: float = 1 / 3
    legit_during_episode: bool = False
    multiple_episodes: bool = False
    extra_episodes_mean: float = 1.0
    impossible_travel: bool = False
    compromised_merchant: bool = False
    compromised_share: float = 0.3
    relative_amounts: bool = False
    chunk_days: int = 7

    def __post_init__(self) -> None:
        if self.cards < 1:
            raise ValueError("cards must be >= 1")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.chunk_days < 1:
            raise ValueError("chunk_days must be >= 1")
        if self.merchants_per_category < 1:
            raise ValueError("merchants_per_category must be >= 1")
        for name in ("episode_card_share", "fraud_night_share", "fraud_drift",
                     "compromised_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.extra_episodes_mean < 0:
            raise ValueError("extra_episodes_mean must be >= 0")
        if not 2 <= self.frauds_per_episode_mean <= 19:
            raise ValueError("frauds_per_episode_mean must be in [2, 19]")
        # Same absolute bounds as the parser (1990-01-01 <= t < 2100-01-01).
        if self.start < date(1990, 1, 1) or (self.start - _LAST_DAY).days + self.days > 0:
            raise ValueError("start/days must stay within 1990-01-01 .. 2099-12-31")


# ----------------------------------------------------------------------------------------
# The plan: everything drawn once per run.


@dataclass
class _Columns:
    """A batch of rows as parallel arrays (card = card index)."""

    t: np.ndarray  # int64 epoch seconds
    card: np.ndarray
    cat: np.ndarray
    merchant: np.ndarray
    amount: np.ndarray
    mlat: np.ndarray
    mlong: np.ndarray
    label: np.ndarray
    id_hi: np.ndarray
    id_lo: np.ndarray

    def select(self, mask: np.ndarray) -> _Columns:
        return _Columns(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(parts: list[_Columns]) -> _Columns:
        return _Columns(
            **{k: np.concatenate([p.__dict__[k] for p in parts]) for k in parts[0].__dict__}
        )

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Plan:
    """Cards, merchants, fraud episodes (inspectable in tests)."""

    config: GeneratorConfig
    epoch0: int  # epoch seconds of the first day, 00:00 UTC
    card_token: list[str]
    card_last4: list[str]
    token_rank: np.ndarray
    profile: np.ndarray
    gender: list[str]
    birth_year: np.ndarray
    home_lat: np.ndarray
    home_long: np.ndarray
    city_pop: np.ndarray
    zip: list[str]
    state: list[str]
    rate: np.ndarray  # expected legit transactions per day before weekday/month factors
    typical_amount: np.ndarray
    merchant_names: tuple[str, ...]
    merchant_start: np.ndarray  # per category: first merchant index
    merchant_count: np.ndarray
    day_factor: np.ndarray
    blocked: np.ndarray  # cards x days: legit traffic removed (episode days)
    episode_card: np.ndarray
    episode_start_day: np.ndarray
    episode_days: np.ndarray
    episode_size: np.ndarray
    fraud: _Columns
    fraud_day: np.ndarray
    injected: _Columns = field(default=None)  # type: ignore[assignment]
    injected_day: np.ndarray = field(default=None)  # type: ignore[assignment]
    compromised_merchant: int | None = None


def _ids(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    top = np.iinfo(np.uint64).max
    return (
        rng.integers(0, top, n, dtype=np.uint64, endpoint=True),
        rng.integers(0, top, n, dtype=np.uint64, endpoint=True),
    )


def _luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def _pans(rng: np.random.Generator, n: int) -> list[str]:
    """Luhn-valid card numbers of Sparkov-like lengths (16, 19, 15, 13 digits)."""
    lengths = rng.choice([16, 19, 15, 13], size=n, p=[0.62, 0.15, 0.13, 0.10])
    prefixes = rng.choice(["4", "51", "37", "6011", "30"], size=n)
    out = []
    for length, prefix in zip(lengths.tolist(), prefixes.tolist(), strict=True):
        body = "".join(rng.integers(0, 10, length - len(prefix) - 1).astype(str))
        out.append(_luhn_complete(prefix + body))
    return out


def _day_factors(epoch_day0: int, days: int) -> np.ndarray:
    day_num = epoch_day0 + np.arange(days)
    weekday = (day_num + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    month = (np.datetime64("1970-01-01", "D") + day_num).astype("datetime64[M]").astype(
        np.int64
    ) % 12
    return np.asarray(P.WEEKDAY_FACTOR)[weekday] * np.asarray(P.MONTH_FACTOR)[month]


def _year_mean_factor() -> float:
    day0 = (date(2019, 1, 1) - _EPOCH).days  # any non-leap year starting any weekday is close
    return float(_day_factors(day0, 365).mean())


def _profile_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per profile: hour CDF (12x24), category CDF (12x14), gamma shape and scale (12x14)."""
    hour_cdf, cat_cdf, shape, scale = [], [], [], []
    base_hours = np.asarray(P.LEGIT_HOUR_WEIGHTS)
    for prof in P.PROFILES:
        hours = base_hours.copy()
        hours[_NIGHT] *= prof.night_factor
        hour_cdf.append(np.cumsum(hours / hours.sum()))
        w = np.array(
            [P.LEGIT_CATEGORY_SHARE[c] * prof.category_tilt.get(c, 1.0) for c in P.CATEGORIES]
        )
        cat_cdf.append(np.cumsum(w / w.sum()))
        k = np.array([P.LEGIT_AMOUNT[c][1] for c in P.CATEGORIES])
        mean = np.array([P.LEGIT_AMOUNT[c][0] for c in P.CATEGORIES]) * prof.amount_factor
        shape.append(k)
        scale.append(mean / k)
    return np.array(hour_cdf), np.array(cat_cdf), np.array(shape), np.array(scale)


_HOUR_CDF, _CAT_CDF, _SHAPE, _SCALE = _profile_tables()
_FRAUD_P = np.array([P.FRAUD_CATEGORY[c][0] for c in P.CATEGORIES])
_FRAUD_P = _FRAUD_P / _FRAUD_P.sum()
_FRAUD_LO = np.array([P.FRAUD_CATEGORY[c][1] for c in P.CATEGORIES])
_FRAUD_HI = np.array([P.FRAUD_CATEGORY[c][2] for c in P.CATEGORIES])
_CARD_PRESENT = np.array([c in P.CARD_PRESENT for c in P.CATEGORIES])


def _inverse_cdf(u: np.ndarray, cdf_rows: np.ndarray) -> np.ndarray:
    """Row-wise inverse CDF: index of the first bucket whose cumulative weight exceeds u."""
    idx = (u[:, None] >= cdf_rows).sum(axis=1)
    return np.minimum(idx, cdf_rows.shape[1] - 1)


@functools.lru_cache(maxsize=8)
def _merchant_names(seed: int, count: int) -> tuple[str, ...]:
    """`count` distinct Sparkov-style names (`fraud_Rippin, Kub and Mann`), seeded.

    Built from Faker's offline last-name list with numpy (Faker's own `company()` is slower
    and its output depends on Python's `random`), in Faker's three company formats.
    """
    from faker.providers.person.en_US import Provider as PersonProvider

    last = list(PersonProvider.last_names)
    suffixes = ("Inc", "and Sons", "LLC", "Group", "PLC", "Ltd")
    rng = np.random.default_rng([seed, 4])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        a, b, c = (last[i] for i in rng.integers(0, len(last), 3))
        style = int(rng.integers(0, 3))
        if style == 0:
            name = f"fraud_{a} {suffixes[int(rng.integers(0, len(suffixes)))]}"
        elif style == 1:
            name = f"fraud_{a}-{b}"
        else:
            name = f"fraud_{a}, {b} and {c}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names)


def build_plan(config: GeneratorConfig, tokenizer: CardTokenizer) -> Plan:
    """Draw cards, merchants and fraud episodes for `config` (deterministic by seed)."""
    n = config.cards
    rng = np.random.default_rng([config.seed, 1])
    epoch_day0 = (config.start - _EPOCH).days
    places = us_places()

    # Homes: places weighted by a population-ish draw; the place's population is city_pop.
    place_pop = np.clip(
        np.round(np.exp(rng.normal(math.log(2500), 2.0, len(places.lat)))), 20, 3_000_000
    )
    weights = place_pop**0.25
    home = rng.choice(len(places.lat), size=n, p=weights / weights.sum())
    home_lat = np.round(places.lat[home] + rng.uniform(-0.05, 0.05, n), 4)
    home_long = np.round(places.long[home] + rng.uniform(-0.05, 0.05, n), 4)
    city_pop = place_pop[home].astype(np.int64)
    zips = rng.integers(places.zip_lo[home], places.zip_hi[home] + 1)
    male = rng.integers(0, 2, n)
    band = rng.choice(3, size=n, p=P.AGE_BAND_SHARE)
    lo = np.array([b[0] for b in P.AGE_BANDS])[band]
    hi = np.array([b[1] for b in P.AGE_BANDS])[band]
    birth_year = config.start.year - rng.integers(lo, hi + 1)
    rural = (city_pop < P.RURAL_CITY_POP).astype(np.int64)
    profile = P.profile_index(male, band, rural)
    rate_lo = np.array([p.rate_range[0] for p in P.PROFILES])[profile]
    rate_hi = np.array([p.rate_range[1] for p in P.PROFILES])[profile]
    raw_rate = rng.uniform(rate_lo, rate_hi)
    # Normalise so the whole-year average is TXN_PER_CARD_DAY per card.
    rate = raw_rate * P.TXN_PER_CARD_DAY / (raw_rate.mean() * _year_mean_factor())
    pans = _pans(rng, n)
    tokens = [tokenizer.token(p) for p in pans]
    last4 = [tokenizer.last4(p) for p in pans]
    del pans  # the PAN never leaves this function
    token_rank = np.empty(n, dtype=np.int64)
    token_rank[np.argsort(np.array(tokens))] = np.arange(n)
    typical = (_SHAPE * _SCALE)[profile].mean(axis=1)

    mpc = config.merchants_per_category
    merchant_names = _merchant_names(config.seed, mpc * _CATS)
    merchant_start = np.arange(_CATS) * mpc
    merchant_count = np.full(_CATS, mpc)

    day_factor = _day_factors(epoch_day0, config.days)

    # Fraud episodes.
    frng = np.random.default_rng([config.seed, 2])
    n_ep = (frng.random(n) < config.episode_card_share).astype(np.int64)
    if config.multiple_episodes:
        n_ep = n_ep + frng.poisson(config.extra_episodes_mean, n)
    ep_card = np.repeat(np.arange(n), n_ep)
    e = len(ep_card)
    duration = np.minimum(frng.integers(1, 3, e), config.days)
    early = frng.random(e) < config.fraud_drift
    frac = np.where(early, frng.triangular(0.0, 0.0, 1.0, e), frng.random(e))
    start_day = np.minimum(
        np.floor(frac * (config.days - duration + 1)).astype(np.int64), config.days - duration
    )
    size = np.clip(
        np.round(frng.normal(config.frauds_per_episode_mean, 4.0, e)),
        P.FRAUD_PER_EPISODE_MIN,
        P.FRAUD_PER_EPISODE_MAX,
    ).astype(np.int64)

    blocked = np.zeros((n, config.days), dtype=bool)
    if not config.legit_during_episode:
        for offset in range(2):
            sel = duration > offset
            blocked[ep_card[sel], start_day[sel] + offset] = True

    f = int(size.sum())
    row_ep = np.repeat(np.arange(e), size)
    f_card = ep_card[row_ep]
    f_day = start_day[row_ep] + (frng.random(f) * duration[row_ep]).astype(np.int64)
    night = frng.random(f) < config.fraud_night_share
    hour = np.where(
        night,
        _NIGHT[frng.integers(0, len(_NIGHT), f)],
        _DAYTIME[frng.integers(0, len(_DAYTIME), f)],
    )
    f_t = epoch_day0 * _DAY_S + f_day * _DAY_S + hour * 3600 + frng.integers(0, 3600, f)
    f_cat = frng.choice(_CATS, size=f, p=_FRAUD_P)
    f_amount = frng.uniform(_FRAUD_LO[f_cat], _FRAUD_HI[f_cat])
    if config.relative_amounts:
        f_amount = np.maximum(f_amount, typical[f_card] * frng.uniform(3.0, 8.0, f))
    f_amount = np.round(f_amount, 2)
    f_merchant = merchant_start[f_cat] + (frng.random(f) * merchant_count[f_cat]).astype(int)
    f_mlat = home_lat[f_card] + frng.uniform(-1, 1, f)
    f_mlong = home_long[f_card] + frng.uniform(-1, 1, f)
    if config.impossible_travel:
        present = np.flatnonzero(_CARD_PRESENT[f_cat])
        # One far place per episode (a cloned card used in another city), retried until
        # at least 800 km from home.
        ep_place = frng.integers(0, len(places.lat), e)
        for _ in range(20):
            far = haversine_km(
                home_lat[ep_card], home_long[ep_card], places.lat[ep_place], places.long[ep_place]
            )
            close = far < 800
            if not close.any():
                break
            ep_place[close] = frng.integers(0, len(places.lat), int(close.sum()))
        place = ep_place[row_ep[present]]
        f_mlat[present] = places.lat[place] + frng.uniform(-0.2, 0.2, len(present))
        f_mlong[present] = places.long[place] + frng.uniform(-0.2, 0.2, len(present))
    hi_id, lo_id = _ids(frng, f)
    fraud = _Columns(
        t=f_t.astype(np.int64), card=f_card, cat=f_cat, merchant=f_merchant, amount=f_amount,
        mlat=np.round(np.clip(f_mlat, -90, 90), 6), mlong=np.round(_wrap(f_mlong), 6),
        label=np.ones(f, dtype=np.int8), id_hi=hi_id, id_lo=lo_id,
    )

    plan = Plan(
        config=config, epoch0=epoch_day0 * _DAY_S, card_token=tokens, card_last4=last4,
        token_rank=token_rank, profile=profile, gender=["M" if m else "F" for m in male],
        birth_year=birth_year, home_lat=home_lat, home_long=home_long, city_pop=city_pop,
        zip=[f"{z:05d}" for z in zips.tolist()], state=[places.state[h] for h in home],
        rate=rate, typical_amount=typical, merchant_names=merchant_names,
        merchant_start=merchant_start, merchant_count=merchant_count, day_factor=day_factor,
        blocked=blocked, episode_card=ep_card, episode_start_day=start_day,
        episode_days=duration, episode_size=size, fraud=fraud, fraud_day=f_day,
    )
    _inject_compromised_merchant(plan, frng, row_ep)
    return plan


def _wrap(long: np.ndarray) -> np.ndarray:
    return (np.asarray(long) + 180.0) % 360.0 - 180.0


def _inject_compromised_merchant(plan: Plan, rng: np.random.Generator, row_ep) -> None:
    """Add the legit visits at the compromised merchant (empty unless the option is on)."""
    config = plan.config
    empty = plan.fraud.select(np.zeros(len(plan.fraud), dtype=bool))
    plan.injected, plan.injected_day = empty, np.zeros(0, dtype=np.int64)
    if not config.compromised_merchant or len(plan.episode_card) == 0:
        return
    gas = P.CATEGORY_INDEX["gas_transport"]
    merchant = int(plan.merchant_start[gas] + rng.integers(0, plan.merchant_count[gas]))
    plan.compromised_merchant = merchant
    e = len(plan.episode_card)
    first_t = np.full(e, np.iinfo(np.int64).max)
    np.minimum.at(first_t, row_ep, plan.fraud.t)
    victim = rng.random(e) < config.compromised_share
    visit_t = first_t - rng.integers(1 * _DAY_S, 30 * _DAY_S, e)
    victim &= visit_t >= plan.epoch0
    idx = np.flatnonzero(victim)
    k = len(idx)
    cards = plan.episode_card[idx]
    hi_id, lo_id = _ids(rng, k)
    plan.injected = _Columns(
        t=visit_t[idx].astype(np.int64), card=cards, cat=np.full(k, gas),
        merchant=np.full(k, merchant), amount=np.round(rng.gamma(2.2, 58.0 / 2.2, k) + 1, 2),
        mlat=np.round(plan.home_lat[cards] + rng.uniform(-1, 1, k), 6),
        mlong=np.round(_wrap(plan.home_long[cards] + rng.uniform(-1, 1, k)), 6),
        label=np.zeros(k, dtype=np.int8), id_hi=hi_id, id_lo=lo_id,
    )
    plan.injected_day = (plan.injected.t - plan.epoch0) // _DAY_S


# ----------------------------------------------------------------------------------------
# Legit traffic per chunk and the merged, ordered stream.


def _legit_chunk(plan: Plan, chunk: int, d0: int, d1: int) -> _Columns:
    config = plan.config
    rng = np.random.default_rng([config.seed, 3, chunk])
    n, nd = config.cards, d1 - d0
    counts = rng.poisson(plan.rate[:, None] * plan.day_factor[None, d0:d1]).ravel()
    card = np.repeat(np.repeat(np.arange(n), nd), counts)
    day = np.repeat(np.tile(np.arange(d0, d1), n), counts)
    keep = ~plan.blocked[card, day]
    card, day = card[keep], day[keep]
    m = len(card)
    prof = plan.profile[card]
    hour = _inverse_cdf(rng.random(m), _HOUR_CDF[prof])
    t = plan.epoch0 + day * _DAY_S + hour * 3600 + rng.integers(0, 3600, m)
    cat = _inverse_cdf(rng.random(m), _CAT_CDF[prof])
    amount = rng.gamma(_SHAPE[prof, cat], _SCALE[prof, cat])
    tail = rng.random(m) < P.LEGIT_TAIL_PROBABILITY
    big = P.LEGIT_TAIL_SCALE * (1.0 + rng.pareto(P.LEGIT_TAIL_PARETO_SHAPE, m))
    amount = np.where(tail, big, amount)
    amount = np.round(np.clip(amount, P.AMOUNT_FLOOR, P.LEGIT_AMOUNT_CAP), 2)
    merchant = plan.merchant_start[cat] + (rng.random(m) * plan.merchant_count[cat]).astype(int)
    mlat = np.round(np.clip(plan.home_lat[card] + rng.uniform(-1, 1, m), -90, 90), 6)
    mlong = np.round(_wrap(plan.home_long[card] + rng.uniform(-1, 1, m)), 6)
    hi_id, lo_id = _ids(rng, m)
    return _Columns(
        t=t.astype(np.int64), card=card, cat=cat, merchant=merchant, amount=amount, mlat=mlat,
        mlong=mlong, label=np.zeros(m, dtype=np.int8), id_hi=hi_id, id_lo=lo_id,
    )


def generate_columns(config: GeneratorConfig, tokenizer: CardTokenizer,
                     plan: Plan | None = None) -> Iterator[tuple[Plan, _Columns]]:
    """Yield (plan, ordered chunk columns) for each chunk of `chunk_days` days."""
    plan = plan or build_plan(config, tokenizer)
    for chunk, d0 in enumerate(range(0, config.days, config.chunk_days)):
        d1 = min(d0 + config.chunk_days, config.days)
        parts = [
            _legit_chunk(plan, chunk, d0, d1),
            plan.fraud.select((plan.fraud_day >= d0) & (plan.fraud_day < d1)),
            plan.injected.select((plan.injected_day >= d0) & (plan.injected_day < d1)),
        ]
        cols = _Columns.concat(parts)
        order = np.lexsort((cols.id_lo, cols.id_hi, plan.token_rank[cols.card], cols.t))
        yield plan, cols.select(order)


def _fast_builder():
    """A positional `Transaction` builder that skips the frozen-dataclass `__init__` checks.

    Decision: building ~1M frozen dataclasses through `__init__` (one `object.__setattr__`
    per field) dominated generation time; setting the slots directly is ~2x faster. Only used
    while `Transaction` has slots and no `__post_init__`; otherwise the normal constructor.
    """
    names = [f.name for f in dataclasses.fields(Transaction)]
    slots = getattr(Transaction, "__slots__", ())
    if hasattr(Transaction, "__post_init__") or set(names) - set(slots):
        return lambda *args: Transaction(*args)
    namespace = {"_new": object.__new__, "_T": Transaction}
    namespace.update({f"_s_{n}": Transaction.__dict__[n].__set__ for n in names})
    body = "".join(f"    _s_{n}(o, {n})\n" for n in names)
    source = f"def build({', '.join(names)}):\n    o = _new(_T)\n{body}    return o\n"
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    return namespace["build"]


_BUILD = _fast_builder()


def _hex_ids(cols: _Columns) -> list[str]:
    """32-hex transaction ids (like Sparkov's trans_num), formatted in one numpy pass."""
    pairs = np.empty((len(cols), 2), dtype=">u8")
    pairs[:, 0], pairs[:, 1] = cols.id_hi, cols.id_lo
    text = pairs.tobytes().hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]


def _records(plan: Plan, cols: _Columns) -> Iterator[Transaction]:
    tokens, last4 = plan.card_token, plan.card_last4
    names, cats = plan.merchant_names, P.CATEGORIES
    gender, zips, states = plan.gender, plan.zip, plan.state
    home_lat, home_long = plan.home_lat.tolist(), plan.home_long.tolist()
    city_pop, birth_year = plan.city_pop.tolist(), plan.birth_year.tolist()
    build, version = _BUILD, SCHEMA_VERSION
    for tid, t, c, cat, mer, amt, mlat, mlong, label in zip(
        _hex_ids(cols), (cols.t * 1000).tolist(), cols.card.tolist(), cols.cat.tolist(),
        cols.merchant.tolist(), cols.amount.tolist(), cols.mlat.tolist(), cols.mlong.tolist(),
        cols.label.tolist(), strict=True,
    ):
        yield build(
            tid, t, tokens[c], last4[c], amt, names[mer], cats[cat], mlat, mlong,
            home_lat[c], home_long[c], city_pop[c], gender[c], birth_year[c], zips[c],
            states[c], label, version,
        )


def generate(config: GeneratorConfig, tokenizer: CardTokenizer) -> Iterator[Transaction]:
    """Yield every transaction of the run in event-time order (ties: card token, id).

    Deterministic: the same config and tokenizer key give the same records in the same order.
    """
    for plan, cols in generate_columns(config, tokenizer):
        yield from _records(plan, cols)


def expected_rows(config: GeneratorConfig) -> int:
    """Rough row count for progress bars (legit volume + fraud), not exact."""
    day_factor = _day_factors((config.start - _EPOCH).days, config.days)
    legit = config.cards * P.TXN_PER_CARD_DAY * day_factor.sum() / _year_mean_factor()
    return int(legit + config.cards * config.episode_card_share * config.frauds_per_episode_mean)
