"""Matplotlib figures of a run, drawn from its tables (so ``emu plot DIR`` redraws them from files).

- ``delay_cdf.png``: CDF of one-way delay per flow (from per-packet rows, or from the delay histogram of a
  ``record="summary"`` run);
- ``throughput.png``: delivered throughput per flow over time;
- ``queue_delay.png``: queueing delay of each delivered packet over time (per-packet rows only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_delay_cdf(path: Path, packets: Optional[pd.DataFrame] = None,
                   delay_hist: Optional[pd.DataFrame] = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if packets is not None:
        for name, group in packets.groupby("flow", observed=True, sort=False):
            values = np.sort(group["delay_s"].to_numpy()) * 1e3
            ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=str(name))
    elif delay_hist is not None:
        for name, group in delay_hist.groupby("flow", sort=False):
            counts = group["count"].to_numpy()
            if counts.sum():
                ax.step(group["upper_edge_s"].to_numpy() * 1e3, np.cumsum(counts) / counts.sum(), where="post",
                        label=str(name))
        ax.set_xscale("log")
    ax.set_xlabel("one-way delay (ms)")
    ax.set_ylabel("CDF")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_throughput(path: Path, throughput: pd.DataFrame) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, group in throughput.groupby("flow", sort=False):
        ax.plot(group["time_s"], group["throughput_bps"] / 1e6, label=str(name), lw=1)
    bin_s = float(np.diff(throughput["time_s"].unique()[:2])[0]) if throughput["time_s"].nunique() > 1 else 0
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"throughput (Mbit/s{f', {bin_s:g} s bins' if bin_s else ''})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_queue_delay(path: Path, packets: pd.DataFrame) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, group in packets.groupby("flow", observed=True, sort=False):
        step = max(1, len(group) // 20000)  # keep the figure light on long runs
        ax.plot(group["delivered_s"].to_numpy()[::step], group["qdelay_s"].to_numpy()[::step] * 1e3,
                ".", ms=1.5, label=str(name))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("queueing delay (ms)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, markerscale=5)
    return _save(fig, path)


def plot_tables(out_dir: Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Draw every figure the given tables allow into ``out_dir``."""
    out_dir = Path(out_dir)
    made = []
    packets = tables.get("packets")
    if packets is not None or tables.get("delay_hist") is not None:
        made.append(plot_delay_cdf(out_dir / "delay_cdf.png", packets=packets, delay_hist=tables.get("delay_hist")))
    if tables.get("throughput") is not None:
        made.append(plot_throughput(out_dir / "throughput.png", tables["throughput"]))
    if packets is not None:
        made.append(plot_queue_delay(out_dir / "queue_delay.png", packets))
    return made


def read_tables(results_dir: Path) -> dict[str, pd.DataFrame]:
    """Load the tables a results directory holds (Parquet preferred over CSV)."""
    results_dir = Path(results_dir)
    if not (results_dir / "summary.json").exists():
        raise FileNotFoundError(f"{results_dir}: not a results directory (no summary.json)")
    tables = {}
    for name in ("packets", "throughput", "delay_hist", "flows"):
        for ext, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
            path = results_dir / f"{name}{ext}"
            if path.exists():
                tables[name] = reader(path)
                break
    return tables
