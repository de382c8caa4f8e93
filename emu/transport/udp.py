"""UDP sockets: unreliable datagrams with per-packet ECN and one-way delay.

``UdpSocket(sim, host, port=None)`` binds a port on ``host``; ``sendto(size_bytes, dst, dport, payload, ecn)``
sends one datagram (``size_bytes`` is the whole IP packet); every datagram that arrives is recorded in
``sim.records`` (per-flow delay and throughput tables) and handed to ``on_receive(pkt, owd_s)``, with its
one-way delay (the emulator has one clock, so the delay is exact) — ``pkt.qdelay_s`` holds its queueing part and
``pkt.ecn`` tells whether it was CE-marked.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from emu.packet import ECN, NOT_ECT, Packet
from emu.transport.samples import KIND_DGRAM

Receiver = Callable[[Packet, float], None]


class UdpSocket:
    """A UDP endpoint on ``host``.

    Args:
        sim: the run.
        host: the ``Host`` to bind on; ``port``: the port (None: a free one).
        flow: flow name for records of datagrams *sent* from this socket (default ``"udp.<host>:<port>"``);
            ``sendto(..., flow=...)`` can name another flow per datagram.
        on_receive: ``fn(pkt, owd_s)`` for every datagram arriving at this port.
        ecn: default ECN codepoint of sent datagrams (``emu.packet.ECT1`` for an L4S flow).
        record: record arrivals in ``sim.records`` (default True).
        flow_prefix: prefix of the default flow name.
    """

    def __init__(self, sim: Any, host: Any, port: Optional[int] = None, *, flow: Optional[str] = None,
                 on_receive: Optional[Receiver] = None, ecn: int = NOT_ECT, record: bool = True,
                 flow_prefix: str = "udp") -> None:
        self.sim = sim
        self.host = host
        self.ecn = int(ECN(ecn))
        self.port = host.bind(port, self)
        self.flow = flow if flow is not None else f"{flow_prefix}.{host.name}:{self.port}"
        self._flow_id = -1          # registered on first use, so a receive-only socket adds no empty flow
        self.on_receive = on_receive
        self.record = record
        self._env = sim.env
        self._records = sim.records
        self._routes: dict[str, Callable[[Packet], None]] = {}
        self._flow_ids: dict[str, int] = {}
        self.sent_pkts = 0
        self.sent_bytes = 0
        self.rx_pkts = 0
        self.rx_bytes = 0
        self.rx_ce_pkts = 0
        self.last_owd_s = float("nan")

    @property
    def flow_id(self) -> int:
        """The records id of this socket's default flow."""
        if self._flow_id < 0:
            self._flow_id = self._flow_ids[self.flow] = self.sim.flow(self.flow)
        return self._flow_id

    def sendto(self, size_bytes: int, dst: Any, dport: int, payload: Any = None, ecn: Optional[int] = None,
               *, flow: Optional[str] = None, seq: Optional[int] = None, kind: int = KIND_DGRAM) -> Packet:
        """Send one datagram of ``size_bytes`` (IP packet size) to ``dst:dport``; return the packet."""
        if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 1:
            raise ValueError(f"size_bytes: must be an integer >= 1, got {size_bytes!r}")
        dst_name = dst if isinstance(dst, str) else dst.name
        now = self._env._now
        sim = self.sim
        pid = next(sim.pkt_ids)
        if flow is None:
            fid = self.flow_id
        else:
            fid = self._flow_ids.get(flow)
            if fid is None:
                fid = self._flow_ids[flow] = sim.flow(flow)
        pkt = Packet(pid, fid, self.host.name, dst_name, size_bytes, now, self.port, dport,
                     self.ecn if ecn is None else ecn, self.sent_pkts if seq is None else seq, kind, payload)
        self.sent_pkts += 1
        self.sent_bytes += size_bytes
        counters = self._records.flows[fid]
        counters.sent_pkts += 1
        counters.sent_bytes += size_bytes
        send = self._routes.get(dst_name)
        if send is None:
            link = self.host.route(dst_name)
            if link is None:
                self.host.send(pkt)     # records a no_route drop
                return pkt
            send = self._routes[dst_name] = link.receive
        send(pkt)
        return pkt

    def receive(self, pkt: Packet) -> None:
        now = self._env._now
        if self.record:
            self._records.delivered(pkt, now)
        self.rx_pkts += 1
        self.rx_bytes += pkt.size_bytes
        if pkt.ecn == 3:
            self.rx_ce_pkts += 1
        owd = now - pkt.created_s
        self.last_owd_s = owd
        if self.on_receive is not None:
            self.on_receive(pkt, owd)

    def close(self) -> None:
        """Unbind the port (datagrams arriving later are dropped by the host as ``unbound_port``)."""
        self.host.unbind(self.port)
