"""One ABR session on the packet-level emulator: ``access_bottleneck`` driven by a trace, the app installed on it.

The session starts ``trace.times_s[start]`` seconds into the trace file, so it sees the same throughput samples
as the chunk-level simulator started at sample ``start`` (which reads sample ``start`` over the interval that
ends at ``times_s[start]``; the emulator reads a sample from its own time on). Optional cross traffic: one
backlogged Cubic flow on a second sender/receiver pair sharing the bottleneck. The bottleneck queue is DropTail,
unlimited by default (``queue_pkts=None``, as Mahimahi's ``mm-link`` default queue, under which Pensieve's
emulation ran), so a lone player sees capacity, not a buffer size.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Union

import simpy

from emu.apps.abr.app import AbrConfig, AbrSession
from emu.apps.abr.traces import Trace
from emu.apps.abr.video import N_CHUNKS, Video
from emu.apps.base import InstallContext

__all__ = ["run_packet_session", "SteppedPacketSession", "HORIZON_S"]

HORIZON_S = 3600.0   # a session that has not finished in an hour of simulated time is cut off


def _build(video: Video, trace_path: Union[str, os.PathLike], offset_s: float, *, rtt_s: float, seed: int,
           scheme: str, policy: Any, decide=None, cross_traffic: bool = False, cc: str = "cubic",
           queue_pkts: Optional[int] = None):
    from emu import Sim
    from emu.apps import install as install_app
    from emu.topologies import access_bottleneck

    sim = Sim(seed=seed, record="summary")
    topo = access_bottleneck(sim, pairs=2 if cross_traffic else 1, trace=str(trace_path), trace_offset=offset_s,
                             rtt_s=rtt_s, queue="droptail", queue_params={"limit_pkts": queue_pkts})
    ctx = InstallContext(sim=sim, net=topo.net, src=topo.senders[0], dst=topo.receivers[0], name="abr",
                         scheme=scheme, start_s=0.0, config=AbrConfig(cc=cc))
    session = AbrSession(ctx, video=video, policy=policy, decide=decide)
    session.app = "abr"
    sim.add_app(session)
    session.start()
    if cross_traffic:
        install_app(topo.net, "bulk", src=topo.senders[1], dst=topo.receivers[1], name="cross", scheme="cubic")
    return sim, session


def run_packet_session(policy: Any, trace: Trace, trace_path: Union[str, os.PathLike], start: int, video: Video,
                       *, rtt_s: float = 0.08, seed: int = 0, cross_traffic: bool = False, cc: str = "cubic",
                       queue_pkts: Optional[int] = None):
    """Play one session of ``policy`` over the emulator; returns the ``SessionLog`` (raises if it never ends)."""
    from emu.topologies import run_until_done

    sim, session = _build(video, trace_path, float(trace.times_s[start]), rtt_s=rtt_s, seed=seed,
                          scheme=getattr(policy, "name", "policy"), policy=policy, cross_traffic=cross_traffic,
                          cc=cc, queue_pkts=queue_pkts)
    if not run_until_done(sim, [session], horizon_s=HORIZON_S, step_s=10.0):
        raise RuntimeError(f"{trace.name}: the session did not finish within {HORIZON_S} s of simulated time "
                           f"({len(session.log.levels)} of {N_CHUNKS} chunks)")
    return session.log


class _Stop:
    def __call__(self, _: Any) -> None:
        raise simpy.core.StopSimulation()


class SteppedPacketSession:
    """A packet-level session paused after every chunk until the caller picks the next level (Gymnasium)."""

    def __init__(self, video: Video, trace: Trace, trace_path: Optional[Union[str, os.PathLike]], *, start: int,
                 rtt_s: float = 0.08, seed: int = 0) -> None:
        self._results: list = []
        path = trace_path if trace_path is not None else trace.name
        self.sim, self.session = _build(video, path, float(trace.times_s[start]), rtt_s=rtt_s, seed=seed,
                                        scheme="external", policy=None, decide=self._decide)
        self.session._on_chunk = self._on_chunk
        self._first = True

    def _on_chunk(self, result: Any) -> None:
        self._results.append(result)
        self.sim.call_in(0.0, _Stop())     # hand control back to the caller at the chunk's completion time

    def _decide(self, obs: Any) -> None:
        return None                        # the caller requests the next chunk through download()

    def download(self, level: int):
        if self._first:
            self._first = False     # the session requests chunk 0 at level 0 by itself at start
        else:
            last = self._results[-1]
            self.sim.call_in(last.sleep_s, lambda _, lv=int(level): self.session.request(lv))
        n = len(self._results)
        limit = HORIZON_S
        while len(self._results) == n:
            if self.session.done or self.sim.now_s >= limit:
                raise RuntimeError("the packet-level session stalled")
            self.sim.run(until_s=limit)
        return self._results[-1]
