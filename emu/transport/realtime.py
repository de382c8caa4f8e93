"""A rate-controlled real-time flow over UDP: ``RtcSender`` and ``RtcReceiver`` (SCReAM-like, RFC 8298).

The application hands messages (video frames, token batches) to ``RtcSender.send(n_bytes, payload)``; they are
cut into datagrams of at most ``max_payload_bytes`` (+ ``header_bytes``), queued, and paced out at the
controller's ``pacing_rate_bps``. Data packets carry the controller's ECN codepoint (ECT(1) for the L4S mode
of ``RtcRateController``). The application reads ``target_rate_bps`` to set its encoder and
``queued_bytes`` to decide whether to skip a frame.

The receiver records every datagram, hands it to ``on_packet(pkt, owd_s)``, reassembles messages for
``on_message(msg_id, payload, sent_s, now_s)``, and returns one feedback report per ``feedback_every_pkts``
datagrams (RFC 8888-style, cumulative counters so a lost report loses no information):
highest sequence number, packets and payload bytes received, CE-marked payload bytes, and the send time,
one-way delay and queueing delay of the newest datagram. The sender turns each report into an ``AckSample``
and sequence gaps (``expected - received``, growing) into ``LossEvent(kind="gap")``.

Simplified: feedback is immediate (no RTCP interval), no retransmission or FEC (the application handles loss),
no window cap on bytes in flight (the controller's rate is the only limit).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional, Union

from emu.packet import CE, NOT_ECT, Packet
from emu.transport.cc import CongestionControl, make_cc
from emu.transport.samples import KIND_FEEDBACK, LOSS_GAP, AckSample, LossEvent
from emu.transport.timer import LazyTimer
from emu.transport.udp import UdpSocket

INF = float("inf")


class RtcChunk:
    """Payload of one real-time datagram."""

    __slots__ = ("msg_id", "index", "count", "msg_bytes", "msg_sent_s", "payload_bytes", "app")

    def __init__(self, msg_id: int, index: int, count: int, msg_bytes: int, msg_sent_s: float, payload_bytes: int,
                 app: Any) -> None:
        self.msg_id = msg_id
        self.index = index
        self.count = count
        self.msg_bytes = msg_bytes
        self.msg_sent_s = msg_sent_s
        self.payload_bytes = payload_bytes
        self.app = app            # the application payload, on the last chunk of a message only


class FeedbackInfo:
    """Payload of a feedback report (cumulative counters)."""

    __slots__ = ("highest_seq", "rx_pkts", "rx_bytes", "ce_bytes", "ts_echo", "owd_s", "qdelay_s")

    def __init__(self, highest_seq: int, rx_pkts: int, rx_bytes: int, ce_bytes: int, ts_echo: float, owd_s: float,
                 qdelay_s: float) -> None:
        self.highest_seq = highest_seq
        self.rx_pkts = rx_pkts
        self.rx_bytes = rx_bytes
        self.ce_bytes = ce_bytes
        self.ts_echo = ts_echo
        self.owd_s = owd_s
        self.qdelay_s = qdelay_s


class RtcSender:
    """Sends application messages as paced datagrams under a rate controller (default ``"rtc"``).

    Args:
        sim, host: the run and the sending ``Host``; dst, dport: the receiver.
        cc: registry name or controller; cc_params: its config overrides (``{"l4s": False}``).
        flow: flow name (default ``"rtc.<host>:<port>"``); feedback is recorded as ``flow + ".fb"``.
        max_payload_bytes: payload per datagram; header_bytes: added per datagram (IP + UDP + RTP ~ 40 B).
        on_ack_sample: called with every ``AckSample`` built from feedback.
    """

    def __init__(self, sim: Any, host: Any, dst: Any, dport: int, *, cc: Union[str, CongestionControl] = "rtc",
                 cc_params: Optional[dict] = None, flow: Optional[str] = None, max_payload_bytes: int = 1200,
                 header_bytes: int = 40, sport: Optional[int] = None,
                 on_ack_sample: Optional[Callable[[AckSample], None]] = None) -> None:
        for name, value, lo in (("max_payload_bytes", max_payload_bytes, 1), ("header_bytes", header_bytes, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name}: must be an integer >= {lo}, got {value!r}")
        self.sim = sim
        self.cc: CongestionControl = make_cc(cc, mss_bytes=max_payload_bytes, **dict(cc_params or {}))
        self.dst = dst if isinstance(dst, str) else dst.name
        self.dport = dport
        self.max_payload_bytes = max_payload_bytes
        self.header_bytes = header_bytes
        self.on_ack_sample = on_ack_sample
        self.sock = UdpSocket(sim, host, sport, flow=flow, on_receive=self._on_feedback, ecn=self.cc.ecn,
                              flow_prefix="rtc")
        self.flow = self.sock.flow
        self.flow_id = self.sock.flow_id
        self._env = sim.env
        self._queue: deque = deque()          # (size_bytes, RtcChunk)
        self.queued_bytes = 0
        self._next_msg = 0
        self._seq = 0
        self._next_send_s = 0.0
        self._pace_timer = LazyTimer(sim, self._on_pace)
        self._last_backlogged_s = -INF
        # Feedback state.
        self.srtt_s = 0.0
        self.min_rtt_s = INF
        self._fb_rx_bytes = 0
        self._fb_ce_bytes = 0
        self._fb_lost_pkts = 0
        self.delivered_bytes = 0
        self.ce_bytes_total = 0
        self.lost_pkts = 0
        self.sent_pkts = 0

    # -- application interface ------------------------------------------------------------------------------------

    @property
    def target_rate_bps(self) -> float:
        """The rate the application should produce: the controller's target (or its pacing rate)."""
        target = getattr(self.cc, "target_rate_bps", None)
        if target is None:
            target = self.cc.pacing_rate_bps or 0.0
        return target

    def send(self, n_bytes: int, payload: Any = None) -> int:
        """Queue a message of ``n_bytes`` payload bytes; return its message id."""
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes < 1:
            raise ValueError(f"n_bytes: must be an integer >= 1, got {n_bytes!r}")
        now = self._env._now
        msg_id = self._next_msg
        self._next_msg += 1
        mp = self.max_payload_bytes
        count = -(-n_bytes // mp)
        left = n_bytes
        for index in range(count):
            part = mp if left > mp else left
            left -= part
            chunk = RtcChunk(msg_id, index, count, n_bytes, now, part, payload if index == count - 1 else None)
            size = part + self.header_bytes
            self._queue.append((size, chunk))
            self.queued_bytes += size
        self._pump()
        return msg_id

    def drop_queued(self) -> int:
        """Discard everything not yet sent (e.g. before a key frame); return the bytes dropped."""
        dropped = self.queued_bytes
        self._queue.clear()
        self.queued_bytes = 0
        return dropped

    # -- sending --------------------------------------------------------------------------------------------------

    def _on_pace(self, now_s: float) -> None:
        self._pump()

    def _pump(self) -> None:
        now = self._env._now
        queue = self._queue
        sock = self.sock
        while queue:
            rate = self.cc.pacing_rate_bps
            if rate and now < self._next_send_s - 1e-12:
                self._last_backlogged_s = now
                self._pace_timer.set(self._next_send_s)
                return
            size, chunk = queue.popleft()
            self.queued_bytes -= size
            sock.sendto(size, self.dst, self.dport, chunk, self.cc.ecn, seq=self._seq)
            self._seq += 1
            self.sent_pkts += 1
            if rate:
                start = self._next_send_s if self._next_send_s > now else now
                self._next_send_s = start + size * 8.0 / rate

    # -- feedback -------------------------------------------------------------------------------------------------

    def _on_feedback(self, pkt: Packet, owd_s: float) -> None:
        info = pkt.payload
        if pkt.kind != KIND_FEEDBACK or not isinstance(info, FeedbackInfo):
            return
        now = self._env._now
        rtt = now - info.ts_echo
        if self.srtt_s == 0.0:
            self.srtt_s = rtt
        else:
            self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt
        if rtt < self.min_rtt_s:
            self.min_rtt_s = rtt
        acked = info.rx_bytes - self._fb_rx_bytes
        if acked > 0:
            self._fb_rx_bytes = info.rx_bytes
            self.delivered_bytes += acked
        else:
            acked = 0
        ce = info.ce_bytes - self._fb_ce_bytes
        if ce > 0:
            self._fb_ce_bytes = info.ce_bytes
            self.ce_bytes_total += ce
        else:
            ce = 0
        cc = self.cc
        lost = (info.highest_seq + 1) - info.rx_pkts - self._fb_lost_pkts
        if lost > 0:
            self._fb_lost_pkts += lost
            self.lost_pkts += lost
            cc.on_loss(LossEvent(now, lost * (self.max_payload_bytes + self.header_bytes), info.ts_echo,
                                 self.queued_bytes, LOSS_GAP, self.srtt_s, self.max_payload_bytes))
        app_limited = self.srtt_s > 0 and now - self._last_backlogged_s > self.srtt_s
        sample = AckSample(now, rtt, self.srtt_s, self.min_rtt_s, info.owd_s, info.qdelay_s, acked, ce,
                           self.delivered_bytes, self.ce_bytes_total, 0, info.ts_echo, app_limited,
                           self.max_payload_bytes)
        if ce:
            cc.on_ce(sample)
        cc.on_ack(sample)
        if self.on_ack_sample is not None:
            self.on_ack_sample(sample)
        if self._queue:
            self._pump()


class RtcReceiver:
    """Receives a real-time flow, records it, reassembles messages and sends feedback.

    Args:
        sim, host, port: where to listen.
        on_packet: ``fn(pkt, owd_s)`` per datagram; on_message: ``fn(msg_id, payload, sent_s, now_s)`` when
            every datagram of a message has arrived.
        feedback_every_pkts: one feedback report per this many datagrams (1: per packet, like TCP without
            delayed ACKs); feedback_bytes: size of a report.
    """

    def __init__(self, sim: Any, host: Any, port: Optional[int] = None, *,
                 on_packet: Optional[Callable[[Packet, float], None]] = None,
                 on_message: Optional[Callable[[int, Any, float, float], None]] = None,
                 feedback_every_pkts: int = 1, feedback_bytes: int = 64) -> None:
        for name, value in (("feedback_every_pkts", feedback_every_pkts), ("feedback_bytes", feedback_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        self.sim = sim
        self.on_packet = on_packet
        self.on_message = on_message
        self.feedback_every_pkts = feedback_every_pkts
        self.feedback_bytes = feedback_bytes
        self.sock = UdpSocket(sim, host, port, on_receive=self._on_data)
        self.port = self.sock.port
        self._fb_flow: Optional[str] = None
        self.highest_seq = -1
        self.rx_pkts = 0
        self.rx_bytes = 0
        self.ce_bytes = 0
        self._since_fb = 0
        self._msgs: dict[int, list] = {}
        self.messages_completed = 0

    def _on_data(self, pkt: Packet, owd_s: float) -> None:
        chunk = pkt.payload
        if not isinstance(chunk, RtcChunk):
            return
        if self._fb_flow is None:
            self._fb_flow = self.sim.records.flow_names[pkt.flow_id] + ".fb"
        self.rx_pkts += 1
        self.rx_bytes += chunk.payload_bytes
        if pkt.ecn == CE:
            self.ce_bytes += chunk.payload_bytes
        if pkt.seq > self.highest_seq:
            self.highest_seq = pkt.seq
        if self.on_packet is not None:
            self.on_packet(pkt, owd_s)
        self._reassemble(chunk)
        self._since_fb += 1
        if self._since_fb >= self.feedback_every_pkts:
            self._since_fb = 0
            info = FeedbackInfo(self.highest_seq, self.rx_pkts, self.rx_bytes, self.ce_bytes, pkt.created_s, owd_s,
                                pkt.qdelay_s)
            self.sock.sendto(self.feedback_bytes, pkt.src, pkt.sport, info, NOT_ECT, flow=self._fb_flow,
                             kind=KIND_FEEDBACK)

    def _reassemble(self, chunk: RtcChunk) -> None:
        if chunk.count == 1:
            self.messages_completed += 1
            if self.on_message is not None:
                self.on_message(chunk.msg_id, chunk.app, chunk.msg_sent_s, self.sim.now_s)
            return
        entry = self._msgs.get(chunk.msg_id)
        if entry is None:
            entry = self._msgs[chunk.msg_id] = [0, None]
            if len(self._msgs) > 4096:      # forget the oldest incomplete messages
                for old in sorted(self._msgs)[:1024]:
                    del self._msgs[old]
                entry = self._msgs.setdefault(chunk.msg_id, [0, None])
        entry[0] += 1
        if chunk.app is not None:
            entry[1] = chunk.app
        if entry[0] >= chunk.count:
            del self._msgs[chunk.msg_id]
            self.messages_completed += 1
            if self.on_message is not None:
                self.on_message(chunk.msg_id, entry[1], chunk.msg_sent_s, self.sim.now_s)
