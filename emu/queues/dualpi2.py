"""DualPI2: the dual-queue coupled AQM of RFC 9332, with the Linux ``sch_dualpi2`` variant as a preset.

Two FIFOs share one buffer. ECT(1) and CE packets go to the L (low-latency) queue, Not-ECT and ECT(0) to the C
(Classic) queue (RFC 9332 A.1 enqueue: ``ecn % 2 == 1``; Linux ``l4s_ect``). One PI controller updates a base
probability ``p'`` every ``tupdate_s`` from a queue delay. Classic packets are dropped (Not-ECT) or CE-marked
(ECT(0)) with ``p_C = p'^2``; L packets are CE-marked with ``p_L = max(p_native, p_CL)``, ``p_CL = min(k p', 1)``,
where ``p_native`` is the L queue's own shallow ramp (RFC) or step (Linux) on the packet's sojourn time. A
conditional-priority scheduler serves L first but protects C from starvation: the RFC's time-shifted FIFO
(``scheduler="tshift"``) or Linux's weighted-round-robin credit (``scheduler="wrr"``).

Where each default comes from
-----------------------------
Confirmed against RFC 9332 Appendix A pseudocode text. The RFC document itself could not be opened in full here;
its lines were read as quoted, line-numbered, in two independent ports (a Go netsim port and picoquic's test
simulator) and checked against a third (the ns-3 DualPI2 model of draft-10) and our survey notes. All agree:

- ``k = 2``; ``target = 15 ms``; ``RTT_max = 100 ms``; ``p_Cmax = min(1/k^2, 1)``;
  ``Tupdate = min(target, RTT_max/3)`` (15 ms); ``alpha = 0.1 Tupdate / RTT_max^2`` (0.15 Hz);
  ``beta = 0.3 / RTT_max`` (3.0 Hz); ramp ``minTh = 800 us``, ``range = 400 us``; ``Th_len = 1 pkt``;
  ``p_Lmax = 1``; ``limit = MAX_LINK_RATE * 250 ms`` (bytes; enqueue drops if ``bytes + MTU > limit``).
- Algorithm lines (A.1/A.2): classify on ``ecn & 1``; ``p' += alpha (curq - target) + beta (curq - prevq)``,
  clamped to [0, 1]; ``p_CL = k p'``, ``p_C = p'^2``; the deterministic ``recur()`` draw; overload handling of A.2
  (L falls back to drop with ``p_C`` once ``p_CL >= p_Lmax``; C drops ECT(0) too once ``p_C >= p_Cmax``);
  the A.2 update uses ``curq = max(cq.time(), lq.time())`` (head-of-queue sojourn times); A.2 evaluates the
  ramp only when ``lq.len() > Th_len`` after the head was dequeued.

From the Linux implementation (``net/sched/sch_dualpi2.c``, v6.17+; read, not copied):

- ``tupdate = 16 ms``, ``alpha = 41/256 Hz`` (~0.16), ``beta = 819/256 Hz`` (~3.2); ``limit = 10000`` packets;
  step threshold 1 ms on sojourn, strict ``>``; ``min_qlen_step = 0``; ``classic_protection = 10`` (%: WRR with
  C weight 10, L weight 90, credit initialised to ``MTU (wc - wl)``, reset when both queues are empty, credit
  changed only when the other queue is backlogged and only for packets that leave); ``drop_on_overload``;
  drop at dequeue; "never mark/drop while the whole backlog is below 2 MTU" (applies to the coupled/classic
  action only, not to the step); queue delay for the PI update = max of the two head sojourn times; with
  ``overflow`` (``drop_on_overload=False``) ``p'`` is capped at ``1/k`` so ECN is never disabled.

Low and variable link rates: ``DualPI2Config.low_rate()`` is the Linux preset with the step counted in packets
(``tc ... dualpi2 step_thresh 8p``; the 8 is ours, measured on real traces, docs/l4s.md), and
``DualPI2Config.linux(max_rtt_s=, typical_rtt_s=)`` is tc's RTT auto-configuration (iproute2 ``q_dualpi2.c``).

Not in either source (our choices, documented in docs/dualpi2.md): ``tshift_s = 50 ms`` (value of the draft-era
ns-3 DualPI2 model; the RFC names the TS-FIFO but gives no number); ``mtu_bytes = 1500``.

Timing model
------------
The PI update runs at ``t = n * tupdate_s`` for n = 1, 2, ... (anchored at time 0). There are no timers: every
``enqueue``/``dequeue`` first runs all updates due at or before ``now_s`` (an update at exactly ``now_s`` sees the
queue as it was before this call), computing each head sojourn at the update's own time. Between two calls the
queue does not change, so this is exact. Long gaps are collapsed without changing the result:

- both queues empty: after the first idle update ``prevq = 0`` and each update subtracts ``alpha * target``; the
  loop runs until ``p'`` stops changing (it reaches 0), then jumps to the last due update (a fixed point, so
  bit-identical). If that would take more than ``_IDLE_EXACT_MAX`` updates (only with ``alpha * target`` below
  ~1e-5) the rest is done in closed form ``max(0, p' - n alpha target)``, equal up to float rounding;
- queues non-empty but static (e.g. a stalled link): once ``p'`` sits at its cap and ``curq >= target``, every
  later update keeps it there (curq only grows), so the loop jumps to the last due update and sets ``prevq`` to
  that update's delay: bit-identical.

Randomness: marks and drops draw from the ``numpy.random.Generator`` passed as ``rng`` (uniforms are drawn in
blocks of 1024 for speed; the sequence depends only on the generator). With ``rng=None`` the queue builds its own
``np.random.default_rng(0)``: a local, deterministic generator, never the global one. With ``recur`` marking
(the RFC preset) no random numbers are used at all.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.packet import NOT_ECT, Packet
from emu.queues.base import OVERFLOW, Queue

# Drop reasons (``stats.drops``).
AQM = "aqm"            # Not-ECT packet dropped by the PI2 (p_C) or the native L AQM
OVERLOAD = "overload"  # ECN-capable packet dropped because the AQM is overloaded (RFC 9332 A.2)
# Mark reasons (``stats.marks``).
MARK_CLASSIC = "classic"   # ECT(0) in C marked with p_C
MARK_COUPLED = "coupled"   # L packet marked where p_CL >= native probability
MARK_NATIVE = "native"     # L packet marked where the native ramp/step probability was the larger

_RTT_TYP_TO_MAX = 6        # iproute2 q_dualpi2.c: typical_rtt = max_rtt / 6 when only one is given
LOW_RATE_STEP_THRESH_PKTS = 8   # ours: see DualPI2Config.low_rate and docs/l4s.md
_IDLE_EXACT_MAX = 100_000  # idle updates run one by one before switching to the closed form
_RAND_BLOCK = 1024

_L_AQMS = ("ramp", "step")
_SCHEDULERS = ("tshift", "wrr")
_MARKINGS = ("recur", "random")
_CLASSIFY = ("l4s_ect", "any_ect")
_DELAY_ESTIMATES = ("max_head", "c_head")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def coupled_probabilities(p_prime: float, k: float) -> tuple[float, float]:
    """Return ``(p_C, p_CL)`` for base probability ``p_prime``: ``p_C = p'^2`` and ``p_CL = min(k p', 1)``.

    RFC 9332 A.1: the square makes Reno-like (rate ~ 1/sqrt(p)) and scalable (rate ~ 1/p) flows get
    comparable rates, since ``p_C = (p_CL / k)^2``.
    """
    p_cl = k * p_prime
    return p_prime * p_prime, (p_cl if p_cl < 1.0 else 1.0)


@dataclass(frozen=True, kw_only=True)
class DualPI2Config:
    """Parameters of a DualPI2 queue. ``DualPI2Config.rfc9332()`` and ``.linux()`` are the two presets.

    The default constructor equals ``rfc9332()``. ``tupdate_s``, ``alpha_hz`` and ``beta_hz`` left as None are
    derived from ``target_s`` and ``rtt_max_s`` by the RFC 9332 §A.1 formulas (see ``pi2_tupdate_s`` etc.), so
    ``replace(cfg, rtt_max_s=0.2)`` re-derives them; explicit values (the Linux preset) are kept as given.
    """

    # -- shared buffer --------------------------------------------------------------------------------------
    limit_pkts: Optional[int] = 10_000     # Linux sch_dualpi2 default (RFC gives a byte limit, see limit_bytes)
    limit_bytes: Optional[int] = None      # RFC 9332 §A.1: MAX_LINK_RATE * 250 ms; admit if bytes + MTU <= limit
    mtu_bytes: int = 1500                  # used by the RFC byte limit, Linux 2-MTU rule and WRR credit
    # -- coupling and PI2 base AQM ---------------------------------------------------------------------------
    k: float = 2.0                         # RFC 9332 §A.1 (coupling factor); Linux coupling_factor 2
    target_s: float = 0.015                # RFC 9332 §A.1; Linux 15 ms
    rtt_max_s: float = 0.100               # RFC 9332 §A.1 (only used to derive tupdate/alpha/beta when None)
    tupdate_s: Optional[float] = None      # RFC 9332 §A.1: min(target, RTT_max/3) = 15 ms; Linux 16 ms
    alpha_hz: Optional[float] = None       # RFC 9332 §A.1: 0.1 Tupdate / RTT_max^2 = 0.15 Hz; Linux 41/256
    beta_hz: Optional[float] = None        # RFC 9332 §A.1: 0.3 / RTT_max = 3.0 Hz; Linux 819/256
    delay_estimate: str = "max_head"       # RFC 9332 §A.2 and Linux: max of head sojourns; "c_head" = §A.1
    # -- native L4S AQM --------------------------------------------------------------------------------------
    l_aqm: str = "ramp"                    # RFC 9332 §A.1 ramp; Linux: "step"
    l_min_th_s: float = 800e-6             # RFC 9332 §A.1 minTh
    l_range_s: float = 400e-6              # RFC 9332 §A.1 range (certain marking at minTh + range)
    l_th_len_pkts: Optional[int] = 1       # RFC 9332 §A.1/A.2 Th_len: no native mark unless L holds > this many
                                           # packets after the head left; None disables (Linux)
    l_step_thresh_s: float = 0.001         # Linux step_thresh 1 ms (mark if sojourn > this), used by "step"
    l_step_thresh_pkts: Optional[int] = None  # Linux step_thresh in packets (mark if L length > this) if set
    l_min_qlen_step_pkts: int = 0          # Linux min_qlen_step: step applies if L held >= this at enqueue
    # -- drawing marks/drops ---------------------------------------------------------------------------------
    l_marking: str = "recur"               # RFC 9332 §A.1 recur() for L; Linux: "random"
    c_marking: str = "recur"               # RFC 9332 §A.2 recur() for C; Linux: "random"
    # -- overload and heuristics -----------------------------------------------------------------------------
    drop_on_overload: bool = True          # RFC 9332 §A.2 / Linux default; False = Linux "overflow" (p' <= 1/k)
    aqm_min_backlog_bytes: int = 0         # Linux: no coupled/classic action while backlog < 2 MTU (3000 here)
    # -- conditional priority scheduler ----------------------------------------------------------------------
    scheduler: str = "tshift"              # RFC 9332 time-shifted FIFO (named option); Linux "wrr"
    tshift_s: float = 0.050                # draft-era ns-3 DualPI2 model (RFC gives no number)
    c_protection_pct: int = 10             # Linux classic_protection: WRR weight of C in %, L gets 100 - this
    # -- classifier ------------------------------------------------------------------------------------------
    classify: str = "l4s_ect"              # RFC 9332 A.1 / Linux l4s_ect: ECT(1), CE -> L; "any_ect" adds ECT(0)

    def __post_init__(self) -> None:
        def int_at_least(name: str, lo: int, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                extra = " or None" if optional else ""
                raise ValueError(f"{name}: must be an integer >= {lo}{extra}, got {v!r}")

        def real(name: str, lo: float, strict: bool, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if not _finite(v) or (v <= lo if strict else v < lo):
                extra = " or None" if optional else ""
                op = ">" if strict else ">="
                raise ValueError(f"{name}: must be a finite number {op} {lo}{extra}, got {v!r}")

        def choice(name: str, options: tuple[str, ...]) -> None:
            v = getattr(self, name)
            if v not in options:
                raise ValueError(f"{name}: must be one of {', '.join(repr(o) for o in options)}, got {v!r}")

        int_at_least("limit_pkts", 1, optional=True)
        int_at_least("limit_bytes", 1, optional=True)
        int_at_least("mtu_bytes", 68)
        real("k", 0.0, strict=True)
        real("target_s", 0.0, strict=False)
        real("rtt_max_s", 0.0, strict=True)
        real("tupdate_s", 0.0, strict=True, optional=True)
        real("alpha_hz", 0.0, strict=True, optional=True)
        real("beta_hz", 0.0, strict=False, optional=True)
        choice("delay_estimate", _DELAY_ESTIMATES)
        choice("l_aqm", _L_AQMS)
        real("l_min_th_s", 0.0, strict=False)
        real("l_range_s", 0.0, strict=False)
        int_at_least("l_th_len_pkts", 0, optional=True)
        real("l_step_thresh_s", 0.0, strict=False)
        int_at_least("l_step_thresh_pkts", 0, optional=True)
        int_at_least("l_min_qlen_step_pkts", 0)
        choice("l_marking", _MARKINGS)
        choice("c_marking", _MARKINGS)
        if not isinstance(self.drop_on_overload, bool):
            raise ValueError(f"drop_on_overload: must be True or False, got {self.drop_on_overload!r}")
        int_at_least("aqm_min_backlog_bytes", 0)
        choice("scheduler", _SCHEDULERS)
        real("tshift_s", 0.0, strict=False)
        v = self.c_protection_pct
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
            raise ValueError(f"c_protection_pct: must be an integer in [0, 100], got {v!r}")
        choice("classify", _CLASSIFY)

    # -- derived values --------------------------------------------------------------------------------------

    @property
    def pi2_tupdate_s(self) -> float:
        """Update period: ``tupdate_s`` or RFC 9332 §A.1 ``min(target, RTT_max/3)``."""
        if self.tupdate_s is not None:
            return float(self.tupdate_s)
        t = min(self.target_s, self.rtt_max_s / 3.0)
        return t if t > 0.0 else self.rtt_max_s / 3.0  # target 0 would give a zero period

    @property
    def pi2_alpha_hz(self) -> float:
        """Integral gain: ``alpha_hz`` or RFC 9332 §A.1 ``0.1 Tupdate / RTT_max^2``."""
        if self.alpha_hz is not None:
            return float(self.alpha_hz)
        return 0.1 * self.pi2_tupdate_s / (self.rtt_max_s * self.rtt_max_s)

    @property
    def pi2_beta_hz(self) -> float:
        """Proportional gain: ``beta_hz`` or RFC 9332 §A.1 ``0.3 / RTT_max``."""
        if self.beta_hz is not None:
            return float(self.beta_hz)
        return 0.3 / self.rtt_max_s

    @property
    def p_c_max(self) -> float:
        """RFC 9332 §A.1 ``p_Cmax = min(1/k^2, 1)``: above it Classic ECN is disabled (overload)."""
        return min(1.0 / (self.k * self.k), 1.0)

    # -- presets ---------------------------------------------------------------------------------------------

    @classmethod
    def rfc9332(cls, *, link_rate_bps: Optional[float] = None, **overrides) -> "DualPI2Config":
        """RFC 9332 Appendix A defaults: ramp L AQM with Th_len, recur() marking, TS-FIFO scheduler.

        With ``link_rate_bps`` the buffer is the RFC's ``MAX_LINK_RATE * 250 ms`` in bytes (and no packet limit).
        """
        params: dict = {}
        if link_rate_bps is not None:
            if not _finite(link_rate_bps) or link_rate_bps <= 0:
                raise ValueError(f"link_rate_bps: must be a finite number > 0, got {link_rate_bps!r}")
            params["limit_bytes"] = max(1, int(link_rate_bps * 0.250 / 8))
            params["limit_pkts"] = None
        params.update(overrides)
        return cls(**params)

    @classmethod
    def linux(cls, *, max_rtt_s: Optional[float] = None, typical_rtt_s: Optional[float] = None,
              **overrides) -> "DualPI2Config":
        """Linux ``sch_dualpi2`` defaults (``tc qdisc add ... dualpi2`` with no options).

        ``max_rtt_s`` / ``typical_rtt_s`` are tc's auto-configuration (``tc qdisc ... dualpi2 max_rtt T
        [typical_rtt T]``, iproute2 ``q_dualpi2.c``): a missing one is the other times / divided by 6;
        ``target = typical_rtt``, ``tupdate = min(typical_rtt, max_rtt / 3)``, ``alpha = 0.1 tupdate / max_rtt^2``,
        ``beta = 0.3 / max_rtt`` (the RFC 9332 §A.1 formulas with RTT_max = max_rtt). Explicit
        ``target_s``/``tupdate_s``/``alpha_hz``/``beta_hz`` are then ignored, as tc ignores them.
        """
        params: dict = dict(
            limit_pkts=10_000,
            limit_bytes=None,
            tupdate_s=0.016,
            alpha_hz=41 / 256,
            beta_hz=819 / 256,
            delay_estimate="max_head",
            l_aqm="step",
            l_th_len_pkts=None,
            l_step_thresh_s=0.001,
            l_min_qlen_step_pkts=0,
            l_marking="random",
            c_marking="random",
            drop_on_overload=True,
            aqm_min_backlog_bytes=2 * 1500,
            scheduler="wrr",
            c_protection_pct=10,
            classify="l4s_ect",
        )
        params.update(overrides)
        if max_rtt_s is not None or typical_rtt_s is not None:
            for name, v in (("max_rtt_s", max_rtt_s), ("typical_rtt_s", typical_rtt_s)):
                if v is not None and (not _finite(v) or v <= 0):
                    raise ValueError(f"{name}: must be a finite number > 0, got {v!r}")
            rtt_max = max_rtt_s if max_rtt_s is not None else typical_rtt_s * _RTT_TYP_TO_MAX
            rtt_typ = typical_rtt_s if typical_rtt_s is not None else rtt_max / _RTT_TYP_TO_MAX
            if rtt_typ > rtt_max:
                raise ValueError(f"typical_rtt_s: must be <= max_rtt_s={rtt_max!r}, got {rtt_typ!r}")
            tupdate = min(rtt_typ, rtt_max / 3.0)
            params.update(target_s=rtt_typ, rtt_max_s=rtt_max, tupdate_s=tupdate,
                          alpha_hz=0.1 * tupdate / (rtt_max * rtt_max), beta_hz=0.3 / rtt_max)
        return cls(**params)

    @classmethod
    def low_rate(cls, *, step_thresh_pkts: int = LOW_RATE_STEP_THRESH_PKTS, **overrides) -> "DualPI2Config":
        """Linux ``sch_dualpi2`` for low and variable link rates: the step threshold counted in packets
        (``tc qdisc ... dualpi2 step_thresh 8p``), everything else as ``linux()``.

        A time threshold of 1 ms is shorter than one packet's serialisation below 12 Mbit/s, and on links that
        deliver in bursts (cellular schedulers, Wi-Fi aggregation; a Mahimahi trace's 1-ms opportunities) every
        packet that waits for the next burst exceeds it, so L marks nearly every packet and a scalable sender
        collapses. A threshold in packets keeps marking tied to the backlog the link has not yet absorbed.
        The value 8 is ours, chosen on the traces of ``benchmarks/bench_l4s_traces.py`` (see docs/l4s.md);
        Linux's own default stays 1 ms.
        """
        params: dict = dict(l_step_thresh_pkts=step_thresh_pkts)
        params.update(overrides)
        return cls.linux(**params)


class DualPI2Queue(Queue):
    """Dual-queue coupled AQM. ``DualPI2Queue(DualPI2Config.linux(), rng=sim.rng("bottleneck.aqm"))``.

    Tracing attributes: ``p_prime``, ``p_c``, ``p_cl`` (after the last PI update), ``p_l`` (used on the last L
    dequeue), ``l_len_pkts``/``c_len_pkts``/``l_len_bytes``/``c_len_bytes``, ``last_dequeued_from`` ('L', 'C'
    or None), ``last_sojourn_s``, ``l_served_pkts``/``c_served_pkts``, ``l_enqueued_pkts``/``c_enqueued_pkts``,
    ``updates`` (PI updates run so far) and ``next_update_s``.
    """

    kind = "dualpi2"
    config_class = DualPI2Config

    def __init__(
        self,
        config: Optional[DualPI2Config] = None,
        *,
        rng: Optional[np.random.Generator] = None,
        **kwargs,
    ) -> None:
        super().__init__()
        if config is not None and kwargs:
            raise ValueError("DualPI2Queue: pass either a config or keyword parameters, not both")
        cfg = config if config is not None else DualPI2Config(**kwargs)
        self.config = cfg
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._rand: list[float] = []
        self._rand_i = 0

        self._lq: deque[Packet] = deque()
        self._cq: deque[Packet] = deque()
        self.l_len_bytes = 0
        self.c_len_bytes = 0

        big = 1 << 62
        self._limit_pkts = cfg.limit_pkts if cfg.limit_pkts is not None else big
        self._limit_bytes = cfg.limit_bytes if cfg.limit_bytes is not None else big
        self._mtu = cfg.mtu_bytes
        self._l_mask = 1 if cfg.classify == "l4s_ect" else 3

        # PI2 state
        self._tupdate = cfg.pi2_tupdate_s
        self._alpha = cfg.pi2_alpha_hz
        self._beta = cfg.pi2_beta_hz
        self._target = float(cfg.target_s)
        self._k = float(cfg.k)
        self._p_max = 1.0 if cfg.drop_on_overload else min(1.0, 1.0 / self._k)
        self._use_max = cfg.delay_estimate == "max_head"
        self._n_next = 1
        self.next_update_s = self._tupdate
        self.updates = 0
        self._prevq = 0.0
        self.p_prime = 0.0
        self.p_c = 0.0
        self.p_cl = 0.0
        self.p_l = 0.0
        self._p_c_max = cfg.p_c_max
        self._drop_on_overload = cfg.drop_on_overload
        self._l_overload = False  # RFC 9332 A.2: p_CL >= p_Lmax (= 1), i.e. k p' >= 1
        self._c_overload = False  # RFC 9332 A.2: p_C >= p_Cmax

        # native L AQM
        self._ramp = cfg.l_aqm == "ramp"
        self._min_th = float(cfg.l_min_th_s)
        self._range = float(cfg.l_range_s)
        self._max_th = self._min_th + self._range
        self._th_len = cfg.l_th_len_pkts if (self._ramp and cfg.l_th_len_pkts is not None) else -1
        self._step_s = float(cfg.l_step_thresh_s)
        self._step_pkts = cfg.l_step_thresh_pkts
        self._min_qlen_step = cfg.l_min_qlen_step_pkts if not self._ramp else 0
        self._l_step_ok: deque[bool] = deque()  # used only when min_qlen_step > 0
        self._l_recur = cfg.l_marking == "recur"
        self._c_recur = cfg.c_marking == "recur"
        self._l_count = 0.0
        self._c_count = 0.0
        self._min_backlog = cfg.aqm_min_backlog_bytes

        # scheduler
        self._wrr = cfg.scheduler == "wrr"
        self._tshift = float(cfg.tshift_s)
        self._wc = cfg.c_protection_pct
        self._wl = 100 - cfg.c_protection_pct
        self._credit_init = self._mtu * (self._wc - self._wl)
        self.credit = self._credit_init

        # tracing / per-queue counters
        self.last_dequeued_from: Optional[str] = None
        self.last_sojourn_s = 0.0
        self.l_enqueued_pkts = 0
        self.c_enqueued_pkts = 0
        self.l_served_pkts = 0
        self.c_served_pkts = 0

    # -- accessors -------------------------------------------------------------------------------------------

    @property
    def l_len_pkts(self) -> int:
        return len(self._lq)

    @property
    def c_len_pkts(self) -> int:
        return len(self._cq)

    def l_head_sojourn_s(self, now_s: float) -> float:
        """Sojourn time of the L head at ``now_s`` (0 if the L queue is empty)."""
        return now_s - self._lq[0].enq_s if self._lq else 0.0

    def c_head_sojourn_s(self, now_s: float) -> float:
        """Sojourn time of the C head at ``now_s`` (0 if the C queue is empty)."""
        return now_s - self._cq[0].enq_s if self._cq else 0.0

    def head_size_bytes(self) -> int:
        lq, cq = self._lq, self._cq
        if not lq:
            return cq[0].size_bytes if cq else 0
        if not cq or self._serve_l():
            return lq[0].size_bytes
        return cq[0].size_bytes

    def set_p_prime(self, p_prime: float) -> None:
        """Set the base probability as a PI update would (clamped to its cap), for tests and what-if runs."""
        p = min(max(float(p_prime), 0.0), self._p_max)
        self._set_probabilities(p)

    def _set_probabilities(self, p: float) -> None:
        self.p_prime = p
        self.p_c, self.p_cl = coupled_probabilities(p, self._k)
        dro = self._drop_on_overload
        self._l_overload = dro and self._k * p >= 1.0
        self._c_overload = dro and self.p_c >= self._p_c_max

    @property
    def overloaded(self) -> bool:
        """True while L falls back to Classic drop (RFC 9332 A.2 overload; only with ``drop_on_overload``)."""
        return self._l_overload

    # -- queue interface -------------------------------------------------------------------------------------

    def advance(self, now_s: float) -> None:
        """Run the PI updates due at or before ``now_s`` (what enqueue/dequeue do first); for tracing p' at a time."""
        if now_s >= self.next_update_s:
            self._catch_up(now_s)

    def enqueue(self, pkt: Packet, now_s: float) -> bool:
        if now_s >= self.next_update_s:
            self._catch_up(now_s)
        st = self.stats
        st.arrived_pkts += 1
        ecn = pkt.ecn
        st.ecn_arrived[ecn] += 1
        size = pkt.size_bytes
        if self.len_pkts >= self._limit_pkts or self.len_bytes + self._mtu > self._limit_bytes:
            return self._drop_at_enqueue(pkt, OVERFLOW, now_s)
        pkt.enq_s = now_s
        if ecn & self._l_mask:
            if self._min_qlen_step:
                self._l_step_ok.append(len(self._lq) >= self._min_qlen_step)
            self._lq.append(pkt)
            self.l_len_bytes += size
            self.l_enqueued_pkts += 1
        else:
            self._cq.append(pkt)
            self.c_len_bytes += size
            self.c_enqueued_pkts += 1
        self.len_pkts += 1
        self.len_bytes += size
        st.enqueued_pkts += 1
        st.enqueued_bytes += size
        return True

    def dequeue(self, now_s: float) -> Optional[Packet]:
        if now_s >= self.next_update_s:
            self._catch_up(now_s)
        lq, cq = self._lq, self._cq
        while lq or cq:
            c_backlogged = bool(cq)
            if lq and (not cq or self._serve_l()):
                pkt = lq.popleft()
                size = pkt.size_bytes
                self.l_len_bytes -= size
                self.len_pkts -= 1
                self.len_bytes -= size
                step_ok = self._l_step_ok.popleft() if self._min_qlen_step else True
                sojourn = now_s - pkt.enq_s
                if self._l_aqm(pkt, sojourn, step_ok, now_s):
                    continue  # dropped; try the next packet
                if self._wrr and c_backlogged:
                    self.credit += self._wc * size
                self.l_served_pkts += 1
                self.last_dequeued_from = "L"
            else:
                l_backlogged = bool(lq)
                pkt = cq.popleft()
                size = pkt.size_bytes
                self.c_len_bytes -= size
                self.len_pkts -= 1
                self.len_bytes -= size
                sojourn = now_s - pkt.enq_s
                if self._c_aqm(pkt, now_s):
                    continue
                if self._wrr and l_backlogged:
                    self.credit -= self._wl * size
                self.c_served_pkts += 1
                self.last_dequeued_from = "C"
            if not lq and not cq:
                self.credit = self._credit_init
            self.last_sojourn_s = sojourn
            pkt.qdelay_s += sojourn
            st = self.stats
            st.dequeued_pkts += 1
            st.dequeued_bytes += size
            return pkt
        self.credit = self._credit_init  # Linux resets the WRR credit when both queues are empty
        return None

    # -- scheduler -------------------------------------------------------------------------------------------

    def _serve_l(self) -> bool:
        """Both queues non-empty: True to serve L. WRR: credit <= 0. TS-FIFO: L head, shifted by tshift, is older."""
        if self._wrr:
            return self.credit <= 0
        return self._lq[0].enq_s - self._tshift <= self._cq[0].enq_s

    # -- AQM actions (return True if the packet was dropped) -------------------------------------------------

    def _draw(self, prob: float, l_queue: bool) -> bool:
        if prob <= 0.0:
            return False
        if (self._l_recur if l_queue else self._c_recur):  # RFC 9332 recur(): evenly spaced events
            if l_queue:
                c = self._l_count + prob
                if c > 1.0:
                    self._l_count = c - 1.0
                    return True
                self._l_count = c
                return False
            c = self._c_count + prob
            if c > 1.0:
                self._c_count = c - 1.0
                return True
            self._c_count = c
            return False
        if prob >= 1.0:
            return True
        i = self._rand_i
        if i >= len(self._rand):
            self._rand = self._rng.random(_RAND_BLOCK).tolist()
            i = 0
        self._rand_i = i + 1
        return self._rand[i] < prob

    def _l_aqm(self, pkt: Packet, sojourn: float, step_ok: bool, now_s: float) -> bool:
        coupled_on = self.len_bytes >= self._min_backlog  # Linux: no PI action under 2 MTU of backlog
        if coupled_on and self._l_overload:
            # RFC 9332 A.2 / Linux drop_on_overload: Classic-style drop with p_C, mark the rest (p_CL = 1).
            self.p_l = 1.0
            if self._draw(self.p_c, True):
                self._drop_in_queue(pkt, OVERLOAD, now_s)
                return True
            if not self._mark(pkt, MARK_COUPLED):
                self._drop_in_queue(pkt, AQM, now_s)
                return True
            return False
        p_cl = self.p_cl if coupled_on else 0.0
        # native AQM
        if self._ramp:
            if sojourn >= self._max_th:
                p_nat = 1.0
            elif sojourn > self._min_th:
                p_nat = (sojourn - self._min_th) / self._range
            else:
                p_nat = 0.0
            if p_nat > 0.0 and len(self._lq) <= self._th_len:
                p_nat = 0.0  # RFC Th_len: no native marking of a (nearly) empty L queue
        else:
            if not step_ok:
                p_nat = 0.0
            elif self._step_pkts is not None:
                p_nat = 1.0 if len(self._lq) > self._step_pkts else 0.0
            else:
                p_nat = 1.0 if sojourn > self._step_s else 0.0
        if p_nat > p_cl:
            p_l, reason = p_nat, MARK_NATIVE
        else:
            p_l, reason = p_cl, MARK_COUPLED
        self.p_l = p_l
        if p_l > 0.0 and self._draw(p_l, True):
            if not self._mark(pkt, reason):  # a Not-ECT packet in L (only via custom classification)
                self._drop_in_queue(pkt, AQM, now_s)
                return True
        return False

    def _c_aqm(self, pkt: Packet, now_s: float) -> bool:
        if self.len_bytes < self._min_backlog:
            return False
        if self._draw(self.p_c, False):
            if pkt.ecn == NOT_ECT:
                self._drop_in_queue(pkt, AQM, now_s)
                return True
            if self._c_overload:  # RFC 9332 A.2: overload disables ECN (p_C >= p_Cmax)
                self._drop_in_queue(pkt, OVERLOAD, now_s)
                return True
            self._mark(pkt, MARK_CLASSIC)
        return False

    # -- PI2 update ------------------------------------------------------------------------------------------

    def _curq(self, u: float) -> float:
        cq = self._cq
        c = u - cq[0].enq_s if cq else 0.0
        if self._use_max and self._lq:
            lval = u - self._lq[0].enq_s
            if lval > c:
                return lval
        return c

    def _last_due(self, now_s: float) -> int:
        """Largest n with n * tupdate <= now_s."""
        T = self._tupdate
        m = int(now_s // T)
        while (m + 1) * T <= now_s:
            m += 1
        while m > 0 and m * T > now_s:
            m -= 1
        return m

    def _catch_up(self, now_s: float) -> None:
        """Run every PI update due at or before ``now_s``, with the queue as it was since the last call."""
        T = self._tupdate
        alpha, beta, target, p_max = self._alpha, self._beta, self._target, self._p_max
        n = self._n_next
        p = self.p_prime
        prevq = self._prevq
        idle = not self._lq and not self._cq
        idle_steps = 0
        u = n * T
        while u <= now_s:
            curq = 0.0 if idle else self._curq(u)
            p_new = p + alpha * (curq - target) + beta * (curq - prevq)
            if p_new < 0.0:
                p_new = 0.0
            elif p_new > p_max:
                p_new = p_max
            if idle:
                if p_new == p and prevq == 0.0:
                    # fixed point (p' at 0 or target 0): all later idle updates change nothing
                    n = self._last_due(now_s)
                    p = p_new
                    break
                idle_steps += 1
                if idle_steps > _IDLE_EXACT_MAX and prevq == 0.0:
                    m = self._last_due(now_s)
                    p = max(0.0, p_new + (m - n) * (alpha * (0.0 - target)))
                    n = m
                    prevq = 0.0
                    break
            elif p_new == p_max and curq >= target:
                # saturated: curq only grows while the queue is static, so p' stays at its cap
                m = self._last_due(now_s)
                if m > n:
                    n = m
                    curq = self._curq(m * T)
                p = p_new
                prevq = curq
                break
            p = p_new
            prevq = curq
            n += 1
            u = n * T
        else:
            n -= 1  # loop ended normally: n is one past the last update run
        self.updates += n + 1 - self._n_next
        self._n_next = n + 1
        self.next_update_s = (n + 1) * T
        self._prevq = prevq
        self._set_probabilities(p)
