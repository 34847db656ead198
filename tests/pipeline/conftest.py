"""Fixtures of the pipeline tier.

The job's parser reads the card-token key from the environment of the process that runs it:
here the MiniCluster's JVM, which PyFlink starts as a child of pytest and which therefore
inherits `os.environ` as it is at that moment. The key is set at import of this conftest,
i.e. at collection, before any test (of any tier) can start the JVM. An exported key wins;
else the local stack's key (its secrets file), so that the whole suite's process keeps the
key the stack's Flink cluster runs with (`load_settings` reads the environment first: a key
of this tier's own made the integration tests tokenize with another key than the cluster);
only without a stack, a fixed test key.
"""

from __future__ import annotations

import os

from schemas.card_token import KEY_ENV_VAR


def _stack_key() -> str:
    try:
        from connectors.settings import load_settings

        return load_settings().card_token_key.reveal()
    except Exception:  # noqa: BLE001 - no usable stack settings: the tier needs none
        return ""


os.environ.setdefault(KEY_ENV_VAR, _stack_key() or "pipeline-tier-card-token-key-0123456789")
