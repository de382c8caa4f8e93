"""Matplotlib figures of a run, drawn from its tables (so ``emu plot DIR`` redraws them from files).

- ``delay_cdf.png``: CDF of one-way delay per flow (from per-packet rows, or from the delay histogram of a
  ``record="summary"`` run);
- ``throughput.png``: delivered throughput per flow over time, with the capacity of trace-driven links overlaid;
- ``queue_delay.png``: queueing delay of each delivered packet over time (per-packet rows only);
- ``timeseries_<kind>.png``: optional time series recorded through trace hooks (cwnd per flow, queue state).

ACK flows (``<flow>.ack``) are left out of the figures. Titles name the scenario and its queue(s).
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


def plot_title(meta: Optional[dict]) -> str:
    """``"l4s-trace (seed 1) - left->right: dualpi2"``: the scenario, its seed and its non-default queues."""
    meta = meta or {}
    head = str(meta.get("scenario") or "run")
    if meta.get("seed") is not None:
        head += f" (seed {meta['seed']})"
    queues = meta.get("queues") or {}
    kinds = sorted(set(queues.values()))
    if len(kinds) == 1 and len(queues) > 1:
        return f"{head} - queue: {kinds[0]}"
    if queues:
        return f"{head} - " + ", ".join(f"{link}: {kind}" for link, kind in list(queues.items())[:3]) \
            + (" ..." if len(queues) > 3 else "")
    return head


def _hide_acks(frame: pd.DataFrame) -> pd.DataFrame:
    if "flow" not in frame:
        return frame
    return frame[~frame["flow"].astype(str).str.endswith(".ack")]


def _titled(ax, title: Optional[str]) -> None:
    if title:
        ax.set_title(title, fontsize=9)


def plot_delay_cdf(path: Path, packets: Optional[pd.DataFrame] = None,
                   delay_hist: Optional[pd.DataFrame] = None, title: Optional[str] = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    _titled(ax, title)
    if packets is not None:
        for name, group in _hide_acks(packets).groupby("flow", observed=True, sort=False):
            values = np.sort(group["delay_s"].to_numpy()) * 1e3
            ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=str(name))
    elif delay_hist is not None:
        for name, group in _hide_acks(delay_hist).groupby("flow", sort=False):
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


def plot_throughput(path: Path, throughput: pd.DataFrame, capacity: Optional[pd.DataFrame] = None,
                    title: Optional[str] = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    _titled(ax, title)
    if capacity is not None and len(capacity):
        for link, group in capacity.groupby("link", sort=False):
            ax.step(group["time_s"], group["capacity_bps"] / 1e6, where="post", color="0.55", lw=1.2,
                    label=f"capacity {link}")
    for name, group in _hide_acks(throughput).groupby("flow", sort=False):
        ax.plot(group["time_s"], group["throughput_bps"] / 1e6, label=str(name), lw=1)
    bin_s = float(np.diff(throughput["time_s"].unique()[:2])[0]) if throughput["time_s"].nunique() > 1 else 0
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"throughput (Mbit/s{f', {bin_s:g} s bins' if bin_s else ''})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_queue_delay(path: Path, packets: pd.DataFrame, title: Optional[str] = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    _titled(ax, title)
    for name, group in _hide_acks(packets).groupby("flow", observed=True, sort=False):
        step = max(1, len(group) // 20000)  # keep the figure light on long runs
        ax.plot(group["delivered_s"].to_numpy()[::step], group["qdelay_s"].to_numpy()[::step] * 1e3,
                ".", ms=1.5, label=str(name))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("queueing delay (ms)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, markerscale=5)
    return _save(fig, path)


def plot_timeseries(path: Path, series: pd.DataFrame, title: Optional[str] = None) -> Path:
    """One panel per column of a recorded time series (``time_s``, ``key`` and value columns), a line per key."""
    plt = _pyplot()
    values = [c for c in series.columns if c not in ("time_s", "key")]
    fig, axes = plt.subplots(len(values), 1, figsize=(7, 2.2 * len(values) + 0.6), sharex=True, squeeze=False)
    for ax, col in zip(axes[:, 0], values):
        for key, group in series.groupby("key", sort=False):
            ax.step(group["time_s"], group[col], where="post", lw=0.9, label=str(key))
        ax.set_ylabel(col, fontsize=8)
        ax.grid(alpha=0.3)
    _titled(axes[0, 0], title)
    axes[-1, 0].set_xlabel("time (s)")
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    return _save(fig, path)


def plot_tables(out_dir: Path, tables: dict[str, pd.DataFrame], title: Optional[str] = None) -> list[Path]:
    """Draw every figure the given tables allow into ``out_dir``."""
    out_dir = Path(out_dir)
    made = []
    packets = tables.get("packets")
    if packets is not None or tables.get("delay_hist") is not None:
        made.append(plot_delay_cdf(out_dir / "delay_cdf.png", packets=packets, delay_hist=tables.get("delay_hist"),
                                   title=title))
    if tables.get("throughput") is not None:
        made.append(plot_throughput(out_dir / "throughput.png", tables["throughput"], tables.get("capacity"),
                                    title=title))
    if packets is not None:
        made.append(plot_queue_delay(out_dir / "queue_delay.png", packets, title=title))
    for name, frame in tables.items():
        if name.startswith("timeseries_") and len(frame):
            made.append(plot_timeseries(out_dir / f"{name}.png", frame, title=title))
    return made


# the columns each figure reads from a results directory's tables (label columns first, the rest numeric)
TABLE_COLUMNS = {
    "packets": (("flow",), ("delivered_s", "delay_s", "qdelay_s")),
    "throughput": (("flow",), ("time_s", "throughput_bps")),
    "delay_hist": (("flow",), ("upper_edge_s", "count")),
    "capacity": (("link",), ("time_s", "capacity_bps")),
    "flows": (("flow",), ()),
}
TIMESERIES_COLUMNS = (("key",), ("time_s",))


def read_table_file(path: Path, labels: tuple[str, ...] = (), numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """One table of a results directory, checked: parsed whole (a CSV must end with a complete line: a cut-off
    file is refused, not drawn short), the ``labels`` and ``numeric`` columns present, the ``numeric`` ones
    numbers. Every failure is a ``ValueError`` naming the file."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        raise ValueError("truncated: its last line is incomplete")
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({' '.join(str(exc).split())[:200]})") from None
    except Exception as exc:  # pandas and pyarrow parse errors come in many types
        raise ValueError(f"{path}: not a readable table ({' '.join(str(exc).split())[:200]})") from None
    missing = [c for c in labels + numeric if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; it has {list(frame.columns)}")
    for column in numeric if len(frame) else ():  # a header-only CSV reads as text columns
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise ValueError(f"{path}: column {column!r} must hold numbers, found {frame[column].dtype} values")
    return frame


def read_tables(results_dir: Path) -> dict[str, pd.DataFrame]:
    """Load the tables a results directory holds (Parquet preferred over CSV), each checked by
    ``read_table_file``."""
    results_dir = Path(results_dir)
    if not (results_dir / "summary.json").exists():
        raise FileNotFoundError(f"{results_dir}: not a results directory (no summary.json)")
    names = list(TABLE_COLUMNS)
    names += sorted({p.stem for p in results_dir.glob("timeseries_*.*") if p.suffix in (".csv", ".parquet")})
    tables = {}
    for name in names:
        labels, numeric = TABLE_COLUMNS.get(name, TIMESERIES_COLUMNS)
        for ext in (".parquet", ".csv"):
            path = results_dir / f"{name}{ext}"
            if path.exists():
                tables[name] = read_table_file(path, labels, numeric)
                break
    return tables


def read_summary(results_dir: Path) -> dict:
    """A results directory's summary.json, checked to be a JSON object whose ``meta`` is one; errors name it."""
    import json

    path = Path(results_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("meta", {}), dict):
        raise ValueError(f"{path}: expected a JSON object with a 'meta' object")
    return summary


def read_title(results_dir: Path) -> str:
    """The plot title of a results directory, from the provenance in its summary.json."""
    return plot_title(read_summary(results_dir).get("meta"))
