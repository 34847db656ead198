"""Quiet secrets in the job as a cluster receives it: the real graph, built and serialized.

(The other quiet-secrets checks, on SQL, command lines and output, are unit tests:
tests/unit/test_quiet_secrets.py.)
"""

from __future__ import annotations

from jobs.config import build_config
from tests.fake_secrets import SECRETS_ENV, leaks


def test_the_serialized_job_graph_holds_no_secret():
    """The whole job as a cluster receives it (JobGraph, Java-serialized: operator factories,
    pickled Python functions, connector options, job configuration)."""
    from pyflink.java_gateway import get_gateway

    from connectors.jars import flink_jar_urls
    from jobs.scoring_job import build_job

    cfg = build_config({"write_scored": True, "checkpoint_interval_ms": 0},
                       environ=SECRETS_ENV, stack={})
    env, _ = build_job(cfg, flink_jar_urls())
    graph = env._j_stream_execution_environment.getStreamGraph(False).getJobGraph()
    blob = bytes(get_gateway().jvm.org.apache.flink.util.InstantiationUtil.serializeObject(graph))
    assert b"FRAUDSTREAM_PG_WRITER_PASSWORD" in blob  # the sink's variable name is in there
    assert not leaks(blob)
