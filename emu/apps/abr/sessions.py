"""Run policies over many traces on the chunk-level simulator, and summarise sessions.

Each trace's starting sample is drawn from ``SeedTree(seed).rng("abr.start/<trace name>")`` (the released
simulator draws ``randint(1, len)`` per trace), so every policy, and the packet-level app, sees the same part of
each trace for a given seed. ``noise`` turns on the released U(0.9, 1.1) delay noise (``fixed=False``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from emu.apps.abr.chunk_sim import ChunkSimulator, start_index
from emu.apps.abr.player import Policy, SessionLog, run_lockstep
from emu.apps.abr.traces import Trace
from emu.apps.abr.video import Video
from emu.rng import SeedTree

__all__ = ["simulate", "summarise", "trace_start"]

METRICS = ("qoe", "bitrate_mbps", "rebuffer_s", "smooth_mbps")


def trace_start(trace: Trace, seed: int) -> int:
    """The session's first trace sample for ``seed`` (shared by both simulation levels)."""
    return start_index(trace, SeedTree(seed).rng(f"abr.start/{trace.name}"))


def simulate(policy: Policy, traces: Sequence[Trace], video: Video, *, seed: int = 0, noise: bool = False,
             record_states: bool = False) -> list[SessionLog]:
    """One session per trace, all in lockstep (so learned policies batch their inference)."""
    tree = SeedTree(seed)
    sims = [ChunkSimulator(video, t, start=trace_start(t, seed),
                           noise_rng=tree.rng(f"abr.noise/{t.name}") if noise else None) for t in traces]
    return run_lockstep([s.download for s in sims], policy, record_states=record_states)


def summarise(logs: Sequence[SessionLog]) -> dict[str, float]:
    """Mean per-chunk QoE and components over all scored chunks of ``logs`` (first chunk of each skipped),
    plus ``n_traces``."""
    if not logs:
        raise ValueError("logs: no sessions to summarise")
    rows = [log.summary() for log in logs]
    weights = np.asarray([r["n_chunks"] for r in rows])
    out = {k: float(np.average([r[k] for r in rows], weights=weights)) for k in METRICS}
    out["n_traces"] = float(len(logs))
    return out
