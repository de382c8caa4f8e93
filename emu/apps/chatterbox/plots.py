"""Figures for Chatterbox: a token timeline of one lossy response, and stall ratio against loss rate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emu.plots import _pyplot, _save


def plot_timeline(path: Path, runs: list, zoom_s: float = 1.5) -> Path:
    """Generated vs rendered token count over time, one line per scheme (``runs``: SchemeRun objects); the right
    panel zooms on the longest stall of any scheme."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.4, 1]})
    gen = runs[0].timeline.times_s
    worst_s, worst_gap = float(gen[0]), -1.0
    for run in runs:
        gaps = np.diff(np.concatenate(([0.0], run.rendered_s))) - np.diff(np.concatenate(([0.0], gen)))
        i = int(np.argmax(gaps))
        if gaps[i] > worst_gap:
            worst_gap, worst_s = float(gaps[i]), float(gen[i])
    for ax in axes:
        ax.step(gen, np.arange(1, len(gen) + 1), where="post", color="black", lw=1.5, label="generated")
        for run in runs:
            order = np.sort(run.rendered_s)
            ax.step(order, np.arange(1, len(order) + 1), where="post", lw=1.2, label=f"rendered: {run.scheme}")
        ax.set_xlabel("time since request (s)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("tokens")
    axes[0].legend(fontsize=8)
    lo, hi = worst_s - zoom_s / 3, worst_s + 2 * zoom_s / 3
    sel = (gen >= lo) & (gen <= hi)
    axes[1].set_xlim(lo, hi)
    if sel.any():
        idx = np.nonzero(sel)[0]
        axes[1].set_ylim(idx[0] - 2, idx[-1] + 4)
    axes[1].set_title("zoom on the longest stall", fontsize=10)
    return _save(fig, path)


def plot_stall_vs_loss(path: Path, table: pd.DataFrame) -> Path:
    """``table`` columns: loss, burst, scheme, stall_ratio."""
    plt = _pyplot()
    bursts = sorted(table["burst"].unique())
    fig, axes = plt.subplots(1, len(bursts), figsize=(4.5 * len(bursts), 3.6), squeeze=False, sharey=True)
    for ax, burst in zip(axes[0], bursts):
        part = table[table["burst"] == burst]
        for scheme, rows in part.groupby("scheme", sort=False):
            ax.plot(rows["loss"] * 100, rows["stall_ratio"] * 100, marker="o", label=scheme)
        ax.set_title("independent loss" if burst == 1 else f"bursty loss (mean burst {burst:g})", fontsize=10)
        ax.set_xlabel("packet loss (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("stall ratio (%)")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)
