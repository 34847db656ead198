"""Report arithmetic and rendering: ratios to the peer, every table figure from the JSON."""

from __future__ import annotations

import json

import pytest

from bench.report import engine_ratios, render_markdown, write_result

MACHINE = {
    "cores": 2,
    "memory_bytes": 24 * 2**30,
    "cpu_model": "test cpu",
    "os": "Linux",
    "python": "3.11",
    "java": "openjdk 17",
    "packages": {"apache-flink": "2.2.1", "onnxruntime": "1.20", "confluent-kafka": "2.6"},
    "load_average": (1.0, 1.0, 1.0),
}


def _row(eps: float, ok: bool = True) -> dict:
    return {
        "ok": ok,
        "events": 200_000,
        "wall_s": 200_000 / eps,
        "events_per_s": eps,
        "steady_events_per_s": eps * 1.2,
        "cpu_s_per_1000_engine": 0.05,
        "cpu_s_per_1000_total": 0.08,
        "processes": [
            {"group": "engine", "name": "java TaskManagerRunner", "pid": 1, "cpu_s": 3.0,
             "peak_rss_bytes": 512 * 2**20},
            {"group": "kafka", "name": "java kafka.Kafka", "pid": 2, "cpu_s": 1.0,
             "peak_rss_bytes": 300 * 2**20},
        ],
    }


def test_engine_ratios_relative_to_python_peer():
    ratios = engine_ratios({"flink-mini": _row(30_000), "python": _row(20_000)})
    assert ratios["flink-mini"] == pytest.approx(1.5)
    assert ratios["python"] == pytest.approx(1.0)


def test_engine_ratios_empty_without_successful_peer():
    assert engine_ratios({"flink-mini": _row(30_000)}) == {}
    assert engine_ratios({"flink-mini": _row(30_000), "python": _row(1, ok=False)}) == {}


def test_markdown_shows_json_figures_and_failures(tmp_path):
    result = {
        "stamp": "20261122T030000Z",
        "command": "fraudstream bench all --events 200000",
        "machine": MACHINE,
        "state": {"count": 1000, "mean_bytes": 812.4, "p99_bytes": 1500.0, "max_bytes": 1700},
        "throughput": {
            "flink-mini": _row(30_000),
            "python": _row(20_000),
            "flink-cluster": {"ok": False, "events": 200_000, "error": "cluster not running"},
        },
        "latency": {
            "python": [{
                "ok": True, "target_rate": 5000, "achieved_rate": 4990.0, "mode": "probe",
                "lag_s_at_measure_start": 0.4,
                "summary": {"count": 1200, "p50_ms": 3.25, "p95_ms": 9.0, "p99_ms": 21.5,
                            "max_ms": 80.0, "mean_ms": 4.0, "min_ms": 1.0},
            }],
        },
        "notes": ["machine shared with other work"],
    }
    result["throughput"]["flink-mini"]["profile"] = [{
        "pid": 9, "process": "java PythonGatewayServer", "busy_samples": 100,
        "stage_share": {"parse (all)": 0.436, "model: onnxruntime run": 0.114},
    }]
    json_path, md_path = write_result(tmp_path / "out", result)
    assert json.loads(json_path.read_text())["throughput"]["python"]["events_per_s"] == 20_000
    md = md_path.read_text()
    assert md == render_markdown(result)
    assert "| flink-mini | 200,000 | 6.7 | 30,000 | 36,000 | 1.50 |" in md
    assert "| python | 5,000 | 4,990 | probe | 1,200 | 3.2 | 9.0 | 21.5 | 80.0 | 0.4 | yes |" in md
    assert "failed: cluster not running" in md
    assert "java TaskManagerRunner 512" in md
    assert "kafka.Kafka" not in md.split("## Latency")[0].split("| engine |")[1]
    assert "mean 812 B" in md
    assert "| parse (all) | 44 % |" in md
    assert "machine shared with other work" in md
