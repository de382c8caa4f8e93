"""CoDel (Controlled Delay) AQM, RFC 8289.

CoDel acts at dequeue. Each packet's sojourn time (``now_s - pkt.enq_s``) is compared with TARGET; once it has
stayed at or above TARGET for a whole INTERVAL (and more than one MTU is queued) the queue enters the *dropping*
state. There it drops (or, with ``ecn=True``, CE-marks) the head packet at times spaced by the control law
``interval / sqrt(count)``, so the drop rate rises until the sojourn falls below TARGET again (RFC 8289 §5.5).

The state machine is exactly the one of RFC 8289 §5.4-§5.6 (``dodequeue``, ``dequeue``, ``control_law``),
including the re-use of the previous cycle's drop count when the dropping state is re-entered less than
16 intervals after the last one (the "Linux version" the RFC adopts). Differences from the RFC pseudocode:

- Time is a float in seconds; "first_above_time == 0" (not above target) is kept as ``0.0``, which is safe since
  ``now_s + interval_s > 0`` for every valid time.
- ECN (RFC 8289 §5 and RFC 3168): with ``ecn=True`` an ECN-capable packet that would be dropped is marked CE and
  returned instead, exactly as Linux ``codel_dequeue`` does: the count and drop schedule advance as for a drop,
  and the dequeue ends with the marked packet. Not-ECT packets are still dropped.
- The queue limit (tail drop, reason ``"overflow"``) is a packet count, plus an optional byte limit.

Drops by CoDel count under reason ``"aqm"``; CE marks under ``"aqm"`` too.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from typing import Optional

from emu.packet import NOT_ECT, Packet
from emu.queues.base import OVERFLOW, FifoQueue
from emu.validate import check_number

AQM = "aqm"


def _check_positive(name: str, value: object) -> None:
    check_number(name, value, lo=0, lo_open=True)


@dataclass(frozen=True, kw_only=True)
class CoDelConfig:
    """Parameters of a CoDel queue. Defaults are the RFC's "no configuration needed" Internet values."""

    target_s: float = 0.005  # RFC 8289 §4.3: TARGET = 5 ms (5-10% of INTERVAL)
    interval_s: float = 0.100  # RFC 8289 §4.2: INTERVAL = 100 ms (a worst-case Internet RTT)
    limit_pkts: int = 1000  # Linux sch_codel default limit; RFC 8289 §5.4 leaves the buffer size open
    limit_bytes: Optional[int] = None  # optional extra byte limit (None: none)
    mtu_bytes: int = 1500  # RFC 8289 §5.3: MAXPACKET "SHOULD use interface MTU"
    ecn: bool = False  # RFC 8289 §5 / RFC 3168: mark ECN-capable packets instead of dropping

    def __post_init__(self) -> None:
        _check_positive("target_s", self.target_s)
        _check_positive("interval_s", self.interval_s)
        if isinstance(self.limit_pkts, bool) or not isinstance(self.limit_pkts, int) or self.limit_pkts < 1:
            raise ValueError(f"limit_pkts: must be an integer >= 1, got {self.limit_pkts!r}")
        if self.limit_bytes is not None and (
            isinstance(self.limit_bytes, bool) or not isinstance(self.limit_bytes, int) or self.limit_bytes < 1
        ):
            raise ValueError(f"limit_bytes: must be an integer >= 1 or None, got {self.limit_bytes!r}")
        if isinstance(self.mtu_bytes, bool) or not isinstance(self.mtu_bytes, int) or self.mtu_bytes < 1:
            raise ValueError(f"mtu_bytes: must be an integer >= 1, got {self.mtu_bytes!r}")
        if not isinstance(self.ecn, bool):
            raise ValueError(f"ecn: must be a bool, got {self.ecn!r}")

    @classmethod
    def rfc8289(cls) -> "CoDelConfig":
        """The RFC's defaults (TARGET 5 ms, INTERVAL 100 ms)."""
        return cls()


class CoDelQueue(FifoQueue):
    """CoDel FIFO. ``CoDelQueue(target_s=0.005)`` or ``CoDelQueue(CoDelConfig(...))``.

    Public state for tracing: ``dropping`` (in the dropping state), ``count`` (drops in this dropping cycle, the
    control-law index), ``drop_next_s`` (time of the next scheduled drop), ``first_above_time_s`` (0.0 when the
    sojourn is below target).
    """

    kind = "codel"
    config_class = CoDelConfig

    def __init__(self, config: Optional[CoDelConfig] = None, **kwargs) -> None:
        super().__init__()
        if config is not None and kwargs:
            raise ValueError("CoDelQueue: pass either a config or keyword fields, not both")
        self.config = config if config is not None else CoDelConfig(**kwargs)
        cfg = self.config
        self._target = float(cfg.target_s)
        self._interval = float(cfg.interval_s)
        self._mtu = cfg.mtu_bytes
        self._ecn = cfg.ecn
        self._limit_pkts = cfg.limit_pkts
        self._limit_bytes = cfg.limit_bytes if cfg.limit_bytes is not None else 1 << 62
        # RFC 8289 §5.2 per-queue state.
        self.first_above_time_s = 0.0
        self.drop_next_s = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self._ok_to_drop = False  # second result of dodequeue (kept as a field: no tuple per call)

    # -- enqueue: timestamp and tail-drop at the limit (RFC 8289 §5.4) -----------------------------------------

    def enqueue(self, pkt: Packet, now_s: float) -> bool:
        self._arrive(pkt)
        if self.len_pkts >= self._limit_pkts or self.len_bytes + pkt.size_bytes > self._limit_bytes:
            return self._drop_at_enqueue(pkt, OVERFLOW, now_s)
        return self._push(pkt, now_s)

    # -- dequeue (RFC 8289 §5.5, §5.6) -------------------------------------------------------------------------

    def _dodequeue(self, now_s: float) -> Optional[Packet]:
        """Pop the head and decide whether it may be dropped; sets ``self._ok_to_drop``."""
        fifo = self._fifo
        if not fifo:
            # Queue empty: we can't be above target.
            self.first_above_time_s = 0.0
            self._ok_to_drop = False
            return None
        pkt = fifo.popleft()
        self.len_pkts -= 1
        self.len_bytes -= pkt.size_bytes
        if now_s - pkt.enq_s < self._target or self.len_bytes <= self._mtu:
            # Went (or stayed) below target, or too little backlog to be worth dropping: stay below for at
            # least an interval.
            self.first_above_time_s = 0.0
            self._ok_to_drop = False
        elif self.first_above_time_s == 0.0:
            # Just went above: if still above one interval from now, it will be ok to drop.
            self.first_above_time_s = now_s + self._interval
            self._ok_to_drop = False
        else:
            self._ok_to_drop = now_s >= self.first_above_time_s
        return pkt

    def dequeue(self, now_s: float) -> Optional[Packet]:
        pkt = self._dodequeue(now_s)
        if pkt is None:
            self.dropping = False
            return None
        interval = self._interval
        if self.dropping:
            if not self._ok_to_drop:
                # Sojourn went below target: leave the dropping state.
                self.dropping = False
            # Time for the next drop(s): a large backlog may need several at once, hence the loop.
            while self.dropping and now_s >= self.drop_next_s:
                self.count += 1
                if self._ecn and pkt.ecn != NOT_ECT:
                    self._mark(pkt, AQM)
                    self.drop_next_s = self.drop_next_s + interval / sqrt(self.count)
                    break
                self._drop_in_queue(pkt, AQM, now_s)
                pkt = self._dodequeue(now_s)
                if not self._ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next_s = self.drop_next_s + interval / sqrt(self.count)
        elif self._ok_to_drop:
            # Sojourn has been above target for an interval: drop (or mark) and enter the dropping state.
            if self._ecn and pkt.ecn != NOT_ECT:
                self._mark(pkt, AQM)
            else:
                self._drop_in_queue(pkt, AQM, now_s)
                pkt = self._dodequeue(now_s)
            self.dropping = True
            # If the dropping state was left only recently, the previous cycle's drop rate is a good start
            # (RFC 8289 §5.5, the Linux variant): re-use the count of drops made in that cycle.
            delta = self.count - self.lastcount
            self.count = 1
            if delta > 1 and now_s - self.drop_next_s < 16.0 * interval:
                self.count = delta
            self.drop_next_s = now_s + interval / sqrt(self.count)
            self.lastcount = self.count
        if pkt is None:
            return None
        return self._depart(pkt, now_s)
