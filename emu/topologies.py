"""Shared topologies for apps and scenarios, and a helper that runs until apps finish.

``access_bottleneck`` is the network every app evaluation uses: ``pairs`` senders behind a 1 Gbit/s access link,
one bottleneck (a constant rate or a capacity trace, started ``trace_offset`` into it, with a loss model and a
queue), and as many receivers::

    s0 ─1Gbps─┐                                           ┌─1Gbps─ d0
    s1 ─1Gbps─┤ left ── bottleneck (rate|trace, loss, queue) ──► right ├─1Gbps─ d1
              ┘          propagation rtt_s/2 each way          └

All the propagation delay is on the bottleneck (``rtt_s / 2`` each way); access links add serialisation only.
Loss applies to the forward (left->right) direction; the reverse path is loss-free at ``reverse_rate``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from emu.links.link import Link, LossConfig
from emu.net import MAX_PAIRS, Host, Network, QueueSpec, dumbbell
from emu.sim import Sim
from emu.validate import check_int, check_number, parse_rate_field

ACCESS_RATE = "1Gbps"


@dataclass
class AccessBottleneck:
    """The built network and its named parts."""

    net: Network
    senders: list[Host]
    receivers: list[Host]
    bottleneck: Link        # left -> right
    reverse: Link           # right -> left

    @property
    def sim(self) -> Sim:
        return self.net.sim


def access_bottleneck(sim: Sim, *, pairs: int = 1, rate: Any = None, trace: Any = None, trace_offset: Any = 0.0,
                      rtt_s: float = 0.1, loss: Optional[LossConfig] = None, queue: QueueSpec = "droptail",
                      queue_params: Optional[dict] = None, reverse_rate: Any = ACCESS_RATE) -> AccessBottleneck:
    """Build the access-bottleneck network on ``sim`` (see the module docstring).

    Give ``rate`` ("10Mbps" or bit/s) or ``trace`` (a trace path, relative to the shared traces folder or not,
    or a schedule), not both. ``queue``/``queue_params`` set the bottleneck queue (DropTail, 1000 packets, by
    default).
    """
    if (rate is None) == (trace is None):
        raise ValueError("access_bottleneck: give exactly one of rate= or trace=")
    check_number("rtt_s", rtt_s, lo=0, hi=10)
    check_int("pairs", pairs, lo=1, hi=MAX_PAIRS)
    if rate is not None:
        parse_rate_field("rate", rate)
    net = dumbbell(sim, pairs, bottleneck_rate=rate, bottleneck_delay=rtt_s / 2, access_rate=ACCESS_RATE,
                   queue=queue, queue_params=queue_params, trace=trace, trace_offset=trace_offset,
                   reverse_rate=reverse_rate, loss=loss)
    return AccessBottleneck(net=net, senders=[net.nodes[f"s{i}"] for i in range(pairs)],
                            receivers=[net.nodes[f"d{i}"] for i in range(pairs)],
                            bottleneck=net.links[("left", "right")], reverse=net.links[("right", "left")])


def run_until_done(sim: Sim, endpoints: Iterable[Any], *, horizon_s: float, step_s: float = 1.0) -> bool:
    """Run in steps of ``step_s`` until every endpoint is ``done`` or ``horizon_s`` is reached; True if all done.

    Runs end at a step boundary, so the same inputs give the same stopping time (and records).
    """
    eps = list(endpoints)
    check_number("step_s", step_s, lo=0, lo_open=True)
    check_number("horizon_s", horizon_s, lo=0)
    while True:
        if all(ep.done for ep in eps):
            return True
        if sim.now_s >= horizon_s:
            return False
        sim.run(until_s=min(horizon_s, sim.now_s + step_s))
