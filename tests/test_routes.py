"""Routing: the near-linear route builder picks the same next hops as one plain BFS per destination host."""
from collections import deque

import numpy as np
import pytest

from emu.net import Host, Network, chain, dumbbell
from emu.sim import Sim


def reference_next_hops(net: Network) -> dict:
    """(node, host) -> next node name or None: a backwards BFS per host, ties to the smallest neighbour name."""
    ins = {n: [] for n in net.nodes}
    for (a, b) in net.links:
        ins[b].append(a)
    out = {}
    for dst, node in net.nodes.items():
        if not isinstance(node, Host):
            continue
        dist, frontier = {dst: 0}, deque([dst])
        while frontier:
            cur = frontier.popleft()
            for prev in ins[cur]:
                if prev not in dist:
                    dist[prev] = dist[cur] + 1
                    frontier.append(prev)
        for name, other in net.nodes.items():
            if name == dst or name not in dist:
                out[(name, dst)] = None
                continue
            out[(name, dst)] = min(nb for nb in other.links_out if dist.get(nb) == dist[name] - 1)
    return out


def built_next_hops(net: Network) -> dict:
    net.build_routes()
    out = {}
    for name, node in net.nodes.items():
        for dst in net.hosts:
            link = node.route(dst)
            out[(name, dst)] = None if link is None else link.out.name
    return out


def random_network(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network(Sim(seed))
    n_routers = int(rng.integers(1, 6))
    routers = [net.router(f"r{i}").name for i in range(n_routers)]
    hosts = [net.host(f"h{i}").name for i in range(int(rng.integers(1, 8)))]
    pairs = set()
    for _ in range(int(rng.integers(0, 12))):
        a, b = rng.choice(routers + hosts, size=2, replace=False) if len(routers + hosts) > 1 else (None, None)
        if a is None or (a, b) in pairs or (b, a) in pairs:
            continue
        duplex = bool(rng.integers(0, 4))   # mostly duplex, some one-way links
        net.link(str(a), str(b), rate="10Mbps", duplex=duplex)
        pairs.add((a, b))
    return net


@pytest.mark.parametrize("seed", range(60))
def test_random_networks_route_as_a_bfs_per_host(seed):
    net = random_network(seed)
    assert built_next_hops(net) == reference_next_hops(net)


@pytest.mark.parametrize("make", [lambda sim: dumbbell(sim, 7), lambda sim: chain(sim, 3), lambda sim: chain(sim, 0)])
def test_helper_topologies_route_as_a_bfs_per_host(make):
    net = make(Sim(0))
    assert built_next_hops(net) == reference_next_hops(net)


def test_a_host_never_routes_to_itself_or_to_an_unreachable_host():
    net = Network(Sim(0))
    net.host("a"), net.host("b"), net.host("c"), net.router("r")
    net.link("a", "r", rate="1Mbps")
    net.link("r", "b", rate="1Mbps")
    net.build_routes()
    assert net.nodes["a"].route("a") is None
    assert net.nodes["a"].route("c") is None
    assert net.nodes["a"].route("b") is net.links[("a", "r")]
