"""CUBIC (RFC 9438).

Window growth in congestion avoidance follows the cubic function of the time ``t`` since the current
congestion-avoidance epoch began (§4.2), in segments::

    W_cubic(t) = C * (t - K)^3 + W_max,        K = cbrt((W_max - cwnd_epoch) / C)     (eqs. 1, 2)

with ``C = 0.4`` and ``beta_cubic = 0.7`` (§5.1). On each ACK the window moves towards
``target = W_cubic(t + RTT)``, clamped to ``[cwnd, 1.5 cwnd]`` (§4.2), by ``(target - cwnd) / cwnd`` segments
per acknowledged segment. The Reno-friendly estimate ``W_est`` grows by ``alpha_cubic * acked / cwnd`` with
``alpha_cubic = 3 (1 - beta) / (1 + beta)`` (§4.3; 1 once ``W_est`` has reached the previous ``W_max``), and the
window is ``W_est`` whenever ``W_cubic(t) < W_est``.

On a congestion event (loss or CE, once per round trip, §4.6): ``ssthresh = cwnd = max(beta * cwnd, 2 MSS)`` and,
with fast convergence (§4.7), ``W_max = cwnd (1 + beta) / 2`` if the window had not regained the previous
``W_max``, else ``W_max = cwnd``.

How that test compares (``fast_convergence_compare``):

- ``"linux"`` (default): as Linux ``tcp_cubic.c`` (``bictcp_recalc_ssthresh``), in whole segments:
  ``floor(cwnd) < W_max`` with ``W_max`` kept as an integer (``last_max_cwnd``), ``W_max = floor(floor(cwnd)
  (1 + beta) / 2)`` when it fires. A flow that returns to the same buffer-overflow window each cycle (its loss
  window within a segment of the previous peak) does not fire it.
- ``"rfc9438"``: the fractional comparison of RFC 9438 §4.7 (``cwnd < W_max`` on real numbers). With the
  window a fraction of a segment short of the previous peak it fires about every other cycle, which shortens
  the cycles and adds drops compared with deployed stacks; kept for RFC-literal runs.

How the curve is followed (``target_arithmetic``):

- ``"rfc9438"`` (default): the continuous curve above, with a fractional window.
- ``"linux"``: as Linux ``tcp_cubic.c`` (``bictcp_update``) and ns-3's ``TcpCubic::Update``: the curve's offset
  ``C |t - K|^3`` is truncated to whole segments and the window grows one segment per
  ``floor(cwnd / (target - cwnd))`` acknowledged segments (at least 2), with ``t`` taken one min RTT ahead.
  While the continuous curve is within one segment of ``W_max`` (``|t - K| < cbrt(1 / C)``, 1.36 s at C = 0.4)
  the truncated target is ``W_max`` itself, so the window keeps climbing one segment per round through what is
  the plateau of the continuous curve: cycles are shorter (docs/l4s.md, the ns-3 comparison).

A timeout (§4.8) sets ``cwnd`` to one segment and restarts from slow start.
HyStart++ (RFC 9406) is on by default, as CUBIC is usually deployed with a HyStart variant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from emu.packet import ECT0, NOT_ECT
from emu.transport.cc.base import WindowCC, WindowConfig, build_config, check_number
from emu.transport.samples import AckSample, LossEvent


@dataclass(frozen=True, kw_only=True)
class CubicConfig(WindowConfig):
    c: float = 0.4                 # RFC 9438 §5.1 C
    beta: float = 0.7              # RFC 9438 §5.1 beta_cubic
    fast_convergence: bool = True  # RFC 9438 §4.7
    fast_convergence_compare: str = "linux"   # "linux": whole segments (tcp_cubic.c); "rfc9438": fractional
    target_arithmetic: str = "rfc9438"   # "rfc9438": continuous curve; "linux": whole segments (bictcp_update)
    reno_friendly: bool = True     # RFC 9438 §4.3
    hystart: bool = True           # RFC 9406 HyStart++ (delay-increase exit)
    ecn: bool = False              # RFC 3168 ECT(0) sender

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("c", self.c, lo=0, lo_open=True)
        check_number("beta", self.beta, lo=0, hi=1, lo_open=True, hi_open=True)
        for name in ("fast_convergence_compare", "target_arithmetic"):
            if getattr(self, name) not in ("linux", "rfc9438"):
                raise ValueError(f"{name}: must be 'linux' or 'rfc9438', got {getattr(self, name)!r}")
        for name in ("fast_convergence", "reno_friendly", "ecn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be True or False, got {getattr(self, name)!r}")


def w_cubic_pkts(t_s: float, w_max_pkts: float, k_s: float, c: float = 0.4) -> float:
    """RFC 9438 eq. (1): the cubic window (segments) ``t_s`` seconds into an epoch."""
    return c * (t_s - k_s) ** 3 + w_max_pkts


def cubic_k_s(w_max_pkts: float, cwnd_epoch_pkts: float, c: float = 0.4) -> float:
    """RFC 9438 eq. (2): time for W_cubic to climb from ``cwnd_epoch`` back to ``W_max`` (0 if already there)."""
    diff = w_max_pkts - cwnd_epoch_pkts
    if diff <= 0:
        return 0.0
    return (diff / c) ** (1.0 / 3.0)


class CubicCC(WindowCC):
    """RFC 9438 CUBIC. ``CubicCC(mss_bytes=1448, hystart=False)`` or ``CubicCC(config=CubicConfig(...))``."""

    name = "cubic"

    def __init__(self, mss_bytes: int = 1448, config: CubicConfig | None = None, **overrides) -> None:
        config = build_config(CubicConfig, config, overrides)
        super().__init__(mss_bytes, config)
        self.config: CubicConfig = config
        self.ecn = ECT0 if config.ecn else NOT_ECT
        b = config.beta
        self.alpha_cubic = 3.0 * (1.0 - b) / (1.0 + b)
        self.w_max_pkts = 0.0        # window before the last reduction (after fast convergence)
        self.epoch_s: float | None = None
        self.k_s = 0.0
        self.cwnd_epoch_pkts = 0.0
        self.w_est_pkts = 0.0

    # -- congestion avoidance -------------------------------------------------------------------------------------

    def _start_epoch(self, now_s: float) -> None:
        mss = self.mss_bytes
        cwnd_pkts = self.cwnd_bytes / mss
        self.epoch_s = now_s
        self.cwnd_epoch_pkts = cwnd_pkts
        if self.w_max_pkts < cwnd_pkts:   # no reduction yet, or the window already beyond it (§4.8 after RTO)
            self.w_max_pkts = cwnd_pkts
        self.k_s = cubic_k_s(self.w_max_pkts, cwnd_pkts, self.config.c)
        self.w_est_pkts = cwnd_pkts

    def on_ack(self, s: AckSample) -> None:
        round_ended = self._observe(s)
        if not self.may_raise_cwnd(s):
            return
        acked = float(s.acked_bytes)
        if self.cwnd_bytes < self.ssthresh_bytes:
            acked = self._slow_start(s, round_ended)
            if acked <= 0:
                return
        if self.epoch_s is None:
            self._start_epoch(s.now_s)
        mss = self.mss_bytes
        c = self.config.c
        cwnd_pkts = self.cwnd_bytes / mss
        acked_pkts = acked / mss
        t = s.now_s - self.epoch_s
        if self.config.target_arithmetic == "linux":
            new_pkts = cwnd_pkts + acked_pkts / self._linux_cnt(t, cwnd_pkts)
        else:
            rtt = self.srtt_s if self.srtt_s > 0 else max(s.rtt_s, 0.0)
            target = w_cubic_pkts(t + rtt, self.w_max_pkts, self.k_s, c)
            if target < cwnd_pkts:
                target = cwnd_pkts
            elif target > 1.5 * cwnd_pkts:
                target = 1.5 * cwnd_pkts
            new_pkts = cwnd_pkts + (target - cwnd_pkts) / cwnd_pkts * acked_pkts
        if self.config.reno_friendly:
            alpha = 1.0 if self.w_est_pkts >= self.w_max_pkts else self.alpha_cubic   # §4.3
            self.w_est_pkts += alpha * acked_pkts / cwnd_pkts
            if w_cubic_pkts(t, self.w_max_pkts, self.k_s, c) < self.w_est_pkts and self.w_est_pkts > new_pkts:
                new_pkts = self.w_est_pkts
        self.cwnd_bytes = new_pkts * mss

    def _linux_cnt(self, t_s: float, cwnd_pkts: float) -> int:
        """Linux ``tcp_cubic.c`` ``bictcp_update``: acknowledged segments per one-segment increase. The target is
        the cubic curve at ``t + min RTT`` with the offset ``C |t - K|^3`` truncated to whole segments, and
        ``cnt = cwnd / (target - cwnd)`` in integers (at least 2: at most 1.5x per round trip)."""
        rtt = self.min_rtt_s if self.min_rtt_s < math.inf else max(self.srtt_s, 0.0)
        t = t_s + rtt
        origin = math.floor(self.w_max_pkts + 1e-9)
        delta = math.floor(self.config.c * abs(t - self.k_s) ** 3)
        target = origin - delta if t < self.k_s else origin + delta
        cwnd = math.floor(cwnd_pkts + 1e-9)
        cnt = cwnd // (target - cwnd) if target > cwnd else 100 * cwnd
        return max(cnt, 2)

    # -- congestion events ----------------------------------------------------------------------------------------

    def _set_w_max(self) -> None:
        """RFC 9438 §4.7 fast convergence, compared as ``fast_convergence_compare`` says."""
        cwnd_pkts = self.cwnd_bytes / self.mss_bytes
        beta = self.config.beta
        if self.config.fast_convergence_compare == "linux":
            whole = float(math.floor(cwnd_pkts + 1e-9))
            if self.config.fast_convergence and whole < self.w_max_pkts:
                self.w_max_pkts = float(math.floor(whole * (1.0 + beta) / 2.0))
            else:
                self.w_max_pkts = whole
        elif self.config.fast_convergence and cwnd_pkts < self.w_max_pkts:
            self.w_max_pkts = cwnd_pkts * (1.0 + beta) / 2.0
        else:
            self.w_max_pkts = cwnd_pkts

    def _reduce(self, now_s: float, high_seq: int) -> None:
        self._set_w_max()
        self.ssthresh_bytes = max(self.cwnd_bytes * self.config.beta, self.min_cwnd_bytes)
        self.cwnd_bytes = self.ssthresh_bytes
        self.epoch_s = None
        self._enter_recovery(now_s, high_seq)
        self.congestion_events += 1

    def on_loss(self, event: LossEvent) -> None:
        if event.is_timeout:
            self._set_w_max()
            self._timeout(event, self.config.beta)
            self.epoch_s = None
        elif event.sent_s > self.recovery_s:
            self._reduce(event.now_s, event.high_seq)

    def on_ce(self, s: AckSample) -> None:
        if self.config.ecn and s.sent_s > self.recovery_s:
            self._reduce(s.now_s, s.high_seq)

    def state(self) -> dict:
        return {**super().state(), "w_max_pkts": self.w_max_pkts, "k_s": self.k_s, "w_est_pkts": self.w_est_pkts}
