"""The chunk-level simulator with the released semantics (Pensieve ``sim/env.py`` as copied by Genet and
NetLLM ``adaptive_bitrate_streaming/baseline_special/env.py``).

One session plays one video over one trace, starting at sample ``start_index`` (the released ``mahimahi_ptr``,
drawn in ``[1, len)``):

- a chunk of ``size`` bytes is delivered at ``mbps[ptr]`` x 0.95 (``PACKET_PAYLOAD_PORTION``) over each trace
  interval ``(t[ptr-1], t[ptr]]``, the last one fractionally; after the last sample the trace loops to ptr 1
  with time 0;
- the download time gets +80 ms (``LINK_RTT``) and, when ``noise`` is on, a multiplicative U(0.9, 1.1) factor
  (the released ``fixed=False``; tests run ``fixed=True``, i.e. no noise);
- rebuffer = max(delay - buffer, 0); buffer = max(buffer - delay, 0) + 4 s;
- above 60 s of buffer (``BUFFER_THRESH``) the player sleeps ceil(excess / 500 ms) x 500 ms, draining the
  buffer while trace time passes (no delay is added to the download time).

Arithmetic is kept in milliseconds and in the released order, so the floats match the released code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.apps.abr.traces import Trace
from emu.apps.abr.video import CHUNK_S, N_CHUNKS, N_LEVELS, Video

__all__ = ["ChunkResult", "ChunkSimulator", "start_index", "LINK_RTT_S", "BUFFER_CAP_S", "PAYLOAD_PORTION"]

LINK_RTT_S = 0.080            # LINK_RTT = 80 ms
BUFFER_CAP_S = 60.0           # BUFFER_THRESH = 60 s
DRAIN_SLEEP_S = 0.5           # DRAIN_BUFFER_SLEEP_TIME = 500 ms
PAYLOAD_PORTION = 0.95        # PACKET_PAYLOAD_PORTION
NOISE_LOW, NOISE_HIGH = 0.9, 1.1


@dataclass(frozen=True)
class ChunkResult:
    """What the player learns from one chunk download (SI units)."""

    level: int
    size_bytes: int
    delay_s: float            # request to last byte, including the link RTT (the released "delay")
    sleep_s: float            # idle time after the chunk because the buffer was full
    buffer_s: float           # buffer after the chunk was added (and after any sleep)
    rebuffer_s: float         # stall while this chunk downloaded
    next_sizes_bytes: tuple   # sizes of the next chunk at every level
    chunks_remaining: int     # chunks still to fetch after this one
    end_of_video: bool


def start_index(trace: Trace, rng: np.random.Generator) -> int:
    """A random starting sample in ``[1, len)`` (the released ``np.random.randint(1, len(cooked_bw))``)."""
    return int(rng.integers(1, trace.mbps.size))


class ChunkSimulator:
    """One session of 48 chunks over ``trace`` from ``start``; ``download(level)`` fetches the next chunk."""

    def __init__(self, video: Video, trace: Trace, *, start: int = 1,
                 noise_rng: Optional[np.random.Generator] = None) -> None:
        if not 1 <= start < trace.mbps.size:
            raise ValueError(f"start: must be in [1, {trace.mbps.size - 1}] for trace {trace.name}, got {start}")
        self.video = video
        self.trace = trace
        self.noise_rng = noise_rng
        self._time_s = trace.times_s
        self.ptr = start
        self.last_time_s = float(trace.times_s[start - 1])
        self.chunk = 0
        self.buffer_ms = 0.0

    @property
    def done(self) -> bool:
        return self.chunk >= N_CHUNKS

    def _advance_ptr(self) -> None:
        self.ptr += 1
        if self.ptr >= self.trace.mbps.size:
            self.ptr = 1
            self.last_time_s = 0.0

    def download(self, level: int) -> ChunkResult:
        if self.done:
            raise RuntimeError("download: the session already played all chunks")
        if not (isinstance(level, (int, np.integer)) and 0 <= level < N_LEVELS):
            raise ValueError(f"level: must be an integer in [0, {N_LEVELS - 1}], got {level!r}")
        size = self.video.size(int(level), self.chunk)
        bw = self.trace.mbps
        times = self._time_s
        delay = 0.0
        sent = 0.0
        while True:
            throughput = bw[self.ptr] * 1e6 / 8.0          # bytes per second, as the released code's "per ms" x 1000
            duration = times[self.ptr] - self.last_time_s
            payload = throughput * duration * PAYLOAD_PORTION
            if sent + payload > size:
                fractional = (size - sent) / throughput / PAYLOAD_PORTION
                delay += fractional
                self.last_time_s += fractional
                break
            sent += payload
            delay += duration
            self.last_time_s = float(times[self.ptr])
            self._advance_ptr()
        delay *= 1000.0
        delay += LINK_RTT_S * 1000.0
        if self.noise_rng is not None:
            delay *= self.noise_rng.uniform(NOISE_LOW, NOISE_HIGH)
        rebuf = max(delay - self.buffer_ms, 0.0)
        self.buffer_ms = max(self.buffer_ms - delay, 0.0)
        self.buffer_ms += CHUNK_S * 1000.0
        sleep = 0.0
        cap_ms = BUFFER_CAP_S * 1000.0
        if self.buffer_ms > cap_ms:
            drain = self.buffer_ms - cap_ms
            sleep = np.ceil(drain / (DRAIN_SLEEP_S * 1000.0)) * DRAIN_SLEEP_S * 1000.0
            self.buffer_ms -= sleep
            left = sleep
            while True:
                duration = times[self.ptr] - self.last_time_s
                if duration > left / 1000.0:
                    self.last_time_s += left / 1000.0
                    break
                left -= duration * 1000.0
                self.last_time_s = float(times[self.ptr])
                self._advance_ptr()
        self.chunk += 1
        remaining = N_CHUNKS - self.chunk
        next_chunk = self.chunk if self.chunk < N_CHUNKS else 0   # the released env wraps to the next video
        return ChunkResult(level=int(level), size_bytes=size, delay_s=delay / 1000.0, sleep_s=sleep / 1000.0,
                           buffer_s=self.buffer_ms / 1000.0, rebuffer_s=rebuf / 1000.0,
                           next_sizes_bytes=tuple(int(x) for x in self.video.sizes_bytes[:, next_chunk]),
                           chunks_remaining=remaining, end_of_video=remaining == 0)
