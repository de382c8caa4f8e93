"""The experience pool NetLLM's DD-LRNA trains on (released ``generate_exp_pool.py`` and
``plm_special/data/dataset.py``).

- Collected by running behaviour policies (here BBA, RobustMPC, the project's Pensieve) on the chunk-level
  simulator over the training traces with the released delay noise; per session the first step (state of
  zeros, the default level) is dropped, leaving 47 (state, action, reward, done) tuples.
- Rewards are min-max normalised over the pool; the return-to-go is their undiscounted sum to the end of the
  session (gamma = 1), divided by ``scale`` = 1000; timesteps count decisions within a session.
- Training windows are ``w`` consecutive steps of the flat pool, cut without overlap (they may straddle two
  sessions, as released).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from emu.apps.abr.player import Policy
from emu.apps.abr.sessions import simulate
from emu.apps.abr.traces import Trace
from emu.apps.abr.video import Video

__all__ = ["ExperiencePool", "collect_pool"]

RETURN_SCALE = 1000.0   # released --scale


@dataclass
class ExperiencePool:
    states: np.ndarray      # (N, 6, 6) float32
    actions: np.ndarray     # (N,) int64
    rewards: np.ndarray     # (N,) float64, raw QoE per chunk
    dones: np.ndarray       # (N,) bool
    sources: list           # policy name per session

    def __post_init__(self) -> None:
        n = self.actions.shape[0]
        if not (self.states.shape == (n, 6, 6) and self.rewards.shape == (n,) and self.dones.shape == (n,)):
            raise ValueError("pool: states/actions/rewards/dones lengths differ")
        if n == 0:
            raise ValueError("pool: empty")

    @property
    def reward_min(self) -> float:
        return float(self.rewards.min())

    @property
    def reward_max(self) -> float:
        return float(self.rewards.max())

    def returns_to_go(self, scale: float = RETURN_SCALE) -> tuple[np.ndarray, np.ndarray]:
        """(returns-to-go of the normalised rewards / scale, timesteps), per session."""
        norm = (self.rewards - self.reward_min) / (self.reward_max - self.reward_min)
        rtg = np.zeros_like(norm)
        steps = np.zeros(norm.shape[0], dtype=np.int64)
        ends = np.flatnonzero(self.dones)
        start = 0
        for end in list(ends) + ([norm.shape[0] - 1] if not self.dones[-1] else []):
            seg = norm[start:end + 1]
            rtg[start:end + 1] = np.cumsum(seg[::-1])[::-1] / scale
            steps[start:end + 1] = np.arange(seg.size)
            start = end + 1
        return rtg, steps

    def windows(self, w: int) -> np.ndarray:
        """Start indices of the non-overlapping windows of ``w`` steps."""
        return np.arange(0, self.actions.shape[0] - w + 1, w)


def collect_pool(policies: Sequence[Policy], traces: Sequence[Trace], video: Video, *,
                 seeds: Sequence[int]) -> ExperiencePool:
    """Run every policy over every trace once per seed (start points and noise from the seed)."""
    states, actions, rewards, dones, sources = [], [], [], [], []
    for seed in seeds:
        for policy in policies:
            for log in simulate(policy, traces, video, seed=seed, noise=True, record_states=True):
                states.append(np.stack(log.states))
                actions.append(np.asarray(log.levels[1:]))
                r = np.asarray(log.rewards[1:])
                rewards.append(r)
                d = np.zeros(r.size, dtype=bool)
                d[-1] = True
                dones.append(d)
                sources.append(policy.name)
    return ExperiencePool(np.concatenate(states).astype(np.float32), np.concatenate(actions).astype(np.int64),
                          np.concatenate(rewards), np.concatenate(dones), sources)
