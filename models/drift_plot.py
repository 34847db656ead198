"""The drift report's picture: PSI per feature over hours of event time (matplotlib, Agg).

Top: a line per series on a symlog axis with the watch and drift thresholds, coloured for at
most 10: first those that reached the drift level after a stable hour (emerging drift), then
the highest. Bottom:
every series x hour as a heat map (colour capped at 2 x the drift threshold), so a feature
that drifted stands out wherever it sits in the feature order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from models.drift import DRIFT_THRESHOLD, SCORE, WATCH_THRESHOLD


def plot_drift(points: Iterable[tuple[datetime, str, float]], out: Path, title: str,
               order: Sequence[str] = ()) -> Path:
    """Draw (hour, series, psi) points into a PNG at `out`; `order` lists series first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = list(points)
    if not pts:
        raise ValueError("no drift points to plot")
    hours = sorted({h for h, _, _ in pts})
    present = {s for _, s, _ in pts}
    names = [s for s in order if s in present] + sorted(present - set(order) - {SCORE})
    if SCORE in present and SCORE not in names:
        names.append(SCORE)
    grid = np.full((len(names), len(hours)), np.nan)
    h_index = {h: i for i, h in enumerate(hours)}
    n_index = {n: i for i, n in enumerate(names)}
    for h, s, v in pts:
        grid[n_index[s], h_index[h]] = v

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 4 + 0.18 * len(names)), sharex=True,
        gridspec_kw={"height_ratios": [1.2, max(1.0, len(names) / 14)]},
    )
    x = np.arange(len(hours))
    peak = np.nan_to_num(np.nanmax(grid, axis=1), nan=0.0)
    # colour at most 10 series: first those that drifted after a stable hour (emerging drift),
    # then the highest; the rest in grey
    emerging = [i for i in range(len(names)) if _emerged(grid[i])]
    rest = [i for i in np.argsort(-peak) if i not in emerging and peak[i] >= WATCH_THRESHOLD]
    shown = set((emerging + rest)[:10])
    colours = iter(plt.get_cmap("tab10").colors)
    for i, name in enumerate(names):
        if i in shown:
            top.plot(x, grid[i], marker="o", ms=3, lw=1.6, label=name, color=next(colours))
        else:
            top.plot(x, grid[i], color="0.8", lw=0.7)
    top.axhline(WATCH_THRESHOLD, color="orange", ls="--", lw=1, label=f"watch {WATCH_THRESHOLD}")
    top.axhline(DRIFT_THRESHOLD, color="red", ls="--", lw=1, label=f"drift {DRIFT_THRESHOLD}")
    top.set_yscale("symlog", linthresh=WATCH_THRESHOLD)  # thresholds and large PSI both legible
    top.set_ylim(bottom=0)
    top.set_ylabel("PSI (symlog)")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=7, ncol=4)
    image = bottom.imshow(np.nan_to_num(grid, nan=0.0), aspect="auto", cmap="magma_r",
                          vmin=0, vmax=2 * DRIFT_THRESHOLD, interpolation="nearest")
    bottom.set_yticks(range(len(names)), names, fontsize=6)
    step = max(1, len(hours) // 16)
    bottom.set_xticks(x[::step], [hours[i].strftime("%m-%d %H:00") for i in x[::step]],
                      rotation=45, ha="right", fontsize=7)
    bottom.set_xlabel("hour of event time (UTC)")
    fig.colorbar(image, ax=bottom, label="PSI", fraction=0.03, pad=0.01)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _emerged(row: np.ndarray) -> bool:
    """Below the watch level in some hour and at the drift level in a later one."""
    stable = np.flatnonzero(row < WATCH_THRESHOLD)
    drifted = np.flatnonzero(row >= DRIFT_THRESHOLD)
    return bool(len(stable) and len(drifted) and drifted.max() > stable.min())
