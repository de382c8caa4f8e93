"""A test-only app living outside ``emu``: UDP probes at a fixed interval; metrics are delivery and one-way delay.

Registered through the ``emu.apps`` entry-point group by ``tests/test_app_contract.py`` (a dist-info folder on
``PYTHONPATH``), so it exercises the path third-party packages take.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.apps import AppSpec, Endpoint, install
from emu.topologies import access_bottleneck, run_until_done


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    n_probes: int = 50
    interval_s: float = 0.01
    size_bytes: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.n_probes, int) or not 1 <= self.n_probes <= 100_000:
            raise ValueError(f"n_probes: must be an integer in [1, 100000], got {self.n_probes!r}")


@dataclass(frozen=True, kw_only=True)
class ProbeEvalConfig:
    rate_bps: float = 10e6
    rtt_s: float = 0.02
    trace: Optional[str] = None
    n_probes: int = 50


class Probe(Endpoint):
    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        from emu.transport.udp import UdpSocket

        self.delays: list[float] = []
        self.rx = UdpSocket(ctx.sim, ctx.dst, on_receive=lambda pkt, owd: self.delays.append(owd))
        self.tx = UdpSocket(ctx.sim, ctx.src, flow=ctx.name)
        self.sent = 0

    def start(self) -> None:
        self.sim.call_at(self.start_s, self._send)

    def _send(self, _=None) -> None:
        size = self.config.size_bytes if self.scheme == "small" else 4 * self.config.size_bytes
        self.tx.sendto(size, self.ctx.dst.name, self.rx.port)
        self.sent += 1
        if self.sent < self.config.n_probes:
            self.sim.call_in(self.config.interval_s, self._send)

    @property
    def done(self) -> bool:
        return self.sent == self.config.n_probes and len(self.delays) == self.sent

    def result(self) -> dict:
        d = np.asarray(self.delays)
        return {"delivered_pkts": int(d.size), "owd_mean_s": float(d.mean()) if d.size else math.nan}


def evaluate(config: ProbeEvalConfig, *, schemes, seed: int) -> dict:
    from emu import Sim

    out = {}
    for scheme in schemes:
        sim = Sim(seed=seed)
        topo = access_bottleneck(sim, rate=None if config.trace else config.rate_bps, trace=config.trace,
                                 rtt_s=config.rtt_s)
        ep = install(topo.net, "probe", src=topo.senders[0], dst=topo.receivers[0], scheme=scheme,
                     n_probes=config.n_probes)
        run_until_done(sim, [ep], horizon_s=10.0, step_s=0.5)
        out[scheme] = ep.result()
    return out


SPEC = AppSpec(name="probe", summary="UDP probes (test plugin)", config=ProbeConfig, schemes=("small", "large"),
               install=Probe, eval_config=ProbeEvalConfig, evaluate=evaluate, metrics=("owd_mean_s",))
