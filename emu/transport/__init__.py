"""Transports: UDP sockets, a reliable byte stream (TCP-like) and rate-controlled real-time flows.

Transports own sockets, ACKs, loss detection and timers; congestion control is a pure strategy object from
``emu.transport.cc`` (``make_cc("prague")``). Typical use::

    from emu import Sim, dumbbell
    from emu.transport import open_stream

    sim = Sim(seed=1)
    net = dumbbell(sim, 2, bottleneck_rate="100Mbps", bottleneck_delay="10ms", queue="dualpi2",
                   queue_params={"preset": "rfc9332"})
    prague, _ = open_stream(sim, net.nodes["s0"], net.nodes["d0"], cc="prague", bulk=True, flow="prague")
    cubic, _ = open_stream(sim, net.nodes["s1"], net.nodes["d1"], cc="cubic", bulk=True, flow="cubic")
    sim.run(until_s=10.0)

Per-ACK samples reach applications through ``on_ack_sample``; data arrivals are recorded in ``sim.records``
under the flow's name and ACKs under ``"<flow>.ack"``.
"""
from emu.transport.cc import CongestionControl, cc_names, make_cc, register_cc
from emu.transport.realtime import RtcReceiver, RtcSender
from emu.transport.samples import (
    KIND_ACK, KIND_DATA, KIND_DGRAM, KIND_FEEDBACK, LOSS_GAP, LOSS_RACK, LOSS_RTO, AckSample, LossEvent,
)
from emu.transport.stream import AckInfo, StreamConfig, StreamReceiver, StreamSender, open_stream
from emu.transport.timer import LazyTimer
from emu.transport.udp import UdpSocket

__all__ = [
    "UdpSocket", "StreamSender", "StreamReceiver", "StreamConfig", "open_stream", "AckInfo", "RtcSender",
    "RtcReceiver", "AckSample", "LossEvent", "CongestionControl", "make_cc", "cc_names", "register_cc",
    "LazyTimer", "KIND_DATA", "KIND_ACK", "KIND_DGRAM", "KIND_FEEDBACK", "LOSS_RACK", "LOSS_RTO", "LOSS_GAP",
]
