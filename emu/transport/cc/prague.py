"""Prague: the scalable congestion control of L4S (draft-briscoe-iccrg-prague-congestion-control-04),
derived from DCTCP (RFC 8257).

- **ECN codepoint.** Data packets carry ECT(1), the L4S identifier (RFC 9331), so a DualQ AQM classifies them
  into its low-latency queue.
- **Accurate feedback.** The transport reports the number of newly CE-marked bytes per ACK (AccECN-style,
  RFC 9768 counters), so the controller sees the *extent* of marking, not one bit per round trip.
- **alpha** (RFC 8257 §3.3, draft §2.3.2): an EWMA of the fraction ``F`` of bytes marked in each round trip,
  ``alpha <- (1 - g) alpha + g F`` with ``g = 1/16``, updated once per round; initialised to 1 (conservative).
- **Response to CE** (draft §2.4.1): at most once per round trip, ``ssthresh = cwnd = cwnd (1 - alpha / 2)``
  (not below 2 MSS). Unlike the classic ECN response this does not stop the window from growing in the
  following round: with L4S marking, marks arrive in most rounds, and the steady state ``W = 2 / p`` of a
  scalable controller (RFC 8257 §3.3; the coupling of RFC 9332 assumes it) comes from increase and decrease
  running side by side.
- **Additive increase** (draft §2.4.2): ``cwnd += MSS * (acked - ce_acked) / cwnd`` per ACK in congestion
  avoidance: one MSS per round trip, scaled down by the marked fraction (only unmarked bytes count).
- **Loss** (draft §2.4.3): answered like Reno (``beta = 0.5``), once per round trip; timeouts like RFC 5681.
- **Slow start** ends at the first CE mark or loss.
- **RTT independence** (draft §2.4.4, optional, off by default): with ``rtt_indep_target_s`` set, a flow whose
  smoothed RTT is below that target increases by ``(srtt / target)^2`` MSS per round trip, so its rate grows
  (in bit/s per second) like a flow with the target RTT instead of faster.

Not modelled: classic-ECN-AQM fallback detection (draft §2.5), fractional windows below 2 MSS (draft §2.6.3;
pacing covers small windows here), the "virtual RTT" of the rate-independent alpha update.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emu.packet import ECT1
from emu.transport.cc.base import WindowCC, WindowConfig, build_config, check_number
from emu.transport.samples import AckSample, LossEvent


@dataclass(frozen=True, kw_only=True)
class PragueConfig(WindowConfig):
    g: float = 1.0 / 16.0                      # RFC 8257 §4.2: estimation gain g = 1/16
    alpha_init: float = 1.0                    # RFC 8257 §3.3 / draft §2.3.2: start conservative
    beta_loss: float = 0.5                     # draft §2.4.3: Reno-like response to loss
    ai_pkts_per_rtt: float = 1.0               # draft §2.4.2: one MSS per round trip
    rtt_indep_target_s: Optional[float] = None  # draft §2.4.4 RTT independence (Linux prague: 25 ms); off

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("g", self.g, lo=0, hi=1, lo_open=True)
        check_number("alpha_init", self.alpha_init, lo=0, hi=1)
        check_number("beta_loss", self.beta_loss, lo=0, hi=1, lo_open=True, hi_open=True)
        check_number("ai_pkts_per_rtt", self.ai_pkts_per_rtt, lo=0, lo_open=True)
        if self.rtt_indep_target_s is not None:
            check_number("rtt_indep_target_s", self.rtt_indep_target_s, lo=0, lo_open=True)


def dctcp_alpha(alpha: float, marked_fraction: float, g: float = 1.0 / 16.0) -> float:
    """RFC 8257 §3.3: one EWMA step of the marked fraction."""
    return (1.0 - g) * alpha + g * marked_fraction


class PragueCC(WindowCC):
    """TCP Prague. ``PragueCC(mss_bytes=1448)`` or ``PragueCC(config=PragueConfig(...))``."""

    name = "prague"

    def __init__(self, mss_bytes: int = 1448, config: PragueConfig | None = None, **overrides) -> None:
        config = build_config(PragueConfig, config, overrides)
        super().__init__(mss_bytes, config)
        self.config: PragueConfig = config
        self.ecn = ECT1
        self.alpha = config.alpha_init
        self.ce_reduced_s = -float("inf")   # time of the last CE response (once per round trip)
        self._round_acked = 0
        self._round_ce = 0
        self.ce_events = 0

    def on_ack(self, s: AckSample) -> None:
        self._round_acked += s.acked_bytes
        self._round_ce += s.ce_bytes
        round_ended = self._observe(s)
        if round_ended and self._round_acked > 0:
            frac = min(1.0, self._round_ce / self._round_acked)
            self.alpha = dctcp_alpha(self.alpha, frac, self.config.g)
            self._round_acked = 0
            self._round_ce = 0
        if not self.may_raise_cwnd(s):
            return
        acked = float(s.acked_bytes)
        if self.cwnd_bytes < self.ssthresh_bytes:
            acked = self._slow_start(s, round_ended)
            if acked <= 0:
                return
        unmarked = acked - min(acked, float(s.ce_bytes))
        if unmarked <= 0:
            return
        ai = self.config.ai_pkts_per_rtt
        target = self.config.rtt_indep_target_s
        if target is not None and 0 < self.srtt_s < target:
            ai *= (self.srtt_s / target) ** 2
        self.cwnd_bytes += ai * self.mss_bytes * unmarked / self.cwnd_bytes

    def on_ce(self, s: AckSample) -> None:
        if s.sent_s <= self.ce_reduced_s:
            return
        self.ce_reduced_s = s.now_s
        self.cwnd_bytes = max(self.cwnd_bytes * (1.0 - self.alpha / 2.0), self.min_cwnd_bytes)
        self.ssthresh_bytes = self.cwnd_bytes
        self.congestion_events += 1
        self.ce_events += 1

    def on_loss(self, event: LossEvent) -> None:
        if event.is_timeout:
            self._timeout(event, self.config.beta_loss)
        elif event.sent_s > self.recovery_s:
            self.ssthresh_bytes = max(self.cwnd_bytes * self.config.beta_loss, self.min_cwnd_bytes)
            self.cwnd_bytes = self.ssthresh_bytes
            self._enter_recovery(event.now_s, event.high_seq)
            self.congestion_events += 1

    def state(self) -> dict:
        return {**super().state(), "alpha": self.alpha}
