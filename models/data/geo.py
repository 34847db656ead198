"""Offline US geography for the generator: Faker's bundled `local_latlng` places, states, zips.

Faker ships a list of real places (lat, long, name, country, timezone) inside the package, so
no download is needed. It has no state or population: the state is the nearest state centroid
(approximate, it is a demographic field that carries no fraud signal), the zip a random code
inside the state's range (Faker's `states_postcode`), and the city population a seeded
log-normal draw per place (median ~2,500, Sparkov's rural/urban cut).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# Approximate geographic centres of the US states and DC (lat, long).
STATE_CENTROIDS: dict[str, tuple[float, float]] = {
    "AL": (32.8, -86.8), "AK": (64.0, -150.0), "AZ": (34.3, -111.7), "AR": (34.9, -92.4),
    "CA": (37.2, -119.5), "CO": (39.0, -105.5), "CT": (41.6, -72.7), "DE": (39.0, -75.5),
    "FL": (28.6, -82.4), "GA": (32.7, -83.4), "HI": (20.8, -156.3), "ID": (44.4, -114.6),
    "IL": (40.0, -89.2), "IN": (39.9, -86.3), "IA": (42.1, -93.5), "KS": (38.5, -98.4),
    "KY": (37.5, -85.3), "LA": (31.1, -92.0), "ME": (45.4, -69.2), "MD": (39.0, -76.8),
    "MA": (42.3, -71.8), "MI": (44.3, -85.4), "MN": (46.3, -94.3), "MS": (32.7, -89.7),
    "MO": (38.4, -92.5), "MT": (47.0, -109.6), "NE": (41.5, -99.8), "NV": (39.3, -116.6),
    "NH": (43.7, -71.6), "NJ": (40.2, -74.7), "NM": (34.4, -106.1), "NY": (42.9, -75.5),
    "NC": (35.6, -79.4), "ND": (47.5, -100.5), "OH": (40.3, -82.8), "OK": (35.6, -97.5),
    "OR": (43.9, -120.6), "PA": (40.9, -77.8), "RI": (41.7, -71.5), "SC": (33.9, -80.9),
    "SD": (44.4, -100.2), "TN": (35.9, -86.4), "TX": (31.5, -99.3), "UT": (39.3, -111.7),
    "VT": (44.1, -72.7), "VA": (37.5, -78.8), "WA": (47.4, -120.5), "WV": (38.6, -80.6),
    "WI": (44.6, -89.9), "WY": (43.0, -107.6), "DC": (38.9, -77.0),
}


@dataclass(frozen=True)
class Places:
    """US places as parallel arrays (index = place)."""

    lat: np.ndarray
    long: np.ndarray
    state: tuple[str, ...]
    zip_lo: np.ndarray
    zip_hi: np.ndarray


@functools.lru_cache(maxsize=1)
def us_places() -> Places:
    """All US entries of Faker's offline `land_coords`, with nearest-centroid state."""
    from faker.providers.address.en_US import Provider as AddressProvider
    from faker.providers.geo import Provider as GeoProvider

    rows = [r for r in GeoProvider.land_coords if r[3] == "US"]
    lat = np.array([float(r[0]) for r in rows])
    long = np.array([float(r[1]) for r in rows])
    codes = list(STATE_CENTROIDS)
    centre = np.array([STATE_CENTROIDS[c] for c in codes])
    d2 = (lat[:, None] - centre[None, :, 0]) ** 2 + (
        (long[:, None] - centre[None, :, 1]) * np.cos(np.radians(lat[:, None]))
    ) ** 2
    state = tuple(codes[i] for i in d2.argmin(axis=1))
    ranges = getattr(AddressProvider, "states_postcode", {})
    zip_lo = np.array([ranges.get(s, (10000, 99999))[0] for s in state], dtype=np.int64)
    zip_hi = np.array([ranges.get(s, (10000, 99999))[1] for s in state], dtype=np.int64)
    return Places(lat=lat, long=long, state=state, zip_lo=zip_lo, zip_hi=zip_hi)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (numpy element-wise)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
