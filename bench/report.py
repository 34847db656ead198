"""Turn a benchmark result (a plain dict) into `result.json` and the Markdown table.

The result dict is built by `bench/cli.py`; its shape:

    {"stamp", "command", "machine": describe_machine(), "notes": [...],
     "state": SizeSummary dict | None,
     "throughput": {engine: ThroughputResult.as_dict()},
     "latency": {engine: [LatencyPoint.as_dict(), ...]},
     "soak": {engine: bench.soak.soak_result(...)}}

Every figure in the Markdown comes from the JSON (acceptance: "the JSON holds every figure");
the ratio columns are computed here by `engine_ratios` from the JSON values.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.machine import machine_line
from bench.stats import ratio

PEER = "python"


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:,.0f}"


def engine_ratios(throughput: dict[str, dict]) -> dict[str, float | None]:
    """End-to-end events/s of each engine divided by the plain-Python peer's (None if absent)."""
    peer = throughput.get(PEER)
    if not peer or not peer.get("ok") or not peer.get("events_per_s"):
        return {}
    return {
        name: ratio(row["events_per_s"], peer["events_per_s"])
        for name, row in throughput.items()
        if row.get("ok") and row.get("events_per_s") is not None
    }


def _process_summary(row: dict) -> str:
    parts = []
    for proc in sorted(row.get("processes", []), key=lambda p: -p["peak_rss_bytes"]):
        if proc["group"] != "engine":
            continue
        parts.append(f"{proc['name']} {_mib(proc['peak_rss_bytes'])}")
    return "; ".join(parts[:4]) or "-"


def throughput_table(throughput: dict[str, dict]) -> list[str]:
    ratios = engine_ratios(throughput)
    lines = [
        "| engine | events | wall s | events/s end to end | events/s steady (10-90 %) "
        "| x peer | CPU s / 1k events (engine) | engine, steady | incl. Kafka+PG "
        "| peak RSS MiB per engine process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in throughput.items():
        if not row.get("ok"):
            lines.append(f"| {name} | {_fmt(row.get('events'))} | failed: "
                         f"{row.get('error', '?')} | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {_fmt(row['events'])} | {_fmt(row['wall_s'], 1)} "
            f"| {_fmt(row['events_per_s'])} | {_fmt(row.get('steady_events_per_s'))} "
            f"| {_fmt(ratios.get(name), 2)} | {_fmt(row.get('cpu_s_per_1000_engine'), 3)} "
            f"| {_fmt(row.get('steady_cpu_s_per_1000_engine'), 3)} "
            f"| {_fmt(row.get('cpu_s_per_1000_total'), 3)} | {_process_summary(row)} |"
        )
    return lines


def latency_table(latency: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| engine | target events/s | achieved events/s | mode | samples | p50 ms | p95 ms "
        "| p99 ms | max ms | behind at start s | kept up |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, points in latency.items():
        for p in points:
            if not p.get("ok"):
                lines.append(f"| {name} | {_fmt(p.get('target_rate'))} | failed: "
                             f"{p.get('error', '?')} | | | | | | | | |")
                continue
            s = p["summary"]
            lines.append(
                f"| {name} | {_fmt(p['target_rate'])} | {_fmt(p['achieved_rate'])} "
                f"| {p['mode']} | {_fmt(s['count'])} | {_fmt(s['p50_ms'], 1)} "
                f"| {_fmt(s['p95_ms'], 1)} | {_fmt(s['p99_ms'], 1)} | {_fmt(s['max_ms'], 1)} "
                f"| {_fmt(p.get('lag_s_at_measure_start'), 1)} "
                f"| {'no (saturated)' if p.get('saturated') else 'yes'} |"
            )
    return lines


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} %"


def soak_table(soak: dict[str, dict]) -> list[str]:
    """Per engine: one row per engine process judged, then the sum with the run's verdict."""
    lines = [
        "| engine | events/s target (achieved) | measured window s | produced | persisted "
        "| alerts | process | RSS start MiB | RSS end MiB | peak MiB | growth | slope MiB/min "
        "| verdict |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, res in soak.items():
        if "total" not in res:
            lines.append(f"| {name} | {_fmt(res.get('target_rate'))} | | | | | | | | | | "
                         f"| {res.get('verdict', 'failed')}: {res.get('error', '?')} |")
            continue
        persisted = _fmt(res.get("persisted"))
        if res.get("persisted_share") is not None:
            persisted += f" ({res['persisted_share'] * 100:.1f} %)"
        head = (f"| {name} | {_fmt(res['target_rate'])} ({_fmt(res.get('achieved_rate'))}) "
                f"| {_fmt(res['warmup_s'])}-{_fmt(res['duration_s'])} "
                f"| {_fmt(res.get('produced_total'))} | {persisted} | {_fmt(res.get('alerts'))}")
        rows = [(f"{p['name']} (pid {p['pid']})", p["summary"], None)
                for p in res.get("processes", [])
                if p["group"] == "engine" and p["summary"]["samples"] > 0]
        rows.append(("all engine processes", res["total"]["summary"], res["verdict"]))
        for label, s, verdict in rows:
            judged = verdict or ("flat" if s["flat"] else s["reason"])
            lines.append(
                f"{head} | {label} | {_mib(s['start_bytes'])} | {_mib(s['end_bytes'])} "
                f"| {_mib(s['peak_bytes'])} | {_share(s['growth_share'])} "
                f"| {_fmt(s['slope_mib_per_min'], 2)} | {judged} |"
            )
    return lines


def profile_table(profiled: list[tuple[str, dict]]) -> list[str]:
    """One column per profiled engine process, one row per pipeline stage."""
    stages = list(profiled[0][1]["stage_share"])
    head = " | ".join(f"{name}: {p['process']}" for name, p in profiled)
    lines = [f"| stage | {head} |", "|---|" + "---:|" * len(profiled)]
    for stage in stages:
        cells = " | ".join(f"{p['stage_share'].get(stage, 0) * 100:.0f} %" for _, p in profiled)
        lines.append(f"| {stage} | {cells} |")
    return lines


def render_markdown(result: dict) -> str:
    """The Markdown report: machine line, command, throughput and latency tables, notes."""
    out = [f"# fraudstream benchmark {result['stamp']}", ""]
    out.append(f"Command: `{result['command']}`")
    out.append("")
    out.append(f"Machine: {machine_line(result['machine'])}")
    out.append("")
    if result.get("throughput"):
        out.append("## Throughput (preloaded topic, earliest offset until all scored + persisted)")
        out.append("")
        out.extend(throughput_table(result["throughput"]))
        out.append("")
    profiled = [(n, p) for n, row in result.get("throughput", {}).items()
                for p in row.get("profile", []) if p.get("busy_samples", 0) >= 100]
    if profiled:
        out.append("## Where the Python time goes (py-spy, share of busy samples, inclusive)")
        out.append("")
        out.extend(profile_table(profiled))
        out.append("")
    if result.get("state"):
        st = result["state"]
        out.append(
            f"Per-card state (`state_to_bytes`, {st['count']:,} cards after the run's data): "
            f"mean {st['mean_bytes']:,.0f} B, p99 {st['p99_bytes']:,.0f} B, "
            f"max {st['max_bytes']:,} B."
        )
        out.append("")
    if result.get("latency"):
        out.append("## Latency (transaction CreateTime to alert arrival at an alerts consumer)")
        out.append("")
        out.extend(latency_table(result["latency"]))
        out.append("")
    if result.get("soak"):
        out.append("## Memory soak (fixed rate, RSS of every engine process; warm-up not judged)")
        out.append("")
        out.extend(soak_table(result["soak"]))
        out.append("")
    for note in result.get("notes", []):
        out.append(f"- {note}")
    return "\n".join(out).rstrip() + "\n"


def write_result(out_dir: Path, result: dict) -> tuple[Path, Path]:
    """Write `result.json` and `result.md` into `out_dir` (created); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    md_path = out_dir / "result.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    md_path.write_text(render_markdown(result))
    return json_path, md_path
