"""Fixtures of the unit tier.

- `jvm` (session): PyFlink's gateway JVM with the project's `fraudstream-flink-ops` jar (built
  by bootstrap; a missing jar fails with the bootstrap command) on its context class loader.
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
