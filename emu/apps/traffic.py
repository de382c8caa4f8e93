"""Open-loop traffic: CBR, Poisson, on/off and bulk sources, and a recording sink.

Each source is a callback chain (one heap event per packet, no process). Gaps are drawn in batches from the
source's own generator, ``sim.rng("traffic.<flow>")``, so adding a flow never changes another's packets.
"""
from __future__ import annotations

from heapq import heappush
from typing import Any, Optional

from simpy.events import NORMAL

from emu.packet import NOT_ECT, Packet
from emu.sim import Sim, _Wake
from emu.validate import (
    MAX_DURATION_S, MAX_PACKET_BYTES, MAX_RATE_BPS, MAX_TRANSFER_BYTES, check_int, check_number,
)

_BATCH = 4096


def _check_positive(field: str, value: Any) -> float:
    """A rate (``rate_bps``) or a mean time (``*_s``): finite, > 0 and within the documented limits."""
    if field.endswith("_bps"):
        return check_number(field, value, lo=0, lo_open=True, hi=MAX_RATE_BPS, unit="bit/s")
    return check_number(field, value, lo=0, lo_open=True, hi=MAX_DURATION_S, unit="s")


class Sink:
    """Records every packet it receives (one-way delay, queueing delay) in ``sim.records``.

    Bind it to a host port: ``Sink(sim, host, port=5000)``. ``on_packet`` (optional) is called after recording.
    """

    def __init__(self, sim: Sim, host: Any, port: int = 5000, on_packet: Any = None) -> None:
        self.sim = sim
        self.host = host
        self.port = host.bind(port, self)
        self.received_pkts = 0
        self.received_bytes = 0
        self.on_packet = on_packet
        self._delivered = sim.records.delivered
        self._env = sim.env

    def receive(self, pkt: Packet) -> None:
        self.received_pkts += 1
        self.received_bytes += pkt.size_bytes
        self._delivered(pkt, self._env._now)
        if self.on_packet is not None:
            self.on_packet(pkt)


class Source:
    """Base of the open-loop sources: builds packets of ``size_bytes`` for ``flow`` and sends them from ``host``.

    Subclasses implement ``_next_gap_s()``: seconds until the next packet, or None to stop.
    ``size_dist="exponential"`` draws each packet's size from an exponential distribution of mean ``size_bytes``
    (rounded up to whole bytes), e.g. for M/M/1 validation; the default ``"fixed"`` sends ``size_bytes`` always.
    """

    def __init__(self, sim: Sim, host: Any, dst: str, *, flow: str, size_bytes: int = 1500, dport: int = 5000,
                 sport: int = 0, ecn: int = NOT_ECT, start_s: float = 0.0, stop_s: Optional[float] = None,
                 size_dist: str = "fixed") -> None:
        check_int("size_bytes", size_bytes, lo=1, hi=MAX_PACKET_BYTES)
        if size_dist not in ("fixed", "exponential"):
            raise ValueError(f"size_dist: unknown {size_dist!r}; valid: exponential, fixed")
        self.size_dist = size_dist
        self._sizes: list[int] = []
        self._size_i = 0
        check_number("start_s", start_s, lo=sim.now_s, hi=MAX_DURATION_S, unit="s")
        if stop_s is not None:
            check_number("stop_s", stop_s, lo=start_s, lo_open=True, hi=MAX_DURATION_S, unit="s")
        self.sim = sim
        self.host = host
        self.dst = dst
        self.flow = flow
        need = getattr(host, "need_route", None)
        if need is not None:
            need(dst, f"flow {flow!r}")
        self.flow_id = sim.flow(flow)
        self.size_bytes = size_bytes
        self.dport = dport
        self.sport = sport
        self.ecn = ecn
        self.stop_s = stop_s if stop_s is not None else float("inf")
        self.rng = sim.rng(f"traffic.{flow}")
        self.sent_pkts = 0
        self._env = sim.env
        self._heap = sim.heap
        self._eid = sim.event_ids
        self._records = sim.records
        self._counters = sim.records.flows[self.flow_id]
        self._send = None
        self._src = host.name
        self._emit_cb = (self._emit,)
        self._emit_event = _Wake(self._emit_cb)
        sim.call_at(start_s, self._emit)

    def _next_gap_s(self) -> Optional[float]:
        raise NotImplementedError

    def _next_size(self) -> int:
        i = self._size_i
        if i >= len(self._sizes):
            import numpy as np

            sizes_rng = self.sim.rng(f"traffic.{self.flow}.size")
            self._sizes = np.ceil(sizes_rng.exponential(self.size_bytes, _BATCH)).astype(np.int64).tolist()
            i = 0
        self._size_i = i + 1
        return self._sizes[i]

    def _emit(self, _: Any = None) -> None:
        now = self._env._now
        if now >= self.stop_s:
            return
        sim = self.sim
        pid = next(sim.pkt_ids)
        size = self.size_bytes if self.size_dist == "fixed" else self._next_size()
        seq = self.sent_pkts
        send = self._send
        if send is None:
            # Resolve the first hop once (routes are built when the run starts).
            link = self.host.route(self.dst)
            send = self._send = link.receive if link is not None else self.host.send
        send(Packet(pid, self.flow_id, self._src, self.dst, size, now, self.sport, self.dport, self.ecn, seq))
        self.sent_pkts = seq + 1
        counters = self._counters
        counters.sent_pkts += 1
        counters.sent_bytes += size
        gap = self._next_gap_s()
        if gap is not None:
            event = self._emit_event  # one emission is pending at a time: reuse its event object
            event.callbacks = self._emit_cb
            heappush(self._heap, (now + gap, NORMAL, next(self._eid), event))


class CBRSource(Source):
    """Constant bit rate: one packet every ``size_bytes * 8 / rate_bps`` seconds."""

    def __init__(self, sim: Sim, host: Any, dst: str, *, rate_bps: float, **kwargs: Any) -> None:
        self.rate_bps = _check_positive("rate_bps", rate_bps)
        super().__init__(sim, host, dst, **kwargs)
        self._gap_s = self.size_bytes * 8.0 / self.rate_bps

    def _next_gap_s(self) -> float:
        return self._gap_s


class PoissonSource(Source):
    """Poisson arrivals with mean rate ``rate_bps`` (exponential gaps of mean ``size_bytes * 8 / rate_bps``)."""

    def __init__(self, sim: Sim, host: Any, dst: str, *, rate_bps: float, **kwargs: Any) -> None:
        self.rate_bps = _check_positive("rate_bps", rate_bps)
        super().__init__(sim, host, dst, **kwargs)
        self._mean_gap_s = self.size_bytes * 8.0 / self.rate_bps
        self._gaps: list[float] = []
        self._i = 0

    def _next_gap_s(self) -> float:
        i = self._i
        if i >= len(self._gaps):
            self._gaps = self.rng.exponential(self._mean_gap_s, _BATCH).tolist()
            i = 0
        self._i = i + 1
        return self._gaps[i]


class OnOffSource(Source):
    """CBR at ``rate_bps`` during ON periods, silent during OFF periods; both exponential with the given means."""

    def __init__(self, sim: Sim, host: Any, dst: str, *, rate_bps: float, on_mean_s: float, off_mean_s: float,
                 **kwargs: Any) -> None:
        self.rate_bps = _check_positive("rate_bps", rate_bps)
        self.on_mean_s = _check_positive("on_mean_s", on_mean_s)
        self.off_mean_s = _check_positive("off_mean_s", off_mean_s)
        super().__init__(sim, host, dst, **kwargs)
        self._gap_s = self.size_bytes * 8.0 / self.rate_bps
        self._on_left_s = float(self.rng.exponential(self.on_mean_s))

    def _next_gap_s(self) -> float:
        self._on_left_s -= self._gap_s
        if self._on_left_s >= 0:
            return self._gap_s
        off_s = float(self.rng.exponential(self.off_mean_s))
        self._on_left_s = float(self.rng.exponential(self.on_mean_s))
        return self._gap_s + off_s


class BulkSource(Source):
    """Sends ``total_bytes`` as fast as ``rate_bps`` allows (default: saturate a link of that rate), then stops.

    Open loop (no congestion control); for a reliable, congestion-controlled transfer use the transport layer.
    """

    def __init__(self, sim: Sim, host: Any, dst: str, *, total_bytes: int, rate_bps: float, **kwargs: Any) -> None:
        check_int("total_bytes", total_bytes, lo=1, hi=int(MAX_TRANSFER_BYTES))
        self.total_bytes = total_bytes
        self.rate_bps = _check_positive("rate_bps", rate_bps)
        super().__init__(sim, host, dst, **kwargs)
        self._gap_s = self.size_bytes * 8.0 / self.rate_bps
        self._left_bytes = total_bytes

    def _next_gap_s(self) -> Optional[float]:
        self._left_bytes -= self.size_bytes
        return self._gap_s if self._left_bytes > 0 else None


SOURCES = {"cbr": CBRSource, "poisson": PoissonSource, "onoff": OnOffSource, "bulk": BulkSource}
