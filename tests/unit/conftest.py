"""Fixtures of the unit tier.

- `jvm` (session): PyFlink's gateway JVM with the project's `fraudstream-flink-ops` jar (built
  by bootstrap; a missing jar fails with the bootstrap command) on its context class loader.
- `small_training` (session): one real `run_training` of all three models on 40 cards x 60
  days into a temporary registry (set as its default), with every PAN the generator made:
  `(result, registry, pans)`, shared by the training and drift-reference tests (one training,
  not one per module). Read-only for its users: copy before changing it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def jvm():
    pytest.importorskip("pyflink")
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from connectors.jars import flink_jar_paths

    ops = [p.as_uri() for p in flink_jar_paths() if p.name.startswith("fraudstream-flink-ops")]
    add_jars_to_context_class_loader(ops)
    return get_gateway().jvm


@pytest.fixture(scope="session")
def small_training(tmp_path_factory):
    from models.training.config import TrainConfig
    from models.training.pipeline import run_training
    from schemas.card_token import CardTokenizer

    pans: set[str] = set()
    original = CardTokenizer.token

    def recording_token(self, pan):
        pans.add(pan)
        return original(self, pan)

    CardTokenizer.token = recording_token
    try:
        registry = tmp_path_factory.mktemp("registry")
        cfg = TrainConfig(cards=40, days=60, seed=5, registry_dir=registry, fraud_rate_max=0.2,
                          set_default=True, importance_rows=3000, threads=1)
        result = run_training(cfg, log=lambda _: None, command="fraudstream train --test")
    finally:
        CardTokenizer.token = original
    return result, registry, frozenset(pans)
