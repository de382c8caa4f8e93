"""H.265 through PyAV (libx265) frame by frame, and Reed-Solomon erasure coding with zfec.

Encoder settings follow GRACE's H.26x script (apps.md §3.5: preset veryfast, tune zerolatency) in real-time
form: one-pass ABR at the target bitrate with a one-second VBV (``vbv-maxrate`` = bitrate, ``vbv-bufsize`` =
bitrate x 1 s), no B-frames, no lookahead, no scene-cut or periodic key frames (key frames only on demand:
the first frame and after a picture-loss indication, as a WebRTC sender does), ``repeat-headers`` so every IDR
carries VPS/SPS/PPS. Each ``encode`` call returns that frame's real encoded bytes (zero-latency: one packet per
frame, no delay). libx265's ffmpeg wrapper cannot change the bitrate of an open encoder, so ``restart`` opens a
new one (its first frame is an IDR).

FEC (``zfec``: Rizzo's Vandermonde Reed-Solomon erasure code over GF(2^8), systematic): a frame's bytes are cut
into k equal blocks of at most ``payload_bytes`` (zero padded), and n - k parity blocks are added; any k of the n
blocks recover the frame exactly.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


class X265Encoder:
    """Real-time x265 encoder at ``bitrate_bps`` for ``width`` x ``height`` frames at ``fps``."""

    def __init__(self, width: int, height: int, fps: float, bitrate_bps: float, preset: str = "veryfast") -> None:
        self.width, self.height, self.fps = width, height, fps
        self.preset = preset
        self.bitrate_bps = float(bitrate_bps)
        self._ctx = None
        self._pts = 0
        self.restart(bitrate_bps)

    def restart(self, bitrate_bps: float) -> None:
        """Open a fresh encoder at ``bitrate_bps``; the next frame is an IDR."""
        import av

        kbps = max(8, int(round(bitrate_bps / 1000)))
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        rate = Fraction(self.fps).limit_denominator(1001)
        ctx.framerate = rate
        ctx.time_base = 1 / rate
        ctx.bit_rate = kbps * 1000
        params = (f"keyint=-1:min-keyint=1:bframes=0:scenecut=0:rc-lookahead=0:repeat-headers=1:"
                  f"vbv-maxrate={kbps}:vbv-bufsize={kbps}:frame-threads=1:pools=1:log-level=error")
        ctx.options = {"preset": self.preset, "tune": "zerolatency", "forced-idr": "1", "x265-params": params}
        ctx.open()
        self._ctx = ctx
        self.bitrate_bps = kbps * 1000.0
        self._force_idr = True

    def encode(self, frame: np.ndarray, force_idr: bool = False) -> tuple[bytes, bool]:
        """Encode one uint8 (H, W, 3) RGB frame; return (bytes, is_idr)."""
        import av

        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
        vf.pts = self._pts
        self._pts += 1
        if force_idr or self._force_idr:
            vf.pict_type = av.video.frame.PictureType.I
            self._force_idr = False
        packets = self._ctx.encode(vf)
        if len(packets) != 1:
            raise RuntimeError(f"x265 returned {len(packets)} packets for one frame (expected zero latency)")
        return bytes(packets[0]), bool(packets[0].is_keyframe)


class HevcDecoder:
    """Decodes complete frames in order; ``reset`` before an IDR after a broken reference chain."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        import av

        self._ctx = av.CodecContext.create("hevc", "r")
        self._ctx.thread_count = 1

    def decode(self, data: bytes) -> np.ndarray:
        import av

        frames = self._ctx.decode(av.Packet(data))
        if len(frames) != 1:
            raise RuntimeError(f"HEVC decoder returned {len(frames)} frames for one packet")
        return frames[0].to_ndarray(format="rgb24")


def split_blocks(data: bytes, payload_bytes: int) -> list[bytes]:
    """Cut ``data`` into ceil(len / payload) packets of at most ``payload_bytes`` (the last may be shorter)."""
    return [data[i:i + payload_bytes] for i in range(0, len(data), payload_bytes)] or [b""]


def parity_count(k: int, redundancy: float) -> int:
    """Parity blocks so that parity / (k + parity) is at least ``redundancy`` (and at least 1)."""
    if not 0 < redundancy < 1:
        raise ValueError(f"redundancy: must be in (0, 1), got {redundancy!r}")
    return max(1, math.ceil(k * redundancy / (1.0 - redundancy) - 1e-9))


def fec_encode(data: bytes, payload_bytes: int, redundancy: float) -> tuple[list[bytes], int]:
    """Blocks of a Reed-Solomon (n, k) code of ``data``: returns (n blocks of equal size, k)."""
    import zfec

    k = max(1, math.ceil(len(data) / payload_bytes))
    n = k + parity_count(k, redundancy)
    if n > 256:
        raise ValueError(f"fec: {n} blocks exceed GF(2^8)'s 256 (frame of {len(data)} bytes)")
    size = math.ceil(len(data) / k)
    blocks = [data[i * size:(i + 1) * size].ljust(size, b"\0") for i in range(k)]
    return list(zfec.Encoder(k, n).encode(blocks)), k


def fec_decode(blocks: dict[int, bytes], k: int, n: int, length: int) -> bytes:
    """Recover the ``length`` bytes of a frame from any ``k`` of its ``n`` blocks (index -> bytes)."""
    import zfec

    if len(blocks) < k:
        raise ValueError(f"fec: {len(blocks)} blocks cannot recover a k={k} frame")
    nums = [int(i) for i in sorted(blocks)[:k]]
    out = zfec.Decoder(k, n).decode([blocks[i] for i in nums], nums)
    return b"".join(out)[:length]
