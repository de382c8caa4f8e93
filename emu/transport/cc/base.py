"""The congestion-control contract: a pure strategy object driven by its transport.

A controller never touches the simulator: every method takes an ``AckSample`` or a ``LossEvent`` carrying the
current time (``now_s``), so controllers are unit-tested with literal numbers (ns-3's ``TcpCongestionOps``
pattern). The transport calls, per ACK, in this order::

    on_loss(event)   # only when that ACK (or a timer) made the loss detector declare packets lost
    on_ce(sample)    # only when the ACK reports newly CE-marked bytes (sample.ce_bytes > 0)
    on_ack(sample)   # every ACK

and reads ``cwnd_bytes`` (how many bytes may be in flight), ``pacing_rate_bps`` (None: do not pace) and ``ecn``
(the codepoint to put on data packets).

Shared mechanics live here:

- **Rounds.** A controller reduces at most once per round trip. It remembers the time of its last reduction;
  a congestion signal about a packet *sent* before that time belongs to the window already reacted to
  (RFC 5681 §3.2, RFC 3168 §6.1.2, RFC 6675 §5).
- **Recovery.** After a reduction the window does not grow until recovery ends (Linux: no ``tcp_cong_avoid``
  in the CWR/Recovery states). Recovery ends when the cumulative ACK reaches the *recovery point*, the
  ``snd_nxt`` at the reduction (RFC 6675 §5 ``RecoveryPoint``, RFC 5681 §3.2 / RFC 6582 ``recover``, Linux
  ``high_seq``), which the transport passes as ``LossEvent.high_seq`` / ``AckSample.high_seq``. Where a
  transport gives no sequence numbers (``-1``), and after a timeout (slow start restarts at once, Linux's
  Loss state), it ends when a packet sent after the reduction is acknowledged.
- **Growth only on in-order ACKs** (RFC 5681 §3.1; Linux ``tcp_may_raise_cwnd`` needs ``FLAG_DATA_ACKED``):
  an ACK that only SACKs data beyond a hole (``AckSample.cum_advanced`` False) does not grow the window, even
  before the loss is declared. An ACK that advances the cumulative ACK grows it by everything it newly
  delivered (cumulatively acknowledged plus newly SACKed bytes, Linux ``acked_sacked``).
- **Slow start** (RFC 5681 §3.1) with Linux-style byte counting (``cwnd += acked``, RFC 3465 without the L
  limit) and the initial window of RFC 6928 (10 segments).
- **HyStart++** (RFC 9406 §4, simplified: the delay-increase exit without Conservative Slow Start): leave slow
  start once the minimum RTT of a round exceeds the previous round's by ``clamp(min_rtt/8, 4 ms, 16 ms)``,
  after 8 samples in the round and above 16 segments.
- **Default pacing** like Linux (``tcp_update_pacing_rate``): ``gain * cwnd / srtt`` with gain 2 in slow start
  and 1.2 in congestion avoidance (sysctls ``tcp_pacing_ss_ratio=200``, ``tcp_pacing_ca_ratio=120``).
"""
from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from emu.packet import NOT_ECT
from emu.transport.samples import AckSample, LossEvent

INF = float("inf")

# RFC 9406 §4.3 constants.
HYSTART_MIN_RTT_THRESH_S = 0.004
HYSTART_MAX_RTT_THRESH_S = 0.016
HYSTART_MIN_RTT_DIVISOR = 8
HYSTART_N_RTT_SAMPLE = 8
HYSTART_LOW_SSTHRESH_PKTS = 16


def build_config(cls, config, overrides: dict):
    """A ``cls`` config from ``config`` (or the defaults) with keyword ``overrides``; unknown keywords raise
    ValueError listing the valid fields."""
    if config is not None and not isinstance(config, cls):
        raise ValueError(f"config: expected a {cls.__name__}, got {type(config).__name__}")
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; valid fields: "
                         f"{', '.join(sorted(valid))}")
    if config is None:
        return cls(**overrides)
    return dataclasses.replace(config, **overrides) if overrides else config


def check_number(field: str, value: object, *, lo: float = None, hi: float = None, lo_open: bool = False,
                 hi_open: bool = False) -> float:
    """Validate a numeric config field and return it as float; raise ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field}: must be a finite number, got {value!r}")
    ok = True
    if lo is not None:
        ok = ok and (value > lo if lo_open else value >= lo)
    if hi is not None:
        ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else (f"< {hi}" if hi_open else f"<= {hi}")
        rng = " and ".join(s for s in (lo_s, hi_s) if s)
        raise ValueError(f"{field}: must be {rng}, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class WindowConfig:
    """Fields every window-based controller shares."""

    initial_cwnd_pkts: float = 10.0     # RFC 6928 §2
    min_cwnd_pkts: float = 2.0          # RFC 5681 §3.1 eq. (4): ssthresh >= 2 SMSS
    pacing_gain_ss: float = 2.0         # Linux tcp_pacing_ss_ratio = 200 %
    pacing_gain_ca: float = 1.2         # Linux tcp_pacing_ca_ratio = 120 %
    hystart: bool = False               # RFC 9406 HyStart++ delay-increase exit (simplified)

    def __post_init__(self) -> None:
        check_number("initial_cwnd_pkts", self.initial_cwnd_pkts, lo=1)
        check_number("min_cwnd_pkts", self.min_cwnd_pkts, lo=1)
        check_number("pacing_gain_ss", self.pacing_gain_ss, lo=0, lo_open=True)
        check_number("pacing_gain_ca", self.pacing_gain_ca, lo=0, lo_open=True)
        if not isinstance(self.hystart, bool):
            raise ValueError(f"hystart: must be True or False, got {self.hystart!r}")


class CongestionControl(ABC):
    """Base of every controller.

    Attributes read by transports:
        cwnd_bytes: congestion window (bytes; may be fractional).
        pacing_rate_bps: rate to pace data at, or None for no pacing.
        ecn: ECN codepoint for data packets (``emu.packet.ECN`` value).
    """

    name = "base"

    def __init__(self, mss_bytes: int = 1448) -> None:
        if isinstance(mss_bytes, bool) or not isinstance(mss_bytes, int) or mss_bytes < 1:
            raise ValueError(f"mss_bytes: must be an integer >= 1, got {mss_bytes!r}")
        self.mss_bytes = mss_bytes
        self.cwnd_bytes: float = 10.0 * mss_bytes
        self.ssthresh_bytes: float = INF
        self.srtt_s: float = 0.0
        self.min_rtt_s: float = INF
        self.ecn: int = NOT_ECT
        self.congestion_events = 0   # reductions made (loss, CE or timeout)
        self.timeouts = 0

    # -- the contract ---------------------------------------------------------------------------------------------

    @abstractmethod
    def on_ack(self, sample: AckSample) -> None:
        """An ACK arrived (called for every ACK, after ``on_loss``/``on_ce`` of the same ACK)."""

    @abstractmethod
    def on_loss(self, event: LossEvent) -> None:
        """Packets were declared lost (``event.kind``: ``"rack"``, ``"rto"`` or ``"gap"``)."""

    def on_ce(self, sample: AckSample) -> None:
        """The ACK reports ``sample.ce_bytes`` newly CE-marked bytes. Default: ignore ECN."""

    @property
    def pacing_rate_bps(self) -> Optional[float]:
        return None

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd_bytes < self.ssthresh_bytes

    def state(self) -> dict:
        """A snapshot for tracing and debugging."""
        return {"cc": self.name, "cwnd_bytes": self.cwnd_bytes, "ssthresh_bytes": self.ssthresh_bytes,
                "srtt_s": self.srtt_s, "min_rtt_s": self.min_rtt_s}


class WindowCC(CongestionControl):
    """Shared machinery of the window-based controllers (Reno, Cubic, Prague): rounds, recovery gating,
    slow start with optional HyStart++, default pacing."""

    def __init__(self, mss_bytes: int, config: WindowConfig) -> None:
        super().__init__(mss_bytes)
        self.config = config
        self.cwnd_bytes = config.initial_cwnd_pkts * mss_bytes
        self.min_cwnd_bytes = config.min_cwnd_pkts * mss_bytes
        self.recovery_s = -INF        # time of the last window reduction (loss, CE or timeout)
        self.recovery_seq = -1        # recovery point (snd_nxt at that reduction), -1: use recovery_s
        # Rounds: a round ends when a packet sent after the round started is acknowledged.
        self.round_start_s = -INF
        self.rounds = 0
        # HyStart++ state.
        self._hs_last_min_rtt = INF
        self._hs_cur_min_rtt = INF
        self._hs_samples = 0

    # -- helpers ----------------------------------------------------------------------------------------------

    def _observe(self, s: AckSample) -> bool:
        """Update RTT state from a sample; return True if this ACK ends a round."""
        if s.srtt_s > 0:
            self.srtt_s = s.srtt_s
        if s.rtt_s > 0 and s.rtt_s < self.min_rtt_s:
            self.min_rtt_s = s.rtt_s
        if s.sent_s >= self.round_start_s:
            self.round_start_s = s.now_s
            self.rounds += 1
            return True
        return False

    def in_recovery(self, s: AckSample) -> bool:
        """True until recovery from the last reduction ends (no window growth then): the cumulative ACK has not
        reached the recovery point, or, without sequence numbers, the ACK is for a packet sent before the
        reduction."""
        if self.recovery_seq >= 0 and s.cum_seq >= 0:
            return s.cum_seq < self.recovery_seq
        return s.sent_s <= self.recovery_s

    def may_raise_cwnd(self, s: AckSample) -> bool:
        """RFC 5681 §3.1 / Linux ``tcp_may_raise_cwnd``: grow only on ACKs that deliver new data in order, are not
        application-limited (RFC 7661) and arrive outside recovery."""
        return s.acked_bytes > 0 and s.cum_advanced and not s.app_limited and not self.in_recovery(s)

    def _enter_recovery(self, now_s: float, high_seq: int) -> None:
        """Remember a reduction: its time and its recovery point (``high_seq``, -1 if unknown)."""
        self.recovery_s = now_s
        self.recovery_seq = high_seq

    def _slow_start(self, s: AckSample, round_ended: bool) -> float:
        """Grow cwnd by the acked bytes up to ssthresh; return the acked bytes left for congestion avoidance."""
        acked = s.acked_bytes
        if self.config.hystart:
            self._hystart(s, round_ended)
            if not self.in_slow_start:
                return acked
        room = self.ssthresh_bytes - self.cwnd_bytes
        if acked <= room:
            self.cwnd_bytes += acked
            return 0.0
        self.cwnd_bytes = self.ssthresh_bytes
        return acked - room

    def _hystart(self, s: AckSample, round_ended: bool) -> None:
        """RFC 9406 §4.2 delay-increase test (no Conservative Slow Start phase: exit straight to CA)."""
        if round_ended:
            self._hs_last_min_rtt = self._hs_cur_min_rtt
            self._hs_cur_min_rtt = INF
            self._hs_samples = 0
        if s.rtt_s > 0:
            self._hs_cur_min_rtt = min(self._hs_cur_min_rtt, s.rtt_s)
            self._hs_samples += 1
        if (self._hs_samples >= HYSTART_N_RTT_SAMPLE and self._hs_last_min_rtt < INF
                and self.cwnd_bytes >= HYSTART_LOW_SSTHRESH_PKTS * self.mss_bytes):
            thresh = min(max(self._hs_last_min_rtt / HYSTART_MIN_RTT_DIVISOR, HYSTART_MIN_RTT_THRESH_S),
                         HYSTART_MAX_RTT_THRESH_S)
            if self._hs_cur_min_rtt >= self._hs_last_min_rtt + thresh:
                self.ssthresh_bytes = self.cwnd_bytes

    def _timeout(self, event: LossEvent, beta: float) -> None:
        """RFC 5681 §3.1 eq. (4) and §5 / RFC 6298 §5: ssthresh from the window, cwnd to one segment."""
        self.ssthresh_bytes = max(self.cwnd_bytes * beta, self.min_cwnd_bytes)
        self.cwnd_bytes = float(self.mss_bytes)
        self._enter_recovery(event.now_s, -1)     # slow start resumes on the retransmissions' ACKs
        self.congestion_events += 1
        self.timeouts += 1

    @property
    def pacing_rate_bps(self) -> Optional[float]:
        if self.srtt_s <= 0:
            return None
        gain = self.config.pacing_gain_ss if self.cwnd_bytes < self.ssthresh_bytes else self.config.pacing_gain_ca
        return gain * self.cwnd_bytes * 8.0 / self.srtt_s
