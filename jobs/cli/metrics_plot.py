"""PNG plots of the dashboard panels (`fraudstream metrics --plot DIR`), with matplotlib.

One file per panel (`NN-<title slug>.png`) and `dashboard.png` with every panel in a grid,
two columns, in dashboard order. Stat panels are drawn as time series too (their history is
what a still image can show)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.cli.metrics import Panel, Series, format_value


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "panel"


def _draw(ax: Any, panel: Panel, series: list[Series]) -> None:
    import matplotlib.dates as mdates

    ax.set_title(panel.title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    drawn = 0
    for s in sorted(series, key=lambda s: s.legend):
        points = [(t, v) for t, v in s.points if not math.isnan(v) and not math.isinf(v)]
        if not points:
            continue
        times = [datetime.fromtimestamp(t, tz=UTC) for t, _ in points]
        ax.plot(times, [v for _, v in points], linewidth=1.2,
                label=f"{s.legend or panel.title} ({format_value(points[-1][1], panel.unit)})")
        drawn += 1
    if drawn:
        ax.legend(fontsize=6, loc="upper left")
        locator = mdates.AutoDateLocator(tz=UTC)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
        if panel.unit == "percentunit":
            ax.yaxis.set_major_formatter(lambda v, _pos: f"{v * 100:.0f}%")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes,
                fontsize=9, color="grey")


def plot_panels(panels: list[Panel], results: list[list[Series]], out_dir: Path,
                subtitle: str = "") -> list[Path]:
    """Write the PNGs; returns their paths (dashboard.png last)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (panel, series) in enumerate(zip(panels, results, strict=True), start=1):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        _draw(ax, panel, series)
        fig.tight_layout()
        path = out_dir / f"{i:02d}-{slug(panel.title)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    cols = 2
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.6 * rows), squeeze=False)
    for ax, panel, series in zip(axes.flat, panels, results, strict=False):
        _draw(ax, panel, series)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"fraudstream scoring job  {subtitle}".rstrip(), fontsize=11, x=0.01,
                 ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / rows))  # room for the title
    path = out_dir / "dashboard.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written
