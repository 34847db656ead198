"""Prometheus metrics of `fraudstream drift watch` (prometheus_client, own registry).

Served on 127.0.0.1:$FRAUDSTREAM_DRIFT_METRICS_PORT (29464) at /metrics:
  fraudstream_feature_psi{model_version, feature}      PSI of the latest hour with enough rows
                                                       (feature = a feature name or "score")
  fraudstream_feature_psi_rows{model_version, feature} scored events in that hour
  fraudstream_feature_psi_hour_seconds{model_version, feature}  that hour's start (unix s)
  fraudstream_drift_features{model_version, level}     series at level watch (0.1 <= PSI <
                                                       0.25) and drift (PSI >= 0.25)
  fraudstream_drift_watch_thresholds{level}            the thresholds themselves, for rules
  fraudstream_drift_last_success_seconds               end of the last good computation
  fraudstream_drift_errors_total                       computations that failed
Labels of a (version, feature) that no longer has a latest hour are removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client import Counter as PromCounter

from connectors.drift_store import DriftRow
from models.drift import DRIFT_THRESHOLD, WATCH_THRESHOLD, level


class DriftMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_version", "feature"]
        self.psi = Gauge("fraudstream_feature_psi", "PSI of the latest hour with enough rows",
                         labels, registry=self.registry)
        self.rows = Gauge("fraudstream_feature_psi_rows", "Scored events in that hour", labels,
                          registry=self.registry)
        self.hour = Gauge("fraudstream_feature_psi_hour_seconds",
                          "Start of that hour (unix seconds)", labels, registry=self.registry)
        self.levels = Gauge("fraudstream_drift_features", "Series per drift level",
                            ["model_version", "level"], registry=self.registry)
        thresholds = Gauge("fraudstream_drift_watch_thresholds", "PSI thresholds", ["level"],
                           registry=self.registry)
        thresholds.labels("watch").set(WATCH_THRESHOLD)
        thresholds.labels("drift").set(DRIFT_THRESHOLD)
        self.last_success = Gauge("fraudstream_drift_last_success_seconds",
                                  "End of the last good drift computation (unix seconds)",
                                  registry=self.registry)
        self.errors = PromCounter("fraudstream_drift_errors", "Failed drift computations",
                                  registry=self.registry)
        self._labels: set[tuple[str, str]] = set()
        self._versions: set[str] = set()

    def update(self, latest: Iterable[DriftRow], now_s: float) -> None:
        """Set the gauges from the latest PSI per (model version, feature)."""
        seen: set[tuple[str, str]] = set()
        per_level: Counter[tuple[str, str]] = Counter()
        for row in latest:
            key = (row.model_version, row.feature)
            seen.add(key)
            self.psi.labels(*key).set(row.psi)
            self.rows.labels(*key).set(row.rows)
            self.hour.labels(*key).set(row.hour.timestamp())
            per_level[(row.model_version, level(row.psi))] += 1
        for key in self._labels - seen:
            for gauge in (self.psi, self.rows, self.hour):
                gauge.remove(*key)
        self._labels = seen
        versions = {v for v, _ in seen} | self._versions
        for version in versions:
            for name in ("watch", "drift"):
                self.levels.labels(version, name).set(per_level[(version, name)])
        self._versions = versions
        self.last_success.set(now_s)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics in a daemon thread (loopback only by default)."""
        start_http_server(port, addr=addr, registry=self.registry)
