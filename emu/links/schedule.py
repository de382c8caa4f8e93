"""Capacity schedules: when a trace-driven link can move bytes (pure logic, no SimPy).

A schedule answers one question for the link's serialiser: a packet of ``size_bytes`` that enters service at
``start_s`` (the queue head, dequeued at that instant) -- when has its last byte been served? Two kinds:

``OpportunitySchedule`` -- Mahimahi semantics (ravinet/mahimahi ``src/frontend/link_queue.cc``, ``rationalize``):

- each trace line is an integer millisecond timestamp of one *delivery opportunity* worth exactly
  ``opportunity_bytes`` bytes (default 1504, Mahimahi's ``PACKET_SIZE``: its TUN payload size; the "1500" of its
  traces README is nominal). Several lines with the same timestamp are several opportunities at that instant;
- an opportunity serves the head of the queue; a packet larger than what is left of an opportunity keeps its
  partial progress and continues at the next opportunities (it may span many);
- the bytes an opportunity has left after finishing a packet go to the next queued packet *at the same instant*,
  so one opportunity may finish several small packets;
- bytes of an opportunity that find the queue empty are lost (no banking of unused capacity);
- a packet only uses opportunities at or after the instant it enters service;
- after the last line the trace repeats, shifted by the last timestamp (the period): opportunity ``k`` of the
  looped trace is at ``(k // n) * last_ms + ts[k % n]`` ms. A trace whose first line is 0 thus has opportunities
  at ``last_ms`` from both the end of one period and the start of the next, as in Mahimahi. A trace whose last
  timestamp is 0 has no period and is rejected, as Mahimahi rejects it.

``RateSchedule`` -- throughput logs (``time_s value`` lines): a piecewise-constant rate, served as a fluid. Step
``i`` holds ``rate_bps[i]`` on ``[t_i, t_{i+1})``; the last step holds for the same length as the step before it
(so a log of 1-s samples 1..800 lasts 800 s), then the log repeats from its first time. A packet of ``R`` bytes
entering service at ``t`` finishes when the integral of the rate from ``t`` reaches ``R``; capacity while the link
is idle is lost; zero-rate stretches stall service.

Both answer in O(log n) (a binary search in one period plus loop arithmetic): an idle gap of any length never
costs a walk over empty milliseconds, and a packet spanning many opportunities costs one division.
"""
from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from typing import Optional, Sequence

import numpy as np

MAHIMAHI_OPPORTUNITY_BYTES = 1504  # ravinet/mahimahi src/frontend/link_queue.hh: PACKET_SIZE (max TUN payload)

__all__ = ["CapacitySchedule", "OpportunitySchedule", "RateSchedule", "MAHIMAHI_OPPORTUNITY_BYTES"]


class CapacitySchedule(ABC):
    """A link capacity over time, looping after ``period_s``; time 0 of the schedule is simulated time 0.

    ``service`` may keep state between calls (the partly used opportunity of an ``OpportunitySchedule``): one
    schedule object serves one link, called with non-decreasing start times, each start at or after the previous
    packet's finish. ``clone()`` gives an independent copy sharing the (immutable) trace arrays.
    """

    kind: str = "schedule"
    period_s: float
    source: Optional[str]

    @abstractmethod
    def service(self, start_s: float, size_bytes: int) -> float:
        """Finish time of a packet of ``size_bytes`` that enters service at ``start_s``."""

    @abstractmethod
    def next_service_s(self, t_s: float) -> float:
        """Earliest time >= ``t_s`` at which a packet entering service then would receive bytes."""

    @abstractmethod
    def bytes_between(self, t0_s: float, t1_s: float) -> float:
        """Capacity offered in ``[t0_s, t1_s)`` if the link were always backlogged (ignores service state)."""

    @property
    @abstractmethod
    def mean_rate_bps(self) -> float:
        """Average capacity over one period, in bit/s."""

    def reset(self) -> None:
        """Forget service state (start again with an idle link)."""

    def clone(self) -> "CapacitySchedule":
        """An independent schedule over the same trace, with fresh service state."""
        other = copy.copy(self)
        other.reset()
        return other


def _ceil_ms(t_s: float) -> int:
    """Smallest integer ``m`` with ``m / 1000 >= t_s`` in floating point (exact at opportunity times)."""
    m = math.ceil(t_s * 1000.0)
    if (m - 1) / 1000.0 >= t_s:
        m -= 1
    if m / 1000.0 < t_s:
        m += 1
    return m


class OpportunitySchedule(CapacitySchedule):
    """Mahimahi delivery opportunities (see the module docstring for the exact rules).

    Args:
        timestamps_ms: one non-negative integer millisecond timestamp per opportunity, non-decreasing, the last
            one > 0 (it is the loop period).
        opportunity_bytes: bytes each opportunity can serve (default 1504, Mahimahi's ``PACKET_SIZE``).
        source: where the trace came from (a path), for messages.

    Service state is the last opportunity that gave bytes (an absolute index over the looped trace) and the bytes
    it has left; the leftover is usable only by a packet entering service at that same instant.
    """

    kind = "opportunities"

    def __init__(self, timestamps_ms: Sequence[int] | np.ndarray,
                 opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES, *, source: Optional[str] = None) -> None:
        if isinstance(opportunity_bytes, bool) or not isinstance(opportunity_bytes, (int, np.integer)) \
                or opportunity_bytes < 1:
            raise ValueError(f"opportunity_bytes: must be an integer >= 1, got {opportunity_bytes!r}")
        arr = np.asarray(timestamps_ms)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("timestamps_ms: must be a non-empty 1-D sequence of integer milliseconds")
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
                raise ValueError("timestamps_ms: must be integers (whole milliseconds)")
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "iu":
            raise ValueError(f"timestamps_ms: must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr[0] < 0:
            raise ValueError(f"timestamps_ms: must be >= 0, got {int(arr[0])}")
        if arr.size > 1 and np.any(np.diff(arr) < 0):
            i = int(np.argmax(np.diff(arr) < 0)) + 1
            raise ValueError(f"timestamps_ms: must be non-decreasing; entry {i} is {int(arr[i])} after "
                             f"{int(arr[i - 1])}")
        if arr[-1] <= 0:
            raise ValueError("timestamps_ms: the last timestamp is the loop period and must be > 0 "
                             "(Mahimahi: 'trace must last for a nonzero amount of time')")
        self.timestamps_ms = arr
        self.timestamps_ms.setflags(write=False)
        self.opportunity_bytes = int(opportunity_bytes)
        self.source = source
        self._ts = arr.tolist()
        self._n = len(self._ts)
        self._period_ms = self._ts[-1]
        self.period_s = self._period_ms / 1000.0
        self._tail_j = bisect_left(self._ts, self._period_ms)  # first line stamped with the period itself
        self.reset()

    def __repr__(self) -> str:
        return (f"OpportunitySchedule({self._n} opportunities of {self.opportunity_bytes} B, period "
                f"{self.period_s:g} s, mean {self.mean_rate_bps / 1e6:.3f} Mbit/s"
                + (f", source={self.source!r})" if self.source else ")"))

    @property
    def n_opportunities(self) -> int:
        """Opportunities in one period (trace lines)."""
        return self._n

    @property
    def mean_rate_bps(self) -> float:
        return self._n * self.opportunity_bytes * 8.0 / self.period_s

    def reset(self) -> None:
        self._last_k = -1
        self._last_s = -math.inf
        self._left = 0

    # -- looped index arithmetic ----------------------------------------------------------------------------

    def opportunity_ms(self, k: int) -> int:
        """Time in ms of opportunity ``k`` (absolute index over the looped trace, k >= 0)."""
        loops, j = divmod(k, self._n)
        return loops * self._period_ms + self._ts[j]

    def _first_k_at_or_after_ms(self, m: int) -> int:
        """Smallest absolute index ``k`` with ``opportunity_ms(k) >= m`` (binary search + loop arithmetic)."""
        if m <= 0:
            return 0
        loops, phase = divmod(m, self._period_ms)
        if phase == 0:
            # m is a multiple of the period: the previous period's lines stamped with the period come first.
            return (loops - 1) * self._n + self._tail_j
        return loops * self._n + bisect_left(self._ts, phase)  # < n since phase < period == ts[-1]

    def first_opportunity_index(self, t_s: float) -> int:
        """Absolute index of the first opportunity at or after ``t_s``."""
        return self._first_k_at_or_after_ms(_ceil_ms(t_s))

    # -- service --------------------------------------------------------------------------------------------

    def service(self, start_s: float, size_bytes: int) -> float:
        # ``start_s <= _last_s`` (the time of the opportunity last used) holds exactly when that opportunity is
        # at or after ``start_s``: for a link, when the packet enters service at that very instant.
        if start_s <= self._last_s:
            # The leftover bytes of the opportunity last used serve this packet first.
            left = self._left
            if left > 0 and size_bytes <= left:
                self._left = left - size_bytes
                return self._last_s
            remaining = size_bytes - left
            first = self._last_k + 1
        else:
            remaining = size_bytes
            first = self._first_k_at_or_after_ms(_ceil_ms(start_s))
        opp = self.opportunity_bytes
        needed = -(-remaining // opp) if remaining > 0 else 1  # ceil(remaining / opportunity_bytes), >= 1
        k = first + needed - 1
        self._last_k = k
        self._left = needed * opp - remaining
        loops, j = divmod(k, self._n)
        self._last_s = t = (loops * self._period_ms + self._ts[j]) / 1000.0
        return t

    def next_service_s(self, t_s: float) -> float:
        if t_s <= self._last_s:
            return self._last_s if self._left > 0 else self.opportunity_ms(self._last_k + 1) / 1000.0
        return self.opportunity_ms(self._first_k_at_or_after_ms(_ceil_ms(t_s))) / 1000.0

    def opportunities_between(self, t0_s: float, t1_s: float) -> int:
        """Number of opportunities at times in ``[t0_s, t1_s)``."""
        if not t1_s > t0_s:
            return 0
        return self.first_opportunity_index(t1_s) - self.first_opportunity_index(t0_s)

    def bytes_between(self, t0_s: float, t1_s: float) -> float:
        return float(self.opportunities_between(t0_s, t1_s) * self.opportunity_bytes)


class RateSchedule(CapacitySchedule):
    """A piecewise-constant rate served as a fluid (see the module docstring).

    Args:
        times_s: start time of each step, non-decreasing; shifted so the first step starts at 0. A step of zero
            length (a repeated time) is dropped: the later line wins.
        rates_bps: the rate of each step, in bit/s, >= 0 (zero stalls service).
        period_s: loop period; default: the last time plus the length of the last non-empty step (1 s for a
            single step). Must be longer than the last step start.
        source: where the trace came from (a path), for messages.
    """

    kind = "rate"

    def __init__(self, times_s: Sequence[float] | np.ndarray, rates_bps: Sequence[float] | np.ndarray,
                 period_s: Optional[float] = None, *, source: Optional[str] = None) -> None:
        t = np.asarray(times_s, dtype=np.float64)
        r = np.asarray(rates_bps, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or t.shape != r.shape:
            raise ValueError("times_s, rates_bps: must be non-empty 1-D sequences of the same length")
        if not np.all(np.isfinite(t)):
            raise ValueError("times_s: must be finite")
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            raise ValueError("rates_bps: must be finite and >= 0")
        dt = np.diff(t)
        if np.any(dt < 0):
            i = int(np.argmax(dt < 0)) + 1
            raise ValueError(f"times_s: must be non-decreasing; entry {i} is {t[i]!r} after {t[i - 1]!r}")
        t = t - t[0]
        if t.size > 1:
            keep = np.append(dt > 0, True)  # of equal times, keep the last
            positive = dt[dt > 0]
            t, r = t[keep], r[keep]
            default_last = float(positive[-1]) if positive.size else 1.0
        else:
            default_last = 1.0
        if period_s is None:
            period_s = float(t[-1]) + default_last
        if isinstance(period_s, bool) or not isinstance(period_s, (int, float, np.floating)) \
                or not float(period_s) > float(t[-1]):
            raise ValueError(f"period_s: must be a number after the last step start {float(t[-1])!r} s, "
                             f"got {period_s!r}")
        self.period_s = float(period_s)
        ends = np.append(t[1:], self.period_s)
        bytes_per_s = r / 8.0
        cum = np.concatenate(([0.0], np.cumsum(bytes_per_s * (ends - t))))
        if not cum[-1] > 0:
            raise ValueError("rates_bps: the trace has zero capacity over its whole period")
        self.times_s = t
        self.rates_bps = r
        self.times_s.setflags(write=False)
        self.rates_bps.setflags(write=False)
        self.source = source
        self._t = t.tolist()
        self._r = bytes_per_s.tolist()
        self._c = cum.tolist()
        self._total = float(cum[-1])
        # Next step with a positive rate, from each step (wrapping once): for next_service_s.
        n = len(self._t)
        nxt = [0] * n
        following = None
        for i in range(2 * n - 1, -1, -1):
            if self._r[i % n] > 0:
                following = i
            if i < n:
                nxt[i] = following
        self._next_pos = nxt

    def __repr__(self) -> str:
        return (f"RateSchedule({len(self._t)} steps, period {self.period_s:g} s, mean "
                f"{self.mean_rate_bps / 1e6:.3f} Mbit/s" + (f", source={self.source!r})" if self.source else ")"))

    @property
    def mean_rate_bps(self) -> float:
        return self._total * 8.0 / self.period_s

    def _split(self, t_s: float) -> tuple[int, float]:
        period = self.period_s
        loops = math.floor(t_s / period)
        phase = t_s - loops * period
        if phase >= period:
            loops += 1
            phase -= period
        if phase < 0.0:
            phase = 0.0
        return loops, phase

    def _cum_phase(self, phase: float) -> float:
        i = bisect_right(self._t, phase) - 1
        return self._c[i] + (phase - self._t[i]) * self._r[i]

    def cumulative_bytes(self, t_s: float) -> float:
        """Bytes the schedule offers in ``[0, t_s)``."""
        if t_s <= 0:
            return 0.0
        loops, phase = self._split(t_s)
        return loops * self._total + self._cum_phase(phase)

    def service(self, start_s: float, size_bytes: int) -> float:
        if size_bytes <= 0:
            return self.next_service_s(start_s)
        loops, phase = self._split(start_s)
        target = self._cum_phase(phase) + size_bytes
        total = self._total
        extra = math.floor(target / total)
        resid = target - extra * total
        if resid <= 0.0:
            # Reached exactly at a period boundary: finish at the end of the last step that has capacity.
            extra -= 1
            resid = total
        elif resid > total:
            extra += 1
            resid -= total
        c = self._c
        j = bisect_left(c, resid) - 1  # c[j] < resid <= c[j + 1], so step j has a positive rate
        finish = (loops + extra) * self.period_s + self._t[j] + (resid - c[j]) / self._r[j]
        return finish if finish > start_s else start_s

    def next_service_s(self, t_s: float) -> float:
        loops, phase = self._split(t_s)
        i = bisect_right(self._t, phase) - 1
        nxt = self._next_pos[i]
        if nxt == i:
            return t_s
        n = len(self._t)
        if nxt >= n:
            return (loops + 1) * self.period_s + self._t[nxt - n]
        return loops * self.period_s + self._t[nxt]

    def bytes_between(self, t0_s: float, t1_s: float) -> float:
        if not t1_s > t0_s:
            return 0.0
        return self.cumulative_bytes(t1_s) - self.cumulative_bytes(t0_s)

    def to_mahimahi_ms(self, opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES) -> np.ndarray:
        """One period as Mahimahi lines: opportunity ``k`` at the ms when ``k * opportunity_bytes`` bytes have
        been offered (rounded up), for replaying a throughput log in mm-link. Leftover capacity short of a whole
        opportunity at the period end is dropped; the last line is the period (rounded up to a whole ms)."""
        count = int(self._total // opportunity_bytes)
        period_ms = int(math.ceil(self.period_s * 1000.0 - 1e-9))
        if count == 0:
            raise ValueError(f"the period offers {self._total:.0f} B, less than one opportunity "
                             f"of {opportunity_bytes} B")
        targets = np.arange(1, count + 1, dtype=np.float64) * opportunity_bytes
        c = np.asarray(self._c)
        t = np.append(self.times_s, self.period_s)
        j = np.searchsorted(c, targets, side="left") - 1
        j = np.clip(j, 0, len(self._t) - 1)
        finish = t[j] + (targets - c[j]) / np.asarray(self._r)[j]
        ms = np.ceil(finish * 1000.0 - 1e-6).astype(np.int64)
        ms = np.minimum(np.maximum.accumulate(ms), period_ms)
        ms[-1] = period_ms  # Mahimahi loops by the last line: it must be the period
        return ms


def rotate_schedule(schedule: CapacitySchedule, offset_s: float) -> CapacitySchedule:
    """The same looping capacity, started ``offset_s`` into it (taken modulo the period)."""
    period = schedule.period_s
    off = offset_s % period
    if off == 0.0:
        return schedule.clone()
    if isinstance(schedule, OpportunitySchedule):
        ts = np.asarray(schedule.timestamps_ms, dtype=np.int64)
        period_ms = int(ts[-1])
        off_ms = int(round(off * 1000.0)) % period_ms
        if off_ms == 0:
            return schedule.clone()
        # One period is (0, period]: the lines of the first loop at or after the offset, then the next loop's.
        body = ts[ts > 0] if ts[0] == 0 else ts
        rotated = np.sort(np.where(body > off_ms, body - off_ms, body + period_ms - off_ms))
        if rotated[-1] != period_ms:
            rotated = np.append(rotated, period_ms)  # keep the loop period (one extra opportunity at most)
        return OpportunitySchedule(rotated, schedule.opportunity_bytes, source=schedule.source)
    if isinstance(schedule, RateSchedule):
        t = np.asarray(schedule.times_s)
        r = np.asarray(schedule.rates_bps)
        i = int(np.searchsorted(t, off, side="right")) - 1
        times = np.concatenate(([0.0], t[i + 1:] - off, t[: i + 1] + period - off))
        rates = np.concatenate(([r[i]], r[i + 1:], r[: i + 1]))
        keep = np.append(np.diff(times) > 1e-12, True) & (times < period - 1e-9)
        keep[0] = True
        return RateSchedule(times[keep], rates[keep], period_s=period, source=schedule.source)
    raise ValueError(f"trace: cannot rotate a {type(schedule).__name__}")
