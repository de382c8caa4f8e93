"""The player side every policy sees: the Pensieve state, the per-chunk records, and a session driver.

State (6 x 6 float32, NetLLM ``run_baseline.py`` / ``plm_special/test.py``; Pensieve ``S_INFO`` x ``S_LEN``
with ``S_LEN = 6``), rolled left by one column after each chunk:

====  ===========================================================
row   last column (or whole row)
====  ===========================================================
0     last bitrate / 4300 kbit/s
1     buffer / 10 s
2     throughput of the last 6 chunks, bytes / delay in ms / 1000 (= MB/s)
3     download time of the last 6 chunks / 10 s (seconds, / 10)
4     next chunk's size at each of the 6 levels, MB (whole row)
5     chunks remaining / 48
====  ===========================================================

A session starts by fetching chunk 0 at level 0 (``DEFAULT_QUALITY = 0``); every later level is the policy's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from emu.apps.abr.chunk_sim import ChunkResult
from emu.apps.abr.qoe import chunk_qoe, session_summary
from emu.apps.abr.video import BITRATES_KBPS, N_CHUNKS, N_LEVELS

__all__ = ["Observation", "Policy", "SessionLog", "PensieveState", "DEFAULT_LEVEL", "run_lockstep"]

DEFAULT_LEVEL = 0        # DEFAULT_QUALITY (Genet/NetLLM; Pensieve used 1)
S_INFO, S_LEN = 6, 6
BUFFER_NORM_S = 10.0     # BUFFER_NORM_FACTOR


@dataclass(frozen=True)
class Observation:
    """What a policy sees after a chunk: the Pensieve state and the raw values some policies need."""

    state: np.ndarray        # (6, 6) float32, see the module docstring
    buffer_s: float
    last_level: int
    chunks_remaining: int
    step: int                # decisions taken before this one in the session (0 for the first decision)
    reward: float            # QoE of the chunk just fetched
    next_sizes_bytes: tuple


class Policy(Protocol):
    """A bitrate policy deciding for ``n`` sessions in lockstep (one observation per session)."""

    name: str

    def reset(self, n_sessions: int) -> None: ...

    def select(self, obs: Sequence[Observation]) -> list[int]: ...


class PensieveState:
    """The rolling 6x6 state of one session."""

    def __init__(self) -> None:
        self.state = np.zeros((S_INFO, S_LEN), dtype=np.float32)

    def update(self, result: ChunkResult) -> np.ndarray:
        s = np.roll(self.state, -1, axis=1)
        s[0, -1] = BITRATES_KBPS[result.level] / float(max(BITRATES_KBPS))
        s[1, -1] = result.buffer_s / BUFFER_NORM_S
        delay_ms = result.delay_s * 1000.0
        s[2, -1] = float(result.size_bytes) / delay_ms / 1000.0
        s[3, -1] = delay_ms / 1000.0 / BUFFER_NORM_S
        s[4, :N_LEVELS] = np.asarray(result.next_sizes_bytes, dtype=float) / 1e6
        s[5, -1] = min(result.chunks_remaining, N_CHUNKS) / float(N_CHUNKS)
        self.state = s
        return s.copy()


@dataclass
class SessionLog:
    """Per-chunk records of one session (SI units) and its QoE summary."""

    levels: list = field(default_factory=list)
    bitrates_kbps: list = field(default_factory=list)
    rebuffers_s: list = field(default_factory=list)
    buffers_s: list = field(default_factory=list)
    delays_s: list = field(default_factory=list)
    sizes_bytes: list = field(default_factory=list)
    throughputs_bps: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    times_s: list = field(default_factory=list)   # session clock when each chunk finished (plus any sleep)
    states: list = field(default_factory=list)    # state each decision was taken from (for experience pools)

    def add(self, result: ChunkResult) -> float:
        last = self.bitrates_kbps[-1] if self.bitrates_kbps else BITRATES_KBPS[result.level]
        bitrate = BITRATES_KBPS[result.level]
        reward = chunk_qoe(bitrate, result.rebuffer_s, last)
        self.levels.append(result.level)
        self.bitrates_kbps.append(bitrate)
        self.rebuffers_s.append(result.rebuffer_s)
        self.buffers_s.append(result.buffer_s)
        self.delays_s.append(result.delay_s)
        self.sizes_bytes.append(result.size_bytes)
        self.throughputs_bps.append(result.size_bytes * 8.0 / result.delay_s)
        self.rewards.append(reward)
        prev = self.times_s[-1] if self.times_s else 0.0
        self.times_s.append(prev + result.delay_s + result.sleep_s)
        return reward

    def summary(self) -> dict[str, float]:
        return session_summary(self.bitrates_kbps, self.rebuffers_s)


class SessionDriver:
    """Turns chunk results into observations for one session."""

    def __init__(self) -> None:
        self.state = PensieveState()
        self.log = SessionLog()
        self.step = -1

    def on_chunk(self, result: ChunkResult) -> Observation:
        reward = self.log.add(result)
        state = self.state.update(result)
        self.step += 1
        return Observation(state=state, buffer_s=result.buffer_s, last_level=result.level,
                           chunks_remaining=result.chunks_remaining, step=self.step, reward=reward,
                           next_sizes_bytes=result.next_sizes_bytes)


def run_lockstep(downloads: Sequence[Callable[[int], ChunkResult]], policy: Policy,
                 record_states: bool = False) -> list[SessionLog]:
    """Play one session per ``downloads[i]`` (a function level -> ChunkResult of the next chunk) in lockstep:
    chunk 0 at ``DEFAULT_LEVEL``, then the policy's choice for each of the other chunks."""
    n = len(downloads)
    drivers = [SessionDriver() for _ in range(n)]
    policy.reset(n)
    levels = [DEFAULT_LEVEL] * n
    for chunk in range(N_CHUNKS):
        obs = []
        for i in range(n):
            obs.append(drivers[i].on_chunk(downloads[i](levels[i])))
        if chunk == N_CHUNKS - 1:
            break
        levels = [int(x) for x in policy.select(obs)]
        for i in range(n):
            if not 0 <= levels[i] < N_LEVELS:
                raise ValueError(f"policy {policy.name}: level {levels[i]} outside [0, {N_LEVELS - 1}]")
            if record_states:
                drivers[i].log.states.append(obs[i].state)
    return [d.log for d in drivers]
