"""A reliable byte stream (TCP-like): ``StreamSender`` and ``StreamReceiver``, or both at once with ``open_stream``.

Sender::

    app write(n) ──► send buffer ──► [retransmissions first, then new segments]
                                      │  allowed while pipe + len <= cc.cwnd_bytes
                                      │  and, when pacing, not before the pacing time
                                      ▼
                                  Packet(kind=DATA, seq=segment number, ecn=cc.ecn) ──► network
    ACK (cum, SACK blocks, CE bytes, echoed send time) ──► scoreboard, RTT, RACK, RTO ──► cc.on_loss/on_ce/on_ack

What it models, with the RFC each part follows:

- **Segments.** Data is cut into segments of ``mss_bytes`` (the last piece of a write may be shorter); a packet
  carries one segment plus ``header_bytes`` of headers (52 = IPv4 + TCP + timestamps, so 1448 + 52 = 1500 B).
  ``Packet.seq`` is the segment number; sequence numbers count segments, byte counters count payload bytes.
- **ACKs** (RFC 793 cumulative + RFC 2018 SACK): each ACK carries the next expected segment, up to
  ``max_sack_blocks`` SACK blocks (the block holding the segment just received first, then the most recently
  reported ones), the send time of the data packet that triggered it (RFC 7323 §4 timestamp echo, so every ACK
  gives an unambiguous RTT sample), that packet's one-way and queueing delay, and the receiver's running count of
  CE-marked payload bytes (AccECN-style byte counter, RFC 9768 §3.2; the sender takes differences).
- **Scoreboard and pipe** (RFC 6675 §2-§4): each outstanding segment is in flight, SACKed or lost; ``pipe`` is the
  bytes in flight; lost segments are retransmitted before new data, lowest first. When a detection pass declares
  segments lost, the first of them is retransmitted at once even if ``pipe`` exceeds the (just reduced) window
  (fast retransmit, RFC 5681 §3.2 step 2, RFC 6675 §5 step 3); the rest wait for ``pipe < cwnd`` (no PRR).
- **Window growth and recovery** (told to the controller on each ``AckSample``): ``cum_advanced`` says whether
  the ACK moved the cumulative ACK (RFC 5681 §3.1: controllers grow only then, not on ACKs that only SACK
  data beyond a hole); ``cum_seq`` (``snd_una``) and ``high_seq`` (``snd_nxt``) let a controller keep its
  recovery point and leave recovery when the cumulative ACK reaches it (RFC 6675 §5).
- **Loss detection** (RFC 8985 RACK, time based): a segment is lost when a segment sent after it has been
  delivered and ``RACK.rtt + reo_wnd`` has elapsed since it was sent; ``reo_wnd = min_rtt / 4``
  (``reo_wnd_frac``, §6.2, capped at SRTT). As RFC 8985 §6.2 step 4 and Linux ``tcp_rack_reo_wnd`` do, the
  window is 0 while no reordering has been seen (``RACK.reord``) and either the sender is in loss recovery or
  at least ``dupthresh_pkts`` (3, Linux ``tcp_reordering``) segments are SACKed: the classic DupThresh trigger,
  so a fast retransmit leaves on the ACK that reveals the loss. Reordering is seen when a segment that was
  never retransmitted is delivered below the highest delivered one (RFC 8985 §6.2 step 2). Segments that are
  only reordered within ``reo_wnd`` are delivered before it expires and never retransmitted. A reordering timer fires at the earliest such deadline. Segments are scanned in send order from
  the oldest, so each pass costs O(segments declared lost + 1). TLP (tail loss probes) is not modelled: tail
  losses are recovered by the RTO.
- **RTO** (RFC 6298): SRTT/RTTVAR with alpha 1/8, beta 1/4, ``RTO = max(min_rto, SRTT + max(G, 4 RTTVAR))``
  (min 200 ms by default, like Linux; RFC 6298 says 1 s), initial 1 s, doubled at each expiry (capped at
  ``max_rto_s``) and reset when new data is acknowledged. On expiry every unSACKed outstanding segment is marked
  lost and retransmission restarts from the first unacknowledged one (RFC 6298 §5.4, RFC 6675 §5.1).
- **Delayed ACKs** (RFC 5681 §4.2; RFC 1122): off by default (L4S wants per-packet feedback); when on, an ACK
  for every ``delack_pkts`` segments or after ``delack_timeout_s``, at once for out-of-order or hole-filling
  segments and when the CE state changes (RFC 8257 §3.2).
- **ECN.** Data packets carry ``cc.ecn`` (ECT(1) for Prague, ECT(0) for classic ECN senders, else Not-ECT);
  retransmissions of classic ECT(0) senders are Not-ECT (RFC 3168 §6.1.5). ACKs are Not-ECT.
- **Pacing.** With ``pacing=True`` (default) data leaves no faster than ``cc.pacing_rate_bps`` (default
  ``gain * cwnd / srtt``, gain 2 in slow start, 1.2 after, like Linux). One timer: the sender keeps the earliest
  time the next packet may leave and one pending wake-up.

Cost: one heap event per paced data packet (none when the ACK clock releases it), ACK processing in callbacks,
and timers that are re-armed lazily (``LazyTimer``): the RTO restarted on every ACK costs ~one event per RTO.

Tracing: with an enabled tracer, ``transport.ack`` (per ACK: RTT, cwnd, pipe, CE bytes) and ``transport.loss``
(per loss-detection pass or timeout) events.

Not modelled: connection set-up and teardown, flow control (the receive window is unlimited), TLP, PRR,
spurious-retransmission undo (DSACK/Eifel), the restart window after idle, Nagle.

Records: every data packet arriving at the receiver is recorded with ``sim.records.delivered`` under the
stream's flow (retransmissions included); ACKs are their own flow, ``"<flow>.ack"``. Send counters
(``sim.records.flows[fid]``) count every transmission.
"""
from __future__ import annotations

import dataclasses
import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any, Callable, Optional, Union

from emu.packet import CE, ECT0, NOT_ECT, Packet
from emu.transport.cc import CongestionControl, make_cc
from emu.transport.samples import KIND_ACK, KIND_DATA, LOSS_RACK, LOSS_RTO, AckSample, LossEvent
from emu.transport.rtt import rfc6298_update
from emu.transport.timer import LazyTimer

INF = float("inf")
NAN = float("nan")

# Segment states on the sender's scoreboard (segments below snd_una are acknowledged and forgotten).
INFLIGHT = 0
SACKED = 1
LOST = 2     # declared lost, waiting for retransmission (not counted in pipe)

_COMPACT_MIN = 4096


def _check_int(field: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{field}: must be an integer >= {lo}, got {value!r}")


def _check_real(field: str, value: Any, lo: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not (value > lo if strict else value >= lo):
        raise ValueError(f"{field}: must be a number {'>' if strict else '>='} {lo}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    """Knobs of a reliable stream (both ends read the ones that concern them)."""

    mss_bytes: int = 1448                 # 1500 B packets with 52 B of headers
    header_bytes: int = 52                # IPv4 20 + TCP 20 + timestamps option 12 (RFC 7323)
    ack_bytes: int = 64                   # a pure ACK with timestamps and SACK blocks (approximate)
    min_rto_s: float = 0.2                # Linux TCP_RTO_MIN (RFC 6298 §2.4 says 1 s)
    max_rto_s: float = 60.0               # RFC 6298 §2.5: a maximum of at least 60 s may be placed
    initial_rto_s: float = 1.0            # RFC 6298 §2.1
    clock_granularity_s: float = 0.001    # RFC 6298 §2 G
    reo_wnd_frac: float = 0.25            # RFC 8985 §6.2: reo_wnd = min_RTT / 4
    dupthresh_pkts: Optional[int] = 3     # RFC 8985 §6.2 step 4 / Linux tcp_reordering; None: always reo_wnd
    pacing: bool = True                   # Linux-style internal pacing
    delayed_ack: bool = False             # RFC 5681 §4.2 (off: one ACK per segment, as L4S wants)
    delack_pkts: int = 2                  # RFC 5681 §4.2: an ACK at least every second full-sized segment
    delack_timeout_s: float = 0.04        # Linux TCP_DELACK_MIN (RFC 5681: at most 500 ms)
    max_sack_blocks: Optional[int] = 3    # RFC 2018 §3 (3 blocks fit beside the timestamp option); None: all

    def __post_init__(self) -> None:
        _check_int("mss_bytes", self.mss_bytes, 1)
        _check_int("header_bytes", self.header_bytes, 0)
        _check_int("ack_bytes", self.ack_bytes, 1)
        _check_real("min_rto_s", self.min_rto_s, 0.0, strict=True)
        _check_real("max_rto_s", self.max_rto_s, self.min_rto_s)
        _check_real("initial_rto_s", self.initial_rto_s, 0.0, strict=True)
        _check_real("clock_granularity_s", self.clock_granularity_s, 0.0)
        _check_real("reo_wnd_frac", self.reo_wnd_frac, 0.0)
        _check_int("delack_pkts", self.delack_pkts, 1)
        _check_real("delack_timeout_s", self.delack_timeout_s, 0.0, strict=True)
        if self.max_sack_blocks is not None:
            _check_int("max_sack_blocks", self.max_sack_blocks, 0)
        if self.dupthresh_pkts is not None:
            _check_int("dupthresh_pkts", self.dupthresh_pkts, 1)
        for name in ("pacing", "delayed_ack"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be True or False, got {getattr(self, name)!r}")


def _make_config(config: Optional[StreamConfig], overrides: dict) -> StreamConfig:
    valid = {f.name for f in dataclasses.fields(StreamConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"stream: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    if config is None:
        return StreamConfig(**overrides)
    if not isinstance(config, StreamConfig):
        raise ValueError(f"config: expected a StreamConfig, got {type(config).__name__}")
    return dataclasses.replace(config, **overrides) if overrides else config


class AckInfo:
    """The payload of an ACK packet."""

    __slots__ = ("cum", "sacks", "ce_bytes", "ts_echo", "owd_s", "qdelay_s", "seq", "rx_bytes")

    def __init__(self, cum: int, sacks: tuple, ce_bytes: int, ts_echo: float, owd_s: float, qdelay_s: float,
                 seq: int, rx_bytes: int) -> None:
        self.cum = cum                # next expected segment (all below received)
        self.sacks = sacks            # ((start, end), ...) half-open segment ranges held above cum
        self.ce_bytes = ce_bytes      # CE-marked payload bytes received so far (AccECN counter)
        self.ts_echo = ts_echo        # send time of the data packet that triggered this ACK
        self.owd_s = owd_s            # its one-way delay
        self.qdelay_s = qdelay_s      # its queueing delay over all hops
        self.seq = seq                # its segment number
        self.rx_bytes = rx_bytes      # payload bytes received so far (duplicates included)

    def __repr__(self) -> str:
        return f"AckInfo(cum={self.cum}, sacks={self.sacks}, ce_bytes={self.ce_bytes}, seq={self.seq})"


def _host_name(dst: Any) -> str:
    return dst if isinstance(dst, str) else dst.name


class StreamSender:
    """The sending end of a reliable stream from ``host`` to ``dst:dport``.

    Args:
        sim: the run.
        host: the sending ``Host``; the sender binds ``sport`` (default: a free port) for its ACKs.
        dst: destination host (name or ``Host``); dport: the receiver's port.
        cc: a registry name (``"reno"``, ``"cubic"``, ``"prague"``, ``"rtc"``) or a ``CongestionControl``.
        cc_params: config overrides for the controller (``{"hystart": False}``).
        ecn: shortcut for ``cc_params["ecn"]`` (classic ECT(0) for Reno/Cubic); None keeps the default.
        flow: flow name for records (default ``"tcp.<host>:<sport>-<dst>:<dport>"``); ACKs are ``flow + ".ack"``.
        bulk: always have data to send (an infinite backlog); otherwise send what ``write`` hands over.
        start_s: when the sender starts (default: now; writes before that wait for it too).
        stop_s: a bulk sender stops adding new data then (what is outstanding is still delivered).
        on_ack_sample: called with every ``AckSample`` (after the controller saw it).
        config / overrides: ``StreamConfig`` fields (``mss_bytes``, ``pacing``, ``min_rto_s``, ...).
    """

    def __init__(self, sim: Any, host: Any, dst: Any, dport: int, *, cc: Union[str, CongestionControl] = "cubic",
                 cc_params: Optional[dict] = None, ecn: Optional[bool] = None, flow: Optional[str] = None,
                 bulk: bool = False, start_s: Optional[float] = None, stop_s: Optional[float] = None,
                 sport: Optional[int] = None, on_ack_sample: Optional[Callable[[AckSample], None]] = None,
                 config: Optional[StreamConfig] = None, **overrides: Any) -> None:
        self.config = cfg = _make_config(config, overrides)
        if start_s is None:  # open now (a connection made mid-run starts at once)
            start_s = sim.now_s
        _check_real("start_s", start_s, sim.now_s)
        if stop_s is not None and not stop_s > start_s:
            raise ValueError(f"stop_s: must be after start_s={start_s}, got {stop_s!r}")
        params = dict(cc_params or {})
        if ecn is not None:
            params["ecn"] = ecn
        self.cc: CongestionControl = make_cc(cc, mss_bytes=cfg.mss_bytes, **params)
        if self.cc.mss_bytes != cfg.mss_bytes:
            raise ValueError(f"cc: controller mss_bytes={self.cc.mss_bytes} differs from the stream's "
                             f"mss_bytes={cfg.mss_bytes}")
        self.sim = sim
        self.host = host
        self.dst = _host_name(dst)
        self.dport = dport
        self.sport = host.bind(sport, self)
        self.flow = flow if flow is not None else f"tcp.{host.name}:{self.sport}-{self.dst}:{dport}"
        who = f"stream {self.flow!r}"   # data one way, ACKs the other: both must be routable at run start
        if hasattr(host, "need_route"):
            host.need_route(self.dst, who)
        if hasattr(dst, "need_route"):
            dst.need_route(host.name, who)
        self.flow_id = sim.flow(self.flow)
        self.ack_flow_id = sim.flow(self.flow + ".ack")
        self.bulk = bool(bulk)
        self.start_s = float(start_s)
        self.stop_s = float(stop_s) if stop_s is not None else INF
        self.on_ack_sample = on_ack_sample
        self._env = sim.env
        self._records = sim.records
        self._tracer = sim.tracer
        self._counters = sim.records.flows[self.flow_id]
        self._src = host.name
        self._send_fn: Optional[Callable[[Packet], None]] = None
        self._pkt_ids = sim.pkt_ids
        self._mss = cfg.mss_bytes
        self._hdr = cfg.header_bytes
        self._pacing = cfg.pacing
        # Scoreboard: parallel lists indexed by segment - _base.
        self._base = 0
        self._len: list[int] = []
        self._xmit: list[float] = []
        self._state: list[int] = []
        self._snd_una = 0
        self._snd_nxt = 0
        self._pipe = 0
        self._rtx: list[int] = []                         # heap of lost segments awaiting retransmission
        self._xq: deque = deque()                         # (send time, segment) in send order, for RACK
        self._sk_starts: list[int] = []                   # SACKed ranges known to the sender (merged)
        self._sk_ends: list[int] = []
        # Application data.
        self._unsent = 0
        self.written_bytes = 0
        self.acked_bytes = 0            # payload bytes cumulatively acknowledged (in order at the receiver)
        self.delivered_bytes = 0        # payload bytes known delivered (cumulative ACK or SACK)
        # RTT and RTO (RFC 6298).
        self.srtt_s = 0.0
        self.rttvar_s = 0.0
        self.min_rtt_s = INF
        self.latest_rtt_s = 0.0
        self._rto_base_s = cfg.initial_rto_s
        self._backoff = 0
        self._granularity_s = cfg.clock_granularity_s
        self._min_rto_s = cfg.min_rto_s
        self._max_rto_s = cfg.max_rto_s
        # RACK (RFC 8985).
        self._rack_xmit_s = -INF
        self._rack_seg = -1
        self._rack_rtt_s = 0.0
        self._fack = 0                  # highest segment delivered (cumulatively or SACKed) + 1
        self._reord = False             # RACK.reord: reordering seen (RFC 8985 §6.2 step 2)
        self._rtxed: set[int] = set()   # segments retransmitted at least once (for the reordering test)
        self._sacked_segs = 0           # SACKed segments above snd_una (Linux sacked_out)
        self._recovery_seq = 0          # in loss recovery while snd_una < this (snd_nxt at detection)
        self._dupthresh = cfg.dupthresh_pkts if cfg.dupthresh_pkts is not None else 1 << 62
        # AccECN.
        self.ce_bytes_total = 0
        # Pacing and app-limited state.
        self._next_send_s = 0.0
        self._no_data_s = -INF
        self._cwnd_blocked_s = -INF
        self._rtx_credit = False       # fast retransmit: one lost segment may go out regardless of cwnd
        self._started = False
        # Timers.
        self._rto_timer = LazyTimer(sim, self._on_rto)
        self._rack_timer = LazyTimer(sim, self._on_rack_timer)
        self._pace_timer = LazyTimer(sim, self._on_pace)
        # Counters.
        self.sent_pkts = 0
        self.retransmitted_pkts = 0
        self.lost_pkts = 0              # segments declared lost (RACK or RTO)
        self.rto_count = 0
        self.acks_received = 0
        sim.call_at(self.start_s, self._start)

    # -- application interface ------------------------------------------------------------------------------------

    def write(self, n_bytes: int) -> int:
        """Queue ``n_bytes`` more bytes; return the stream offset (bytes written so far) they end at."""
        _check_int("n_bytes", n_bytes, 0)
        self._unsent += n_bytes
        self.written_bytes += n_bytes
        if self._started and n_bytes:
            self._send_more()
        return self.written_bytes

    def stop(self) -> None:
        """Stop a bulk sender from adding new data (outstanding data is still delivered)."""
        self.bulk = False

    @property
    def cwnd_bytes(self) -> float:
        return self.cc.cwnd_bytes

    @property
    def inflight_bytes(self) -> int:
        return self._pipe

    @property
    def outstanding_segments(self) -> int:
        return self._snd_nxt - self._snd_una

    @property
    def rto_s(self) -> float:
        return min(self.config.max_rto_s, self._rto_base_s * (2 ** self._backoff))

    @property
    def unsent_bytes(self) -> int:
        return self._unsent

    # -- sending --------------------------------------------------------------------------------------------------

    def _start(self, _: Any = None) -> None:
        self._started = True
        self._send_more()

    def _resolve_send(self) -> Callable[[Packet], None]:
        link = self.host.route(self.dst)
        self._send_fn = link.receive if link is not None else self.host.send
        return self._send_fn

    def _on_pace(self, now_s: float) -> None:
        self._send_more()

    def _send_more(self, _: Any = None) -> None:
        now = self._env._now
        if now >= self.stop_s and self.bulk:
            self.bulk = False
        cc = self.cc
        mss = self._mss
        state = self._state
        rtx = self._rtx
        # Nothing in this loop changes the controller, so its pacing rate is the same for every packet.
        rate = cc.pacing_rate_bps if self._pacing else None
        while True:
            seg = -1
            while rtx:
                cand = rtx[0]
                if cand < self._snd_una or state[cand - self._base] != LOST:
                    heappop(rtx)
                    continue
                seg = cand
                break
            if seg >= 0:
                length = self._len[seg - self._base]
            elif self.bulk:
                length = mss
            elif self._unsent > 0:
                length = mss if self._unsent >= mss else self._unsent
            else:
                if self._pipe + mss <= cc.cwnd_bytes:
                    self._no_data_s = now
                return
            if self._pipe + length > cc.cwnd_bytes + 1e-6 and not (seg >= 0 and self._rtx_credit):
                self._cwnd_blocked_s = now
                return
            if rate:
                if now < self._next_send_s - 1e-12:
                    self._pace_timer.set(self._next_send_s)
                    return
            if seg >= 0:
                heappop(rtx)
                self._rtx_credit = False
                self._transmit(seg, length, now, False)
            else:
                seg = self._snd_nxt
                self._len.append(length)
                self._xmit.append(now)
                self._state.append(INFLIGHT)
                self._snd_nxt = seg + 1
                if not self.bulk:
                    self._unsent -= length
                self._transmit(seg, length, now, True)
            if rate:
                start = self._next_send_s if self._next_send_s > now else now
                self._next_send_s = start + (length + self._hdr) * 8.0 / rate

    def _transmit(self, seg: int, length: int, now: float, new: bool) -> None:
        pid = next(self._pkt_ids)
        ecn = self.cc.ecn
        if not new:
            i = seg - self._base
            self._state[i] = INFLIGHT
            self._xmit[i] = now
            self.retransmitted_pkts += 1
            self._rtxed.add(seg)
            if ecn == ECT0:
                ecn = NOT_ECT   # RFC 3168 §6.1.5: no ECT on classic retransmissions
        size = length + self._hdr
        pkt = Packet(pid, self.flow_id, self._src, self.dst, size, now, self.sport, self.dport, ecn, seg, KIND_DATA,
                     length)
        self._pipe += length
        self._xq.append((now, seg))
        self.sent_pkts += 1
        counters = self._counters
        counters.sent_pkts += 1
        counters.sent_bytes += size
        if self._rto_timer.deadline_s == INF:
            self._rto_timer.set(now + self.rto_s)    # RFC 6298 §5.1
        send = self._send_fn
        if send is None:
            send = self._resolve_send()
        send(pkt)

    # -- ACK processing -------------------------------------------------------------------------------------------

    def receive(self, pkt: Packet) -> None:
        now = self._env._now
        self._records.delivered(pkt, now)
        info = pkt.payload
        if pkt.kind != KIND_ACK or not isinstance(info, AckInfo):
            return
        self.acks_received += 1
        # RTT (RFC 6298 §2) from the echoed send time: unambiguous even for retransmissions.
        rtt = now - info.ts_echo
        if rtt >= 0:
            self.latest_rtt_s = rtt
            srtt, rttvar = rfc6298_update(self.srtt_s if self.srtt_s else NAN, self.rttvar_s, rtt)
            self.srtt_s = srtt
            self.rttvar_s = rttvar
            if rtt < self.min_rtt_s:
                self.min_rtt_s = rtt
            # RTO = max(min_rto, SRTT + max(G, 4 RTTVAR)), at most max_rto (RFC 6298 §2.2-2.5)
            var4 = 4.0 * rttvar
            rto = srtt + (var4 if var4 > self._granularity_s else self._granularity_s)
            if rto < self._min_rto_s:
                rto = self._min_rto_s
            elif rto > self._max_rto_s:
                rto = self._max_rto_s
            self._rto_base_s = rto
        delivered = 0
        # Cumulative ACK.
        cum = info.cum
        if cum > self._snd_nxt:
            cum = self._snd_nxt
        cum_advanced = cum > self._snd_una
        if cum_advanced:
            base = self._base
            lens = self._len
            state = self._state
            acked = 0
            una = self._snd_una
            if una < self._fack and not self._reord:
                self._detect_reordering(una, min(cum, self._fack))
            for i in range(una - base, cum - base):
                length = lens[i]
                acked += length
                st = state[i]
                if st == INFLIGHT:
                    self._pipe -= length
                    delivered += length
                elif st == LOST:
                    delivered += length
                else:
                    self._sacked_segs -= 1
            if cum > self._fack:
                self._fack = cum
            if self._rtxed:
                rtxed = self._rtxed
                for seg in [x for x in rtxed if x < cum]:
                    rtxed.discard(seg)
            self.acked_bytes += acked
            self._snd_una = cum
            if self._sk_starts:
                self._prune_sacks(cum)
            self._backoff = 0
            if cum < self._snd_nxt:
                self._rto_timer.set(now + self._rto_base_s)   # RFC 6298 §5.3 (rto_s with no backoff)
            else:
                self._rto_timer.cancel()                      # RFC 6298 §5.2
            if cum - self._base >= _COMPACT_MIN:
                self._compact()
        # SACK blocks.
        if info.sacks:
            for start, end in info.sacks:
                delivered += self._apply_sack(start, end)
        self.delivered_bytes += delivered
        # RACK: the packet that triggered this ACK was delivered; remember the most recently sent such packet.
        ts = info.ts_echo
        if ts > self._rack_xmit_s or (ts == self._rack_xmit_s and info.seq > self._rack_seg):
            self._rack_xmit_s = ts
            self._rack_seg = info.seq
            self._rack_rtt_s = rtt
        # AccECN: newly CE-marked bytes.
        new_ce = info.ce_bytes - self.ce_bytes_total
        if new_ce > 0:
            self.ce_bytes_total = info.ce_bytes
        else:
            new_ce = 0
        cc = self.cc
        lost_bytes, lost_sent_s = self._rack_detect(now) if self._xq else (0, -INF)
        if lost_bytes:
            self._rtx_credit = True
            if self._snd_una >= self._recovery_seq:
                self._recovery_seq = self._snd_nxt
            self._loss(LossEvent(now, lost_bytes, lost_sent_s, self._pipe, LOSS_RACK, self.srtt_s, self._mss,
                                 self._snd_nxt))
        app_limited = (not self.bulk and self._no_data_s > self._cwnd_blocked_s
                       and now - self._cwnd_blocked_s > self.srtt_s)
        sample = AckSample(now, rtt, self.srtt_s, self.min_rtt_s, info.owd_s, info.qdelay_s, delivered, new_ce,
                           self.delivered_bytes, self.ce_bytes_total, self._pipe, ts, app_limited, self._mss,
                           cum_advanced, self._snd_una, self._snd_nxt)
        if new_ce:
            cc.on_ce(sample)
        cc.on_ack(sample)
        if self._tracer.enabled:
            self._tracer.emit("transport.ack", now, flow=self.flow, rtt_s=rtt, srtt_s=self.srtt_s,
                              cwnd_bytes=cc.cwnd_bytes, inflight_bytes=self._pipe, acked_bytes=delivered,
                              ce_bytes=new_ce)
        if self.on_ack_sample is not None:
            self.on_ack_sample(sample)
        self._send_more()

    def _loss(self, event: LossEvent) -> None:
        self.cc.on_loss(event)
        if self._tracer.enabled:
            self._tracer.emit("transport.loss", event.now_s, flow=self.flow, loss=event.kind,
                              lost_bytes=event.lost_bytes, cwnd_bytes=self.cc.cwnd_bytes, rto_s=self.rto_s)

    def _prune_sacks(self, una: int) -> None:
        starts, ends = self._sk_starts, self._sk_ends
        k = 0
        while k < len(ends) and ends[k] <= una:
            k += 1
        if k:
            del starts[:k]
            del ends[:k]
        if starts and starts[0] < una:
            starts[0] = una

    def _apply_sack(self, start: int, end: int) -> int:
        """Merge SACK block [start, end) into the known SACKed ranges; mark only segments not known before."""
        if start < self._snd_una:
            start = self._snd_una
        if end > self._snd_nxt:
            end = self._snd_nxt
        if start >= end:
            return 0
        if start < self._fack and not self._reord:
            self._detect_reordering(start, min(end, self._fack))
        if end > self._fack:
            self._fack = end
        starts, ends = self._sk_starts, self._sk_ends
        lo = bisect_left(ends, start)           # first range ending at or after start (touching merges)
        hi = lo
        cur = start
        delivered = 0
        n = len(starts)
        while hi < n and starts[hi] <= end:
            if starts[hi] > cur:
                delivered += self._mark_sacked(cur, starts[hi])
            if ends[hi] > cur:
                cur = ends[hi]
            hi += 1
        if cur < end:
            delivered += self._mark_sacked(cur, end)
        new_start = start if lo == hi or starts[lo] > start else starts[lo]
        new_end = end if lo == hi or ends[hi - 1] < end else ends[hi - 1]
        starts[lo:hi] = [new_start]
        ends[lo:hi] = [new_end]
        return delivered

    def _mark_sacked(self, a: int, b: int) -> int:
        base = self._base
        lens = self._len
        state = self._state
        delivered = 0
        for i in range(a - base, b - base):
            st = state[i]
            if st == SACKED:
                continue
            length = lens[i]
            if st == INFLIGHT:
                self._pipe -= length
            delivered += length
            state[i] = SACKED
            self._sacked_segs += 1
        return delivered

    def _detect_reordering(self, a: int, b: int) -> None:
        """RFC 8985 §6.2 step 2: a segment in [a, b) (all below the highest delivered one) newly delivered without
        having been retransmitted was reordered, not lost."""
        base = self._base
        state = self._state
        rtxed = self._rtxed
        for seg in range(a, b):
            if state[seg - base] != SACKED and seg not in rtxed:
                self._reord = True
                return

    def _compact(self) -> None:
        drop = self._snd_una - self._base
        if drop >= _COMPACT_MIN and drop * 2 >= len(self._len):
            del self._len[:drop]
            del self._xmit[:drop]
            del self._state[:drop]
            self._base = self._snd_una

    # -- loss detection -------------------------------------------------------------------------------------------

    def reo_wnd_s(self) -> float:
        """RFC 8985 §6.2 step 4: the reordering window, ``reo_wnd_frac * min_rtt`` at most SRTT; 0 while no
        reordering was seen and either in recovery or at least ``dupthresh_pkts`` segments are SACKed."""
        if self.min_rtt_s == INF:
            return 0.0
        if not self._reord and (self._snd_una < self._recovery_seq or self._sacked_segs >= self._dupthresh):
            return 0.0
        return min(self.config.reo_wnd_frac * self.min_rtt_s, self.srtt_s)

    def _rack_detect(self, now: float) -> tuple[int, float]:
        """RFC 8985 §6.2 step 5: declare lost every in-flight segment sent before the most recently delivered one
        whose ``xmit + RACK.rtt + reo_wnd`` has passed; arm the reordering timer for the next such deadline."""
        xq = self._xq
        if not xq or self._rack_xmit_s == -INF:
            return 0, -INF
        rack_t = self._rack_xmit_s
        rack_seg = self._rack_seg
        wait = -1.0                  # RACK.rtt + reo_wnd, computed when a candidate needs it
        base = self._base
        state = self._state
        xmit = self._xmit
        una = self._snd_una
        lost_bytes = 0
        lost_sent = -INF
        while xq:
            t, seg = xq[0]
            if seg < una or state[seg - base] != INFLIGHT or xmit[seg - base] != t:
                xq.popleft()      # acknowledged, SACKed, already lost, or superseded by a retransmission
                continue
            if t > rack_t or (t == rack_t and seg >= rack_seg):
                break             # not sent before the most recently delivered segment
            if wait < 0.0:
                wait = self._rack_rtt_s + self.reo_wnd_s()
            deadline = t + wait
            if deadline > now:
                self._rack_timer.set(deadline)
                break
            xq.popleft()
            i = seg - base
            length = self._len[i]
            state[i] = LOST
            self._pipe -= length
            heappush(self._rtx, seg)
            lost_bytes += length
            lost_sent = t
            self.lost_pkts += 1
        return lost_bytes, lost_sent

    def _on_rack_timer(self, now_s: float) -> None:
        lost_bytes, lost_sent = self._rack_detect(now_s)
        if lost_bytes:
            self._rtx_credit = True
            if self._snd_una >= self._recovery_seq:
                self._recovery_seq = self._snd_nxt
            self._loss(LossEvent(now_s, lost_bytes, lost_sent, self._pipe, LOSS_RACK, self.srtt_s, self._mss,
                                 self._snd_nxt))
            self._send_more()

    def _on_rto(self, now_s: float) -> None:
        """RFC 6298 §5.4-5.6 with RFC 6675 §5.1: mark everything unSACKed lost, back off, resend from snd_una."""
        if self._snd_una >= self._snd_nxt:
            return
        self.rto_count += 1
        base = self._base
        state = self._state
        lost_bytes = 0
        lost_sent = -INF
        for i in range(self._snd_una - base, self._snd_nxt - base):
            if state[i] == INFLIGHT:
                state[i] = LOST
                length = self._len[i]
                self._pipe -= length
                lost_bytes += length
                heappush(self._rtx, i + base)
                self.lost_pkts += 1
                if self._xmit[i] > lost_sent:
                    lost_sent = self._xmit[i]
        self._xq.clear()
        self._rack_timer.cancel()
        self._recovery_seq = self._snd_nxt
        self._backoff += 1
        self._loss(LossEvent(now_s, lost_bytes, lost_sent, self._pipe, LOSS_RTO, self.srtt_s, self._mss,
                             self._snd_nxt))
        self._next_send_s = now_s
        self._rto_timer.set(now_s + self.rto_s)
        self._send_more()

    def stats(self) -> dict:
        return {"flow": self.flow, "cc": self.cc.name, "sent_pkts": self.sent_pkts,
                "retransmitted_pkts": self.retransmitted_pkts, "lost_pkts": self.lost_pkts,
                "rto_count": self.rto_count, "acked_bytes": self.acked_bytes, "delivered_bytes": self.delivered_bytes,
                "ce_bytes": self.ce_bytes_total, "srtt_s": self.srtt_s, "min_rtt_s": self.min_rtt_s,
                "cwnd_bytes": self.cc.cwnd_bytes}


class StreamReceiver:
    """The receiving end: reassembles segments, records arrivals, and ACKs (cumulative + SACK + CE byte count).

    Args:
        sim, host: the run and the receiving ``Host``; ``port``: where to bind (None: a free port).
        on_data: called as ``on_data(in_order_bytes_total, now_s)`` whenever in-order data advances.
        config / overrides: ``StreamConfig`` fields read here: ``delayed_ack``, ``delack_pkts``,
            ``delack_timeout_s``, ``max_sack_blocks``, ``ack_bytes``.

    One receiver serves one sender (the first to send to it); open another receiver per stream.
    """

    def __init__(self, sim: Any, host: Any, port: Optional[int] = None, *,
                 on_data: Optional[Callable[[int, float], None]] = None, config: Optional[StreamConfig] = None,
                 **overrides: Any) -> None:
        self.config = cfg = _make_config(config, overrides)
        self.sim = sim
        self.host = host
        self.port = host.bind(port, self)
        self._host_name = host.name
        self.on_data = on_data
        self._env = sim.env
        self._records = sim.records
        self._peer: Optional[tuple[str, int]] = None
        self._ack_flow_id = -1
        self._ack_counters = None
        self._send_fn: Optional[Callable[[Packet], None]] = None
        self.rcv_nxt = 0
        self._o_starts: list[int] = []     # out-of-order ranges held above rcv_nxt
        self._o_ends: list[int] = []
        self._o_len: dict[int, int] = {}   # payload length of each held segment
        self._recent: list[int] = []       # segments received out of order, most recent first (SACK order)
        self.bytes_in_order = 0
        self.rx_pkts = 0
        self.rx_bytes = 0
        self.dup_pkts = 0
        self.ce_pkts = 0
        self.ce_bytes = 0
        self.acks_sent = 0
        self._max_blocks = cfg.max_sack_blocks
        self._pkt_ids = sim.pkt_ids
        self._ack_bytes = cfg.ack_bytes
        # Delayed ACKs.
        self._delack = cfg.delayed_ack
        self._unacked = 0
        self._last_ce = False
        self._last_pkt: Optional[Packet] = None
        self._last_rx_s = 0.0
        self._delack_timer = LazyTimer(sim, self._on_delack) if cfg.delayed_ack else None

    def receive(self, pkt: Packet) -> None:
        now = self._env._now
        if pkt.kind != KIND_DATA:
            return
        peer = (pkt.src, pkt.sport)
        if self._peer is None:
            self._peer = peer
            name = self._records.flow_names[pkt.flow_id] + ".ack"
            self._ack_flow_id = self.sim.flow(name)
            self._ack_counters = self._records.flows[self._ack_flow_id]
        elif peer != self._peer:
            raise RuntimeError(f"stream receiver {self.host.name}:{self.port} serves {self._peer[0]}:{self._peer[1]}; "
                               f"got data from {pkt.src}:{pkt.sport} (open one receiver per stream)")
        self._records.delivered(pkt, now)
        length = pkt.payload if isinstance(pkt.payload, int) else pkt.size_bytes
        self.rx_pkts += 1
        self.rx_bytes += length
        is_ce = pkt.ecn == CE
        if is_ce:
            self.ce_pkts += 1
            self.ce_bytes += length
        seg = pkt.seq
        had_holes = bool(self._o_starts)
        new_bytes = 0
        in_order = False
        if seg == self.rcv_nxt:
            in_order = True
            new_bytes = length
            self.rcv_nxt = seg + 1
            starts = self._o_starts
            if starts and starts[0] == self.rcv_nxt:
                end = self._o_ends[0]
                o_len = self._o_len
                for s in range(self.rcv_nxt, end):
                    new_bytes += o_len.pop(s)
                self.rcv_nxt = end
                del starts[0]
                del self._o_ends[0]
        elif seg > self.rcv_nxt:
            if self._insert(seg, length):
                recent = self._recent
                recent.insert(0, seg)
                limit = 2 * (self._max_blocks if self._max_blocks is not None else 4) + 2
                if len(recent) > limit:
                    del recent[limit:]
            else:
                self.dup_pkts += 1
        else:
            self.dup_pkts += 1
        if new_bytes:
            self.bytes_in_order += new_bytes
            if self.on_data is not None:
                self.on_data(self.bytes_in_order, now)
        self._last_pkt = pkt
        self._last_rx_s = now
        if not self._delack:
            self._send_ack(pkt, now)
            return
        self._unacked += 1
        ce_changed = is_ce != self._last_ce
        self._last_ce = is_ce
        if (not in_order or had_holes or ce_changed or self._unacked >= self.config.delack_pkts):
            self._send_ack(pkt, now)
        elif not self._delack_timer.armed:
            self._delack_timer.set(now + self.config.delack_timeout_s)

    def _insert(self, seg: int, length: int) -> bool:
        """Add an out-of-order segment to the held ranges; False if it was already held."""
        starts, ends = self._o_starts, self._o_ends
        i = bisect_right(starts, seg) - 1
        if i >= 0 and ends[i] > seg:
            return False
        self._o_len[seg] = length
        join_left = i >= 0 and ends[i] == seg
        join_right = i + 1 < len(starts) and starts[i + 1] == seg + 1
        if join_left and join_right:
            ends[i] = ends[i + 1]
            del starts[i + 1]
            del ends[i + 1]
        elif join_left:
            ends[i] = seg + 1
        elif join_right:
            starts[i + 1] = seg
        else:
            starts.insert(i + 1, seg)
            ends.insert(i + 1, seg + 1)
        return True

    def sack_blocks(self) -> tuple:
        """RFC 2018 §4: the block holding the most recently received segment first, then the others most recently
        reported first; at most ``max_sack_blocks``."""
        starts, ends = self._o_starts, self._o_ends
        if not starts:
            if self._recent:
                self._recent.clear()
            return ()
        limit = self._max_blocks
        if limit is None:
            return tuple(zip(starts, ends))
        if limit == 0:
            return ()
        blocks: list[tuple[int, int]] = []
        for seg in self._recent:
            if seg < self.rcv_nxt:
                continue
            i = bisect_right(starts, seg) - 1
            if i < 0 or ends[i] <= seg:
                continue
            block = (starts[i], ends[i])
            if block not in blocks:
                blocks.append(block)
                if len(blocks) >= limit:
                    break
        return tuple(blocks)

    def _send_ack(self, pkt: Packet, now: float) -> None:
        self._unacked = 0
        if self._delack_timer is not None:
            self._delack_timer.cancel()
        # No held ranges and no SACK history: sack_blocks() would return () (the common in-order case).
        sacks = self.sack_blocks() if self._o_starts or self._recent else ()
        info = AckInfo(self.rcv_nxt, sacks, self.ce_bytes, pkt.created_s, now - pkt.created_s, pkt.qdelay_s,
                       pkt.seq, self.rx_bytes)
        pid = next(self._pkt_ids)
        size = self._ack_bytes
        ack = Packet(pid, self._ack_flow_id, self._host_name, pkt.src, size, now, self.port, pkt.sport, NOT_ECT,
                     self.rcv_nxt, KIND_ACK, info)
        self.acks_sent += 1
        counters = self._ack_counters
        counters.sent_pkts += 1
        counters.sent_bytes += size
        send = self._send_fn
        if send is None:
            link = self.host.route(pkt.src)
            send = self._send_fn = link.receive if link is not None else self.host.send
        send(ack)

    def _on_delack(self, now_s: float) -> None:
        if self._unacked and self._last_pkt is not None:
            # The echoed delay is that of the last segment; the RTT sample then includes the ACK delay.
            self._send_ack(self._last_pkt, now_s)

    def stats(self) -> dict:
        return {"port": self.port, "rx_pkts": self.rx_pkts, "rx_bytes": self.rx_bytes, "dup_pkts": self.dup_pkts,
                "bytes_in_order": self.bytes_in_order, "ce_pkts": self.ce_pkts, "ce_bytes": self.ce_bytes,
                "acks_sent": self.acks_sent}


def open_stream(sim: Any, src: Any, dst: Any, *, port: Optional[int] = None, cc: Union[str, CongestionControl] = "cubic",
                on_data: Optional[Callable[[int, float], None]] = None, config: Optional[StreamConfig] = None,
                **kwargs: Any) -> tuple[StreamSender, StreamReceiver]:
    """A connected (sender, receiver) pair from host ``src`` to host ``dst`` (``Host`` objects).

    ``port``: the receiver's port (None: a free one). Other keywords go to ``StreamSender`` (``bulk``, ``flow``,
    ``cc_params``, ``ecn``, ``on_ack_sample``, ``start_s``, ``stop_s`` and ``StreamConfig`` fields; the config
    fields are shared with the receiver).
    """
    cfg_fields = {f.name for f in dataclasses.fields(StreamConfig)}
    cfg_over = {k: kwargs.pop(k) for k in list(kwargs) if k in cfg_fields}
    cfg = _make_config(config, cfg_over)
    receiver = StreamReceiver(sim, dst, port, on_data=on_data, config=cfg)
    sender = StreamSender(sim, src, dst, receiver.port, cc=cc, config=cfg, **kwargs)
    return sender, receiver
