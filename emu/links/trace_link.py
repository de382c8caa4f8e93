"""TraceLink: a link whose serialiser follows a capacity trace (Mahimahi opportunities or a throughput log).

Only the serialiser differs from ``Link``: a packet's finish time comes from a ``CapacitySchedule``
(``emu.links.schedule``); loss, propagation delay and jitter stages are the same.

As in Mahimahi's link queue, the head of the queue leaves the queue only when the trace can serve it: a packet
arriving at an idle link between two opportunities (or in a zero-rate stretch of a throughput log) waits *in the
queue* until the next one, so its sojourn, AQM decisions and the queue limit see it there. That costs one heap
event per busy period (none while idle: the wake-up time comes from a binary search, never from ticking).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union


from emu.links.impairments import JitterConfig
from emu.links.link import Link, LinkConfig, LossConfig, check_mtu
from emu.links.schedule import MAHIMAHI_OPPORTUNITY_BYTES, CapacitySchedule, rotate_schedule
from emu.links.tracefile import FORMATS, load_trace
from emu.packet import Packet
from emu.queues.base import Queue
from emu.sim import Sim

TraceSource = Union[str, os.PathLike, CapacitySchedule]


@dataclass(frozen=True, kw_only=True)
class TraceLinkConfig:
    """A trace-driven link.

    ``trace``: a trace file path (any format ``emu.links.tracefile`` reads; a relative path is also looked up in
    the shared traces folder) or a ``CapacitySchedule``. ``delay_s`` >= 0: one-way propagation.
    ``opportunity_bytes`` >= 1: bytes per Mahimahi line (used only when ``trace`` is a Mahimahi file; a given
    schedule keeps its own). ``format``: skip detection (one of ``tracefile.FORMATS``). ``mtu_bytes``: larger
    packets are dropped on arrival (reason ``"mtu"``); None: no limit.
    """

    trace: TraceSource
    delay_s: float = 0.0
    opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES  # ravinet/mahimahi link_queue.hh PACKET_SIZE
    format: Optional[str] = None
    mtu_bytes: Optional[int] = None
    loss: Optional[LossConfig] = None
    jitter: Optional[JitterConfig] = None
    offset_s: float = 0.0  # start this far into the trace (rotated, so it still loops; taken modulo the period)

    def __post_init__(self) -> None:
        if not isinstance(self.trace, (str, os.PathLike, CapacitySchedule)) or self.trace == "":
            raise ValueError(f"trace: must be a trace file path or a CapacitySchedule, got {self.trace!r}")
        if isinstance(self.delay_s, bool) or not isinstance(self.delay_s, (int, float)) or not self.delay_s >= 0:
            raise ValueError(f"delay_s: must be >= 0 seconds, got {self.delay_s!r}")
        if isinstance(self.opportunity_bytes, bool) or not isinstance(self.opportunity_bytes, int) \
                or self.opportunity_bytes < 1:
            raise ValueError(f"opportunity_bytes: must be an integer >= 1, got {self.opportunity_bytes!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format: must be one of {', '.join(FORMATS)} or None, got {self.format!r}")
        check_mtu(self.mtu_bytes)
        if isinstance(self.offset_s, bool) or not isinstance(self.offset_s, (int, float)) \
                or not 0 <= self.offset_s <= 1e7:
            raise ValueError(f"offset_s: must be in [0, 1e7] seconds, got {self.offset_s!r}")

    def make_schedule(self) -> CapacitySchedule:
        """A fresh schedule for one link (a given schedule is cloned, so links never share service state)."""
        if isinstance(self.trace, CapacitySchedule):
            schedule = self.trace
        else:
            schedule = load_trace(self.trace, opportunity_bytes=self.opportunity_bytes, format=self.format)
        return rotate_schedule(schedule, self.offset_s) if self.offset_s else schedule.clone()


class TraceLink(Link):
    """A one-way link serialising by a capacity trace; trace time 0 is simulated time 0, and the trace loops.

    ``TraceLink(sim, "bottleneck", "mahimahi/Verizon-LTE-short.down", delay_s=0.02, queue=DropTailQueue(...))``
    or ``TraceLink(sim, "bottleneck", TraceLinkConfig(trace=..., delay_s=...))``.

    ``config`` is the ``TraceLinkConfig``; ``schedule`` the link's own ``CapacitySchedule``; ``link_config`` the
    ``LinkConfig`` handed to ``Link`` (its ``rate_bps`` is the trace's mean rate, nominal only).
    """

    def __init__(self, sim: Sim, name: str, trace: Union[TraceSource, TraceLinkConfig], delay_s: float = 0.0,
                 queue: Optional[Queue] = None, out: Any = None, loss: Optional[LossConfig] = None,
                 jitter: Optional[JitterConfig] = None, opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES,
                 format: Optional[str] = None, mtu_bytes: Optional[int] = None, offset_s: float = 0.0) -> None:
        if isinstance(trace, TraceLinkConfig):
            config = trace
        else:
            config = TraceLinkConfig(trace=trace, delay_s=delay_s, opportunity_bytes=opportunity_bytes,
                                     format=format, mtu_bytes=mtu_bytes, loss=loss, jitter=jitter,
                                     offset_s=offset_s)
        schedule = config.make_schedule()
        link_config = LinkConfig(rate_bps=schedule.mean_rate_bps, delay_s=config.delay_s,
                                 mtu_bytes=config.mtu_bytes, loss=config.loss, jitter=config.jitter)
        super().__init__(sim, name, link_config, queue=queue, out=out)
        self.config = config
        self.link_config = link_config
        self.schedule = schedule
        self._service = schedule.service
        self._next_service = schedule.next_service_s

    @property
    def mean_rate_bps(self) -> float:
        return self.schedule.mean_rate_bps

    def _service_done_s(self, pkt: Packet, now_s: float) -> float:
        return self._service(now_s, pkt.size_bytes)

    def _start(self, now_s: float) -> None:
        # Dequeue only when the trace can serve the head now; otherwise sleep until it can (one event), so a
        # waiting packet stays in the queue where AQMs and the limit see it.
        if self.queue.len_pkts:
            t = self._next_service(now_s)
            if t > now_s:
                self._schedule_wake(t)
                return
        super()._start(now_s)

    def stats(self) -> dict:
        out = super().stats()
        out["trace"] = self.schedule.source
        out["mean_rate_bps"] = self.schedule.mean_rate_bps
        return out
