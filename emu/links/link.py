"""Link: a queue, a serialiser, then loss, propagation delay and jitter.

The serialiser is a callback state machine, not a process: a packet costs one heap event (its arrival at the
far end) plus, when others wait behind it, one wake-up at the end of its serialisation. Nothing is scheduled
while the link is idle. The loss stage decides when serialisation starts (the draw is the same either way);
the drop is recorded at the time serialisation ends.

Subclasses change only how long serialisation takes (``_service_done_s``): ``Link`` serialises at a
constant ``rate_bps``; ``TraceLink`` follows a capacity trace.
"""
from __future__ import annotations

from dataclasses import dataclass
from heapq import heappush
from typing import Any, Optional, Union

from simpy.events import NORMAL

from emu.links.impairments import (
    BernoulliLossConfig, GilbertElliottLossConfig, JitterConfig, make_loss, Jitter,
)
from emu.packet import Packet
from emu.queues.base import Queue
from emu.queues.droptail import DropTailQueue
from emu.sim import Sim, _Wake
from emu.validate import MAX_DELAY_S, MAX_PACKET_BYTES, MAX_RATE_BPS, check_int, check_number

LOSS = "loss"  # drop reason of the loss stage
MTU = "mtu"  # drop reason of packets larger than the link MTU


def check_mtu(mtu_bytes: Optional[int]) -> None:
    if mtu_bytes is not None:
        check_int("mtu_bytes (None: no limit)", mtu_bytes, lo=1, hi=MAX_PACKET_BYTES)
LossConfig = Union[BernoulliLossConfig, GilbertElliottLossConfig]


@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    """A constant-rate link. ``rate_bps`` > 0, ``delay_s`` >= 0 (one-way propagation)."""

    rate_bps: float
    delay_s: float = 0.0
    mtu_bytes: Optional[int] = None  # None: no limit; larger packets are dropped with reason "mtu"
    loss: Optional[LossConfig] = None
    jitter: Optional[JitterConfig] = None

    def __post_init__(self) -> None:
        check_mtu(self.mtu_bytes)
        check_number("rate_bps", self.rate_bps, lo=0, lo_open=True, hi=MAX_RATE_BPS, unit="bit/s")
        check_number("delay_s", self.delay_s, lo=0, hi=MAX_DELAY_S, unit="s")


class Link:
    """A one-way link from one element to ``out``, with its own queue.

    Args:
        sim: the run.
        name: unique, used for drop records and errors.
        config: rate, propagation delay, loss and jitter.
        queue: the discipline in front of the serialiser (default: DropTail, 1000 packets).
        out: the receiver at the far end (anything with ``receive(pkt)``); may be connected later.
    """

    def __init__(self, sim: Sim, name: str, config: LinkConfig, queue: Optional[Queue] = None,
                 out: Any = None) -> None:
        self.sim = sim
        self.name = name
        self.config = config
        self.queue = queue if queue is not None else DropTailQueue()
        self.out = out
        self.delay_s = float(config.delay_s)
        mtu = getattr(config, "mtu_bytes", None)
        self._mtu_bytes = mtu if mtu is not None else 1 << 62
        self._s_per_byte = 8.0 / config.rate_bps if config.rate_bps else 0.0
        self._where = sim.records.where_id(name)
        self._records = sim.records
        self.queue.on_drop = self._queue_dropped
        self._loss = make_loss(config.loss, sim.rng(f"{name}.loss")) if config.loss else None
        self._jitter = Jitter(config.jitter, sim.rng(f"{name}.jitter")) if config.jitter else None
        self._free_at = float("-inf")
        self._wake_pending = False
        self._env = sim.env
        self._heap = sim.heap
        self._eid = sim.event_ids
        self.tx_pkts = 0
        self.tx_bytes = 0
        self.lost_pkts = 0
        self.propagating_pkts = 0
        self._wake_cb = (self._wake,)
        self._wake_event = _Wake(self._wake_cb)
        self._arrived_cb = (self._arrived,)
        # Subclasses that change the serialisation time override _service_done_s; _start inlines the base one.
        self._constant_rate = type(self)._service_done_s is Link._service_done_s
        sim.register(self)

    # -- wiring -------------------------------------------------------------------------------------------------

    def connect(self, out: Any) -> "Link":
        self.out = out
        return self

    def check_wiring(self) -> None:
        if self.out is None or not callable(getattr(self.out, "receive", None)):
            raise ValueError(f"link {self.name!r}: output is not connected (set out= or call connect())")

    @property
    def queued_pkts(self) -> int:
        return self.queue.len_pkts

    @property
    def in_flight_pkts(self) -> int:
        """Packets past the queue: being serialised or propagating (both counted from the start of service)."""
        return self.propagating_pkts

    @property
    def busy(self) -> bool:
        return self._wake_pending or self._env._now < self._free_at

    # -- datapath -----------------------------------------------------------------------------------------------
    #
    # A packet that finds the serialiser free is dequeued and sent at once: its arrival at the far end is then
    # fully determined (end of serialisation + propagation), so it costs one heap event. The serialiser only
    # needs a wake-up at the end of a transmission when packets are waiting; so an uncongested link costs one
    # event per packet and a busy one two.

    def receive(self, pkt: Packet) -> None:
        now = self._env._now
        if pkt.size_bytes > self._mtu_bytes:
            self._records.dropped(pkt, self._where, MTU, now)
            return
        if self.queue.enqueue(pkt, now) and not self._wake_pending:
            if now >= self._free_at:
                self._start(now)
            else:
                self._schedule_wake(self._free_at)

    def _service_done_s(self, pkt: Packet, now_s: float) -> float:
        """When serialising ``pkt``, started at ``now_s``, finishes."""
        return now_s + pkt.size_bytes * self._s_per_byte

    def _schedule_wake(self, t_s: float) -> None:
        # At most one wake-up is pending, so one event object serves them all (SimPy clears its callbacks).
        self._wake_pending = True
        wake = self._wake_event
        wake.callbacks = self._wake_cb
        heappush(self._heap, (t_s, NORMAL, next(self._eid), wake))

    def _wake(self, _: Any) -> None:
        self._wake_pending = False
        self._start(self._env._now)

    def _start(self, now_s: float) -> None:
        """Serialise the next packet from ``now_s`` (the serialiser is free)."""
        queue = self.queue
        pkt = queue.dequeue(now_s)
        if pkt is None:
            return
        size = pkt.size_bytes
        if self._constant_rate:
            done_s = now_s + size * self._s_per_byte      # what Link._service_done_s returns
        else:
            done_s = self._service_done_s(pkt, now_s)
        self._free_at = done_s
        self.tx_pkts += 1
        self.tx_bytes += size
        if self._loss is not None and self._loss.lost():
            self.lost_pkts += 1
            self._records.dropped(pkt, self._where, LOSS, done_s)
        else:
            arrive_s = done_s + self.delay_s
            if self._jitter is not None:
                arrive_s = self._jitter.delivery_time_s(arrive_s)
            self.propagating_pkts += 1
            pkt.callbacks = self._arrived_cb
            heappush(self._heap, (arrive_s, NORMAL, next(self._eid), pkt))
        if queue.len_pkts:
            # _schedule_wake(done_s), inlined
            self._wake_pending = True
            wake = self._wake_event
            wake.callbacks = self._wake_cb
            heappush(self._heap, (done_s, NORMAL, next(self._eid), wake))

    def _arrived(self, pkt: Packet) -> None:
        self.propagating_pkts -= 1
        self.out.receive(pkt)

    def _queue_dropped(self, pkt: Packet, reason: str, now_s: float) -> None:
        self._records.dropped(pkt, self._where, reason, now_s)

    def stats(self) -> dict:
        return {"link": self.name, "tx_pkts": self.tx_pkts, "tx_bytes": self.tx_bytes, "lost_pkts": self.lost_pkts,
                "queue": self.queue.kind, **self.queue.stats.as_dict()}
