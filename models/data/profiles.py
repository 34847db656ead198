"""The statistical shape of Sparkov traffic, as data: profiles, categories, hours, fraud bands.

Numbers are chosen so that a generated run matches the targets table in `shared/DATA.md`
(legit mean ~$68 / median ~$47, ~23 % of legit at 22:00-03:59, ~2.5 transactions per card per
day, December ~2x; fraud mean ~$530 / median ~$400, ~85 % at night). `tests/unit/
test_generator.py` measures them on a generated sample. Everything here is a plain constant:
the generator turns it into numpy lookup tables once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.transaction import CATEGORIES

# The index into CATEGORIES is the category code.
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}

# Card-present categories: the ones where a fraudster must be physically at the merchant.
CARD_PRESENT = frozenset(
    {
        "entertainment",
        "food_dining",
        "gas_transport",
        "grocery_pos",
        "health_fitness",
        "home",
        "kids_pets",
        "misc_pos",
        "personal_care",
        "shopping_pos",
    }
)

# Legit traffic: share of transactions per category (Sparkov's observed mix) and the gamma
# amount distribution per category as (mean $, shape). Shape < 1 gives the long tail.
LEGIT_CATEGORY_SHARE: dict[str, float] = {
    "entertainment": 0.072,
    "food_dining": 0.070,
    "gas_transport": 0.100,
    "grocery_net": 0.035,
    "grocery_pos": 0.095,
    "health_fitness": 0.066,
    "home": 0.095,
    "kids_pets": 0.087,
    "misc_net": 0.049,
    "misc_pos": 0.062,
    "personal_care": 0.070,
    "shopping_net": 0.075,
    "shopping_pos": 0.090,
    "travel": 0.031,
}
LEGIT_AMOUNT: dict[str, tuple[float, float]] = {
    "entertainment": (64.4, 1.21),
    "food_dining": (51.1, 1.43),
    "gas_transport": (64.4, 2.42),
    "grocery_net": (53.3, 1.76),
    "grocery_pos": (108.8, 1.65),
    "health_fitness": (54.4, 1.32),
    "home": (57.7, 1.10),
    "kids_pets": (57.7, 1.10),
    "misc_net": (68.8, 0.66),
    "misc_pos": (62.2, 0.88),
    "personal_care": (46.6, 1.21),
    "shopping_net": (71.0, 0.77),
    "shopping_pos": (73.3, 0.88),
    "travel": (105.5, 0.44),
}
# A rare heavy tail on top of the gamma (big purchases up to tens of thousands of dollars).
LEGIT_TAIL_PROBABILITY = 0.0015
LEGIT_TAIL_SCALE = 400.0
LEGIT_TAIL_PARETO_SHAPE = 1.6
LEGIT_AMOUNT_CAP = 30_000.0
AMOUNT_FLOOR = 1.0

# Hour-of-day weights for legit traffic (index = hour). Night = 22:00-03:59.
LEGIT_HOUR_WEIGHTS: tuple[float, ...] = (
    0.93, 0.85, 0.80, 0.77,  # 00-03
    0.62, 0.66, 0.72, 0.80, 0.85, 0.90, 0.95, 1.00,  # 04-11
    1.30, 1.32, 1.30, 1.28, 1.28, 1.30, 1.32, 1.34, 1.30, 1.20,  # 12-21
    1.35, 1.10,  # 22-23
)
NIGHT_HOURS = (22, 23, 0, 1, 2, 3)

# Volume: multipliers by weekday (Monday=0; weekends higher) and by month.
WEEKDAY_FACTOR: tuple[float, ...] = (1.10, 0.85, 0.82, 0.85, 0.93, 1.15, 1.30)
MONTH_FACTOR: tuple[float, ...] = (
    0.75, 0.75, 1.0, 1.0, 1.0, 1.25, 1.25, 1.25, 1.0, 1.0, 1.0, 2.0,  # Jan..Dec
)
TXN_PER_CARD_DAY = 2.5  # average over a whole year, all cards

# Fraud: share of fraud transactions per category and the amount band (uniform $lo..$hi).
# Big-ticket bands in shopping/misc_net/grocery_pos/entertainment/home, card-testing bands
# ($1-50) in gas/grocery_net/travel/personal care etc., a mid band for food and misc_pos:
# the Sparkov mix (fraud mean ~$530, median ~$400).
FRAUD_CATEGORY: dict[str, tuple[float, float, float]] = {
    "grocery_pos": (0.225, 275.0, 425.0),
    "shopping_net": (0.225, 800.0, 1200.0),
    "misc_net": (0.13, 650.0, 1000.0),
    "shopping_pos": (0.11, 700.0, 1100.0),
    "gas_transport": (0.08, 1.0, 22.0),
    "misc_pos": (0.033, 150.0, 280.0),
    "kids_pets": (0.032, 5.0, 30.0),
    "entertainment": (0.045, 380.0, 620.0),
    "personal_care": (0.03, 5.0, 50.0),
    "home": (0.03, 250.0, 290.0),
    "food_dining": (0.02, 80.0, 150.0),
    "grocery_net": (0.018, 5.0, 20.0),
    "health_fitness": (0.017, 5.0, 35.0),
    "travel": (0.015, 1.0, 18.0),
}
FRAUD_NIGHT_SHARE = 0.85
FRAUD_PER_EPISODE_MIN = 2
FRAUD_PER_EPISODE_MAX = 19


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer profile: gender x age band x rural/urban, as in Sparkov."""

    name: str
    gender: str  # "F" | "M"
    age_band: int  # 0: <25, 1: 25-50, 2: 50+
    rural: bool
    rate_range: tuple[float, float]  # relative daily rate, drawn uniformly once per card
    amount_factor: float
    night_factor: float  # multiplies the night-hour weights
    category_tilt: dict[str, float]  # multiplies LEGIT_CATEGORY_SHARE


AGE_BANDS = ((18, 24), (25, 49), (50, 85))
AGE_BAND_SHARE = (0.12, 0.50, 0.38)
AGE_BAND_NAMES = ("under25", "25to50", "over50")
RURAL_CITY_POP = 2500  # Sparkov: rural if city_pop < 2500

_AGE_RATE = ((0.3, 3.3), (0.5, 4.1), (0.3, 2.9))
_AGE_AMOUNT = (0.82, 1.0, 1.08)
_AGE_NIGHT = (1.35, 1.0, 0.8)
_AGE_TILT: tuple[dict[str, float], ...] = (
    {"food_dining": 1.4, "entertainment": 1.4, "shopping_net": 1.3, "home": 0.6,
     "health_fitness": 0.8, "kids_pets": 0.5, "travel": 0.8},
    {"kids_pets": 1.3, "home": 1.1},
    {"health_fitness": 1.3, "home": 1.2, "grocery_pos": 1.2, "shopping_net": 0.8,
     "entertainment": 0.8, "kids_pets": 0.7, "travel": 1.2},
)
_GENDER_TILT = {
    "F": {"shopping_pos": 1.2, "health_fitness": 1.15, "personal_care": 1.2, "gas_transport": 0.9},
    "M": {"gas_transport": 1.15, "travel": 1.15, "misc_pos": 1.1, "personal_care": 0.8},
}
_RURAL_TILT = {"gas_transport": 1.3, "grocery_pos": 1.15, "shopping_net": 1.1, "food_dining": 0.8}


def _merge(*tilts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for tilt in tilts:
        for key, value in tilt.items():
            out[key] = out.get(key, 1.0) * value
    return out


def build_profiles() -> tuple[Profile, ...]:
    """The 12 profiles, indexed by `profile_index(gender, age_band, rural)`."""
    profiles = []
    for gender in ("F", "M"):
        for band in range(3):
            for rural in (False, True):
                lo, hi = _AGE_RATE[band]
                scale = 0.9 if rural else 1.05
                profiles.append(
                    Profile(
                        name=f"{'female' if gender == 'F' else 'male'}_{AGE_BAND_NAMES[band]}_"
                        f"{'rural' if rural else 'urban'}",
                        gender=gender,
                        age_band=band,
                        rural=rural,
                        rate_range=(lo * scale, hi * scale),
                        amount_factor=_AGE_AMOUNT[band] * (0.95 if rural else 1.0),
                        night_factor=_AGE_NIGHT[band],
                        category_tilt=_merge(
                            _AGE_TILT[band], _GENDER_TILT[gender], _RURAL_TILT if rural else {}
                        ),
                    )
                )
    return tuple(profiles)


def profile_index(gender_male: int, age_band: int, rural: int) -> int:
    """Index into `build_profiles()` (works element-wise on numpy int arrays too)."""
    return gender_male * 6 + age_band * 2 + rural


PROFILES = build_profiles()
