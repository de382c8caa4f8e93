"""Classic bitrate policies, as NetLLM's ``run_baseline.py`` runs them.

- **BBA** (Huang et al., SIGCOMM '14): level 0 below a 5-s reservoir, the top level above reservoir + 10-s
  cushion, linear in between (``int((levels - 1) * (buffer - 5) / 10)``).
- **RobustMPC** (Yin et al., SIGCOMM '15): throughput prediction = harmonic mean of the last 5 measured
  throughputs (leading zeros of the state skipped) divided by 1 + the largest of the last 5 relative prediction
  errors; then an exhaustive search over the next 5 chunks' levels, each within one level of the previous
  ("jump combos"), maximising QoE_lin of the plan; ties go to the later combo in enumeration order
  (``reward >= max_reward``). As released, the plan's chunk sizes are read from index ``last_index + 1 + k``
  where ``last_index`` is the number of chunks already fetched (one chunk ahead of the chunk actually fetched
  next), and the horizon shrinks to the chunks left.

Deviation: the released run carries MPC's error history from one trace to the next; here every session starts
with an empty history, so sessions are independent of their order.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from emu.apps.abr.player import Observation
from emu.apps.abr.qoe import REBUF_PENALTY, SMOOTH_PENALTY
from emu.apps.abr.video import BITRATES_KBPS, CHUNK_S, N_CHUNKS, N_LEVELS, Video

__all__ = ["BBA", "RobustMPC", "jump_combos"]

RESERVOIR_S = 5.0     # run_baseline.py RESEVOIR [sic]
CUSHION_S = 10.0      # CUSHION
MPC_HORIZON = 5       # MPC_FUTURE_CHUNK_COUNT
MPC_PAST = 5          # harmonic mean and error window


class BBA:
    """Buffer-based rate adaptation with a linear map between reservoir and reservoir + cushion."""

    name = "bba"

    def __init__(self, reservoir_s: float = RESERVOIR_S, cushion_s: float = CUSHION_S) -> None:
        if not reservoir_s >= 0:
            raise ValueError(f"reservoir_s: must be >= 0, got {reservoir_s!r}")
        if not cushion_s > 0:
            raise ValueError(f"cushion_s: must be > 0, got {cushion_s!r}")
        self.reservoir_s = reservoir_s
        self.cushion_s = cushion_s

    def reset(self, n_sessions: int) -> None:
        pass

    def level(self, buffer_s: float) -> int:
        if buffer_s < self.reservoir_s:
            return 0
        if buffer_s >= self.reservoir_s + self.cushion_s:
            return N_LEVELS - 1
        return int((N_LEVELS - 1) * (buffer_s - self.reservoir_s) / float(self.cushion_s))

    def select(self, obs: Sequence[Observation]) -> list[int]:
        return [self.level(o.buffer_s) for o in obs]


def jump_combos(start_level: int, horizon: int = MPC_HORIZON) -> np.ndarray:
    """Level sequences of length ``horizon`` whose first level is within one of ``start_level`` and each next
    within one of the previous, in ``itertools.product`` order (the released ``calculate_jump_action_combo``)."""
    out = []
    for combo in itertools.product(range(N_LEVELS), repeat=horizon):
        prev = start_level
        ok = True
        for level in combo:
            if abs(level - prev) > 1:
                ok = False
                break
            prev = level
        if ok:
            out.append(combo)
    return np.asarray(out, dtype=np.int64)


class RobustMPC:
    """RobustMPC with +-1 level jumps over a 5-chunk horizon (see the module docstring)."""

    name = "mpc"

    def __init__(self, video: Video) -> None:
        self.video = video
        self.sizes_mb = video.sizes_bytes.astype(float) / 1e6
        self.combos = {lvl: jump_combos(lvl) for lvl in range(N_LEVELS)}
        self.bitrates = np.asarray(BITRATES_KBPS, dtype=float)
        self._errors: list[list[float]] = []
        self._estimates: list[list[float]] = []

    def reset(self, n_sessions: int) -> None:
        self._errors = [[] for _ in range(n_sessions)]
        self._estimates = [[] for _ in range(n_sessions)]

    def predict_mbyte_per_s(self, i: int, state: np.ndarray) -> float:
        """Robust throughput estimate (MB/s) for session ``i``; updates its error history."""
        measured = float(state[2, -1])
        errors, estimates = self._errors[i], self._estimates[i]
        errors.append(abs(estimates[-1] - measured) / measured if estimates else 0.0)
        past = state[2, -MPC_PAST:]
        nz = np.flatnonzero(past != 0.0)
        past = past[nz[0]:] if nz.size else past[-1:]
        harmonic = 1.0 / (float(np.sum(1.0 / past.astype(float))) / len(past))
        max_error = float(max(errors[-MPC_PAST:]))
        estimates.append(harmonic)
        return harmonic / (1.0 + max_error)

    def plan(self, level: int, buffer_s: float, chunks_remaining: int, bandwidth: float) -> int:
        last_index = N_CHUNKS - chunks_remaining
        horizon = min(MPC_HORIZON, N_CHUNKS - last_index)
        if horizon <= 0:
            return 0
        combos = self.combos[level][:, :horizon]
        n = combos.shape[0]
        buffer = np.full(n, float(buffer_s))
        rebuf = np.zeros(n)
        bitrate_sum = np.zeros(n)
        smooth = np.zeros(n)
        last = np.full(n, level)
        for k in range(horizon):
            q = combos[:, k]
            index = last_index + k + 1
            size = self.sizes_mb[q, index] if index <= N_CHUNKS else np.zeros(n)
            download = size / bandwidth
            short = buffer < download
            rebuf = np.where(short, rebuf + (download - buffer), rebuf)
            buffer = np.where(short, 0.0, buffer - download) + CHUNK_S
            bitrate_sum = bitrate_sum + self.bitrates[q]
            smooth = smooth + np.abs(self.bitrates[q] - self.bitrates[last])
            last = q
        reward = bitrate_sum / 1000.0 - REBUF_PENALTY * rebuf - SMOOTH_PENALTY * smooth / 1000.0
        best = n - 1 - int(np.argmax(reward[::-1]))     # the last maximum, as ``reward >= max_reward``
        return int(combos[best, 0])

    def select(self, obs: Sequence[Observation]) -> list[int]:
        out = []
        for i, o in enumerate(obs):
            bandwidth = self.predict_mbyte_per_s(i, o.state)
            out.append(self.plan(o.last_level, o.buffer_s, o.chunks_remaining, bandwidth))
        return out
