"""Hosts, routers and the Network builder with static shortest-path routing.

Nodes are wired with one-way ``Link`` objects; ``Network.link(a, b, ...)`` adds both directions unless
``duplex=False``. Routes are computed once, before time starts, as hop-count shortest paths (ties broken by
node name so runs are reproducible); every node forwards by destination host name.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Optional, Union

from emu.links.impairments import JitterConfig
from emu.links.link import Link, LinkConfig, LossConfig
from emu.packet import Packet
from emu.queues import Queue, make_queue, queue_names
from emu.sim import Sim
from emu.validate import (
    MAX_DELAY_S, check_bool, check_int, check_str, check_table, parse_rate_field, parse_time_field,
)

MAX_PAIRS = 100_000   # dumbbell pairs, chain routers (docs/errors.md, "Limits": 10 000 pairs build in seconds)

NO_ROUTE = "no_route"
UNBOUND_PORT = "unbound_port"


class Node:
    """Common part of hosts and routers: a name and a forwarding table ``dst host -> outgoing link``."""

    def __init__(self, sim: Sim, name: str) -> None:
        self.sim = sim
        self.name = name
        self.routes: dict[str, Optional[Link]] = {}
        self.default_link: Optional[Link] = None   # the one outgoing link of a node that has one (see build_routes)
        self.links_out: dict[str, Link] = {}
        self.needed_routes: list[tuple[str, str]] = []   # (destination, who needs it), checked at run start
        self._where = sim.records.where_id(name)

    def need_route(self, dst: str, who: str) -> None:
        """Declare that ``who`` (a flow, a stream, an app) sends from here to host ``dst``: the run then fails at
        its start, naming ``who``, if ``dst`` is unreachable, instead of dropping every packet as ``no_route``."""
        self.needed_routes.append((dst, who))

    def route(self, dst: str) -> Optional[Link]:
        """The outgoing link towards host ``dst`` (``None``: no route). Valid once routes are built."""
        return self.routes.get(dst, self.default_link)

    def forward(self, pkt: Packet) -> None:
        link = self.routes.get(pkt.dst, self.default_link)
        if link is None:
            self.sim.records.dropped(pkt, self._where, NO_ROUTE, self.sim.now_s)
            return
        link.receive(pkt)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Router(Node):
    """Forwards every packet to the link towards ``pkt.dst``."""

    def receive(self, pkt: Packet) -> None:
        link = self.routes.get(pkt.dst, self.default_link)
        if link is None:
            self.sim.records.dropped(pkt, self._where, NO_ROUTE, self.sim.now_s)
            return
        link.receive(pkt)


class Host(Node):
    """An end host: ``send`` routes a packet out; ``receive`` hands it to whatever is bound to ``pkt.dport``."""

    def __init__(self, sim: Sim, name: str) -> None:
        super().__init__(sim, name)
        self.ports: dict[int, Any] = {}
        self._next_port = 49152

    def bind(self, port: Optional[int], receiver: Any) -> int:
        """Deliver packets addressed to ``port`` to ``receiver.receive``; ``port=None`` picks a free one."""
        if port is None:
            while self._next_port in self.ports:
                self._next_port += 1
            port = self._next_port
        if port in self.ports:
            raise ValueError(f"host {self.name!r}: port {port} is already bound")
        if not callable(getattr(receiver, "receive", None)):
            raise ValueError(f"host {self.name!r}: port {port} receiver has no receive(pkt) method")
        self.ports[port] = receiver
        return port

    def unbind(self, port: int) -> None:
        self.ports.pop(port, None)

    def send(self, pkt: Packet) -> None:
        link = self.routes.get(pkt.dst, self.default_link)
        if link is None:
            self.sim.records.dropped(pkt, self._where, NO_ROUTE, self.sim.now_s)
            return
        link.receive(pkt)

    def receive(self, pkt: Packet) -> None:
        handler = self.ports.get(pkt.dport)
        if handler is None:
            self.sim.records.dropped(pkt, self._where, UNBOUND_PORT, self.sim.now_s)
            return
        handler.receive(pkt)


QueueSpec = Union[str, Queue, None]


class Network:
    """Builds a topology on one ``Sim``.

    Example::

        sim = Sim(seed=1)
        net = Network(sim)
        a, b = net.host("a"), net.host("b")
        net.link(a, b, rate="10Mbps", delay="5ms", queue="codel")
        sim.run(until_s=1.0)
    """

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.nodes: dict[str, Node] = {}
        self.links: dict[tuple[str, str], Link] = {}
        self._routes_built = False
        sim.register(self)

    # -- nodes ------------------------------------------------------------------------------------------------

    def _add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise ValueError(f"node name {node.name!r} is already used")
        self.nodes[node.name] = node
        self._routes_built = False
        return node

    def host(self, name: str) -> Host:
        return self._add(Host(self.sim, check_str("host name", name)))  # type: ignore[return-value]

    def router(self, name: str) -> Router:
        return self._add(Router(self.sim, check_str("router name", name)))  # type: ignore[return-value]

    def node(self, node: Union[str, Node]) -> Node:
        """The node named ``node`` (or ``node`` itself, checked to belong to this network)."""
        name = node if isinstance(node, str) else getattr(node, "name", None)
        if not isinstance(name, str) or name not in self.nodes or (not isinstance(node, str) and self.nodes[name] is not node):
            raise ValueError(f"unknown node {node!r}; nodes: {', '.join(sorted(self.nodes)) or '(none)'}")
        return self.nodes[name]

    _node = node

    def host_named(self, node: Union[str, Node]) -> Host:
        """The host ``node`` (a router here is an error naming it)."""
        found = self.node(node)
        if not isinstance(found, Host):
            raise ValueError(f"{found.name!r} is a router, not a host; hosts: {', '.join(sorted(self.hosts))}")
        return found

    @property
    def hosts(self) -> dict[str, Host]:
        return {n: h for n, h in self.nodes.items() if isinstance(h, Host)}

    # -- links --------------------------------------------------------------------------------------------------

    def _make_queue(self, spec: QueueSpec, params: Optional[dict], link_name: str) -> Queue:
        if spec is None:
            spec = "droptail"
        if isinstance(spec, Queue):
            if params:
                raise ValueError(f"link {link_name!r}: queue_params given with a queue object")
            return spec
        if not isinstance(spec, str):
            raise ValueError(f"link {link_name!r}: queue: must be a queue name ({', '.join(queue_names())}) or a "
                             f"Queue object, got {spec!r}")
        params = dict(check_table(f"link {link_name!r}: queue_params", params) if params is not None else {})
        preset = params.pop("preset", None)
        rng_name = f"{link_name}.queue"
        return make_queue(spec, preset=preset, rng=lambda: self.sim.rng(rng_name), **params)

    def link(self, a: Union[str, Node], b: Union[str, Node], *, rate: Any = None, delay: Any = 0.0,
             queue: QueueSpec = None, queue_params: Optional[dict] = None, trace: Any = None,
             loss: Optional[LossConfig] = None, jitter: Optional[JitterConfig] = None,
             mtu_bytes: Optional[int] = None, duplex: bool = True, reverse_queue: QueueSpec = None, reverse_queue_params: Optional[dict] = None,
             reverse_rate: Any = None, reverse_trace: Any = None, trace_offset: Any = 0.0) -> Link:
        """Connect ``a`` to ``b``; return the a->b link (b->a is ``net.links[(b, a)]`` when ``duplex``).

        ``rate`` ("10Mbps" or bit/s) makes a constant-rate link; ``trace`` (a path to a Mahimahi or throughput
        log, or a schedule) makes a trace-driven one, started ``trace_offset`` ("12s" or seconds) into the trace
        (rotated, so it still loops; the reverse trace, if any, gets the same offset). Loss and jitter apply to the
        a->b direction only.
        """
        node_a, node_b = self._node(a), self._node(b)
        if node_a is node_b:
            raise ValueError(f"link {node_a.name}->{node_b.name}: a link must join two different nodes")
        check_bool(f"link {node_a.name}->{node_b.name}: duplex", duplex)
        offset_s = parse_time_field(f"link {node_a.name}->{node_b.name}: trace_offset", trace_offset)
        fwd = self._one_way(node_a, node_b, rate, delay, queue, queue_params, trace, loss, jitter, mtu_bytes,
                            offset_s)
        if duplex:
            rev_rate = reverse_rate if reverse_rate is not None else (rate if reverse_trace is None else None)
            if rev_rate is None and reverse_trace is None:
                rev_rate = rate if rate is not None else None
            if rev_rate is None and reverse_trace is None:
                raise ValueError(f"link {node_b.name}->{node_a.name}: give reverse_rate or reverse_trace "
                                 "for the reverse direction of a trace-driven duplex link")
            self._one_way(node_b, node_a, rev_rate, delay, reverse_queue, reverse_queue_params, reverse_trace,
                          None, None, mtu_bytes, offset_s)
        return fwd

    def _one_way(self, a: Node, b: Node, rate: Any, delay: Any, queue: QueueSpec, queue_params: Optional[dict],
                 trace: Any, loss: Optional[LossConfig], jitter: Optional[JitterConfig],
                 mtu_bytes: Optional[int] = None, trace_offset_s: float = 0.0) -> Link:
        name = f"{a.name}->{b.name}"
        if (a.name, b.name) in self.links:
            raise ValueError(f"link {name!r} already exists")
        delay_s = parse_time_field(f"link {name}: delay", delay, hi=MAX_DELAY_S)
        q = self._make_queue(queue, queue_params, name)
        if trace is not None:
            if rate is not None:
                raise ValueError(f"link {name!r}: give either rate= or trace=, not both")
            from emu.links.trace_link import TraceLink

            link: Link = TraceLink(self.sim, name, trace, delay_s=delay_s, queue=q, out=b, loss=loss,
                                   jitter=jitter, mtu_bytes=mtu_bytes, offset_s=trace_offset_s)
        else:
            if rate is None:
                raise ValueError(f"link {name!r}: give rate= (e.g. '10Mbps') or trace= (a trace path)")
            config = LinkConfig(rate_bps=parse_rate_field(f"link {name}: rate", rate), delay_s=delay_s,
                                mtu_bytes=mtu_bytes, loss=loss, jitter=jitter)
            link = Link(self.sim, name, config, queue=q, out=b)
        self.links[(a.name, b.name)] = link
        a.links_out[b.name] = link
        self._routes_built = False
        return link

    # -- capture ------------------------------------------------------------------------------------------------

    def capture(self, link: Union[Link, str, tuple], path: Any, *, point: str = "egress", snaplen: Optional[int] = None):
        """Write every packet seen at ``point`` ("egress": leaving the link's queue; "ingress": arriving at the link)
        of ``link`` (a ``Link``, its name "a->b", or a pair ``(a, b)``) to a pcap file at ``path``, each cut to
        ``snaplen`` bytes (default ``emu.pcap.DEFAULT_SNAPLEN_BYTES``). Returns the ``emu.pcap.LinkCapture``:
        ``close()`` it after the run, or use it as a context manager. See ``emu.pcap`` for what a record holds."""
        from emu.pcap import DEFAULT_SNAPLEN_BYTES, LinkCapture

        if isinstance(link, tuple) and len(link) == 2:
            link = f"{self._node(link[0]).name}->{self._node(link[1]).name}"
        if isinstance(link, str):
            found = next((lk for lk in self.links.values() if lk.name == link), None)
            if found is None:
                names = ", ".join(sorted(lk.name for lk in self.links.values())) or "(none)"
                raise ValueError(f"capture: unknown link {link!r}; links: {names}")
            link = found
        if not isinstance(link, Link) or link not in self.links.values():
            raise ValueError(f"capture: expected a link of this network, its name 'a->b' or a pair (a, b); got {link!r}")
        return LinkCapture(self, link, path, point=point,
                           snaplen=DEFAULT_SNAPLEN_BYTES if snaplen is None else snaplen)

    # -- routing ------------------------------------------------------------------------------------------------

    def build_routes(self) -> None:
        """Fill every node's table with the next link on a hop-count shortest path to each host.

        Ties go to the neighbour whose name sorts first, so runs are reproducible. The cost is near-linear in the
        size of the network for the usual shapes: a host whose one outgoing link leads to the node its one incoming
        link comes from (a stub host, as every dumbbell or chain end host) is reached through that node, so one
        backwards breadth-first search per such attachment node serves all its stub hosts; and a node with a
        single outgoing link keeps it as ``default_link`` rather than one table entry per host (its table then
        holds only the exceptions: itself and unreachable hosts, mapped to ``None``). Other hosts get a search
        each, as before.
        """
        nodes = self.nodes
        neighbours_in: dict[str, list[str]] = {n: [] for n in nodes}
        for (src, dst) in self.links:
            neighbours_in[dst].append(src)
        for name, node in nodes.items():
            node.routes = {}
            node.default_link = next(iter(node.links_out.values())) if len(node.links_out) == 1 else None
            if node.default_link is not None and isinstance(node, Host):
                node.routes[name] = None   # a host never routes to itself
        groups: dict[str, list[str]] = {}   # attachment node -> the hosts reached through it
        for name, node in nodes.items():
            if not isinstance(node, Host):
                continue
            ins = neighbours_in[name]
            stub = len(node.links_out) == 1 and len(ins) == 1 and ins[0] in node.links_out
            groups.setdefault(ins[0] if stub else name, []).append(name)
        for anchor, group in groups.items():
            # BFS backwards from the anchor: dist[n] = hops from n to the anchor.
            dist = {anchor: 0}
            frontier = deque([anchor])
            while frontier:
                cur = frontier.popleft()
                step = dist[cur] + 1
                for prev in neighbours_in[cur]:
                    if prev not in dist:
                        dist[prev] = step
                        frontier.append(prev)
            for name, node in nodes.items():
                routes, default = node.routes, node.default_link
                hops = dist.get(name)
                if hops is None:   # the group is unreachable from here
                    if default is not None:
                        for host in group:
                            routes[host] = None
                    continue
                if hops == 0:      # the anchor: one link to each stub host
                    for host in group:
                        if host != name and node.links_out[host] is not default:
                            routes[host] = node.links_out[host]
                    continue
                link = node.links_out[min(nb for nb in node.links_out if dist.get(nb) == hops - 1)]
                if link is not default:
                    for host in group:
                        if host != name:
                            routes[host] = link
        self._routes_built = True

    def check_wiring(self) -> None:
        """Build the routes if needed, then fail (naming the flow or app) on a declared path with no route."""
        if not self._routes_built:
            self.build_routes()
        for node in self.nodes.values():
            for dst, who in node.needed_routes:
                target = self.nodes.get(dst)
                if not isinstance(target, Host):
                    raise ValueError(f"{who}: destination {dst!r} is not a host of this network; hosts: "
                                     f"{', '.join(sorted(self.hosts)[:20])}")
                if node.route(dst) is None:
                    raise ValueError(f"{who}: no route from {node.name!r} to {dst!r} (every packet would be "
                                     "dropped); check the links between them (a duplex = false link carries one "
                                     "direction only)")

    def path(self, src: Union[str, Node], dst: Union[str, Node]) -> list[str]:
        """Node names on the route from ``src`` to ``dst`` (routes are built if needed)."""
        if not self._routes_built:
            self.build_routes()
        node, target = self._node(src), self._node(dst).name
        names = [node.name]
        while node.name != target:
            link = node.route(target)
            if link is None:
                raise ValueError(f"no route from {names[0]!r} to {target!r}")
            node = link.out
            names.append(node.name)
            if len(names) > len(self.nodes) + 1:
                raise ValueError(f"routing loop from {names[0]!r} to {target!r}")
        return names


def dumbbell(sim: Sim, n_pairs: int = 1, *, bottleneck_rate: Any = "10Mbps", bottleneck_delay: Any = "10ms",
             access_rate: Any = "1Gbps", access_delay: Any = 0.0, queue: QueueSpec = "droptail",
             queue_params: Optional[dict] = None, trace: Any = None, reverse_rate: Any = None,
             loss: Optional[LossConfig] = None, trace_offset: Any = 0.0) -> Network:
    """``n_pairs`` senders ``s0..`` -> router ``left`` -> bottleneck -> ``right`` -> receivers ``d0..``.

    The bottleneck queue (``queue``) sits on ``left->right``; the reverse path gets a large DropTail.
    ``trace`` makes the bottleneck trace-driven (``reverse_rate`` then sets the return path, default the
    access rate; ``trace_offset`` starts it that far in).
    """
    check_int("pairs", n_pairs, lo=1, hi=MAX_PAIRS)
    # Each argument checked under its own name first (errors then name the field a user set, not a link).
    if trace is None:
        parse_rate_field("bottleneck_rate", bottleneck_rate)
    parse_time_field("bottleneck_delay", bottleneck_delay, hi=MAX_DELAY_S)
    access_rate = parse_rate_field("access_rate", access_rate)          # parsed once for the 4 N access links
    access_delay = parse_time_field("access_delay", access_delay, hi=MAX_DELAY_S)
    if reverse_rate is not None:
        parse_rate_field("reverse_rate", reverse_rate)
    net = Network(sim)
    left, right = net.router("left"), net.router("right")
    net.link(left, right, rate=None if trace is not None else bottleneck_rate, delay=bottleneck_delay,
             queue=queue, queue_params=queue_params, trace=trace, loss=loss, trace_offset=trace_offset,
             reverse_rate=reverse_rate if reverse_rate is not None else (access_rate if trace is not None else None),
             reverse_queue="droptail", reverse_queue_params={"limit_pkts": 100_000})
    for i in range(n_pairs):
        s, d = net.host(f"s{i}"), net.host(f"d{i}")
        net.link(s, left, rate=access_rate, delay=access_delay, queue_params={"limit_pkts": 100_000})
        net.link(right, d, rate=access_rate, delay=access_delay, queue_params={"limit_pkts": 100_000})
    net.build_routes()
    return net


def chain(sim: Sim, n_routers: int = 2, *, rate: Any = "10Mbps", delay: Any = "5ms", queue: QueueSpec = "droptail",
          queue_params: Optional[dict] = None) -> Network:
    """Host ``src`` -> routers ``r0..r{n-1}`` -> host ``dst``, every hop with the same rate, delay and queue."""
    check_int("routers", n_routers, lo=0, hi=MAX_PAIRS)
    parse_rate_field("rate", rate)
    parse_time_field("delay", delay, hi=MAX_DELAY_S)
    net = Network(sim)
    names = ["src"] + [f"r{i}" for i in range(n_routers)] + ["dst"]
    net.host("src")
    for name in names[1:-1]:
        net.router(name)
    net.host("dst")
    for a, b in zip(names, names[1:]):
        net.link(a, b, rate=rate, delay=delay, queue=queue, queue_params=queue_params)
    net.build_routes()
    return net
