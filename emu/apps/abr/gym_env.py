"""Gymnasium environments for ABR (``gymnasium`` imported here only).

- ``AbrChunkEnv``: the chunk-level simulator (``emu.apps.abr.chunk_sim``) over a list of traces;
- ``AbrPacketEnv``: the packet-level player (``emu.apps.abr.app``) over the emulator, one chunk per step.

Observation: the 6x6 Pensieve state (float32, ``Box(0, inf)``); action: the next chunk's level
(``Discrete(6)``); reward: that chunk's QoE_lin; an episode is one session of 48 chunks, of which the first is
fetched at level 0 inside ``reset`` (so an episode has 47 steps and its rewards are exactly the scored ones).
``reset(seed=...)`` picks the trace and its starting sample from the seeded ``np_random``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from emu.apps.abr.chunk_sim import ChunkSimulator, start_index
from emu.apps.abr.player import DEFAULT_LEVEL, SessionDriver
from emu.apps.abr.traces import Trace
from emu.apps.abr.video import N_LEVELS, Video, load_video

__all__ = ["AbrChunkEnv", "AbrPacketEnv"]


class _AbrEnvBase(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, traces: Sequence[Trace], video: Optional[Video] = None) -> None:
        if not traces:
            raise ValueError("traces: need at least one trace")
        self.traces = list(traces)
        self.video = video if video is not None else load_video()
        self.observation_space = spaces.Box(low=0.0, high=np.inf, shape=(6, 6), dtype=np.float32)
        self.action_space = spaces.Discrete(N_LEVELS)
        self._driver: Optional[SessionDriver] = None
        self._last_obs = None

    def _open(self, trace: Trace, start: int, rng: np.random.Generator):
        raise NotImplementedError

    def _fetch(self, level: int):
        raise NotImplementedError

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        trace = self.traces[int(self.np_random.integers(len(self.traces)))]
        self._open(trace, start_index(trace, self.np_random), self.np_random)
        self._driver = SessionDriver()
        obs = self._driver.on_chunk(self._fetch(DEFAULT_LEVEL))
        self._last_obs = obs
        return obs.state, {"trace": trace.name, "buffer_s": obs.buffer_s}

    def step(self, action: Any):
        if self._driver is None:
            raise RuntimeError("step: call reset() first")
        if not self.action_space.contains(action):
            raise ValueError(f"action: must be an integer in [0, {N_LEVELS - 1}], got {action!r}")
        if self._last_obs.chunks_remaining == 0:
            raise RuntimeError("step: the episode is over; call reset()")
        obs = self._driver.on_chunk(self._fetch(int(action)))
        self._last_obs = obs
        log = self._driver.log
        info = {"buffer_s": obs.buffer_s, "rebuffer_s": log.rebuffers_s[-1],
                "bitrate_kbps": log.bitrates_kbps[-1], "delay_s": log.delays_s[-1]}
        return obs.state, float(obs.reward), obs.chunks_remaining == 0, False, info


class AbrChunkEnv(_AbrEnvBase):
    """The released chunk-level simulator as a Gymnasium environment (``noise``: the U(0.9, 1.1) delay noise)."""

    def __init__(self, traces: Sequence[Trace], video: Optional[Video] = None, *, noise: bool = False) -> None:
        super().__init__(traces, video)
        self.noise = noise
        self._sim: Optional[ChunkSimulator] = None

    def _open(self, trace, start, rng):
        self._sim = ChunkSimulator(self.video, trace, start=start, noise_rng=rng if self.noise else None)

    def _fetch(self, level):
        return self._sim.download(level)


class AbrPacketEnv(_AbrEnvBase):
    """The packet-level player over ``emu.topologies.access_bottleneck`` (one emulator run per episode, stepped
    one chunk at a time)."""

    def __init__(self, traces: Sequence[Trace], video: Optional[Video] = None, *, rtt_s: float = 0.08,
                 trace_paths: Optional[Sequence[str]] = None) -> None:
        super().__init__(traces, video)
        self.rtt_s = rtt_s
        self.trace_paths = list(trace_paths) if trace_paths is not None else None
        self._session = None

    def _open(self, trace, start, rng):
        from emu.apps.abr.packet_session import SteppedPacketSession

        idx = self.traces.index(trace)
        path = self.trace_paths[idx] if self.trace_paths is not None else None
        self._session = SteppedPacketSession(self.video, trace, path, start=start, rtt_s=self.rtt_s,
                                             seed=int(rng.integers(2**31)))

    def _fetch(self, level):
        return self._session.download(level)
