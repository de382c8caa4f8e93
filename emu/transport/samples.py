"""What a transport tells its congestion controller and its application: one ``AckSample`` per ACK (or feedback
report) and one ``LossEvent`` per loss-detection pass that found losses.

Both are plain slotted dataclasses with SI units, so a congestion controller (``emu.transport.cc``) can be driven
by hand in unit tests with literal values, exactly as a transport drives it during a run.

Packet kinds used by the transports (``Packet.kind``); 0 is left to open-loop traffic (``emu.apps.traffic``).
"""
from __future__ import annotations

from dataclasses import dataclass

KIND_DATA = 1       # reliable-stream data segment (``emu.transport.stream``)
KIND_ACK = 2        # reliable-stream ACK (payload: ``AckInfo``)
KIND_DGRAM = 3      # UDP datagram (``emu.transport.udp``)
KIND_FEEDBACK = 4   # real-time flow feedback report (``emu.transport.realtime``)

LOSS_RACK = "rack"  # time-based loss detection (RFC 8985)
LOSS_RTO = "rto"    # retransmission timeout (RFC 6298)
LOSS_GAP = "gap"    # sequence gap reported by a datagram receiver (real-time flows)


@dataclass(slots=True)
class AckSample:
    """What one ACK (or one real-time feedback report) says, as seen by the sender at ``now_s``.

    Attributes:
        now_s: time the ACK was processed.
        rtt_s: round-trip time of the data packet that triggered this ACK (from its echoed send time, so it is
            never ambiguous after a retransmission; RFC 7323 §4 timestamps).
        srtt_s: smoothed RTT after this sample (RFC 6298 §2).
        min_rtt_s: smallest RTT seen by the flow.
        owd_s: one-way delay of the data packet that triggered this ACK (the emulator has one clock).
        qdelay_s: queueing delay that packet accumulated over every hop.
        acked_bytes: bytes newly delivered by this ACK (cumulatively acknowledged or SACKed, not counted before).
        ce_bytes: bytes newly reported as CE-marked (AccECN-style delta of the receiver's CE byte counter).
        delivered_bytes: bytes delivered since the flow started (after this ACK).
        ce_bytes_total: CE-marked bytes reported since the flow started.
        inflight_bytes: bytes still in flight after this ACK (RFC 6675 "pipe").
        sent_s: send time of the data packet that triggered this ACK; congestion controllers use it to tell
            rounds apart (a packet sent after an event was reacted to belongs to a later round).
        app_limited: the sender ran out of data recently (RFC 7661): the window was not the limit.
        mss_bytes: the sender's maximum segment size.
        cum_advanced: the ACK moved the cumulative acknowledgement forward (new data delivered in order). RFC 5681
            §3.1 grows the window on such ACKs only; an ACK that only SACKs data above a hole does not (Linux
            ``tcp_may_raise_cwnd``: ``FLAG_DATA_ACKED``). True for transports without a cumulative ACK.
        cum_seq: the cumulative acknowledgement after this ACK (segments; -1 when the transport has none).
        high_seq: the highest segment sent so far plus one (``snd_nxt``; -1 when unknown). A controller that
            reduces its window on this ACK keeps it as the recovery point (RFC 6675 §5 ``RecoveryPoint``).
    """

    now_s: float
    rtt_s: float
    srtt_s: float
    min_rtt_s: float
    owd_s: float
    qdelay_s: float
    acked_bytes: int
    ce_bytes: int
    delivered_bytes: int
    ce_bytes_total: int
    inflight_bytes: int
    sent_s: float
    app_limited: bool = False
    mss_bytes: int = 1448
    cum_advanced: bool = True
    cum_seq: int = -1
    high_seq: int = -1


@dataclass(slots=True)
class LossEvent:
    """One loss-detection pass that declared packets lost.

    Attributes:
        now_s: detection time.
        lost_bytes: payload bytes declared lost in this pass.
        sent_s: send time of the most recently sent packet among those declared lost. A controller reduces its
            window at most once per round trip by reacting only when ``sent_s`` is after its last reduction
            (RFC 5681 §3.2, RFC 6675 §5: one reduction per window of data).
        inflight_bytes: bytes still in flight after the lost ones were taken out.
        kind: ``"rack"`` (RFC 8985), ``"rto"`` (RFC 6298 timeout) or ``"gap"`` (datagram sequence gap).
        srtt_s: smoothed RTT at detection (0 if none yet).
        mss_bytes: the sender's maximum segment size.
        high_seq: ``snd_nxt`` at detection (segments; -1 when unknown): the recovery point of RFC 6675 §5 /
            RFC 5681 §3.2 step 2 (``recover``). Recovery ends once the cumulative ACK reaches it.
    """

    now_s: float
    lost_bytes: int
    sent_s: float
    inflight_bytes: int
    kind: str = LOSS_RACK
    srtt_s: float = 0.0
    mss_bytes: int = 1448
    high_seq: int = -1

    @property
    def is_timeout(self) -> bool:
        return self.kind == LOSS_RTO
