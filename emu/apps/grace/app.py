"""Grace++ and its H.265 baselines as emulator applications: a sender and a receiver per scheme.

Common to every scheme (one run = one scheme on identical conditions):

- **Frames** are captured at the clip's rate (frame f at f / fps). The sender encodes each (a fixed compute time
  from measured encode timings, ``ComputeTimes``), cuts it into packets of at most ``payload_bytes`` and hands
  each packet to an ``RtcSender`` (``emu.transport.realtime``): paced datagrams with ``header_bytes`` of
  IP/UDP/RTP header, driven by a rate controller whose ``target_rate_bps`` sets the encoder's budget. The
  controller is the project's ``rtc`` controller with its loss response turned off (``RandomLossRtc``): the
  losses injected here are random (wireless-like), not congestion, and every scheme sees the same controller.
- **Control messages** (NACK, picture-loss indication, Grace's per-frame packet report) go back on a separate
  UDP socket on the reverse path. Flows are named from the session (``flow``: media, ``flow.fb``: transport
  feedback, ``flow.ctrl``: control) and every port is a free one, so two sessions coexist on one network.
- **The receiver** decodes in frame order (a fixed decode time per frame, one decoder) and renders a frame as
  soon as it is decoded; a frame decoded after a later one would be shown is never rendered.

Schemes:

``grace`` / ``grace_nomask``
    Frame 0 is an x265 IDR (the same bytes H.265 sends first), delivered reliably (NACK + retransmission). Every
    later frame is a neural P-frame in K independently decodable packets (``emu.apps.grace.codec``); the rate
    point is the highest whose estimated size fits ``target_rate / fps``. No retransmission, no key frames.
    The receiver decodes frame f with whatever packets it has (missing latent elements zero-filled) as soon as
    all K arrived, a packet of a later frame arrived (the path is FIFO, so the rest is lost), no packet of f
    came for one frame interval, or the deadline ``capture + decode_deadline_s`` passed; it renders it if at least one packet arrived, and reports which
    packets it used. State sync ([RECALL] apps.md §3.4): on a report with missing packets the sender re-decodes
    that frame with the same loss pattern and every later frame it has sent, exactly as the receiver did, so its
    reference matches the receiver's again one round trip after a loss (no key frame needed).
``h265_retx``
    NACK-based retransmission (RFC 4585 generic NACK): the receiver NACKs sequence gaps at once and again every
    ``nack_interval_s`` (1.25 x the base RTT); frames decode in order once complete. A frame still incomplete at
    ``capture + give_up_s`` is abandoned: the reference chain is broken, the receiver sends a PLI (picture loss
    indication) and skips frames until the requested IDR decodes.
``h265_fec20`` / ``h265_fec50``
    Each frame is Reed-Solomon coded (zfec) with 20 % / 50 % of its packets parity; the encoder's target is the
    rate times (1 - redundancy) so the total matches. A frame decodes when any k of its n packets arrived; it is
    lost when a packet of a later frame arrived first (or the give-up deadline passed) -> PLI, skip to the IDR.
``h265_freeze``
    No protection: a frame with any lost packet is lost -> PLI; the picture freezes until the IDR decodes.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from emu.transport.cc.rtc import RtcRateController
from emu.transport.realtime import RtcReceiver, RtcSender
from emu.transport.udp import UdpSocket

SCHEMES = ("grace", "grace_nomask", "h265_retx", "h265_fec20", "h265_fec50", "h265_freeze")
FEC_REDUNDANCY = {"h265_fec20": 0.2, "h265_fec50": 0.5}


class RandomLossRtc(RtcRateController):
    """The ``rtc`` controller without its loss response: losses here are random, not congestion (delay and
    ECN responses unchanged). Loss events are still counted."""

    name = "rtc-random-loss"

    def on_loss(self, event) -> None:
        self.loss_events += 1


@dataclass(frozen=True, kw_only=True)
class ComputeTimes:
    """Per-frame codec compute times in seconds (measured on CPU at 128 x 128: the model card's ``timing_ms``
    for the neural codec, ``h265_timing_ms`` for x265/HEVC through PyAV; see ``codec.card_metrics``)."""

    grace_encode_s: float = 0.006
    grace_decode_s: float = 0.012
    h265_encode_s: float = 0.004
    h265_decode_s: float = 0.001

    def __post_init__(self) -> None:
        for name in ("grace_encode_s", "grace_decode_s", "h265_encode_s", "h265_decode_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name}: must be in [0, 1) seconds, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """What sender and receiver agree on (and the receiver's timers). ``rtt_s`` is the round trip the NACK and
    PLI timers assume; frame f is captured at ``start_s + f / fps``."""

    fps: float
    n_frames: int
    bitrate_bps: float
    payload_bytes: int = 200
    header_bytes: int = 40
    rtt_s: float = 0.1
    decode_deadline_s: float = 0.4
    give_up_s: float = 1.0
    ctrl_bytes: int = 64
    times: ComputeTimes = ComputeTimes()
    session_seed: int = 0
    start_s: float = 0.0

    @property
    def nack_interval_s(self) -> float:
        return max(0.02, 1.25 * self.rtt_s)

    def capture_s(self, frame: int) -> float:
        return self.start_s + frame / self.fps


class MediaPacket:
    """One media datagram's application payload (sizes on the wire are ``len(data)`` + header)."""

    __slots__ = ("count", "data", "frame", "idr", "index", "k", "length", "q", "seq")

    def __init__(self, seq: int, frame: int, index: int, count: int, k: int, length: int, idr: bool, q: int,
                 data: bytes) -> None:
        self.seq = seq
        self.frame = frame
        self.index = index
        self.count = count      # packets of the frame (n, parity included)
        self.k = k              # packets needed (k of n for FEC; count otherwise)
        self.length = length    # frame bytes before FEC padding
        self.idr = idr
        self.q = q              # neural rate point (-1 for x265)
        self.data = data


@dataclass
class FrameBuffer:
    count: int
    k: int
    length: int
    idr: bool
    q: int
    got: dict = field(default_factory=dict)
    last_arrival_s: float = 0.0


# -- the I-frame codec ---------------------------------------------------------------------------------------------


def intra_frame(frame: np.ndarray, fps: float, bitrate_bps: float) -> tuple[bytes, np.ndarray]:
    """Frame 0 of the Grace schemes: an x265 IDR at the session bitrate (the same bytes H.265 starts with)."""
    from emu.apps.grace.h265 import HevcDecoder, X265Encoder

    enc = X265Encoder(frame.shape[1], frame.shape[0], fps, bitrate_bps)
    data, idr = enc.encode(frame, force_idr=True)
    assert idr
    return data, HevcDecoder().decode(data)


# -- sender side ---------------------------------------------------------------------------------------------------


class VideoSender:
    """Captures frames at the clip's rate, encodes them (subclass) and sends packets through an RtcSender."""

    reliable_all = False  # retransmit every NACKed packet (H.265 retx) or only key-frame packets

    def __init__(self, sim: Any, host: Any, dst: str, dport: int, cfg: SessionConfig, frames: np.ndarray,
                 controller: RtcRateController, *, flow: str) -> None:
        self.sim = sim
        self.cfg = cfg
        self.frames = frames
        self.controller = controller
        self.rtc = RtcSender(sim, host, dst, dport, cc=controller, max_payload_bytes=cfg.payload_bytes,
                             header_bytes=cfg.header_bytes, flow=flow)
        self.ctrl = UdpSocket(sim, host, None, on_receive=self._on_ctrl, flow=f"{flow}.ctrl")
        self._seq = 0
        self._store: dict[int, MediaPacket] = {}
        self._resent_s: dict[int, float] = {}
        self.frame_bytes = np.zeros(cfg.n_frames, dtype=np.int64)
        self.idr_frames: list[int] = []
        self.retransmissions = 0
        for f in range(cfg.n_frames):
            sim.call_at(cfg.capture_s(f), self._capture, f)

    @property
    def target_rate_bps(self) -> float:
        return min(self.cfg.bitrate_bps, self.rtc.target_rate_bps)

    def media_budget_bytes(self) -> float:
        """Payload bytes per frame that keep the wire rate at the target."""
        per_frame = self.target_rate_bps / self.cfg.fps / 8.0
        return per_frame * self.cfg.payload_bytes / (self.cfg.payload_bytes + self.cfg.header_bytes)

    def _capture(self, frame: int) -> None:
        packets, encode_s = self.encode(frame)
        self.sim.call_in(encode_s, self._send_all, packets)

    def encode(self, frame: int) -> tuple[list[MediaPacket], float]:
        raise NotImplementedError

    def _packets(self, frame: int, blocks: list[bytes], k: int, length: int, idr: bool, q: int) -> list[MediaPacket]:
        out = []
        for j, data in enumerate(blocks):
            out.append(MediaPacket(self._seq, frame, j, len(blocks), k, length, idr, q, data))
            self._seq += 1
        self.frame_bytes[frame] = sum(len(b) for b in blocks)
        if idr:
            self.idr_frames.append(frame)
        return out

    def _send_all(self, packets: list[MediaPacket]) -> None:
        for pkt in packets:
            if self.reliable_all or pkt.idr:
                self._store[pkt.seq] = pkt
            self.rtc.send(max(1, len(pkt.data)), pkt)

    def _on_ctrl(self, pkt, owd_s: float) -> None:
        msg = pkt.payload
        if not isinstance(msg, tuple):
            return
        if msg[0] == "nack":
            now = self.sim.now_s
            # Like WebRTC's RTPSender: do not resend a packet resent less than one RTT ago (the NACK crossed the
            # retransmission), counting the time the pacer still holds it.
            pace = self.controller.pacing_rate_bps or self.cfg.bitrate_bps
            hold_s = self.cfg.rtt_s + self.rtc.queued_bytes * 8.0 / pace
            for seq in msg[1]:
                stored = self._store.get(seq)
                if stored is not None and now - self._resent_s.get(seq, -math.inf) >= hold_s:
                    self._resent_s[seq] = now
                    self.retransmissions += 1
                    self.rtc.send(max(1, len(stored.data)), stored)
        else:
            self.on_control(msg)

    def on_control(self, msg: tuple) -> None:
        pass


class H265Sender(VideoSender):
    """x265 frame by frame; IDR on the first frame and after a PLI; FEC blocks when ``redundancy`` > 0."""

    def __init__(self, *args, redundancy: float = 0.0, retransmit: bool = False, **kw) -> None:
        from emu.apps.grace.h265 import X265Encoder

        self.redundancy = redundancy
        self.reliable_all = retransmit
        super().__init__(*args, **kw)
        h, w = self.frames.shape[1:3]
        self.encoder = X265Encoder(w, h, self.cfg.fps, self._encoder_rate())
        self._force_idr = False
        self._last_restart_s = self.cfg.start_s
        self._last_idr_s = -math.inf
        self.pli_received = 0

    def _encoder_rate(self) -> float:
        """Media bitrate: the target minus header overhead, times (1 - redundancy) for FEC."""
        cfg = self.cfg
        return self.target_rate_bps * cfg.payload_bytes / (cfg.payload_bytes + cfg.header_bytes) * (1 - self.redundancy)

    def encode(self, frame: int) -> tuple[list[MediaPacket], float]:
        from emu.apps.grace.h265 import fec_encode, split_blocks

        now = self.sim.now_s
        want = self._encoder_rate()
        if abs(want - self.encoder.bitrate_bps) > 0.25 * self.encoder.bitrate_bps and now - self._last_restart_s >= 1.0:
            # libx265 in ffmpeg cannot change its rate while open: restart (the next frame is an IDR).
            self.encoder.restart(want)
            self._last_restart_s = now
        data, idr = self.encoder.encode(self.frames[frame], force_idr=self._force_idr)
        self._force_idr = False
        if idr:
            self._last_idr_s = now
        if self.redundancy > 0:
            blocks, k = fec_encode(data, self.cfg.payload_bytes, self.redundancy)
        else:
            blocks = split_blocks(data, self.cfg.payload_bytes)
            k = len(blocks)
        return self._packets(frame, blocks, k, len(data), idr, -1), self.cfg.times.h265_encode_s

    def on_control(self, msg: tuple) -> None:
        if msg[0] == "pli":
            self.pli_received += 1
            # A PLI sent before our last IDR could have arrived asks for nothing new.
            if self.sim.now_s - self._last_idr_s >= self.cfg.rtt_s:
                self._force_idr = True


class DecodeCache:
    """Memoises reconstructions by (frame, packets used, reference digest): sender and receiver of one run
    compute the same decodes (that is the point of state sync), so each is computed once."""

    def __init__(self) -> None:
        self._store: dict = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def digest(t) -> bytes:
        return hashlib.blake2b(t.numpy().tobytes(), digest_size=16).digest()

    def get(self, key, compute):
        value = self._store.get(key)
        if value is None:
            self.misses += 1
            value = compute()
            self._store[key] = (value, self.digest(value))
            if len(self._store) > 4096:
                self._store.pop(next(iter(self._store)))
            return self._store[key]
        self.hits += 1
        return value


class GraceSender(VideoSender):
    """Neural P-frames in independently decodable packets; follows the receiver's state from its reports."""

    def __init__(self, *args, codec: Any, cache: DecodeCache, intra: tuple[bytes, np.ndarray], **kw) -> None:
        self.codec = codec
        self.cache = cache
        self._intra = intra
        super().__init__(*args, **kw)
        self._sent: dict[int, tuple[np.ndarray, int, int]] = {}   # frame -> (symbols, q, K)
        self._got: dict[int, frozenset] = {}                      # frames reported with missing packets
        self._belief: dict[int, tuple[Any, bytes]] = {}           # frame -> (reconstruction, digest)
        self._last = -1
        self._dirty_from: int | None = None
        self._credit = 0.0
        self._q = codec.config.n_rates - 1
        self.resync_decodes = 0
        self.rate_points = np.full(self.cfg.n_frames, -1, dtype=np.int64)

    def encode(self, frame: int) -> tuple[list[MediaPacket], float]:
        from emu.apps.grace.codec import to_tensor
        from emu.apps.grace.h265 import split_blocks

        if frame == 0:
            data, image = self._intra
            ref = to_tensor(image)
            self._belief[0] = (ref, DecodeCache.digest(ref))
            self._last = 0
            blocks = split_blocks(data, self.cfg.payload_bytes)
            return self._packets(0, blocks, len(blocks), len(data), True, -1), self.cfg.times.h265_encode_s
        codec = self.codec
        self._resync()
        ref, ref_digest = self._belief[frame - 1]
        # Wire bytes per frame (headers included); a small leaky bucket (one frame deep) lets the discrete rate
        # points average out to the target.
        per_frame = self.target_rate_bps / self.cfg.fps / 8.0
        budget = per_frame + self._credit
        q = min(codec.config.n_rates - 1, self._q + 1)
        while True:
            symbols = codec.latent(self.frames[frame], ref, q)
            est = codec.estimate_bits(symbols, q) / 8.0 * 1.03
            n_est = max(1, math.ceil(est / (0.9 * self.cfg.payload_bytes)))
            est += n_est * (4 + self.cfg.header_bytes)          # range-coder flush and header per packet
            if est <= budget or q == 0:
                break
            q -= 1
        self._q = q
        self.rate_points[frame] = q
        enc = codec.packetise(symbols, q, frame, self.cfg.payload_bytes)
        wire = enc.size_bytes + enc.n_packets * self.cfg.header_bytes
        self._credit = min(per_frame, max(-per_frame, self._credit + per_frame - wire))
        self._sent[frame] = (symbols, q, enc.n_packets)
        self._last = frame
        self._belief[frame] = self._decode(frame, None, ref, ref_digest)
        return self._packets(frame, enc.packets, enc.n_packets, enc.size_bytes, False, q), self.cfg.times.grace_encode_s

    def _decode(self, frame: int, got: frozenset | None, ref, ref_digest: bytes):
        symbols, q, k = self._sent[frame]
        key = (frame, got if got is not None and len(got) < k else "all", ref_digest)
        def compute():
            masked, mask = self.codec.mask_symbols(symbols, k, frame, got)
            return self.codec.reconstruct(masked, ref, q, mask)

        return self.cache.get(key, compute)

    def on_control(self, msg: tuple) -> None:
        if msg[0] != "fb":
            return
        frame, got = msg[1], msg[2]
        if frame not in self._sent or len(got) >= self._sent[frame][2]:
            return
        self._got[frame] = got
        self._dirty_from = frame if self._dirty_from is None else min(self._dirty_from, frame)

    def _resync(self) -> None:
        """Re-decode the reported frames with their loss patterns, then every later frame already sent, as the
        receiver did: the next frame is encoded against exactly the receiver's reference. Done lazily, once per
        encoded frame, from the oldest frame reported since."""
        if self._dirty_from is None:
            return
        for g in range(self._dirty_from, self._last + 1):
            ref, digest = self._belief[g - 1]
            before = self.cache.misses
            self._belief[g] = self._decode(g, self._got.get(g), ref, digest)
            self.resync_decodes += self.cache.misses - before
        self._dirty_from = None


# -- receiver side -------------------------------------------------------------------------------------------------


class VideoReceiver:
    """Reassembles frames, tracks sequence gaps (NACKs when enabled) and records what it renders."""

    nack = False

    def __init__(self, sim: Any, host: Any, src: str, cfg: SessionConfig, *, flow: str) -> None:
        self.sim = sim
        self.cfg = cfg
        self.src = src
        self.ctrl_dport: int | None = None   # the sender's control port (``connect``)
        self.rtc = RtcReceiver(sim, host, None, on_message=self._on_message)
        self.ctrl = UdpSocket(sim, host, None, flow=f"{flow}.ctrl")
        n = cfg.n_frames
        self.rendered_s = np.full(n, np.nan)
        self.images: dict[int, np.ndarray] = {}
        self.frames: dict[int, FrameBuffer] = {}
        self.next_frame = 0
        self.max_frame_seen = -1
        self.decoder_free_s = cfg.start_s
        self._highest_seq = -1
        self._missing: dict[int, float] = {}   # seq -> time first detected
        self._nack_timer = False
        self.nacks_sent = 0
        self.last_shown = -1
        for f in range(n):
            if math.isfinite(self.deadline_s(f)):
                sim.call_at(self.deadline_s(f), self._on_deadline, f)

    def deadline_s(self, frame: int) -> float:
        return self.cfg.capture_s(frame) + self.cfg.give_up_s

    # -- control messages -------------------------------------------------------------------------------------

    def connect(self, sender: VideoSender) -> None:
        """Send control messages to ``sender``'s control socket."""
        self.ctrl_dport = sender.ctrl.port

    def send_ctrl(self, msg: tuple, size: int | None = None) -> None:
        self.ctrl.sendto(size or self.cfg.ctrl_bytes, self.src, self.ctrl_dport, msg)

    # -- arrivals ---------------------------------------------------------------------------------------------

    def _on_message(self, msg_id: int, pkt: Any, sent_s: float, now_s: float) -> None:
        if not isinstance(pkt, MediaPacket):
            return
        self._track_seq(pkt.seq, now_s)
        buf = self.frames.get(pkt.frame)
        if buf is None:
            if pkt.frame < self.next_frame:
                return                          # too late: that frame is done
            buf = self.frames[pkt.frame] = FrameBuffer(pkt.count, pkt.k, pkt.length, pkt.idr, pkt.q)
        buf.got.setdefault(pkt.index, pkt.data)
        buf.last_arrival_s = now_s
        self.on_packet_of(pkt.frame, now_s)
        self.max_frame_seen = max(self.max_frame_seen, pkt.frame)
        self.advance()

    def on_packet_of(self, frame: int, now_s: float) -> None:
        pass

    def _track_seq(self, seq: int, now: float) -> None:
        if seq > self._highest_seq:
            new = list(range(self._highest_seq + 1, seq))
            self._highest_seq = seq
            if new:
                for s in new:
                    self._missing[s] = now
                if self.nack:
                    self._send_nack(new)
        else:
            self._missing.pop(seq, None)

    def _send_nack(self, seqs: list[int]) -> None:
        self.nacks_sent += 1
        self.send_ctrl(("nack", tuple(seqs)), size=self.cfg.ctrl_bytes + 2 * len(seqs))
        if not self._nack_timer:
            self._nack_timer = True
            self.sim.call_in(self.cfg.nack_interval_s, self._on_nack_timer)

    def _on_nack_timer(self, _=None) -> None:
        self._nack_timer = False
        now = self.sim.now_s
        horizon = now - self.cfg.give_up_s
        if self.next_frame > 0:     # until the first key frame decodes, keep asking for everything
            for s in [s for s, t in self._missing.items() if t < horizon]:
                del self._missing[s]
        if self._missing and self.nack:
            self._send_nack(sorted(self._missing))

    def _on_deadline(self, frame: int) -> None:
        self.advance()

    # -- decoding (subclasses) ----------------------------------------------------------------------------------

    def advance(self) -> None:
        raise NotImplementedError

    def _finish_decode(self, frame: int, image: np.ndarray | None, decode_s: float) -> float:
        now = self.sim.now_s
        start = max(now, self.decoder_free_s)
        done = start + decode_s
        self.decoder_free_s = done
        if image is not None:
            self.rendered_s[frame] = done
            self.images[frame] = image
            self.last_shown = frame
        return done


class H265Receiver(VideoReceiver):
    """In-order HEVC decoding; NACKs (retx), any-k-of-n recovery (FEC) or nothing (freeze); PLI on a break."""

    def __init__(self, *args, fec: bool = False, retransmit: bool = False, **kw) -> None:
        from emu.apps.grace.h265 import HevcDecoder

        self.nack = retransmit
        self.fec = fec
        super().__init__(*args, **kw)
        self.decoder = HevcDecoder()
        self.broken = False
        self._pli_s = -math.inf
        self._idr_arriving = False          # packets of an IDR arrived since the last PLI
        self.plis_sent = 0
        self.frames_recovered_by_fec = 0

    def _frame_data(self, buf: FrameBuffer) -> bytes:
        from emu.apps.grace.h265 import fec_decode

        if self.fec:
            if all(i in buf.got for i in range(buf.k)):
                return b"".join(buf.got[i] for i in range(buf.k))[:buf.length]
            self.frames_recovered_by_fec += 1
            return fec_decode(buf.got, buf.k, buf.count, buf.length)
        return b"".join(buf.got[i] for i in range(buf.count))

    def deadline_s(self, frame: int) -> float:
        if frame == 0 and self.nack:
            return math.inf      # the first key frame is waited for, as Grace's (retransmission only)
        return super().deadline_s(frame)

    @property
    def pli_retry_s(self) -> float:
        """Time to wait for the IDR a PLI asked for: a round trip plus its transmission (margin 0.1 s)."""
        return 2 * self.cfg.rtt_s + 0.1

    def _pli(self) -> None:
        now = self.sim.now_s
        if now - self._pli_s >= self.cfg.nack_interval_s:
            self._pli_s = now
            self._idr_arriving = False
            self.plis_sent += 1
            self.send_ctrl(("pli",))
            self.sim.call_in(self.pli_retry_s, self._pli_retry)

    def _pli_retry(self, _=None) -> None:
        # Repeat the PLI until an IDR decodes; with retransmission an IDR whose packets are arriving will
        # complete, so wait for it instead.
        if self.broken and not (self.nack and self._idr_arriving):
            self._pli()
        elif self.broken:
            self.sim.call_in(self.pli_retry_s, self._pli_retry)

    def _on_message(self, msg_id: int, pkt: Any, sent_s: float, now_s: float) -> None:
        if isinstance(pkt, MediaPacket) and pkt.idr and self.broken:
            self._idr_arriving = True
        super()._on_message(msg_id, pkt, sent_s, now_s)

    def advance(self) -> None:
        now = self.sim.now_s
        n = self.cfg.n_frames
        while self.next_frame < n:
            f = self.next_frame
            if self.broken:
                # Every frame before a complete IDR is undecodable anyway: jump to the newest complete one.
                idrs = [g for g, b in self.frames.items() if g >= f and b.idr and len(b.got) >= b.k]
                if idrs:
                    for g in range(f, max(idrs)):
                        self.frames.pop(g, None)
                    self.next_frame = f = max(idrs)
            buf = self.frames.get(f)
            complete = buf is not None and len(buf.got) >= buf.k
            later_seen = self.max_frame_seen > f
            expired = now >= self.deadline_s(f) - 1e-12
            if complete and (not self.broken or buf.idr):
                if buf.idr:
                    self.decoder.reset()
                image = self.decoder.decode(self._frame_data(buf))
                self.broken = False
                self._finish_decode(f, image, self.cfg.times.h265_decode_s)
            elif self.broken and ((buf is not None and not buf.idr) or later_seen or expired):
                if buf is not None and buf.idr:             # the IDR itself is lost: ask again
                    self._pli()
            elif expired or (later_seen and not self.nack):
                # Lost for good (FIFO path: nothing more of f will come unless retransmitted).
                self.broken = True
                self._pli()
            else:
                return
            self.frames.pop(f, None)
            self.next_frame = f + 1


class GraceReceiver(VideoReceiver):
    """Frame 0 (x265 IDR) reliably; then decodes each P-frame from whatever packets arrived and reports them."""

    nack = True   # NACKs every gap; the Grace sender only retransmits key-frame packets

    def __init__(self, *args, codec: Any, cache: DecodeCache, **kw) -> None:
        super().__init__(*args, **kw)
        self.codec = codec
        self.cache = cache
        self._ref = None
        self._ref_digest = b""
        self.packets_used = np.zeros(self.cfg.n_frames, dtype=np.int64)
        self.packets_sent = np.zeros(self.cfg.n_frames, dtype=np.int64)

    def deadline_s(self, frame: int) -> float:
        if frame == 0:
            return math.inf                     # the key frame is waited for (retransmitted until complete)
        return self.cfg.capture_s(frame) + self.cfg.decode_deadline_s

    @property
    def train_timeout_s(self) -> float:
        """A frame whose packets stopped arriving this long ago is decoded with what it has (one frame
        interval: the sender paces a frame's packets well within it)."""
        return 1.0 / self.cfg.fps

    def on_packet_of(self, frame: int, now_s: float) -> None:
        if frame > 0:
            self.sim.call_in(self.train_timeout_s, self._on_deadline, frame)

    def advance(self) -> None:
        from emu.apps.grace.codec import to_tensor, to_uint8
        from emu.apps.grace.h265 import HevcDecoder

        now = self.sim.now_s
        n = self.cfg.n_frames
        while self.next_frame < n:
            f = self.next_frame
            buf = self.frames.get(f)
            if f == 0:
                if buf is None or len(buf.got) < buf.k:
                    return
                image = HevcDecoder().decode(b"".join(buf.got[i] for i in range(buf.count)))
                self._ref = to_tensor(image)
                self._ref_digest = DecodeCache.digest(self._ref)
                self._finish_decode(0, image, self.cfg.times.h265_decode_s)
            else:
                complete = buf is not None and len(buf.got) >= buf.count
                stopped = buf is not None and now >= buf.last_arrival_s + self.train_timeout_s - 1e-12
                if not (complete or stopped or self.max_frame_seen > f or now >= self.deadline_s(f) - 1e-12):
                    return
                got = frozenset(buf.got) if buf is not None else frozenset()
                k = buf.count if buf is not None else 0
                q = buf.q if buf is not None else 0
                if buf is not None:
                    symbols, mask = self.codec.depacketise(buf.got, k, q, f, self._latent_shape())
                else:                                                          # nothing arrived
                    symbols = np.zeros(self._latent_shape(), dtype=np.int32)
                    mask = np.zeros(self._latent_shape(), dtype=bool)
                key = (f, got if len(got) < k or k == 0 else "all", self._ref_digest)
                if k == 0:
                    key = (f, frozenset(), self._ref_digest)
                rec, digest = self.cache.get(key, partial(self.codec.reconstruct, symbols, self._ref, q, mask))
                self._ref, self._ref_digest = rec, digest
                self.packets_used[f] = len(got)
                self.packets_sent[f] = k
                self._finish_decode(f, to_uint8(rec) if got else None, self.cfg.times.grace_decode_s)
                self.send_ctrl(("fb", f, got), size=self.cfg.ctrl_bytes)
            self.frames.pop(f, None)
            self.next_frame = f + 1

    def _latent_shape(self) -> tuple[int, int, int]:
        h, w = self._ref.shape[-2:]
        return self.codec.model.latent_shape(h, w)
