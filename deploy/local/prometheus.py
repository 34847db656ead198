"""Monitoring of the local stack: Flink's Prometheus reporter (loopback) and a Prometheus server.

Reporter: Flink 2.2's `PrometheusReporter` (the wheel ships it as a plugin,
`pyflink/plugins/metrics-prometheus/`) binds every interface and has no host option, so the
cluster loads it with `deploy/monitoring/java` (`LoopbackPrometheusReporterFactory`, compiled by
bootstrap.sh into `<jars>/metrics/`) from its own plugins dir `<home>/flink/plugins`
(`write_reporter_plugin`; FLINK_PLUGINS_DIR of the daemons). The JobManager and each
TaskManager take the first free port of `flink_metrics_ports` on 127.0.0.1.

Server: Debian's `prometheus` binary (`ensure_prometheus_binary` installs it with apt-get when
missing and root; never its systemd/init service), run as a stack component: `<home>/prometheus/`
holds `prometheus.yml` (rendered each start by `render_config`), `alerts.yml` (a copy of
`deploy/monitoring/alerts.yml`, or a test's rules), `data/` and the pid file; log
`<home>/logs/prometheus.log`; listens on 127.0.0.1:`prometheus_port` only. It scrapes every port
of the reporters' range (job `flink`: ports no process took are down targets, which no rule
looks at) and the drift exporter (job `fraudstream-drift`, 127.0.0.1:`drift_metrics_port`;
down until one runs).

HTTP API helpers (`query`, `query_range`, `alerts`, `targets`) for `fraudstream metrics` and
the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.settings import REPO_ROOT, StackSettings
from deploy.local.procs import (
    StackError,
    pid_alive,
    port_open,
    read_pids,
    require_free_ports,
    terminate,
    wait_until,
)
from deploy.local.service import StackService

MONITORING_DIR = REPO_ROOT / "deploy" / "monitoring"
RULES_FILE = MONITORING_DIR / "alerts.yml"
DASHBOARD_FILE = MONITORING_DIR / "grafana-dashboard.json"
REPORTER_NAME = "prom"
REPORTER_FACTORY = "org.apache.flink.metrics.prometheus.LoopbackPrometheusReporterFactory"
REPORTER_JAR = "fraudstream-prometheus-loopback.jar"
PLUGIN_NAME = "metrics-prometheus"
START_TIMEOUT_S = 60.0
DEFAULT_INTERVAL = "5s"  # scrape and rule evaluation, the local stack's resolution
RETENTION = "7d"


# ---- the Flink side: reporter plugin and options ---------------------------------------------


def reporter_jars(settings: StackSettings, pyflink_home: Path) -> list[Path] | None:
    """The plugin's jars: the wheel's flink-metrics-prometheus and our loopback factory
    (bootstrap.sh). None when either is missing."""
    plugin = pyflink_home / "plugins" / PLUGIN_NAME
    flink_jars = sorted(plugin.glob("flink-metrics-prometheus*.jar"))
    ours = settings.jars_dir / "metrics" / REPORTER_JAR
    if not flink_jars or not ours.is_file():
        return None
    return [flink_jars[0], ours]


def write_reporter_plugin(plugins_dir: Path, settings: StackSettings, pyflink_home: Path) -> bool:
    """(Re)build `plugins_dir/metrics-prometheus/` with symlinks to `reporter_jars`. Returns
    False (and leaves the dir empty) when the jars are missing: the cluster then runs without
    the reporter (`fraudstream up --monitoring` says so)."""
    if plugins_dir.is_dir() and not plugins_dir.is_symlink():
        shutil.rmtree(plugins_dir)
    else:
        plugins_dir.unlink(missing_ok=True)
    plugins_dir.mkdir(parents=True)
    jars = reporter_jars(settings, pyflink_home)
    if jars is None:
        return False
    plugin = plugins_dir / PLUGIN_NAME
    plugin.mkdir()
    for jar in jars:
        (plugin / jar.name).symlink_to(jar)
    return True


def reporter_options(settings: StackSettings) -> dict[str, object]:
    """Flink options of the loopback Prometheus reporter (config.yaml, flattened keys).

    `filterLabelValueCharacters: false`: Flink would otherwise turn `0.5` into `0_5` in label
    values, and the `le` bucket labels (jobs/job_metrics.py) must stay numbers."""
    ports = settings.flink_metrics_port_range
    prefix = f"metrics.reporter.{REPORTER_NAME}"
    return {
        f"{prefix}.factory.class": REPORTER_FACTORY,
        f"{prefix}.host": "127.0.0.1",
        f"{prefix}.port": f"{ports.start}-{ports.stop - 1}",
        f"{prefix}.filterLabelValueCharacters": False,
    }


# ---- the server ------------------------------------------------------------------------------


def render_config(
    settings: StackSettings, rules_file: Path, interval: str = DEFAULT_INTERVAL
) -> str:
    """prometheus.yml for this stack: scrape the Flink reporters' port range and the drift
    exporter every `interval`, evaluate `rules_file` as often. JSON text (valid YAML)."""
    ports = settings.flink_metrics_port_range
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
            "external_labels": {"stack_home": str(settings.home)},
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {
                "job_name": "flink",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}],
            },
            {
                "job_name": "fraudstream-drift",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{settings.drift_metrics_port}"]}
                ],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{settings.prometheus_port}"]}],
            },
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None
    )


def ensure_prometheus_binary(report: Callable[[str], None] = lambda _: None) -> str:
    """Path of the `prometheus` binary; installs Debian's package when missing (root only).
    Its service is never started: a policy-rc.d refusing service starts is in place during
    the install (the container's own, or a temporary one). StackError when it cannot be had."""
    found = prometheus_binary()
    if found:
        return found
    if os.geteuid() != 0:
        raise StackError(
            "prometheus is not installed: run `sudo apt-get install -y prometheus` (Debian's "
            "package; its service is not needed) or run `fraudstream up --monitoring` as root"
        )
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    report("monitor   installing Debian package prometheus (apt-get, about 1 min)")
    try:
        if made_policy:
            policy.write_text("#!/bin/sh\n# fraudstream: no service start on install\nexit 101\n")
            policy.chmod(0o755)
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
            result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=900)
            if result.returncode != 0:
                last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
                raise StackError(
                    f"could not install prometheus ({' '.join(cmd)}: {last[0]}); install it "
                    "with apt-get install -y prometheus, or run without --monitoring"
                )
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    found = prometheus_binary()
    if not found:
        raise StackError("apt-get installed prometheus but no prometheus binary is on PATH")
    return found


@dataclass(frozen=True)
class PrometheusServer(StackService):
    """The Prometheus server of one stack home. `interval` (scrape + rule evaluation) and
    `rules` (the rules YAML text; None: deploy/monitoring/alerts.yml) let a test run a faster
    instance with its own rules on another home."""

    interval: str = DEFAULT_INTERVAL
    rules: str | None = None

    name = "prometheus"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_file(self) -> Path:
        return self.dir / "prometheus.yml"

    @property
    def rules_file(self) -> Path:
        return self.dir / "alerts.yml"

    @property
    def pid_file(self) -> Path:
        return self.dir / "prometheus.pid"

    @property
    def address(self) -> str:
        return self.settings.prometheus_url

    def pids(self) -> list[int]:
        return [p for p in read_pids(self.pid_file) if pid_alive(p, str(self.config_file))]

    def write_files(self) -> bool:
        """Write prometheus.yml and the rules; True when either changed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rules = self.rules if self.rules is not None else RULES_FILE.read_text()
        config = render_config(self.settings, self.rules_file, self.interval)
        changed = False
        for path, text in ((self.rules_file, rules), (self.config_file, config)):
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
                changed = True
        return changed

    def start(self, report: Callable[[str], None] = lambda _: None) -> None:
        binary = ensure_prometheus_binary(report)
        require_free_ports([("Prometheus", self.settings.prometheus_port)], self.log_file)
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_files()
        cmd = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",  # POST /-/reload after `up` rewrote the rules
        ]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.dir)
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_until(self.ready, START_TIMEOUT_S, f"Prometheus on {self.address}", self.log_file,
                   alive=lambda: proc.poll() is None)

    def ready(self) -> bool:
        if not port_open(self.settings.prometheus_port):
            return False
        with urllib.request.urlopen(f"{self.address}/-/ready", timeout=2) as resp:
            return resp.status == 200

    def reload(self) -> None:
        """Re-read prometheus.yml and the rules (after `write_files`)."""
        request = urllib.request.Request(f"{self.address}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> list[int]:
        stopped = terminate(read_pids(self.pid_file), str(self.config_file), timeout=30)
        self.pid_file.unlink(missing_ok=True)
        return stopped


# ---- HTTP API ----------------------------------------------------------------------------------


class PrometheusApiError(RuntimeError):
    """Prometheus answered with an error (bad query, ...) or could not be reached."""


def api(url: str, path: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """GET `url/api/v1/<path>?params`; returns the `data` of a success answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"{url}/api/v1/{path}{query}", timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise PrometheusApiError(f"{path}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusApiError(f"Prometheus at {url} is not reachable: {exc}") from None
    if body.get("status") != "success":
        raise PrometheusApiError(f"{path}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(url: str, expr: str, at: float | None = None) -> list[dict]:
    """Instant query: [{"metric": {labels}, "value": [t, "v"]}, ...] (a vector; a scalar
    result becomes one element without labels)."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = at
    data = api(url, "query", params)
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    """Range query: [{"metric": {labels}, "values": [[t, "v"], ...]}, ...]."""
    data = api(url, "query_range", {"query": expr, "start": start, "end": end, "step": step})
    return data["result"]


def alerts(url: str) -> list[dict]:
    """Active alerts: [{"labels": {"alertname": ...}, "state": "pending"|"firing", ...}]."""
    return api(url, "alerts")["alerts"]


def targets(url: str) -> list[dict]:
    """Active scrape targets with `health` (up/down/unknown) and `scrapeUrl`."""
    return api(url, "targets")["activeTargets"]


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll `check` until it returns a truthy value (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except PrometheusApiError:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
