"""The packet-level ABR app: a video server and a DASH-like client player as one App-contract endpoint pair.

The client (``dst``) asks for each chunk with a small request over a reliable stream (``emu.transport``) to the
server (``src``); the server answers over a second reliable stream with the chunk's bytes. The player measures
the download time (request sent -> last byte in order) and throughput itself, so TCP and queueing dynamics enter
the policy's state; its buffer follows the released simulator's accounting (rebuffer = max(delay - buffer, 0),
+4 s per chunk, 60-s cap drained in 500-ms sleeps; ``emu.apps.abr.chunk_sim``), with the network delay
measured instead of computed. Chunk 0 is fetched at level 0; the policy picks every later level.

    from emu.apps import install
    ep = install(topo.net, "abr", src=topo.senders[0], dst=topo.receivers[0], scheme="mpc")

``result()``: ``qoe`` (mean QoE_lin over chunks 2..48), ``bitrate_mbps``, ``rebuffer_s`` (mean per chunk),
``smooth_mbps``, ``chunks``, ``total_rebuffer_s``, ``session_s``; ``log`` holds the per-chunk records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from emu.apps.abr.chunk_sim import BUFFER_CAP_S, DRAIN_SLEEP_S, ChunkResult
from emu.apps.abr.player import DEFAULT_LEVEL, SessionDriver
from emu.apps.abr.video import CHUNK_S, N_CHUNKS, N_LEVELS, Video, load_video
from emu.apps.base import AppSpec, Endpoint, InstallContext
from emu.validate import check_int

__all__ = ["AbrConfig", "AbrSession", "install"]


@dataclass(frozen=True, kw_only=True)
class AbrConfig:
    """One player/server pair.

    video: a chunk-size folder (``video_size_0`` ... ``_5``) or a shared video name (``video1``, ``video2``);
    cc: the server's congestion controller; request_bytes: size of each chunk request (an HTTP GET);
    models_dir: folder of the learned policies' cards (default: packaged); policy_seed: seeds sampling policies;
    sample: learned policies sample their softmax (as released) instead of taking the most likely level.
    """

    video: str = "video1"
    cc: str = "cubic"
    request_bytes: int = 200
    models_dir: Optional[str] = None
    policy_seed: int = 0
    sample: bool = False     # learned policies: sample the softmax (released) instead of taking the argmax

    def __post_init__(self) -> None:
        if not isinstance(self.video, str) or not self.video:
            raise ValueError(f"video: must be a folder path or a video name, got {self.video!r}")
        if self.cc not in ("cubic", "reno", "prague"):
            raise ValueError(f"cc: must be one of cubic, reno, prague, got {self.cc!r}")
        check_int("request_bytes", self.request_bytes, lo=1, hi=1_000_000)
        check_int("policy_seed", self.policy_seed, lo=0, hi=2**63 - 1)
        if not isinstance(self.sample, bool):
            raise ValueError(f"sample: must be True or False, got {self.sample!r}")


class AbrSession(Endpoint):
    """Server + player. ``decide`` (default: the scheme's policy) maps an observation to the next level; it
    may return None to pause the session until ``request(level)`` is called (the stepped Gymnasium env)."""

    app = "abr"

    def __init__(self, ctx: InstallContext, *, video: Optional[Video] = None, policy: Any = None,
                 decide: Optional[Callable[[Any], Optional[int]]] = None,
                 on_chunk: Optional[Callable[[ChunkResult], None]] = None) -> None:
        super().__init__(ctx)
        cfg: AbrConfig = ctx.config
        self.video = video if video is not None else load_video(cfg.video)
        if policy is None and decide is None:
            from emu.apps.abr.schemes import make_policy

            policy = make_policy(ctx.scheme, self.video, models_dir=cfg.models_dir, seed=cfg.policy_seed,
                                 sample=cfg.sample)
        self.policy = policy
        if policy is not None:
            policy.reset(1)
        self._decide = decide
        self._on_chunk = on_chunk
        self.driver = SessionDriver()
        self.buffer_s = 0.0
        self.chunk = 0
        self._requested_bytes = 0
        self._delivered_target = 0
        self._request_s = math.nan
        self._level = DEFAULT_LEVEL
        self._data_tx = None
        self._req_tx = None
        self._req_seen = 0
        self._pending: list[int] = []
        self.finished_s = math.nan

    @property
    def log(self):
        return self.driver.log

    # -- wiring ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        from emu.transport.stream import open_stream

        cfg: AbrConfig = self.config
        self._data_tx, _ = open_stream(self.sim, self.ctx.src, self.ctx.dst, cc=cfg.cc, flow=f"{self.name}.data",
                                       on_data=self._on_data)
        self._req_tx, _ = open_stream(self.sim, self.ctx.dst, self.ctx.src, cc="cubic",
                                      flow=f"{self.name}.req", on_data=self._on_request)
        self.sim.call_at(self.start_s, lambda _: self.request(DEFAULT_LEVEL))

    def request(self, level: int) -> None:
        """Ask the server for the next chunk at ``level`` (now)."""
        if self.chunk >= N_CHUNKS:
            raise RuntimeError(f"app {self.name!r}: all {N_CHUNKS} chunks were fetched")
        if not 0 <= int(level) < N_LEVELS:
            raise ValueError(f"level: must be in [0, {N_LEVELS - 1}], got {level!r}")
        self._level = int(level)
        self._request_s = self.sim.now_s
        self._pending.append(self.video.size(self._level, self.chunk))
        self._req_tx.write(self.config.request_bytes)

    # -- server ---------------------------------------------------------------------------------------------------

    def _on_request(self, total_bytes: int, now_s: float) -> None:
        per = self.config.request_bytes
        while self._pending and total_bytes >= (self._req_seen + 1) * per:
            self._req_seen += 1
            size = self._pending.pop(0)
            self._delivered_target += size
            self._data_tx.write(size)

    # -- player ---------------------------------------------------------------------------------------------------

    def _on_data(self, total_bytes: int, now_s: float) -> None:
        if self._delivered_target == 0 or total_bytes < self._delivered_target or \
                len(self.log.levels) > self.chunk:
            return
        delay_s = now_s - self._request_s
        size = self.video.size(self._level, self.chunk)
        rebuf = max(delay_s - self.buffer_s, 0.0)
        self.buffer_s = max(self.buffer_s - delay_s, 0.0) + CHUNK_S
        sleep_s = 0.0
        if self.buffer_s > BUFFER_CAP_S:
            sleep_s = math.ceil((self.buffer_s - BUFFER_CAP_S) / DRAIN_SLEEP_S) * DRAIN_SLEEP_S
            self.buffer_s -= sleep_s
        self.chunk += 1
        remaining = N_CHUNKS - self.chunk
        next_chunk = self.chunk if self.chunk < N_CHUNKS else 0
        result = ChunkResult(level=self._level, size_bytes=size, delay_s=delay_s, sleep_s=sleep_s,
                             buffer_s=self.buffer_s, rebuffer_s=rebuf,
                             next_sizes_bytes=tuple(int(x) for x in self.video.sizes_bytes[:, next_chunk]),
                             chunks_remaining=remaining, end_of_video=remaining == 0)
        obs = self.driver.on_chunk(result)
        if self._on_chunk is not None:
            self._on_chunk(result)
        if remaining == 0:
            self.finished_s = now_s
            return
        level = self._decide(obs) if self._decide is not None else int(self.policy.select([obs])[0])
        if level is not None:
            self.sim.call_in(sleep_s, lambda _, lv=int(level): self.request(lv))

    # -- contract -------------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return not math.isnan(self.finished_s)

    def result(self) -> dict[str, Any]:
        nan = math.nan
        if len(self.log.levels) >= 2:
            s = self.log.summary()
        else:
            s = {"qoe": nan, "bitrate_mbps": nan, "rebuffer_s": nan, "smooth_mbps": nan}
        return {"qoe": s["qoe"], "bitrate_mbps": s["bitrate_mbps"], "rebuffer_s": s["rebuffer_s"],
                "smooth_mbps": s["smooth_mbps"], "chunks": len(self.log.levels),
                "total_rebuffer_s": float(np.sum(self.log.rebuffers_s[1:])) if self.log.rebuffers_s else nan,
                "session_s": (self.finished_s if self.done else self.sim.now_s) - self.start_s}


def install(ctx: InstallContext) -> AbrSession:
    return AbrSession(ctx)
