"""Monitoring, the pure parts: settings, the reporter plugin and options, prometheus.yml, the
dashboard's panels and queries, and the `fraudstream metrics` summary and plots. (Not named
test_monitoring.py: tests/integration has that module name, and the test dirs are no
packages.)"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from connectors.settings import SettingsError, StackSettings, load_settings, port_range
from deploy.local.prometheus import (
    DASHBOARD_FILE,
    REPORTER_FACTORY,
    REPORTER_JAR,
    RULES_FILE,
    render_config,
    reporter_options,
    write_reporter_plugin,
)
from jobs.cli.metrics import (
    Panel,
    Series,
    Target,
    alert_lines,
    format_value,
    legend,
    load_panels,
    render_expr,
    summary_rows,
    target_line,
)
from jobs.job_metrics import PREFIX, PROMETHEUS_NAMES

JOB_METRIC = re.compile(re.escape(PREFIX) + r"(?:fraudstream_\w+|control\w+)")


# ---- settings --------------------------------------------------------------------------------
def test_port_range_settings():
    assert port_range("29249-29259") == range(29249, 29260)
    assert port_range("39300") == range(39300, 39301)
    for bad in ("x", "10-5", "0-3", "70000"):
        with pytest.raises(SettingsError, match="PORTS"):
            port_range(bad, "PORTS")


def test_monitoring_settings_from_the_environment(tmp_path):
    default = load_settings({"FRAUDSTREAM_HOME": str(tmp_path)})
    assert default.flink_metrics_port_range == range(29249, 29260)
    assert (default.prometheus_port, default.drift_metrics_port) == (29090, 29464)
    assert default.prometheus_url == "http://127.0.0.1:29090"
    mine = load_settings({"FRAUDSTREAM_HOME": str(tmp_path),
                          "FRAUDSTREAM_FLINK_METRICS_PORTS": "39249-39251",
                          "FRAUDSTREAM_PROMETHEUS_PORT": "39090",
                          "FRAUDSTREAM_DRIFT_METRICS_PORT": "39464"})
    assert mine.flink_metrics_port_range == range(39249, 39252)
    assert (mine.prometheus_port, mine.drift_metrics_port) == (39090, 39464)
    with pytest.raises(SettingsError, match="FRAUDSTREAM_FLINK_METRICS_PORTS"):
        load_settings({"FRAUDSTREAM_HOME": str(tmp_path),
                       "FRAUDSTREAM_FLINK_METRICS_PORTS": "a-b"})


# ---- Flink reporter --------------------------------------------------------------------------
def _fake_pyflink(tmp_path: Path) -> Path:
    plugin = tmp_path / "pyflink" / "plugins" / "metrics-prometheus"
    plugin.mkdir(parents=True)
    (plugin / "flink-metrics-prometheus-2.2.1.jar").write_bytes(b"jar")
    return tmp_path / "pyflink"


def test_reporter_plugin_holds_flinks_jar_and_the_loopback_factory(tmp_path):
    settings = StackSettings(home=tmp_path / "home", jars_dir=tmp_path / "jars")
    pyflink = _fake_pyflink(tmp_path)
    plugins = tmp_path / "home" / "flink" / "plugins"
    assert write_reporter_plugin(plugins, settings, pyflink) is False  # no jar built yet
    assert list(plugins.iterdir()) == []
    (tmp_path / "jars" / "metrics").mkdir(parents=True)
    (tmp_path / "jars" / "metrics" / REPORTER_JAR).write_bytes(b"jar")
    assert write_reporter_plugin(plugins, settings, pyflink) is True
    jars = sorted(p.name for p in (plugins / "metrics-prometheus").iterdir())
    assert jars == ["flink-metrics-prometheus-2.2.1.jar", REPORTER_JAR]
    assert all((plugins / "metrics-prometheus" / j).is_symlink() for j in jars)


def test_reporter_options_bind_loopback_on_the_port_range():
    options = reporter_options(StackSettings(flink_metrics_ports="39249-39259"))
    assert options == {
        "metrics.reporter.prom.factory.class": REPORTER_FACTORY,
        "metrics.reporter.prom.host": "127.0.0.1",
        "metrics.reporter.prom.port": "39249-39259",
        "metrics.reporter.prom.filterLabelValueCharacters": False,
    }


def test_cluster_config_has_the_reporter_when_bootstrap_built_it(tmp_path):
    pytest.importorskip("pyflink")
    from deploy.local.flink_cluster import FlinkCluster

    real = load_settings()
    if not (real.jars_dir / "metrics" / REPORTER_JAR).is_file():
        pytest.skip("bootstrap.sh has not built the reporter jar")
    settings = StackSettings(home=tmp_path, jars_dir=real.jars_dir)
    cluster = FlinkCluster(settings)
    cluster.write_config()
    config = (cluster.conf_dir / "config.yaml").read_text()
    assert f"metrics.reporter.prom.factory.class: \"{REPORTER_FACTORY}\"" in config
    assert 'metrics.reporter.prom.host: "127.0.0.1"' in config
    assert cluster.daemon_env()["FLINK_PLUGINS_DIR"] == str(cluster.plugins_dir)
    assert (cluster.plugins_dir / "metrics-prometheus" / REPORTER_JAR).is_symlink()


# ---- prometheus.yml --------------------------------------------------------------------------
def test_prometheus_config_scrapes_the_range_and_the_drift_exporter(tmp_path):
    settings = StackSettings(home=tmp_path, flink_metrics_ports="39249-39251",
                             prometheus_port=39090, drift_metrics_port=29464)
    config = yaml.safe_load(render_config(settings, tmp_path / "alerts.yml", "2s"))
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["evaluation_interval"] == "2s"
    assert config["rule_files"] == [str(tmp_path / "alerts.yml")]
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs["flink"] == ["127.0.0.1:39249", "127.0.0.1:39250", "127.0.0.1:39251"]
    assert jobs["fraudstream-drift"] == ["127.0.0.1:29464"]
    assert jobs["prometheus"] == ["127.0.0.1:39090"]
    assert all(t.startswith("127.0.0.1:") for targets in jobs.values() for t in targets)


# ---- dashboard -------------------------------------------------------------------------------
def test_dashboard_is_grafana_json_with_one_query_per_target():
    doc = json.loads(DASHBOARD_FILE.read_text())
    assert doc["uid"] and doc["schemaVersion"] >= 30
    assert [v["name"] for v in doc["templating"]["list"]] == ["job"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


def test_dashboard_and_rules_name_only_metrics_the_job_registers():
    used = set(JOB_METRIC.findall(DASHBOARD_FILE.read_text() + RULES_FILE.read_text()))
    assert used and used <= set(PROMETHEUS_NAMES), used - set(PROMETHEUS_NAMES)


def test_dashboard_covers_every_job_metric_family():
    used = set(JOB_METRIC.findall(DASHBOARD_FILE.read_text()))
    assert set(PROMETHEUS_NAMES) - used == set()


def test_render_expr_fills_grafana_variables():
    expr = 'sum(rate(x{job_name=~"$job"}[$__rate_interval])) + y{job_name=~"${job}"}'
    assert render_expr(expr, "my-job.*", "2m") == (
        'sum(rate(x{job_name=~"my-job.*"}[2m])) + y{job_name=~"my-job.*"}')
    assert render_expr('x{a="$job"}', 'we"ird') == 'x{a="we\\"ird"}'


def test_load_panels_reads_every_dashboard_panel():
    panels = load_panels()
    doc = json.loads(DASHBOARD_FILE.read_text())
    assert [p.title for p in panels] == [p["title"] for p in doc["panels"]]
    assert all(isinstance(t, Target) and t.expr for p in panels for t in p.targets)


# ---- summary ---------------------------------------------------------------------------------
def test_format_value_per_unit():
    assert format_value(1234.56, "ops") == "1,234.6/s"
    assert format_value(0.1234, "percentunit") == "12.3 %"
    assert format_value(312.4, "bytes") == "312 B"
    assert format_value(87.2, "ms") == "87 ms"
    assert format_value(3725, "s") == "1h 02m 05s"
    assert format_value(65, "s") == "1m 05s"
    assert format_value(12345, "short") == "12,345" and format_value(2.5, "short") == "2.50"
    assert format_value(math.nan, "ops") == "-"
    assert format_value(math.inf, "ms") == "+Inf"
    assert format_value(0.3296, "none") == "0.33"


def test_legend_fills_labels():
    assert legend("{{reason}}", {"reason": "amt"}) == "amt"
    assert legend("p{{ le }} of {{x}}", {"le": "0.5"}) == "p0.5 of "


def test_summary_rows_one_line_per_panel():
    panels = [
        Panel("Events in /s", "ops", "stat", (Target("a", "events in"),)),
        Panel("Dead letters /s by reason", "ops", "timeseries", (Target("b", "{{reason}}"),)),
        Panel("Rule hits /s by rule", "ops", "timeseries", (Target("c", "{{rule}}"),)),
    ]
    results = [
        [Series("events in", 2500.0)],
        [Series("payload", 0.25), Series("amt", 1.5)],
        [],
    ]
    assert summary_rows(panels, results) == [
        ("Events in /s", "events in 2,500.0/s"),
        ("Dead letters /s by reason", "amt 1.5/s  payload 0.2/s"),
        ("Rule hits /s by rule", "no data"),
    ]


def test_alert_and_target_lines():
    active = [
        {"labels": {"alertname": "B"}, "state": "pending", "annotations": {"summary": "b"}},
        {"labels": {"alertname": "A"}, "state": "firing", "annotations": {"summary": "a!"}},
    ]
    assert alert_lines(active) == ["firing   A  a!", "pending  B  b"]
    targets = [{"labels": {"job": "flink"}, "health": h} for h in ("up", "up", "down")]
    targets.append({"labels": {"job": "fraudstream-drift"}, "health": "down"})
    assert target_line(targets) == "flink 2/3 up, fraudstream-drift 0/1 up"


def test_plots_one_png_per_panel_and_the_dashboard(tmp_path):
    from jobs.cli.metrics_plot import plot_panels

    panels = [Panel("Events in /s", "ops", "stat", (Target("a", "in"),)),
              Panel("Alert share", "percentunit", "stat", (Target("b", "share"),)),
              Panel("Rule hits", "ops", "timeseries", (Target("c", "{{rule}}"),))]
    points = tuple((1_800_000_000.0 + 10 * i, float(i)) for i in range(30))
    results = [[Series("in", 29.0, points)], [Series("share", 0.1, points)], []]
    written = plot_panels(panels, results, tmp_path / "plots", "test")
    assert [p.name for p in written] == [
        "01-events-in-s.png", "02-alert-share.png", "03-rule-hits.png", "dashboard.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
