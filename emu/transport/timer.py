"""LazyTimer: a deadline that costs heap events only when it can fire.

Transports move their deadlines on almost every packet (the RTO restarts on each ACK). Scheduling an event per
move would cost one heap entry per packet; instead the timer keeps the deadline in a field and at most one
*useful* wake-up on the heap. A wake-up that finds the deadline moved later sleeps again until the new
deadline; moving the deadline earlier than the pending wake-up schedules an extra, earlier wake-up (the later
one is then ignored when it fires). So an RTO timer restarted on every ACK costs about one event per RTO
interval, not one per ACK.
"""
from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

from simpy.events import NORMAL

from emu.sim import _Call

INF = float("inf")


class LazyTimer:
    """Calls ``fn(now_s)`` once ``now_s >= deadline_s``. ``set(t)`` (re)arms, ``cancel()`` disarms."""

    __slots__ = ("_sim", "_fn", "deadline_s", "_wake_at", "_env", "_heap", "_eid")

    def __init__(self, sim: Any, fn: Callable[[float], None]) -> None:
        self._sim = sim
        self._fn = fn
        self.deadline_s = INF
        self._wake_at = INF
        self._env = sim.env
        self._heap = sim.heap
        self._eid = sim.event_ids

    @property
    def armed(self) -> bool:
        return self.deadline_s < INF

    def set(self, deadline_s: float) -> None:
        now = self._env._now
        if deadline_s < now:
            deadline_s = now
        self.deadline_s = deadline_s
        if deadline_s < self._wake_at:
            self._wake_at = deadline_s
            # What sim.call_at(deadline_s, self._wake, deadline_s) pushes, without its checks.
            heappush(self._heap, (deadline_s, NORMAL, next(self._eid), _Call(self._wake, deadline_s)))

    def cancel(self) -> None:
        self.deadline_s = INF

    def _wake(self, scheduled_s: float) -> None:
        if scheduled_s != self._wake_at:
            return  # superseded by an earlier wake-up that already ran
        self._wake_at = INF
        deadline = self.deadline_s
        if deadline == INF:
            return
        now = self._env._now
        if now >= deadline:
            self.deadline_s = INF
            self._fn(now)
        else:
            self._wake_at = deadline
            heappush(self._heap, (deadline, NORMAL, next(self._eid), _Call(self._wake, deadline)))
