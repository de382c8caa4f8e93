"""Reno (RFC 5681) with SACK-based recovery and classic ECN (RFC 3168).

- Slow start (§3.1): ``cwnd += acked`` per ACK while ``cwnd < ssthresh`` (byte counting, RFC 3465).
- Congestion avoidance (§3.1): ``cwnd += MSS * acked / cwnd`` (one MSS per round trip).
- Fast recovery (§3.2, with RFC 6675's pipe kept by the transport): on the first loss of a window,
  ``ssthresh = cwnd = max(beta * cwnd, 2 MSS)`` with ``beta = 0.5`` ("halve once per RTT"); losses of packets
  sent before that reduction do not reduce again, and the window does not grow until the cumulative ACK
  reaches the recovery point (``snd_nxt`` at the reduction, RFC 6675 §5); it grows only on ACKs that advance
  the cumulative ACK (§3.1), not on ACKs that only SACK data beyond a hole.
- Timeout (§3.1 eq. 4, §5): ``ssthresh = max(beta * cwnd, 2 MSS)``, ``cwnd = 1 MSS``.
- ECN (RFC 3168 §6.1.2): a CE report is answered like a loss, at most once per round trip. ``ecn=True`` makes
  the sender ECN-capable with ECT(0); otherwise packets are Not-ECT and AQMs drop instead of marking.

``ssthresh`` is taken from ``cwnd`` (as Linux does) rather than from FlightSize; with a cwnd-limited sender the
two are equal.
"""
from __future__ import annotations

from dataclasses import dataclass

from emu.packet import ECT0, NOT_ECT
from emu.transport.cc.base import WindowCC, WindowConfig, build_config, check_number
from emu.transport.samples import AckSample, LossEvent


@dataclass(frozen=True, kw_only=True)
class RenoConfig(WindowConfig):
    beta: float = 0.5      # RFC 5681 §3.1 eq. (4): ssthresh = FlightSize / 2
    ecn: bool = False      # RFC 3168: ECT(0) sender; off by default (Linux tcp_ecn=2 does not initiate)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("beta", self.beta, lo=0, hi=1, lo_open=True, hi_open=True)
        if not isinstance(self.ecn, bool):
            raise ValueError(f"ecn: must be True or False, got {self.ecn!r}")


class RenoCC(WindowCC):
    """RFC 5681 Reno. ``RenoCC(mss_bytes=1448, ecn=True)`` or ``RenoCC(config=RenoConfig(...))``."""

    name = "reno"

    def __init__(self, mss_bytes: int = 1448, config: RenoConfig | None = None, **overrides) -> None:
        config = build_config(RenoConfig, config, overrides)
        super().__init__(mss_bytes, config)
        self.config: RenoConfig = config
        self.ecn = ECT0 if config.ecn else NOT_ECT

    def on_ack(self, s: AckSample) -> None:
        round_ended = self._observe(s)
        if not self.may_raise_cwnd(s):
            return
        acked = float(s.acked_bytes)
        if self.cwnd_bytes < self.ssthresh_bytes:
            acked = self._slow_start(s, round_ended)
            if acked <= 0:
                return
        self.cwnd_bytes += self.mss_bytes * acked / self.cwnd_bytes

    def _reduce(self, now_s: float, high_seq: int) -> None:
        self.ssthresh_bytes = max(self.cwnd_bytes * self.config.beta, self.min_cwnd_bytes)
        self.cwnd_bytes = self.ssthresh_bytes
        self._enter_recovery(now_s, high_seq)
        self.congestion_events += 1

    def on_loss(self, event: LossEvent) -> None:
        if event.is_timeout:
            self._timeout(event, self.config.beta)
        elif event.sent_s > self.recovery_s:
            self._reduce(event.now_s, event.high_seq)

    def on_ce(self, s: AckSample) -> None:
        if self.config.ecn and s.sent_s > self.recovery_s:
            self._reduce(s.now_s, s.high_seq)

