"""Figures of the ABR app (matplotlib, Agg backend): QoE CDF per scheme and one session's timeline."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_qoe_cdf", "plot_session_timeline"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_qoe_cdf(path, per_trace_qoe: Mapping[str, Sequence[float]], title: str = "") -> Path:
    """One CDF line per scheme of the per-trace mean QoE."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme, values in per_trace_qoe.items():
        x = np.sort(np.asarray(values, dtype=float))
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post",
                label=f"{scheme} (mean {x.mean():.3f})")
    ax.set_xlabel("mean QoE per chunk of a session")
    ax.set_ylabel("CDF over traces")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_session_timeline(path, logs: Mapping[str, object], title: str = "") -> Path:
    """Bitrate (top) and buffer (bottom) against the session clock, one line per scheme (``SessionLog``s)."""
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for scheme, log in logs.items():
        t = np.asarray(log.times_s)
        top.step(t, np.asarray(log.bitrates_kbps) / 1000.0, where="pre", label=scheme)
        bottom.plot(t, log.buffers_s, marker=".", ms=3, label=scheme)
    top.set_ylabel("bitrate (Mbit/s)")
    bottom.set_ylabel("buffer (s)")
    bottom.set_xlabel("session time (s)")
    top.set_title(title)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
