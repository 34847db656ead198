"""`fraudstream metrics`: the scoring job's dashboard, read from the local Prometheus.

The panels are those of the Grafana dashboard (`deploy/monitoring/grafana-dashboard.json`):
every target's PromQL, with the dashboard's `$job` variable and Grafana's `$__rate_interval`
filled in (`render_expr`), is evaluated once (a one-screen summary: each panel's current
values, the firing alerts, the scrape targets) or over the last minutes (`--plot DIR`: one
PNG per panel plus `dashboard.png` with all of them, `jobs/cli/metrics_plot.py`).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_JOB = "fraudstream-scoring.*"
DEFAULT_RATE_INTERVAL = "1m"  # >= 4 scrapes of the local Prometheus (5 s)


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    kind: str  # "stat" | "timeseries"
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Series:
    """One result series of a panel target: its legend and its value(s)."""

    legend: str
    value: float  # the instant value (the last one for a range)
    points: tuple[tuple[float, float], ...] = ()  # (unix time, value) for plots


def dashboard_file() -> Path:
    from deploy.local.prometheus import DASHBOARD_FILE

    return DASHBOARD_FILE


def load_panels(path: Path | None = None) -> list[Panel]:
    """The dashboard's panels with their targets, in dashboard order."""
    doc = json.loads((path or dashboard_file()).read_text())
    return [
        Panel(
            title=p["title"],
            unit=p.get("fieldConfig", {}).get("defaults", {}).get("unit", "none"),
            kind=p["type"],
            targets=tuple(Target(t["expr"], t.get("legendFormat", "")) for t in p["targets"]),
        )
        for p in doc["panels"]
        if p.get("targets")
    ]


def render_expr(expr: str, job: str = DEFAULT_JOB,
                rate_interval: str = DEFAULT_RATE_INTERVAL) -> str:
    """The PromQL Prometheus runs: Grafana's variables replaced (`$__rate_interval`,
    `$job` / `${job}`); a `"` in `job` is escaped for the label matcher."""
    text = expr.replace("$__rate_interval", rate_interval)
    quoted = job.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("${job}", quoted).replace("$job", quoted)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: `{{label}}` replaced by the series' label value."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def format_value(value: float, unit: str) -> str:
    """A value as the dashboard shows it (unit ids of Grafana's field config)."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "ops":
        return f"{value:,.1f}/s"
    if unit == "percentunit":
        return f"{value * 100:.1f} %"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "s":
        minutes, seconds = divmod(int(value), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit == "short":
        return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"
    return f"{value:.3g}"


def _number(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def evaluate(url: str, panels: list[Panel], job: str = DEFAULT_JOB,
             rate_interval: str = DEFAULT_RATE_INTERVAL,
             window: tuple[float, float, float] | None = None) -> list[list[Series]]:
    """Each panel's series: instant values, or with `window` = (start, end, step) a range
    (points for plots; `value` the last point). A query error becomes no series."""
    from deploy.local import prometheus

    out: list[list[Series]] = []
    for panel in panels:
        series: list[Series] = []
        for target in panel.targets:
            expr = render_expr(target.expr, job, rate_interval)
            try:
                if window is None:
                    result = prometheus.query(url, expr)
                    series += [Series(legend(target.legend, r["metric"]),
                                      _number(r["value"][1])) for r in result]
                else:
                    result = prometheus.query_range(url, expr, *window)
                    for r in result:
                        points = tuple((float(t), _number(v)) for t, v in r["values"])
                        series.append(Series(legend(target.legend, r["metric"]),
                                             points[-1][1] if points else math.nan, points))
            except prometheus.PrometheusApiError:
                continue
        out.append(series)
    return out


def summary_rows(panels: list[Panel], results: list[list[Series]]) -> list[tuple[str, str]]:
    """(panel title, its current values) per panel, e.g. ("Dead letters /s by reason",
    "payload 0.2/s  amt 0.1/s"); "no data" when a panel has none."""
    rows = []
    for panel, series in zip(panels, results, strict=True):
        if not series:
            rows.append((panel.title, "no data"))
            continue
        parts = []
        for s in sorted(series, key=lambda s: s.legend):
            value = format_value(s.value, panel.unit)
            parts.append(f"{s.legend} {value}" if len(series) > 1 or s.legend else value)
        rows.append((panel.title, "  ".join(parts)))
    return rows


def alert_lines(active: list[dict]) -> list[str]:
    """One line per active alert: state, name, summary; firing first."""
    order = {"firing": 0, "pending": 1}
    lines = []
    for alert in sorted(active, key=lambda a: (order.get(a.get("state"), 2),
                                               a["labels"].get("alertname", ""))):
        name = alert["labels"].get("alertname", "?")
        summary = alert.get("annotations", {}).get("summary", "")
        lines.append(f"{alert.get('state', '?'):<8} {name}  {summary}".rstrip())
    return lines


def target_line(targets: list[dict]) -> str:
    """`flink 3/11 up, fraudstream-drift 0/1 up, ...` (ports nobody took are down)."""
    jobs: dict[str, list[int]] = {}
    for t in targets:
        counts = jobs.setdefault(t.get("labels", {}).get("job", "?"), [0, 0])
        counts[0] += t.get("health") == "up"
        counts[1] += 1
    return ", ".join(f"{job} {up}/{total} up" for job, (up, total) in sorted(jobs.items()))


def render_summary(url: str, job: str, rows: list[tuple[str, str]], active: list[dict],
                   scrape: str) -> Any:
    """The one-screen view (a rich Group): panels table, alerts, targets."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"fraudstream metrics  job {job}  ({url}, "
                        f"{time.strftime('%H:%M:%S')})", title_justify="left", expand=False)
    table.add_column("panel", style="bold")
    table.add_column("now")
    for title, values in rows:
        table.add_row(title, values)
    lines = alert_lines(active) or ["none"]
    alerts = Text("alerts: " + lines[0] + "".join(f"\n        {line}" for line in lines[1:]),
                  style="red" if any(a.get("state") == "firing" for a in active) else "green")
    return Group(table, alerts, Text(f"targets: {scrape}", style="dim"))


def register(app: typer.Typer) -> None:
    """Add `metrics` to the fraudstream CLI."""

    @app.command()
    def metrics(
        job: Annotated[str, typer.Option(
            "--job", help="Flink job name regex (the dashboard's $job)")] = DEFAULT_JOB,
        plot: Annotated[Path | None, typer.Option(
            "--plot", help="Write PNG plots of the panels into this directory")] = None,
        minutes: Annotated[int, typer.Option(
            "--minutes", min=1, help="Time range of --plot, minutes")] = 30,
        rate_interval: Annotated[str, typer.Option(
            "--rate-interval", help="Window of rate() ($__rate_interval)")] = DEFAULT_RATE_INTERVAL,
        watch: Annotated[float, typer.Option(
            "--watch", min=0.0, help="Refresh the summary every N seconds (0: print once)")] = 0.0,
    ) -> None:
        """The job's dashboard panels from the local Prometheus (`fraudstream up
        --monitoring`; env FRAUDSTREAM_PROMETHEUS_PORT): a summary, or PNGs with --plot."""
        from rich.console import Console
        from rich.live import Live

        from connectors.settings import load_settings
        from deploy.local import prometheus

        url = load_settings().prometheus_url
        panels = load_panels()
        console = Console()

        def view() -> Any:
            results = evaluate(url, panels, job, rate_interval)
            return render_summary(url, job, summary_rows(panels, results),
                                  prometheus.alerts(url), target_line(prometheus.targets(url)))

        try:
            prometheus.api(url, "status/buildinfo")
            if plot is not None:
                from jobs.cli.metrics_plot import plot_panels

                end = time.time()
                step = max(5.0, minutes * 60 / 240)
                results = evaluate(url, panels, job, rate_interval,
                                   (end - minutes * 60, end, step))
                for path in plot_panels(panels, results, plot, f"last {minutes} min, job {job}"):
                    console.print(str(path))
                return
            if not watch:
                console.print(view())
                return
            with Live(view(), console=console, screen=False, auto_refresh=False) as live:
                while True:
                    time.sleep(watch)
                    live.update(view(), refresh=True)
        except prometheus.PrometheusApiError as exc:
            typer.secho(f"error: {exc} (start it with `fraudstream up --monitoring`)",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
