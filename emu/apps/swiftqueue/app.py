"""The SwiftQueue application flow: a 30 fps real-time video-like UDP flow whose sender marks every packet.

The sender and receiver below are the two halves of one SwiftQueue endpoint pair; ``emu.apps.swiftqueue.endpoint``
wires them between two hosts of any network (``emu.apps.install(net, "swiftqueue", ...)``). Flow names derive from
the instance name (``<name>.app``, ``<name>.ack``, ``<name>.ghost``; frame sizes draw from ``sim.rng(<name>.frames)``)
and the first instance on a host binds the ports 7000-7002, later ones free ports, so instances coexist.

Dataflow::

    frame timer (fps) ──► frame of N packets ──► policy.mark(sender, sizes) ──► ECT(1) → L queue
                                                        ▲                      ECT(0) → C queue
                                                        │
    ACK (seq, send time, one-way latency, CE) ──► AckHistory (numpy ring)      (DualPI2 classifies on ECN)

- **Sender** (``SwiftQueueSender``): every ``1 / fps`` seconds produces one frame of a size drawn around
  ``rate_bps / fps`` (lognormal, a key frame ``key_frame_scale`` times larger every ``key_frame_every`` frames),
  cut into datagrams of at most ``max_payload_bytes`` + ``header_bytes``. All datagrams of a frame leave together
  (a burst, as an encoder hands a frame to the socket), so the marking policy is asked once per frame for all of
  its packets: one batched inference per frame. The rate is fixed (``rate_bps``): the app is not congestion
  controlled, so every marking policy offers the network exactly the same packets at the same times.
- **Receiver** (``SwiftQueueReceiver``): acknowledges every datagram at once with a 64-byte ACK carrying its
  sequence number, send time, one-way latency (the emulator has one clock; a real receiver would echo a
  timestamp and the sender would subtract a clock offset) and whether it was CE-marked. Packets of one flow
  may take different queues, so they can arrive out of order: the receiver keeps a jitter buffer per frame (a
  frame is complete once all its packets arrived, whatever their order; frames are played in order) and counts
  reordered packets (arriving after a higher sequence number).
- **Probes** (when the policy asks for them, ``policy.probes = True``): with every frame the sender also sends one
  ``probe_bytes`` datagram (64 B: headers and a timestamp) into the queue that got fewer of the frame's packets,
  so the ACK history keeps fresh latencies of *both* queues even when the policy keeps choosing one. Probes are
  acknowledged like data and enter the history (with their size), but they carry no media and are excluded from
  the app's latency and throughput. Cost: 64 B x fps = 15 kbit/s at 30 fps.
- **Ghost probes** (optional, ``ghosts=True``; used by the oracle and for analysis only): just before every
  datagram the sender also sends one 1-byte packet into *each* queue (ECT(1) and ECT(0)); their one-way delays
  are the latency a packet sent at that instant saw in each queue (less its own serialisation), measured without
  loading the link (1 byte).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from emu.packet import CE, ECT0, ECT1, NOT_ECT, Packet
from emu.transport.samples import KIND_DGRAM, KIND_FEEDBACK
from emu.transport.udp import UdpSocket

APP_PORT = 7000
ACK_PORT = 7001
GHOST_PORT = 7002
GHOST_BYTES = 1
ACK_BYTES = 64
KIND_MEDIA = 0
KIND_PROBE = 1


def free_port(host: Any, preferred: int) -> Optional[int]:
    """``preferred`` if nothing is bound to it on ``host``, else None (the host picks a free port): the first
    instance on a host keeps the well-known ports, further instances get their own."""
    return preferred if preferred not in host.ports else None


class AckHistory:
    """The sender's record of ACKs, in arrival order, in growable numpy columns.

    Columns: ``ack_s`` (ACK arrival), ``send_s``, ``lat_s`` (one-way latency of the acked packet), ``size``
    (bytes), ``queue`` (1 = sent ECT(1) to L, 0 = ECT(0) to C), ``ce`` (1 if CE-marked), ``seq``.
    """

    COLUMNS = ("ack_s", "send_s", "lat_s", "size", "queue", "ce", "seq")

    def __init__(self, capacity: int = 4096) -> None:
        self.n = 0
        self._cap = capacity
        self.data = np.zeros((capacity, len(self.COLUMNS)), dtype=np.float64)
        self.last_l = -1    # row of the newest L record
        self.last_c = -1    # row of the newest C record

    def add(self, ack_s: float, send_s: float, lat_s: float, size: int, queue: int, ce: int, seq: int) -> None:
        if self.n == self._cap:
            self._cap *= 2
            grown = np.zeros((self._cap, self.data.shape[1]), dtype=np.float64)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n] = (ack_s, send_s, lat_s, size, queue, ce, seq)
        if queue:
            self.last_l = self.n
        else:
            self.last_c = self.n
        self.n += 1

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class SwiftQueueSender:
    """Sends the frames and asks ``policy`` for each packet's ECN codepoint (see the module docstring).

    ``policy.mark_frame(sender, now_s, sizes) -> sequence of ECN codepoints`` (ECT1 or ECT0), one per packet;
    it may also set ``sender.pred_l[seq]``/``pred_c[seq]`` (its predictions, for analysis).
    """

    def __init__(self, sim: Any, host: Any, receiver: "SwiftQueueReceiver", config: Any, policy: Any, *,
                 name: str = "swiftqueue", stop_s: float = float("inf"), ghosts: bool = False,
                 expected_pkts: int = 1024) -> None:
        self.sim = sim
        self.config = config
        self.policy = policy
        self.dst = receiver.host.name
        self.dport = receiver.sock.port
        self.ghost_port = receiver.ghost_sock.port if receiver.ghost_sock is not None else None
        self.stop_s = stop_s
        self.ghosts = ghosts
        if ghosts and self.ghost_port is None:
            raise ValueError("ghosts: the receiver was built without ghosts=True")
        self.sock = UdpSocket(sim, host, free_port(host, ACK_PORT), flow=f"{name}.app", on_receive=self._on_ack,
                              record=True)
        self.ghost_flow = f"{name}.ghost"
        self.history = AckHistory()
        self._rng = sim.rng(f"{name}.frames")
        n = max(16, expected_pkts)
        self.send_s = np.full(n, np.nan)
        self.size = np.zeros(n, dtype=np.int32)
        self.queue = np.zeros(n, dtype=np.int8)
        self.frame = np.zeros(n, dtype=np.int32)
        self.kind = np.zeros(n, dtype=np.int8)       # KIND_MEDIA or KIND_PROBE
        self.pos = np.zeros(n, dtype=np.int16)       # index of the packet in its frame
        self.count = np.zeros(n, dtype=np.int16)     # packets in its frame
        self.pred_l = np.full(n, np.nan)
        self.pred_c = np.full(n, np.nan)
        self.ack_s = np.full(n, np.inf)             # when each packet's ACK arrived (inf: not yet)
        self.n_sent = 0
        self.frames_sent = 0
        self.frame_pkts: list[int] = []
        self.frame_send_s: list[float] = []

    def start(self, start_s: float) -> None:
        """Send the first frame at ``start_s``, then one every ``1 / fps`` until ``stop_s``."""
        self.sim.call_at(start_s, self._on_frame)

    # -- per-packet arrays ----------------------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = len(self.send_s)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, fill in (("send_s", np.nan), ("size", 0), ("queue", 0), ("frame", 0), ("kind", 0), ("pos", 0),
                           ("count", 0), ("pred_l", np.nan), ("pred_c", np.nan), ("ack_s", np.inf)):
            old = getattr(self, name)
            arr = np.full(new, fill, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    # -- sending --------------------------------------------------------------------------------------------------

    def frame_sizes(self) -> list[int]:
        """Datagram sizes (bytes, headers included) of the next frame."""
        c = self.config
        mean = c.rate_bps / 8.0 / c.fps
        # Mean of all frames stays ``mean``: key frames are key_frame_scale x a normal frame.
        k = c.key_frame_every
        normal = mean * k / (k - 1 + c.key_frame_scale)
        scale = c.key_frame_scale if self.frames_sent % k == 0 else 1.0
        sigma = c.frame_sigma
        payload = int(max(1.0, normal * scale * float(np.exp(sigma * self._rng.standard_normal() - sigma * sigma / 2))))
        mp = c.max_payload_bytes
        count = -(-payload // mp)
        sizes = [mp + c.header_bytes] * (count - 1)
        sizes.append(payload - mp * (count - 1) + c.header_bytes)
        return sizes

    def _on_frame(self, _: Any = None) -> None:
        now = self.sim.now_s
        if now >= self.stop_s:
            return
        sizes = self.frame_sizes()
        self._grow(self.n_sent + len(sizes) + 1)
        marks = self.policy.mark_frame(self, now, sizes)
        self.emit_frame(now, sizes, marks)

    def emit_frame(self, now: float, sizes: list, marks: list) -> None:
        """Send one frame's packets with the given ECN marks (and a probe if the policy wants one); schedule the
        next frame."""
        first = self.n_sent
        count = len(sizes)
        self._grow(first + count + 1)
        fid = self.frames_sent
        n_l = 0
        for i, size in enumerate(sizes):
            ecn = int(marks[i])
            n_l += ecn == ECT1
            self._send(first + i, now, size, ecn, fid, KIND_MEDIA, i, count)
        self.n_sent = first + count
        if getattr(self.policy, "probes", False):
            # One probe into the queue that got fewer of this frame's packets (ties: the one the last packet missed).
            if 2 * n_l == count:
                ecn = ECT0 if int(marks[-1]) == ECT1 else ECT1
            else:
                ecn = ECT1 if 2 * n_l < count else ECT0
            self._send(self.n_sent, now, self.config.probe_bytes, ecn, fid, KIND_PROBE, count, count)
            self.n_sent += 1
        self.frame_pkts.append(count)
        self.frame_send_s.append(now)
        self.frames_sent += 1
        self.sim.call_in(1.0 / self.config.fps, self._on_frame)

    def _send(self, seq: int, now: float, size: int, ecn: int, fid: int, kind: int, pos: int, count: int) -> None:
        self.send_s[seq] = now
        self.size[seq] = size
        self.queue[seq] = 1 if ecn == ECT1 else 0
        self.frame[seq] = fid
        self.kind[seq] = kind
        self.pos[seq] = pos
        self.count[seq] = count
        sock = self.sock
        if self.ghosts:  # just ahead of the packet: what a packet sent now waits for in each queue
            sock.sendto(GHOST_BYTES, self.dst, self.ghost_port, None, ECT1, seq=2 * seq, flow=self.ghost_flow)
            sock.sendto(GHOST_BYTES, self.dst, self.ghost_port, None, ECT0, seq=2 * seq + 1, flow=self.ghost_flow)
        sock.sendto(size, self.dst, self.dport, (fid if kind == KIND_MEDIA else -1, pos, count), ecn, seq=seq)

    # -- feedback -------------------------------------------------------------------------------------------------

    def _on_ack(self, pkt: Packet, owd_s: float) -> None:
        if pkt.kind != KIND_FEEDBACK:
            return
        seq, lat_s, ce = pkt.payload
        self.ack_s[seq] = self.sim.now_s
        self.history.add(self.sim.now_s, float(self.send_s[seq]), lat_s, int(self.size[seq]), int(self.queue[seq]),
                         ce, seq)


class SwiftQueueReceiver:
    """Acknowledges every datagram with its latency; keeps a per-frame jitter buffer and the per-packet latency."""

    def __init__(self, sim: Any, host: Any, *, name: str = "swiftqueue", ghosts: bool = False,
                 expected_pkts: int = 1024) -> None:
        self.sim = sim
        self.host = host
        self.sock = UdpSocket(sim, host, free_port(host, APP_PORT), on_receive=self._on_data, record=True)
        self.ghost_sock = UdpSocket(sim, host, free_port(host, GHOST_PORT), on_receive=self._on_ghost,
                                    record=False) if ghosts else None
        n = max(16, expected_pkts)
        self.lat_s = np.full(n, np.nan)      # one-way latency per sequence number (NaN: lost / not yet)
        self.arr_s = np.full(n, np.nan)
        self.ce = np.zeros(n, dtype=np.int8)
        self.ghost_l_s = np.full(n, np.nan)  # ghost latencies per sequence number (when ghosts are on)
        self.ghost_c_s = np.full(n, np.nan)
        self.highest_seq = -1
        self.reordered_pkts = 0
        self.rx_pkts = 0
        self.rx_bytes = 0
        self._frames: dict[int, list] = {}   # frame -> [received, count, first send]
        self.frame_done_s: dict[int, float] = {}
        self._ack_flow = f"{name}.ack"

    def grow(self, need: int) -> None:
        """Make the per-sequence-number arrays hold at least ``need`` entries (NaN / 0 where nothing arrived)."""
        cap = len(self.lat_s)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, fill in (("lat_s", np.nan), ("arr_s", np.nan), ("ce", 0), ("ghost_l_s", np.nan),
                           ("ghost_c_s", np.nan)):
            old = getattr(self, name)
            arr = np.full(new, fill, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def _on_data(self, pkt: Packet, owd_s: float) -> None:
        if pkt.kind != KIND_DGRAM:
            return
        now = self.sim.now_s
        seq = pkt.seq
        self.grow(seq + 1)
        ce = 1 if pkt.ecn == CE else 0
        self.lat_s[seq] = owd_s
        self.arr_s[seq] = now
        self.ce[seq] = ce
        fid, _, count = pkt.payload
        if fid >= 0:  # media (probes carry fid -1 and are only acknowledged)
            self.rx_pkts += 1
            self.rx_bytes += pkt.size_bytes
            if seq < self.highest_seq:
                self.reordered_pkts += 1
            else:
                self.highest_seq = seq
            entry = self._frames.get(fid)
            if entry is None:
                entry = self._frames[fid] = [0, count]
            entry[0] += 1
            if entry[0] == entry[1]:
                del self._frames[fid]
                self.frame_done_s[fid] = now
        self.sock.sendto(ACK_BYTES, pkt.src, pkt.sport, (seq, owd_s, ce), NOT_ECT, flow=self._ack_flow,
                         kind=KIND_FEEDBACK)

    def _on_ghost(self, pkt: Packet, owd_s: float) -> None:
        seq = pkt.seq // 2
        self.grow(seq + 1)
        if pkt.seq % 2 == 0:
            self.ghost_l_s[seq] = owd_s
        else:
            self.ghost_c_s[seq] = owd_s
