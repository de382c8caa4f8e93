"""PIE (Proportional Integral controller Enhanced) AQM, RFC 8033.

PIE drops (or ECN-marks) arriving packets at random with probability ``p``. Every ``tupdate_s`` a PI controller
moves ``p`` by ``alpha * (qdelay - target) + beta * (qdelay - qdelay_old)``, the step scaled down while ``p`` is
small (RFC 8033 §4.2 auto-tuning table).

Queueing delay is measured with timestamps, not with the departure-rate estimator: RFC 8033 §4.3 allows both, and
this is what Linux ``sch_pie`` does with ``dq_rate_estimator`` off (its default). ``qdelay_s`` is the sojourn time
of the most recently dequeued packet, and 0 when that dequeue left the queue empty (as Linux does; without this an
idle queue would keep its last delay forever and ``p`` could never decay).

Periodic work without timers: the update instants are ``k * tupdate_s`` (k = 1, 2, ...). Between two calls of
``enqueue``/``dequeue`` nothing the controller reads can change, so every call first performs, in order, all the
updates due at or before ``now_s``; the result is identical to a timer firing every ``tupdate_s``. While the queue is
idle the updates drive the state to the fixed point ``p = 0, qdelay = qdelay_old = 0, burst_allowance = 0``
(reached after at most a few hundred updates with RFC parameters, since ``alpha * target > 0`` removes a fixed
amount each step); once there, the remaining updates are skipped in O(1). The worst case (a pathological config
whose decay takes very many steps) costs one loop iteration per elapsed ``tupdate_s``, the same work as a timer.

Implemented from RFC 8033: §4.1 random drop with its safeguards (no early drop while ``qdelay_old < target/2``
and ``p < 0.2``, or while at most two mean-size packets are queued), tail drop at the limit, §4.2 the update with
the auto-tuning table, the exponential decay (``p *= 0.98`` when both delays are 0) and the [0, 1] bounds, §4.4
burst allowance (re-armed on arrival when ``p == 0`` and both delays are below target/2; reduced by ``tupdate_s`` at
each update), §5.1 ECN (mark instead of drop while ``p < ecn_threshold``), §5.4 de-randomisation (``accu_prob``;
optional, on by default as in Linux) and §5.5 cap of the increase to 2% per update once ``p >= 10%`` (optional, on
by default). Not implemented: §5.2 departure-rate estimation, §5.3 PIE active/inactive switching (PIE is always
active), Linux's byte mode and its extra +2% step when the delay exceeds 250 ms.

Drops by PIE count under reason ``"aqm"``, tail drops under ``"overflow"``, CE marks under ``"aqm"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.packet import NOT_ECT, Packet
from emu.queues.base import OVERFLOW, FifoQueue
from emu.validate import check_number

AQM = "aqm"
_RAND_BATCH = 256  # uniform draws taken from the generator at a time (hot path: no call per packet)


def _check_number(name: str, value: object, *, lo: float, lo_open: bool, hi: float | None = None) -> None:
    check_number(name, value, lo=lo, lo_open=lo_open, hi=hi)


@dataclass(frozen=True, kw_only=True)
class PIEConfig:
    """Parameters of a PIE queue; defaults are RFC 8033's."""

    target_s: float = 0.015  # RFC 8033 §4.2: QDELAY_REF = 15 ms
    tupdate_s: float = 0.015  # RFC 8033 §4.2: T_UPDATE = 15 ms
    alpha: float = 0.125  # RFC 8033 §4.2: alpha = 0.125 Hz
    beta: float = 1.25  # RFC 8033 §4.2: beta = 1.25 Hz
    max_burst_s: float = 0.150  # RFC 8033 §4.4: MAX_BURST = 150 ms
    limit_pkts: int = 1000  # Linux sch_pie default limit (RFC 8033 leaves the buffer size open)
    mean_pkt_bytes: int = 1500  # RFC 8033 §4.1: MEAN_PKTSIZE, "2 * MEAN_PKTSIZE" early-drop floor
    ecn: bool = False  # RFC 8033 §5.1: mark ECN-capable packets instead of dropping them
    ecn_threshold: float = 0.1  # RFC 8033 §5.1: mark only while p < 10%, drop above
    derandomize: bool = True  # RFC 8033 §5.4: de-randomisation with accu_prob (Linux always does it)
    cap_drop_adjustment: bool = True  # RFC 8033 §5.5: at most +2% per update once p >= 10%

    def __post_init__(self) -> None:
        _check_number("target_s", self.target_s, lo=0.0, lo_open=True)
        _check_number("tupdate_s", self.tupdate_s, lo=0.0, lo_open=True)
        _check_number("alpha", self.alpha, lo=0.0, lo_open=True)
        _check_number("beta", self.beta, lo=0.0, lo_open=False)
        _check_number("max_burst_s", self.max_burst_s, lo=0.0, lo_open=False)
        _check_number("ecn_threshold", self.ecn_threshold, lo=0.0, lo_open=False, hi=1.0)
        if isinstance(self.limit_pkts, bool) or not isinstance(self.limit_pkts, int) or self.limit_pkts < 1:
            raise ValueError(f"limit_pkts: must be an integer >= 1, got {self.limit_pkts!r}")
        if isinstance(self.mean_pkt_bytes, bool) or not isinstance(self.mean_pkt_bytes, int) or self.mean_pkt_bytes < 1:
            raise ValueError(f"mean_pkt_bytes: must be an integer >= 1, got {self.mean_pkt_bytes!r}")
        for name in ("ecn", "derandomize", "cap_drop_adjustment"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be a bool, got {getattr(self, name)!r}")

    @classmethod
    def rfc8033(cls) -> "PIEConfig":
        """RFC 8033's defaults with its optional enhancements (de-randomisation, cap drop adjustment)."""
        return cls()

    @classmethod
    def basic(cls) -> "PIEConfig":
        """The basic PIE of RFC 8033 Appendix A: no de-randomisation, no cap drop adjustment."""
        return cls(derandomize=False, cap_drop_adjustment=False)


def pie_step(p: float, qdelay_s: float, qdelay_old_s: float, target_s: float, alpha: float, beta: float,
             cap_drop_adjustment: bool = True) -> float:
    """One RFC 8033 §4.2 drop-probability update from ``p``; returns the new probability in [0, 1]."""
    delta = alpha * (qdelay_s - target_s) + beta * (qdelay_s - qdelay_old_s)
    # Auto-tuning: scale the step down while p is small (RFC 8033 §4.2 table).
    if p < 0.000001:
        delta /= 2048.0
    elif p < 0.00001:
        delta /= 512.0
    elif p < 0.0001:
        delta /= 128.0
    elif p < 0.001:
        delta /= 32.0
    elif p < 0.01:
        delta /= 8.0
    elif p < 0.1:
        delta /= 2.0
    if cap_drop_adjustment and p >= 0.1 and delta > 0.02:
        delta = 0.02  # RFC 8033 §5.5
    p += delta
    if qdelay_s == 0.0 and qdelay_old_s == 0.0:
        p *= 0.98  # exponential decay when the queue has been empty for two updates
    if p < 0.0:
        return 0.0
    if p > 1.0:
        return 1.0
    return p


class PIEQueue(FifoQueue):
    """PIE FIFO. ``PIEQueue(target_s=0.015, rng=sim.rng("bottleneck.pie"))``.

    ``rng`` is a ``numpy.random.Generator``; without one a local ``default_rng(0)`` is used (never the global one).
    Public state for tracing: ``p`` (drop probability), ``qdelay_s``, ``qdelay_old_s``, ``burst_allowance_s``,
    ``accu_prob``, ``next_update_s`` (time of the next probability update).
    """

    kind = "pie"
    config_class = PIEConfig

    def __init__(self, config: Optional[PIEConfig] = None, rng: Optional[np.random.Generator] = None,
                 **kwargs) -> None:
        super().__init__()
        if config is not None and kwargs:
            raise ValueError("PIEQueue: pass either a config or keyword fields, not both")
        self.config = config if config is not None else PIEConfig(**kwargs)
        cfg = self.config
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._target = float(cfg.target_s)
        self._half_target = 0.5 * float(cfg.target_s)
        self._tupdate = float(cfg.tupdate_s)
        self._alpha = float(cfg.alpha)
        self._beta = float(cfg.beta)
        self._max_burst = float(cfg.max_burst_s)
        self._limit_pkts = cfg.limit_pkts
        self._min_bytes = 2 * cfg.mean_pkt_bytes
        self._ecn = cfg.ecn
        self._ecn_threshold = float(cfg.ecn_threshold)
        self._derandomize = cfg.derandomize
        self._cap = cfg.cap_drop_adjustment
        # Controller state (RFC 8033 §4).
        self.p = 0.0
        self.qdelay_s = 0.0
        self.qdelay_old_s = 0.0
        self.burst_allowance_s = self._max_burst
        self.accu_prob = 0.0
        self.n_updates = 0  # updates performed (or skipped at the idle fixed point) so far
        self.next_update_s = self._tupdate
        self._rand = self.rng.random(_RAND_BATCH).tolist()
        self._rand_i = 0

    # -- periodic update, caught up exactly ----------------------------------------------------------------

    def _update(self) -> None:
        """One T_UPDATE step (RFC 8033 §4.2, §4.4)."""
        qdelay = self.qdelay_s
        self.p = pie_step(self.p, qdelay, self.qdelay_old_s, self._target, self._alpha, self._beta, self._cap)
        self.qdelay_old_s = qdelay
        burst = self.burst_allowance_s - self._tupdate
        # 1 ns tolerance: 0.150 - 10 x 0.015 leaves a float residue, and MAX_BURST / T_UPDATE updates must suffice.
        self.burst_allowance_s = burst if burst > 1e-9 else 0.0

    def _catch_up(self, now_s: float) -> None:
        """Perform every update due at or before ``now_s``, in order."""
        tupdate = self._tupdate
        n = self.n_updates
        nxt = self.next_update_s
        while nxt <= now_s:
            if (self.p == 0.0 and self.qdelay_s == 0.0 and self.qdelay_old_s == 0.0
                    and self.burst_allowance_s == 0.0):
                # Fixed point of the update: the rest of the due updates change nothing. Jump past now_s.
                # n = number of update instants k * tupdate <= now_s (at least one more than before).
                n = max(n + 1, int(now_s / tupdate))
                while n * tupdate > now_s:
                    n -= 1
                while (n + 1) * tupdate <= now_s:
                    n += 1
                nxt = (n + 1) * tupdate
                break
            self._update()
            n += 1
            nxt = (n + 1) * tupdate
        self.n_updates = n
        self.next_update_s = nxt

    def update_until(self, now_s: float) -> None:
        """Bring the controller up to date at ``now_s`` (for tracing ``p`` between packets)."""
        if now_s >= self.next_update_s:
            self._catch_up(now_s)

    # -- enqueue: tail drop, burst allowance, random early drop (RFC 8033 §4.1, §4.4, §5.1, §5.4) --------------

    def _uniform(self) -> float:
        i = self._rand_i
        if i == _RAND_BATCH:
            self._rand = self.rng.random(_RAND_BATCH).tolist()
            i = 0
        self._rand_i = i + 1
        return self._rand[i]

    def _drop_early(self) -> bool:
        p = self.p
        # Safeguards keeping PIE work-conserving (RFC 8033 §4.1).
        if (self.qdelay_old_s < self._half_target and p < 0.2) or self.len_bytes <= self._min_bytes:
            return False
        if self._derandomize:
            # RFC 8033 §5.4: no drop until enough probability has accumulated, always one past 8.5.
            if p == 0.0:
                self.accu_prob = 0.0
            accu = self.accu_prob + p
            self.accu_prob = accu
            if accu < 0.85:
                return False
            if accu >= 8.5:
                self.accu_prob = 0.0
                return True
            if self._uniform() < p:
                self.accu_prob = 0.0
                return True
            return False
        return self._uniform() < p

    def enqueue(self, pkt: Packet, now_s: float) -> bool:
        if now_s >= self.next_update_s:
            self._catch_up(now_s)
        self._arrive(pkt)
        if self.len_pkts >= self._limit_pkts:
            return self._drop_at_enqueue(pkt, OVERFLOW, now_s)
        half = self._half_target
        if self.p == 0.0 and self.qdelay_s < half and self.qdelay_old_s < half:
            self.burst_allowance_s = self._max_burst  # RFC 8033 §4.4: re-arm while uncongested
        if self.burst_allowance_s == 0.0 and self._drop_early():
            if self._ecn and pkt.ecn != NOT_ECT and self.p < self._ecn_threshold:
                self._mark(pkt, AQM)  # RFC 8033 §5.1
            else:
                return self._drop_at_enqueue(pkt, AQM, now_s)
        return self._push(pkt, now_s)

    # -- dequeue: timestamp-based delay sample (RFC 8033 §4.3) -------------------------------------------------

    def dequeue(self, now_s: float) -> Optional[Packet]:
        if now_s >= self.next_update_s:
            self._catch_up(now_s)
        fifo = self._fifo
        if not fifo:
            return None
        pkt = fifo.popleft()
        self.len_pkts -= 1
        self.len_bytes -= pkt.size_bytes
        self.qdelay_s = now_s - pkt.enq_s if fifo else 0.0
        return self._depart(pkt, now_s)
