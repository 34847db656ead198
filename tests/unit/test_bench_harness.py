"""Benchmark plumbing that decides what gets measured: namespaces, engine commands, probe."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.engines import EngineTarget, engine_command
from bench.namespace import BenchNamespace, with_current_schema
from bench.probe import probe_threshold


@dataclass
class _Settings:
    flink_rest_port: int = 28081

    def jdbc_url(self) -> str:
        return "jdbc:postgresql://127.0.0.1:25432/fraudstream?stringtype=unspecified"


def _target(engine: str, bounded: bool = True) -> EngineTarget:
    ns = BenchNamespace("20261122t030000z_tp_x")
    return EngineTarget(
        engine=engine, source_topic="bench.src.transactions", alerts_topic=ns.alerts_topic,
        dlq_topic=ns.dlq_topic, pg_schema=ns.schema, group_id="g1", job_name="bench-job",
        bounded=bounded, model_path="/tmp/probe.onnx",
        job_settings=(("execution_mode", "process"),),
    )


def test_namespace_names_are_private_to_the_run():
    ns = BenchNamespace("20261122t030000z_tp_mini")
    assert ns.schema == "bench_20261122t030000z_tp_mini"
    assert ns.source_topic == "bench.20261122t030000z_tp_mini.transactions"
    assert ns.alerts_topic.endswith(".alerts") and ns.dlq_topic.endswith(".dlq")
    with pytest.raises(ValueError):
        BenchNamespace("x; DROP SCHEMA public")


def test_jdbc_url_gets_the_schema_as_search_path():
    url = "jdbc:postgresql://h:1/db?stringtype=unspecified"
    assert with_current_schema(url, "bench_a") == url + "&currentSchema=bench_a"
    assert with_current_schema("jdbc:postgresql://h:1/db", "s").endswith("/db?currentSchema=s")


def test_flink_mini_command_routes_every_output_to_the_namespace():
    cmd = engine_command(_target("flink-mini"), _Settings())
    assert cmd[1:4] == ["-m", "jobs.cli", "run"]
    sets = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--set")
    assert sets["alerts_topic"] == "bench.20261122t030000z_tp_x.alerts"
    assert sets["dlq_topic"] == "bench.20261122t030000z_tp_x.dlq"
    assert sets["jdbc_url"].endswith("currentSchema=bench_20261122t030000z_tp_x")
    assert sets["model_path"] == "/tmp/probe.onnx"
    assert sets["execution_mode"] == "process"  # tuning settings pass through
    assert "--bounded" in cmd
    assert cmd[cmd.index("--source-topic") + 1] == "bench.src.transactions"


def test_cluster_command_submits_detached_and_unbounded_when_asked():
    cmd = engine_command(_target("flink-cluster", bounded=False), _Settings())
    assert "submit" in cmd and "--no-bounded" in cmd and "--detached" in cmd
    assert cmd[cmd.index("--jobmanager") + 1] == "127.0.0.1:28081"


def test_peer_command_uses_the_same_namespace():
    cmd = engine_command(_target("python"), _Settings())
    assert cmd[1:3] == ["-m", "bench.peer_pipeline"]
    assert cmd[cmd.index("--pg-schema") + 1] == "bench_20261122t030000z_tp_x"
    assert cmd[cmd.index("--alerts-topic") + 1].endswith(".alerts")
    assert "--bounded" in cmd


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError):
        engine_command(_target("spark"), _Settings())


def test_probe_threshold_alerts_on_the_requested_share():
    scores = [i / 1000 for i in range(1000)]
    threshold = probe_threshold(scores, 0.02)
    share = sum(1 for s in scores if s >= threshold) / len(scores)
    assert share == pytest.approx(0.02, abs=0.002)
    with pytest.raises(ValueError):
        probe_threshold(scores, 0.0)


def test_profile_summary_shares_of_busy_samples():
    from bench.profile import summarize_collapsed

    lines = [
        " 60\n",  # idle thread: not busy
        "process_element (x.py:1);parse_transaction (p.py:2);"
        "create.<locals>.Validator.iter_errors (v.py:3) 30\n",
        "process_element (x.py:1);parse_transaction (p.py:2) 10\n",
        "process_element (x.py:1);Scorer.decide_batch (s.py:1);Session.run (o.py:1) 20\n",
        "process_element (x.py:1);MapStateImpl.get (st.py:1) 40\n",
    ]
    out = summarize_collapsed(lines)
    assert out["busy_samples"] == 100
    shares = out["stage_share"]
    assert shares["parse (all)"] == 0.4
    assert shares["parse: JSON Schema validation"] == 0.3
    assert shares["model: onnxruntime run"] == 0.2
    assert shares["state access (Flink MapState)"] == 0.4
    assert shares["timers"] == 0.0


def test_episode_share_keeps_short_runs_near_half_a_percent_fraud():
    from bench.dataset import episode_share

    # 20k events, 1000 cards: 10 episodes of ~10 frauds = 100 frauds = 0.5 %.
    assert episode_share(20_000, 1000) == pytest.approx(0.01)
    assert episode_share(10_000_000, 1000) == 0.98  # capped at the generator's default


def test_unique_id_rewrites_only_the_transaction_id():
    from bench.latency import unique_id

    payload = b'{"schema_version":1,"transaction_id":"abc","merchant":"abc shop"}'
    new_id, new_payload = unique_id("abc", payload, 2)
    assert new_id == "abc-c2"
    assert new_payload == b'{"schema_version":1,"transaction_id":"abc-c2","merchant":"abc shop"}'
    with pytest.raises(ValueError):
        unique_id("zzz", payload, 1)


def test_latency_duration_long_enough_for_min_samples():
    from bench.latency import LatencyPlan

    plan = LatencyPlan(duration_s=20, share=0.1, min_samples=1000, max_duration_s=120)
    assert plan.duration_for(5000) == 20  # 500 alerts/s: the floor is enough
    assert plan.duration_for(300) == pytest.approx(1000 / 30 * 1.15)
    assert plan.duration_for(10) == 120  # capped


class _FakeProc:
    def __init__(self, code):
        self.code = code

    def poll(self):
        return self.code


def _engine(kind, code, tmp_path):
    from bench.engines import EngineProcess

    t = EngineTarget(engine=kind, source_topic="s", alerts_topic="a", dlq_topic="d",
                     pg_schema="p", group_id="g", job_name="job-x", bounded=False)
    return EngineProcess(target=t, proc=_FakeProc(code), log_path=tmp_path / "x.log",
                         rest_url="http://unused" if kind == "flink-cluster" else None)


@pytest.mark.parametrize("state, ended", [("RUNNING", False), ("FAILED", True),
                                          ("CANCELED", True), ("FINISHED", True)])
def test_detached_cluster_client_exit_is_not_the_end_of_the_job(tmp_path, monkeypatch,
                                                                 state, ended):
    # the cluster client exits 0 right after submitting: the job's REST state decides
    import bench.engines as engines

    monkeypatch.setattr(engines, "cluster_job", lambda _e: {"state": state})
    engine = _engine("flink-cluster", 0, tmp_path)
    assert engines.engine_ended(engine) is ended
    if ended:
        assert state in engines.ended_reason(engine)


def test_engine_end_for_local_processes_and_failed_submissions(tmp_path, monkeypatch):
    import bench.engines as engines

    monkeypatch.setattr(engines, "cluster_job", lambda _e: {"state": "RUNNING"})
    assert engines.engine_ended(_engine("flink-mini", None, tmp_path)) is False
    assert engines.engine_ended(_engine("flink-mini", 0, tmp_path)) is True
    assert engines.engine_ended(_engine("python", 1, tmp_path)) is True
    failed_submit = _engine("flink-cluster", 2, tmp_path)
    assert engines.engine_ended(failed_submit) is True
    assert "code 2" in engines.ended_reason(failed_submit)


def test_lag_is_measured_in_seconds_of_production():
    from bench.latency import lag_in_seconds

    assert lag_in_seconds(10_000, 7_000, 1000) == 3.0
    assert lag_in_seconds(10_000, 10_050, 1000) == 0.0  # rows counted after more were sent
    assert lag_in_seconds(500, 0, 0) > 1e6  # a zero rate never looks caught up


def test_throttled_predicate_is_asked_at_most_once_per_period(monkeypatch):
    import bench.latency as latency

    clock = {"t": 100.0}
    monkeypatch.setattr(latency.time, "monotonic", lambda: clock["t"])
    answers = iter([False, True])
    calls = []

    def predicate():
        calls.append(clock["t"])
        return next(answers)

    check = latency.throttled(predicate, every_s=1.0)
    assert check() is False
    clock["t"] += 0.5
    assert check() is False  # cached: not asked again
    clock["t"] += 0.6
    assert check() is True
    assert calls == [100.0, 101.1]


def test_a_jdbc_url_trial_setting_keeps_the_run_schema():
    t = _target("flink-mini")
    url = "jdbc:postgresql://127.0.0.1:25432/fraudstream?stringtype=unspecified&reWriteBatchedInserts=true"
    t = EngineTarget(**{**t.__dict__, "job_settings": (("jdbc_url", url),)})
    cmd = engine_command(t, _Settings())
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    jdbc = [s for s in sets if s.startswith("jdbc_url=")]
    assert jdbc == [f"jdbc_url={url}&currentSchema={t.pg_schema}"]
