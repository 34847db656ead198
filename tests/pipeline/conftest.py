"""Fixtures of the pipeline tier.

The job's parser reads the card-token key from the environment of the process that runs it:
here the MiniCluster's JVM, which PyFlink starts as a child of pytest and which therefore
inherits `os.environ` as it is at that moment. The key is set at import of this conftest,
i.e. at collection, before any test (of any tier) can start the JVM. An exported key wins.
"""

from __future__ import annotations

import os

from schemas.card_token import KEY_ENV_VAR

os.environ.setdefault(KEY_ENV_VAR, "pipeline-tier-card-token-key-0123456789")
