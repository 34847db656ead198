"""How hard the property tests search, per entry point.

`make test` (the README's test command, and CI) runs every property test at its full
`max_examples`. `make unit`, the quick loop a developer runs between edits, sets
FRAUDSTREAM_QUICK_PROPERTIES=1 and searches a fifth of them: Hypothesis's own advice (fewer
examples while editing, more in CI); its example database still replays any failure found
before, so a quick run cannot forget a known counterexample.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

QUICK = os.environ.get("FRAUDSTREAM_QUICK_PROPERTIES") == "1"
QUICK_SHARE = 5
QUICK_FLOOR = 30


def property_settings(max_examples: int, **overrides: Any) -> settings:
    """Hypothesis settings for `max_examples` cases (a fifth, at least 30, in the quick loop).

    No deadline (the suite runs beside a JVM and on 2 cores: timing is not what is tested) and
    no too_slow health check (some strategies build whole payloads) unless `overrides` say
    otherwise.
    """
    examples = max(QUICK_FLOOR, max_examples // QUICK_SHARE) if QUICK else max_examples
    options: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    options.update(overrides)
    return settings(max_examples=examples, **options)
