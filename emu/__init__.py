"""emu: a packet-level discrete-event network emulator on SimPy, with L4S queues and trace-driven links.

Importing emu never imports torch; learned applications load it lazily inside ``emu.apps.<app>``.

    from emu import Sim, Network, PoissonSource, Sink, RunResult
    sim = Sim(seed=1)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate="100Mbps", delay="10ms", queue="codel")
    PoissonSource(sim, a, "b", flow="f", rate_bps=90e6)
    Sink(sim, b, port=5000)
    sim.run(until_s=10.0)
    print(RunResult(sim).flows())
"""
from emu.apps.traffic import BulkSource, CBRSource, OnOffSource, PoissonSource, Sink
from emu.links import BernoulliLossConfig, GilbertElliottLossConfig, JitterConfig, Link, LinkConfig
from emu.net import Host, Network, Router, chain, dumbbell
from emu.packet import CE, ECN, ECT0, ECT1, NOT_ECT, Packet
from emu.queues import make_queue, queue_names
from emu.results import RunResult
from emu.scenario import Scenario, ScenarioError
from emu.sim import Sim
from emu.sweep import Sweep
from emu.tracer import ListTracer, NullTracer
from emu.transport import RtcReceiver, RtcSender, StreamReceiver, StreamSender, UdpSocket, open_stream
from emu.units import GBPS, KB, KBPS, MB, MBPS, MS, US, parse_rate_bps, parse_size_bytes, parse_time_s

__version__ = "0.1.0"

__all__ = [
    "Sim", "Network", "Host", "Router", "dumbbell", "chain", "Link", "LinkConfig", "BernoulliLossConfig",
    "GilbertElliottLossConfig", "JitterConfig", "Packet", "ECN", "NOT_ECT", "ECT0", "ECT1", "CE",
    "make_queue", "queue_names", "CBRSource", "PoissonSource", "OnOffSource", "BulkSource", "Sink", "RunResult",
    "Scenario", "ScenarioError", "Sweep", "ListTracer", "NullTracer", "MS", "US", "KB", "MB", "KBPS", "MBPS", "GBPS",
    "parse_rate_bps", "parse_size_bytes", "parse_time_s", "open_stream", "StreamSender", "StreamReceiver",
    "UdpSocket", "RtcSender", "RtcReceiver", "__version__",
]
