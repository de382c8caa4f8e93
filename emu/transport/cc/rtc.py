"""A rate-based controller for real-time media over UDP, in the spirit of SCReAM (RFC 8298) and UDP Prague.

The controller keeps a target rate ``target_rate_bps`` that an encoder should produce and a pacer should send
at. It is driven by feedback reports turned into ``AckSample``s (received bytes, CE-marked bytes, one-way delay,
RTT) and by ``LossEvent``s, and reacts at most once per round trip:

- **Loss** (RFC 8298 §4.1.2.2, ``beta_loss = 0.8``): ``rate *= beta_loss`` immediately, once per round trip.
- **L4S CE marks** (scalable response, as Prague / UDP Prague): ``alpha`` is an EWMA (``g = 1/16``) of the
  fraction ``F`` of bytes marked per round; at the end of a round with marks, ``rate *= 1 - alpha / 2``.
  The additive increase below still applies, scaled by ``1 - F``, so at equilibrium ``alpha / 2 * rate``
  equals the increase per round: the rate is inversely proportional to the marking probability (scalable).
- **Classic CE marks** (``l4s=False``, ``ecn=True``): ``rate *= beta_ecn`` (RFC 8298 §4.1.2.2, 0.8 here too).
- **Queueing delay** (RFC 8298 §4.1.2: self-clocked on one-way delay): ``qdelay = owd - base_owd`` where
  ``base_owd`` is the minimum one-way delay over a sliding window (``base_owd_window_s``). Above
  ``qdelay_target_s`` the rate is cut below the round's delivery rate in proportion to the excess,
  ``rate = min(rate, delivered) * (1 - 0.5 * min(1, excess/target))``; while the queue grows (positive delay
  gradient between rounds) above half the target the rate holds. Cuts happen only while the delay is not
  already falling (a cut whose effect is still draining the queue is not repeated).
  This is what keeps the controller usable on classic FIFO bottlenecks (and on trace-driven links) where no
  ECN marks come.
- **Increase.** Until the first congestion signal: multiplicative ramp-up ``rate *= 1 + ramp_gain`` per round
  (the slow-start analogue); it ends at the first CE mark, loss, or once the queueing delay passes
  ``startup_exit_qdelay_s``, and the rate then falls to the round's delivery rate (the capacity, as a queue was
  building). Afterwards: ``ai_pkts_per_rtt`` segments per round trip,
  ``rate += ai * MSS * 8 / srtt * (1 - F) * max(0, 1 - qdelay / target)``.
- **Application-limited:** no increase while the sender is application-limited and the rate is already more
  than twice the delivered rate (RFC 7661 spirit).

``min_rate_bps <= target_rate_bps <= max_rate_bps`` always. ``pacing_rate_bps = pacing_gain * target`` (RFC 8298
paces media above the target to drain frame bursts). ``cwnd_bytes`` (2 × rate × srtt) lets the controller run
under a window-based transport too.

Simplified against SCReAM: no separate network congestion window / RTP queue delay interplay, no frame-skip
signal (the application sees ``target_rate_bps`` and its own queue), no competing-flows detection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emu.packet import ECT0, ECT1, NOT_ECT
from emu.transport.cc.base import CongestionControl, build_config, check_number
from emu.transport.cc.prague import dctcp_alpha
from emu.transport.samples import AckSample, LossEvent

INF = float("inf")


@dataclass(frozen=True, kw_only=True)
class RtcConfig:
    start_rate_bps: float = 1e6          # our choice: a modest first guess
    min_rate_bps: float = 150e3          # our choice (RFC 8298 leaves it to the application)
    max_rate_bps: float = 50e6           # our choice (RFC 8298 leaves it to the application)
    l4s: bool = True                     # ECT(1) and the scalable CE response
    ecn: bool = False                    # with l4s=False: ECT(0) and the classic CE response
    g: float = 1.0 / 16.0                # RFC 8257 §4.2 EWMA gain
    alpha_init: float = 1.0              # RFC 8257 §3.3: start conservative
    beta_loss: float = 0.8               # RFC 8298 §4.1.2.2 loss response
    beta_ecn: float = 0.8                # RFC 8298 §4.1.2.2 classic ECN response
    qdelay_target_s: float = 0.06        # RFC 8298 §4.1.1 target range 0.06-0.1 s (lower end)
    base_owd_window_s: float = 10.0      # RFC 8298 §4.1.1: base delay over a window (SCReAM: 10 minutes)
    ramp_gain: float = 0.5               # our choice: x1.5 per round until the first congestion signal
    startup_exit_qdelay_s: float = 0.01  # our choice: ramp-up ends once a 10 ms queue builds
    rate_window_s: float = 0.1           # our choice: delivery-rate measurement window (>= srtt)
    ai_pkts_per_rtt: float = 1.0         # Prague-like additive increase (draft-briscoe-iccrg-prague §2.4.2)
    pacing_gain: float = 1.5             # RFC 8298 §4.1.2.4 packet pacing headroom
    min_round_s: float = 0.005           # rounds shorter than this are merged (tiny-RTT guard)

    def __post_init__(self) -> None:
        check_number("start_rate_bps", self.start_rate_bps, lo=0, lo_open=True)
        check_number("min_rate_bps", self.min_rate_bps, lo=0, lo_open=True)
        check_number("max_rate_bps", self.max_rate_bps, lo=0, lo_open=True)
        if not self.min_rate_bps <= self.max_rate_bps:
            raise ValueError(f"max_rate_bps: must be >= min_rate_bps={self.min_rate_bps}, got {self.max_rate_bps}")
        for name in ("l4s", "ecn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be True or False, got {getattr(self, name)!r}")
        check_number("g", self.g, lo=0, hi=1, lo_open=True)
        check_number("alpha_init", self.alpha_init, lo=0, hi=1)
        check_number("beta_loss", self.beta_loss, lo=0, hi=1, lo_open=True, hi_open=True)
        check_number("beta_ecn", self.beta_ecn, lo=0, hi=1, lo_open=True, hi_open=True)
        check_number("qdelay_target_s", self.qdelay_target_s, lo=0, lo_open=True)
        check_number("base_owd_window_s", self.base_owd_window_s, lo=0, lo_open=True)
        check_number("ramp_gain", self.ramp_gain, lo=0)
        check_number("startup_exit_qdelay_s", self.startup_exit_qdelay_s, lo=0)
        check_number("ai_pkts_per_rtt", self.ai_pkts_per_rtt, lo=0)
        check_number("pacing_gain", self.pacing_gain, lo=1)
        check_number("min_round_s", self.min_round_s, lo=0)
        check_number("rate_window_s", self.rate_window_s, lo=0, lo_open=True)


class RtcRateController(CongestionControl):
    """Real-time rate controller. ``RtcRateController(mss_bytes=1200, l4s=True, max_rate_bps=8e6)``."""

    name = "rtc"

    def __init__(self, mss_bytes: int = 1448, config: RtcConfig | None = None, **overrides) -> None:
        config = build_config(RtcConfig, config, overrides)
        super().__init__(mss_bytes)
        self.config = config
        self.ecn = ECT1 if config.l4s else (ECT0 if config.ecn else NOT_ECT)
        self.rate_bps = min(max(config.start_rate_bps, config.min_rate_bps), config.max_rate_bps)
        self.alpha = config.alpha_init
        self.startup = True
        self.reduced_s = -INF          # time of the last rate reduction
        self.round_start_s = -INF
        self.rounds = 0
        self.qdelay_s = 0.0            # mean queueing delay of the last completed round
        self.delivery_rate_bps = 0.0   # received rate over the last measurement window (>= rate_window_s)
        self._dr_bytes = 0
        self._dr_t0 = -INF
        self._prev_qdelay_s = 0.0
        # Base one-way delay: min over the current and the previous half-window (a two-bucket sliding min).
        self._owd_bucket_start_s = -INF
        self._owd_min_cur = INF
        self._owd_min_prev = INF
        # Round accumulators.
        self._r_acked = 0
        self._r_ce = 0
        self._r_qd_sum = 0.0
        self._r_qd_n = 0
        self._r_loss = False
        self._r_app_limited = False
        self._r_t0 = 0.0
        self.loss_events = 0
        self.ce_rounds = 0
        self.delay_reductions = 0

    # -- outputs --------------------------------------------------------------------------------------------------

    @property
    def target_rate_bps(self) -> float:
        return self.rate_bps

    @property
    def pacing_rate_bps(self) -> Optional[float]:
        return self.rate_bps * self.config.pacing_gain

    @property
    def cwnd_bytes(self) -> float:  # type: ignore[override]
        rtt = self.srtt_s if self.srtt_s > 0 else 0.1
        return max(2.0 * self.mss_bytes, 2.0 * self.rate_bps * rtt / 8.0)

    @cwnd_bytes.setter
    def cwnd_bytes(self, value: float) -> None:  # the base constructor assigns it; the rate is what counts
        pass

    @property
    def in_slow_start(self) -> bool:
        return self.startup

    @property
    def base_owd_s(self) -> float:
        return min(self._owd_min_cur, self._owd_min_prev)

    # -- inputs ---------------------------------------------------------------------------------------------------

    def _clamp(self) -> None:
        c = self.config
        if self.rate_bps < c.min_rate_bps:
            self.rate_bps = c.min_rate_bps
        elif self.rate_bps > c.max_rate_bps:
            self.rate_bps = c.max_rate_bps

    def _base_owd(self, now_s: float, owd_s: float) -> float:
        half = self.config.base_owd_window_s / 2.0
        if now_s - self._owd_bucket_start_s >= half:
            self._owd_min_prev = self._owd_min_cur
            self._owd_min_cur = INF
            self._owd_bucket_start_s = now_s
        if owd_s < self._owd_min_cur:
            self._owd_min_cur = owd_s
        return min(self._owd_min_cur, self._owd_min_prev)

    def on_ack(self, s: AckSample) -> None:
        c = self.config
        if s.srtt_s > 0:
            self.srtt_s = s.srtt_s
        if 0 < s.rtt_s < self.min_rtt_s:
            self.min_rtt_s = s.rtt_s
        self._r_acked += s.acked_bytes
        self._r_ce += s.ce_bytes
        self._measure_delivery(s)
        if s.owd_s >= 0:
            self._r_qd_sum += s.owd_s - self._base_owd(s.now_s, s.owd_s)
            self._r_qd_n += 1
        if s.app_limited:
            self._r_app_limited = True
        if self.round_start_s == -INF:
            # The first report opens round 1 (packets sent from now on belong to it).
            self.round_start_s = self._r_t0 = s.now_s
            self._reset_round()
            return
        if s.sent_s < self.round_start_s or s.now_s - self._r_t0 < c.min_round_s:
            return
        # End of a round: one reaction.
        self.rounds += 1
        duration = s.now_s - self._r_t0
        self.round_start_s = s.now_s
        self._r_t0 = s.now_s
        acked, ce = self._r_acked, self._r_ce
        qdelay = self._r_qd_sum / self._r_qd_n if self._r_qd_n else self.qdelay_s
        app_limited = self._r_app_limited
        self._reset_round()
        self._prev_qdelay_s, self.qdelay_s = self.qdelay_s, qdelay
        if acked <= 0:
            return
        self._react(s, acked, ce, qdelay, app_limited, duration)

    def _measure_delivery(self, s: AckSample) -> None:
        """Received rate over windows of at least ``rate_window_s`` (and one smoothed RTT): smoother than a
        per-round rate when the application sends in bursts (frames)."""
        if self._dr_t0 == -INF:
            self._dr_t0 = s.now_s
            return
        self._dr_bytes += s.acked_bytes
        elapsed = s.now_s - self._dr_t0
        if elapsed >= max(self.config.rate_window_s, self.srtt_s):
            self.delivery_rate_bps = self._dr_bytes * 8.0 / elapsed
            self._dr_bytes = 0
            self._dr_t0 = s.now_s

    def _reset_round(self) -> None:
        self._r_acked = self._r_ce = 0
        self._r_qd_sum = 0.0
        self._r_qd_n = 0
        self._r_app_limited = False

    def _react(self, s: AckSample, acked: int, ce: int, qdelay: float, app_limited: bool, duration: float) -> None:
        c = self.config
        frac = min(1.0, ce / acked)
        delivery_bps = self.delivery_rate_bps
        if c.l4s:
            self.alpha = dctcp_alpha(self.alpha, frac, c.g)
        target = c.qdelay_target_s
        if self.startup and (ce > 0 or qdelay > c.startup_exit_qdelay_s):
            # End of ramp-up: a queue is building, so the round's delivery rate is the path's capacity.
            self.startup = False
            if delivery_bps > 0 and self.rate_bps > delivery_bps:
                self.rate_bps = delivery_bps
        reduced = False
        if ce > 0:
            self.ce_rounds += 1
            if c.l4s:
                self.rate_bps *= 1.0 - self.alpha / 2.0
                reduced = True
            elif s.sent_s > self.reduced_s:
                self.rate_bps *= c.beta_ecn
                self.reduced_s = s.now_s
                reduced = True
        rising = qdelay >= self._prev_qdelay_s
        if (not reduced and rising and qdelay > target / 4.0 and 0 < 0.95 * delivery_bps < self.rate_bps
                and s.sent_s > self.reduced_s):
            # A queue is building: the path delivers less than we send. Go just below the delivered rate.
            self.rate_bps = 0.95 * delivery_bps
            self.reduced_s = s.now_s
            reduced = True
        if not reduced and qdelay > target and rising and s.sent_s > self.reduced_s:
            # Too much queue: drop below what the path delivers, in proportion to the excess delay.
            base = min(self.rate_bps, delivery_bps) if delivery_bps > 0 else self.rate_bps
            self.rate_bps = base * (1.0 - 0.5 * min(1.0, (qdelay - target) / target))
            self.reduced_s = s.now_s
            self.delay_reductions += 1
            reduced = True
        if reduced and not (c.l4s and ce > 0):
            self._clamp()
            return
        # Increase, unless the queue is above half the target and growing (or above the target and draining
        # after a cut), or the sender is application-limited.
        if qdelay > target or (rising and qdelay > target / 2.0):
            self._clamp()
            return
        if app_limited and delivery_bps > 0 and self.rate_bps > 2.0 * delivery_bps:
            self._clamp()
            return
        if self.startup:
            self.rate_bps *= 1.0 + c.ramp_gain
        else:
            rtt = self.srtt_s if self.srtt_s > 0 else max(s.rtt_s, 1e-3)
            delay_factor = max(0.0, 1.0 - qdelay / target)
            self.rate_bps += c.ai_pkts_per_rtt * self.mss_bytes * 8.0 / rtt * (1.0 - frac) * delay_factor
        self._clamp()

    def on_loss(self, event: LossEvent) -> None:
        if event.lost_bytes <= 0 or event.sent_s <= self.reduced_s:
            return
        self.startup = False
        self.rate_bps *= self.config.beta_loss
        self.reduced_s = event.now_s
        self.loss_events += 1
        self._clamp()

    def state(self) -> dict:
        return {"cc": self.name, "target_rate_bps": self.rate_bps, "alpha": self.alpha, "qdelay_s": self.qdelay_s,
                "srtt_s": self.srtt_s, "startup": self.startup}
