"""QoE_lin as Pensieve and NetLLM compute it (Mao et al., SIGCOMM '17; Wu et al., SIGCOMM '24).

Per chunk: ``bitrate_kbps/1000 - 4.3 * rebuffer_s - 1 * |bitrate_kbps - last_bitrate_kbps| / 1000``
(NetLLM ``run_baseline.py`` / ``plm_special/test.py``; ``REBUF_PENALTY = 4.3``, ``SMOOTH_PENALTY = 1`` in
``baseline_special/utils/constants.py``, the same as Pensieve ``sim/multi_agent.py``). A session's score is the
mean over chunks 2..48: the first chunk's reward is skipped (``calc_mean_reward(skip_first_reward=True)``),
and a set of traces is scored by the mean over all their scored chunks (equal to the mean of per-trace means,
since every session scores the same number of chunks).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["REBUF_PENALTY", "SMOOTH_PENALTY", "chunk_qoe", "session_summary"]

REBUF_PENALTY = 4.3   # "1 sec rebuffering -> 3 Mbps" (Pensieve)
SMOOTH_PENALTY = 1.0


def chunk_qoe(bitrate_kbps: float, rebuffer_s: float, last_bitrate_kbps: float) -> float:
    """One chunk's reward (QoE_lin), in Mbit/s-equivalent units."""
    return (bitrate_kbps / 1000.0 - REBUF_PENALTY * rebuffer_s
            - SMOOTH_PENALTY * abs(bitrate_kbps - last_bitrate_kbps) / 1000.0)


def session_summary(bitrates_kbps: Sequence[float], rebuffers_s: Sequence[float]) -> dict[str, float]:
    """Mean per-chunk QoE and its components over chunks 2..N of one session (the first is skipped).

    ``bitrates_kbps[i]`` and ``rebuffers_s[i]`` belong to chunk i; chunk 0's smoothness term is taken against
    itself (the player starts at that level). Returns ``qoe``, ``bitrate_mbps``, ``rebuffer_s`` (mean per
    chunk), ``smooth_mbps`` (mean |change|), ``n_chunks`` (scored)."""
    b = np.asarray(bitrates_kbps, dtype=float)
    r = np.asarray(rebuffers_s, dtype=float)
    if b.shape != r.shape or b.ndim != 1 or b.size < 2:
        raise ValueError(f"bitrates_kbps/rebuffers_s: need two equal-length sequences of >= 2 chunks, "
                         f"got {b.shape} and {r.shape}")
    smooth = np.abs(np.diff(b)) / 1000.0
    rewards = b[1:] / 1000.0 - REBUF_PENALTY * r[1:] - SMOOTH_PENALTY * smooth
    return {"qoe": float(rewards.mean()), "bitrate_mbps": float(b[1:].mean() / 1000.0),
            "rebuffer_s": float(r[1:].mean()), "smooth_mbps": float(smooth.mean()), "n_chunks": float(b.size - 1)}
