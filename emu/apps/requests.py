"""One request at a time over a trace: the request times and the per-request network of the evaluations that
serve a single request per simulation (kvfetch, kvblend, droidspeak).

Each request runs on its own ``emu.topologies.access_bottleneck`` network with the trace started at the
request's time (``trace_offset_s``), so requests of different schemes at the same time see the same link (a
paired comparison). A connection's memory across requests (``emu.apps.kvfetch.controller.BandwidthMemory``)
is carried by the caller; ``run_request`` sets its clock to trace time.
"""
from __future__ import annotations

from typing import Any, Optional

from emu.rng import SeedTree

CONSTANT_LINK_GAP_S = 10.0     # requests on a constant link: this far apart (only a connection memory sees it)
TRACE_TAIL_S = 20.0            # request times stay this far before the end of the trace


def request_offsets(trace: Optional[str], trials: int, seed: int, rng_name: str, *,
                    gap_s: Optional[float] = None, duration_s: Optional[float] = None) -> list[float]:
    """Request times in trace time, increasing: ``trials`` of them spread evenly over the trace with a seeded
    jitter (from ``SeedTree(seed).rng(rng_name)``), or ``gap_s`` apart from a seeded start (the trace loops past
    its end). ``trace=None`` (a constant link): ``gap_s`` (default 10 s) apart from 0. ``duration_s``: the
    trace's period, if already known (else the trace is read)."""
    rng = SeedTree(seed).rng(rng_name)
    if trace is None:
        return [float(k * (CONSTANT_LINK_GAP_S if gap_s is None else gap_s)) for k in range(trials)]
    if duration_s is None:
        from emu.links.tracefile import load_trace, resolve_trace_path

        duration_s = load_trace(resolve_trace_path(trace)).period_s
    usable = max(1.0, duration_s - TRACE_TAIL_S)
    if gap_s is not None:
        start = float(rng.uniform(0, usable))
        return [start + k * gap_s for k in range(trials)]
    step = usable / trials
    return [float(k * step + rng.uniform(0, step)) for k in range(trials)]


def run_request(app: str, scheme: str, *, trace: Any, rate_bps: Optional[float], trace_offset_s: float,
                rtt_s: float, seed: int, horizon_s: float, what: str = "request", memory: Any = None,
                **params: Any) -> Any:
    """Install ``app`` with ``scheme`` and ``params`` on a fresh access-bottleneck network (``trace``, a path or
    a loaded schedule, started ``trace_offset_s`` into it; or a constant ``rate_bps`` when ``trace`` is None)
    and run it until done; returns the endpoint. ``memory`` (a connection's ``BandwidthMemory``) is passed to
    the endpoint with its clock set to trace time. ValueError naming ``horizon_s`` if it does not finish."""
    from emu.apps import install
    from emu.sim import Sim
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=seed)
    topo = access_bottleneck(sim, rate=None if trace is not None else rate_bps, trace=trace,
                             trace_offset=trace_offset_s, rtt_s=rtt_s)
    if memory is not None:
        params["memory"] = memory
    ep = install(topo.net, app, src=topo.senders[0], dst=topo.receivers[0], scheme=scheme, **params)
    if memory is not None:
        memory.clock_offset_s = trace_offset_s
    if not run_until_done(sim, [ep], horizon_s=horizon_s):
        raise ValueError(f"horizon_s: the {scheme} {what} at trace time {trace_offset_s:.1f} s did not finish "
                         f"within {horizon_s} s of simulated time")
    return ep
