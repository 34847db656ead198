"""The demo's alert counter: a thread reading the alerts topic while the job runs."""

from __future__ import annotations

import threading
import time
from typing import Any

from jobs.cli.alerts_follow import MalformedAlert, decode_alert
from jobs.cli.demo.view import DemoStats
from schemas.alert import Alert


class AlertWatcher(threading.Thread):
    """Consumes the alerts topic from the offsets it had when the demo started.

    Counts distinct alerts of this run's transactions (the topic is shared and at-least-once)
    and the planted frauds among them; keeps the latest few for the live view. Malformed
    messages are skipped (`fraudstream alerts` reports them).
    """

    def __init__(self, consumer: Any, stats: DemoStats, run_ids: set[str],
                 fraud_ids: set[str], lock: threading.Lock) -> None:
        super().__init__(name="demo-alert-watcher", daemon=True)
        self._consumer = consumer
        self._stats = stats
        self._run_ids = run_ids
        self._fraud_ids = fraud_ids
        self._lock = lock
        self._seen: set[str] = set()
        self.stop = threading.Event()
        self.last_message_at = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self._consumer.poll(0.3)
            if msg is None or msg.error() is not None:
                continue
            self.last_message_at = time.monotonic()
            try:
                alert = decode_alert(msg.value())
            except MalformedAlert:
                continue
            self.handle(alert)

    def handle(self, alert: Alert) -> None:
        tx = alert.transaction_id
        if tx not in self._run_ids or tx in self._seen:
            return
        self._seen.add(tx)
        with self._lock:
            self._stats.alerts += 1
            if tx in self._fraud_ids:
                self._stats.fraud_caught += 1
            self._stats.latest.append(alert)

    def wait_quiet(self, quiet_s: float = 3.0, poll_s: float = 0.3) -> None:
        """Return once no alert arrived for `quiet_s` seconds: alerts the job has written may
        still be on their way when it ends."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            if time.monotonic() - self.last_message_at < 1.0:
                quiet_since = time.monotonic()
            time.sleep(poll_s)
