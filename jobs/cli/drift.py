"""`fraudstream drift reference | compute | watch | report`: are the model's inputs and score
still distributed as in training?

- `reference [VERSION]` stores a model version's reference distributions in its
  `metadata.json` (training does it for new models; this is for older ones).
- `compute` writes the PSI per hour of event time, model version and feature (and score) over
  Postgres `scored_transactions` into `feature_drift` (idempotent upsert).
- `watch` repeats `compute` every N seconds over the last hours and serves the latest PSI per
  feature as Prometheus metrics on 127.0.0.1 (`connectors.drift_metrics`).
- `report` draws PSI per feature over hours into a PNG.
Thresholds: PSI >= 0.1 watch, >= 0.25 drift (`models.drift`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jobs.cli.common import err, fail, out, stack_settings, stop_on_sigint

drift_app = typer.Typer(help="Feature and score drift against the training reference (PSI).",
                        no_args_is_help=True)

RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", help="Model registry root (default: $FRAUDSTREAM_MODEL_REGISTRY or the "
    "package registry).")]
SinceOpt = Annotated[str, typer.Option(
    "--since", help="Start: a duration before now (90m, 24h, 7d) or an ISO date/time (UTC "
    "unless it has an offset). Whole hours: floored to the hour.")]
UntilOpt = Annotated[str | None, typer.Option(
    "--until", help="End (exclusive), same forms as --since; default: no end.")]
VersionOpt = Annotated[str | None, typer.Option(
    "--model-version", help="Only the events this model version scored.")]

_DURATION = re.compile(r"^(\d+)\s*([mhd])$")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """'90m' / '24h' / '7d' before `now`, or an ISO date/time (naive = UTC)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip().lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        unit_name = {"m": "minutes", "h": "hours", "d": "days"}[unit]
        return now - timedelta(**{unit_name: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{text!r} is neither a duration (90m, 24h, 7d) nor an ISO date/time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@drift_app.command("reference")
def reference(
    version: Annotated[str | None, typer.Argument(help="Registry version (default: the "
                                                  "default model).")] = None,
    cards: Annotated[int | None, typer.Option(help="Build from a smaller generated sample: "
                                              "cards (same seed).")] = None,
    days: Annotated[int | None, typer.Option(help="... and days of the sample.")] = None,
    force: Annotated[bool, typer.Option(help="Replace a stored reference.")] = False,
    registry: RegistryOpt = None,
) -> None:
    """Store VERSION's reference distributions (features and score, 10 quantile bins of the
    validation window of its regenerated training data) in its metadata.json."""
    import json

    from models.drift import REFERENCE_KEY
    from models.drift_reference import ReferenceError, rebuild, write_reference
    from models.registry import default_version, version_dir

    version = version or default_version(registry)
    path = version_dir(version, registry)
    if not (path / "metadata.json").is_file():
        raise fail(f"{path} has no metadata.json")
    if REFERENCE_KEY in json.loads((path / "metadata.json").read_text()) and not force:
        out.print(f"{version} already has a drift reference (--force rebuilds it)")
        return
    started = time.perf_counter()
    try:
        built = rebuild(path, cards, days, log=lambda m: err.print(m))
    except ReferenceError as exc:
        raise fail(str(exc)) from exc
    for check in built.checks:
        out.print(f"checked: {check}")
    write_reference(path, built.reference)
    out.print(f"{version}: drift reference of {built.reference.rows:,} rows "
              f"({built.reference.source}) written to {path / 'metadata.json'} in "
              f"{time.perf_counter() - started:.0f} s")


@drift_app.command("compute")
def compute_cmd(since: SinceOpt = "24h", until: UntilOpt = None,
                model_version: VersionOpt = None, registry: RegistryOpt = None) -> None:
    """PSI per hour of event time, model version and feature (and score) of the scored events
    since --since, upserted into Postgres feature_drift (rerunning replaces the same rows)."""
    from connectors.drift_store import compute

    settings = stack_settings()
    start = parse_when(since)
    end = parse_when(until) if until else None
    result = _compute(compute, settings, start, end, model_version, registry)
    _print_result(result)


def _compute(compute: Any, settings: Any, start: datetime, end: datetime | None,
             model_version: str | None, registry: str | None) -> Any:
    import psycopg

    try:
        return compute(settings, start, end, model_version, registry)
    except psycopg.Error as exc:
        raise fail(f"Postgres: {exc}".strip()) from exc


def _print_result(result: Any, max_rows: int = 48) -> None:
    from models.drift import SCORE, level

    for version, why in result.skipped.items():
        err.print(f"[yellow]skipped[/] model {version}: {why}")
    hours = result.hours
    out.print(f"{result.events:,} scored events, {len(hours)} hour(s); {len(result.rows):,} "
              f"PSI rows written to feature_drift")
    if not hours:
        return
    by_key: dict[tuple, list] = {}
    for row in result.rows:
        by_key.setdefault((row.hour, row.model_version), []).append(row)
    versions = sorted({v for _, v in by_key})
    table = Table("hour (UTC)", *(["model"] if len(versions) > 1 else []), "events", "score",
                  "watch", "drift", "largest PSI",
                  title=f"model {versions[0]}" if len(versions) == 1 else None)
    keys = sorted(by_key)
    if len(keys) > max_rows:
        out.print(f"(the last {max_rows} of {len(keys)} hours)")
    for hour, version in keys[-max_rows:]:
        rows = by_key[(hour, version)]
        score = next((r for r in rows if r.feature == SCORE), None)
        feats = [r for r in rows if r.feature != SCORE]
        top = max(feats, key=lambda r: r.psi) if feats else None
        counts = [str(sum(level(r.psi) == name for r in feats)) for name in ("watch", "drift")]
        table.add_row(f"{hour:%Y-%m-%d %H:00}", *([version] if len(versions) > 1 else []),
                      f"{max(r.rows for r in rows):,}", f"{score.psi:.3f}" if score else "-",
                      *counts, f"{top.feature} {top.psi:.2f}" if top else "-")
    out.print(table)


@drift_app.command("watch")
def watch(
    interval: Annotated[float, typer.Option(help="Seconds between computations.")] = 60.0,
    lookback: Annotated[str, typer.Option(help="Recompute the hours of event time since this "
                                          "long ago (90m, 2h, 1d).")] = "2h",
    min_rows: Annotated[int, typer.Option(help="Export the latest hour with at least this "
                                          "many events (PSI of few rows is noisy).")] = 200,
    port: Annotated[int | None, typer.Option(help="Metrics port on 127.0.0.1 (default "
                                             "$FRAUDSTREAM_DRIFT_METRICS_PORT, 29464).")] = None,
    iterations: Annotated[int, typer.Option(help="Stop after this many computations (0 = run "
                                            "until Ctrl-C).")] = 0,
    registry: RegistryOpt = None,
) -> None:
    """Compute drift every --interval seconds and serve the latest PSI per feature as
    Prometheus metrics (fraudstream_feature_psi{model_version,feature}) on 127.0.0.1."""
    from connectors.drift_metrics import DriftMetrics
    from connectors.drift_store import compute, latest

    settings = stack_settings()
    port = port or settings.drift_metrics_port
    metrics = DriftMetrics()
    try:
        metrics.serve(port)
    except OSError as exc:
        raise fail(f"cannot serve metrics on 127.0.0.1:{port}: {exc}") from exc
    out.print(f"drift metrics on http://127.0.0.1:{port}/metrics; every {interval:g} s over "
              f"the last {lookback}; Ctrl-C stops")
    done = 0
    with stop_on_sigint() as stop:
        while not stop.is_set():
            try:
                # up to the job's own tolerance for event times ahead of the clock (1 day):
                # rows beyond it are not live traffic (`check outputs` reports them)
                horizon = datetime.now(UTC) + timedelta(days=1)
                result = compute(settings, parse_when(lookback), horizon, None, registry)
                rows = latest(settings, min_rows, role="writer", until=horizon)
                metrics.update(rows, time.time())
                flagged = sorted((r for r in rows if r.psi >= 0.1), key=lambda r: -r.psi)
                note = ", ".join(f"{r.feature} {r.psi:.2f}" for r in flagged[:5]) or "none"
                out.print(f"{datetime.now(UTC):%H:%M:%S} {result.events:,} events, "
                          f"{len(result.hours)} hour(s); PSI >= 0.1: {note}")
            except Exception as exc:  # noqa: BLE001 - keep watching; counted and shown
                metrics.errors.inc()
                err.print(f"[red]drift computation failed:[/] {exc}")
            done += 1
            if iterations and done >= iterations:
                break
            stop.wait(interval)


@drift_app.command("report")
def report(
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("drift.png"),
    since: SinceOpt = "7d", until: UntilOpt = None, model_version: VersionOpt = None,
    min_rows: Annotated[int, typer.Option(help="Leave out hours with fewer events.")] = 1,
) -> None:
    """Draw PSI per feature over the hours of feature_drift into a PNG (lines for the series
    that reached the watch level, a heat map of all)."""
    from connectors.drift_store import series
    from models.drift import DRIFT_THRESHOLD
    from models.drift_plot import plot_drift
    from models.features import FEATURE_NAMES

    settings = stack_settings()
    rows = [r for r in series(settings, parse_when(since), parse_when(until) if until else None,
                              model_version) if r.rows >= min_rows]
    if not rows:
        raise fail("no drift rows in that range: run `fraudstream drift compute` first")
    versions: dict[str, int] = {}
    for r in rows:
        versions[r.model_version] = versions.get(r.model_version, 0) + 1
    chosen = model_version or max(versions, key=lambda v: versions[v])
    if len(versions) > 1 and model_version is None:
        err.print(f"several model versions; drawing {chosen} (--model-version picks another)")
    rows = [r for r in rows if r.model_version == chosen]
    hours = sorted({r.hour for r in rows})
    title = (f"PSI per feature, model {chosen}, {hours[0]:%Y-%m-%d %H:00} .. "
             f"{hours[-1]:%Y-%m-%d %H:00} UTC")
    plot_drift(((r.hour, r.feature, r.psi) for r in rows), out_path, title, FEATURE_NAMES)
    drifted = sorted({r.feature for r in rows if r.psi >= DRIFT_THRESHOLD})
    out.print(f"wrote {out_path} ({len(hours)} hours); PSI >= {DRIFT_THRESHOLD} in some hour: "
              f"{', '.join(drifted) or 'none'}")


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")
