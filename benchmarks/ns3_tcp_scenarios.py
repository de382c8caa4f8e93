"""The TCP validation scenarios in ns-3 (pip ``ns3``), run by ``bench_ns3_validation.py`` in ns-3's interpreter.

This file imports nothing from emu: the pip ``ns3`` package and emu's environment are kept apart
(``python -m venv /tmp/ns3 && /tmp/ns3/bin/pip install ns3``). It reads one JSON list of scenarios on stdin and
prints one JSON object per scenario on stdout.

Topology, as ``emu.transport.validation._run`` builds it: each sender on its own access link (100 x the
bottleneck rate, one-way delay ``rtt_s / 2``) to a router, then one bottleneck link (delay 0) to the receiver.
Matched settings: 1448-B segments with timestamps (1500-B IP packets), an ACK per segment (``DelAckCount 1``),
SACK, ``MinRto`` 200 ms, initial window 10, classic recovery (``TcpClassicRecovery``, no PRR), HyStart off,
send and receive buffers large enough never to limit the window, pacing as the scenario says.

The bottleneck queue: a queue disc holding ``limit_pkts - 1`` packets in front of a device queue of 1 packet
(so ``limit_pkts`` wait in all, as in emu's one queue; the packet being serialised is in neither). DropTail is
``FifoQueueDisc``; the step marker is ``RedQueueDisc`` with ``MinTh = MaxTh = step``, ``QW = 1`` (instantaneous
length), not gentle, ECN marking instead of dropping (the DCTCP set-up of ns-3's ``dctcp-example.cc``).

With ``"cwnd_log_s": [t0, t1]`` in a scenario, every cwnd change in [t0, t1) is returned too (``cwnd_log``:
time, segments), for looking at one reduction closely.

Per flow: goodput over [warmup_s, duration_s) from the sink, window reductions (entries into CWR, Recovery or
Loss from Open/Disorder, timed), bottleneck drops of the flow's packets, mean cwnd sampled every 10 ms; mean
bottleneck queue (queue disc + device queue) sampled every 10 ms.
"""
from __future__ import annotations

import json
import sys
import time

SAMPLE_S = 0.010

_CPP = r"""
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/internet-module.h"
#include "ns3/traffic-control-module.h"
#include <map>
#include <vector>
namespace emuval {
using namespace ns3;
struct Probe {
    double cwnd = 0.0;
    std::vector<double> reductions;
    std::vector<std::pair<double, double>> cwnd_log;   // (time, cwnd bytes) inside [log_from, log_to)
};
double log_from = 0.0, log_to = -1.0;
std::vector<Probe> probes(8);
std::map<uint32_t, uint64_t> drops_by_src;
void OnCwnd(Probe* p, uint32_t, uint32_t v) {
    p->cwnd = v;
    double t = Simulator::Now().GetSeconds();
    if (t >= log_from && t < log_to) { p->cwnd_log.push_back({t, (double)v}); }
}
void OnState(Probe* p, TcpSocketState::TcpCongState_t from, TcpSocketState::TcpCongState_t to) {
    bool was_open = from == TcpSocketState::CA_OPEN || from == TcpSocketState::CA_DISORDER;
    bool reduced = to == TcpSocketState::CA_CWR || to == TcpSocketState::CA_RECOVERY || to == TcpSocketState::CA_LOSS;
    if (was_open && reduced) { p->reductions.push_back(Simulator::Now().GetSeconds()); }
}
void OnDrop(Ptr<const QueueDiscItem> item) {
    Ptr<const Ipv4QueueDiscItem> ip = DynamicCast<const Ipv4QueueDiscItem>(item);
    if (ip) { drops_by_src[ip->GetHeader().GetSource().Get()] += 1; }
}
void Watch(Ptr<Socket> s, int i, uint32_t initial_cwnd) {
    probes[i].cwnd = initial_cwnd;
    s->TraceConnectWithoutContext("CongestionWindow", MakeBoundCallback(&OnCwnd, &probes[i]));
    s->TraceConnectWithoutContext("CongState", MakeBoundCallback(&OnState, &probes[i]));
}
void WatchDrops(Ptr<QueueDisc> q) { q->TraceConnectWithoutContext("Drop", MakeCallback(&OnDrop)); }
uint64_t Drops(uint32_t addr) { return drops_by_src.count(addr) ? drops_by_src[addr] : 0; }
void Reset(double from, double to) { probes.assign(8, Probe()); drops_by_src.clear(); log_from = from; log_to = to; }
}
"""

MSS_BYTES = 1448
PKT_BYTES = 1500


def run(sc: dict, ns, cppyy) -> dict:
    """One scenario: ``{"flows": [{"cc", "rtt_s"}], "rate_bps", "limit_pkts", "queue": "droptail" | "step",
    "step_pkts", "pacing", "duration_s", "warmup_s", "seed"}``."""
    em = cppyy.gbl.emuval
    log_s = sc.get("cwnd_log_s") or (0.0, -1.0)
    em.Reset(float(log_s[0]), float(log_s[1]))
    ns.Ipv4AddressGenerator.Reset()
    ns.RngSeedManager.SetSeed(1)
    ns.RngSeedManager.SetRun(int(sc.get("seed", 1)))
    cc = {f["cc"] for f in sc["flows"]}
    if len(cc) != 1:
        raise ValueError("one congestion control per run (ns-3 sets it per node type)")
    tcp_type = {"reno": "ns3::TcpLinuxReno", "cubic": "ns3::TcpCubic", "dctcp": "ns3::TcpDctcp"}[cc.pop()]
    sd = ns.Config.SetDefault
    sd("ns3::TcpL4Protocol::SocketType", ns.StringValue(tcp_type))
    sd("ns3::TcpL4Protocol::RecoveryType", ns.StringValue("ns3::TcpClassicRecovery"))
    sd("ns3::TcpSocket::SegmentSize", ns.UintegerValue(MSS_BYTES))
    sd("ns3::TcpSocket::InitialCwnd", ns.UintegerValue(10))
    sd("ns3::TcpSocket::DelAckCount", ns.UintegerValue(1))
    sd("ns3::TcpSocket::SndBufSize", ns.UintegerValue(1 << 26))
    sd("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(1 << 26))
    sd("ns3::TcpSocketBase::Sack", ns.BooleanValue(True))
    sd("ns3::TcpSocketBase::Timestamp", ns.BooleanValue(True))
    sd("ns3::TcpSocketBase::WindowScaling", ns.BooleanValue(True))
    sd("ns3::TcpSocketBase::MinRto", ns.TimeValue(ns.MilliSeconds(200)))
    sd("ns3::TcpSocketState::EnablePacing", ns.BooleanValue(bool(sc["pacing"])))
    sd("ns3::TcpCubic::HyStart", ns.BooleanValue(False))
    sd("ns3::TcpSocketBase::UseEcn", ns.StringValue("On" if tcp_type == "ns3::TcpDctcp" else "Off"))

    rate_bps = float(sc["rate_bps"])
    flows = sc["flows"]
    n = len(flows)
    senders = ns.NodeContainer()
    senders.Create(n)
    mid = ns.NodeContainer()
    mid.Create(2)                   # router, receiver
    stack = ns.InternetStackHelper()
    stack.Install(senders)
    stack.Install(mid)

    bott = ns.PointToPointHelper()
    bott.SetDeviceAttribute("DataRate", ns.DataRateValue(ns.DataRate(int(rate_bps))))
    bott.SetChannelAttribute("Delay", ns.TimeValue(ns.Seconds(0.0)))
    bott.SetQueue("ns3::DropTailQueue", "MaxSize", ns.QueueSizeValue(ns.QueueSize("1p")))
    bdev = bott.Install(mid.Get(0), mid.Get(1))
    tch = ns.TrafficControlHelper()
    limit = int(sc["limit_pkts"])
    if sc["queue"] == "droptail":
        tch.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", ns.QueueSizeValue(ns.QueueSize(f"{max(1, limit - 1)}p")))
    else:
        step = float(sc["step_pkts"])
        tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", ns.QueueSizeValue(ns.QueueSize(f"{limit}p")),
                             "MinTh", ns.DoubleValue(step), "MaxTh", ns.DoubleValue(step),
                             "QW", ns.DoubleValue(1.0), "Gentle", ns.BooleanValue(False),
                             "UseEcn", ns.BooleanValue(True), "UseHardDrop", ns.BooleanValue(False),
                             "MeanPktSize", ns.UintegerValue(PKT_BYTES),
                             "LinkBandwidth", ns.DataRateValue(ns.DataRate(int(rate_bps))),
                             "LinkDelay", ns.TimeValue(ns.Seconds(0.0)))
    qdiscs = tch.Install(bdev.Get(0))
    rev = ns.TrafficControlHelper()
    rev.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", ns.QueueSizeValue(ns.QueueSize("100000p")))
    rev.Install(bdev.Get(1))
    addr = ns.Ipv4AddressHelper()
    addr.SetBase(ns.Ipv4Address("10.0.0.0"), ns.Ipv4Mask("255.255.255.0"))
    bif = addr.Assign(bdev)
    dst_addr = bif.GetAddress(1)
    src_addrs = []
    for i, f in enumerate(flows):
        acc = ns.PointToPointHelper()
        acc.SetDeviceAttribute("DataRate", ns.DataRateValue(ns.DataRate(int(100 * rate_bps))))
        acc.SetChannelAttribute("Delay", ns.TimeValue(ns.Seconds(float(f["rtt_s"]) / 2.0)))
        adev = acc.Install(senders.Get(i), mid.Get(0))
        big = ns.TrafficControlHelper()
        big.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", ns.QueueSizeValue(ns.QueueSize("100000p")))
        big.Install(adev)
        addr.SetBase(ns.Ipv4Address(f"10.1.{i}.0"), ns.Ipv4Mask("255.255.255.0"))
        aif = addr.Assign(adev)
        src_addrs.append(aif.GetAddress(0))
    ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()

    sinks, apps = [], []
    for i in range(n):
        port = 5000 + i
        anywhere = ns.InetSocketAddress(ns.Ipv4Address.GetAny(), port).ConvertTo()
        sh = ns.PacketSinkHelper("ns3::TcpSocketFactory", anywhere)
        sapp = sh.Install(mid.Get(1))
        sapp.Start(ns.Seconds(0.0))
        sinks.append(sapp.Get(0).GetObject[ns.PacketSink]())
        bh = ns.BulkSendHelper("ns3::TcpSocketFactory", ns.InetSocketAddress(dst_addr, port).ConvertTo())
        bh.SetAttribute("MaxBytes", ns.UintegerValue(0))
        bh.SetAttribute("SendSize", ns.UintegerValue(MSS_BYTES * 10))
        app = bh.Install(senders.Get(i))
        app.Start(ns.Seconds(0.0))
        apps.append(app.Get(0).GetObject[ns.BulkSendApplication]())
    qdisc = qdiscs.Get(0)
    em.WatchDrops(qdisc)
    dev_queue = bdev.Get(0).GetObject[ns.PointToPointNetDevice]().GetQueue()

    duration_s, warmup_s = float(sc["duration_s"]), float(sc["warmup_s"])
    ns.Simulator.Stop(ns.Seconds(0.001))
    ns.Simulator.Run()
    for i, app in enumerate(apps):
        em.Watch(app.GetSocket(), i, 10 * MSS_BYTES)
    ns.Simulator.Stop(ns.Seconds(warmup_s - 0.001))
    ns.Simulator.Run()
    rx0 = [s.GetTotalRx() for s in sinks]
    drops0 = [em.Drops(a.Get()) for a in src_addrs]
    cwnd_sum = [0.0] * n
    q_sum = 0.0
    samples = 0
    t = warmup_s
    wall = time.perf_counter()
    while t < duration_s - 1e-9:
        for i in range(n):
            cwnd_sum[i] += em.probes[i].cwnd / MSS_BYTES
        q_sum += qdisc.GetNPackets() + dev_queue.GetNPackets()
        samples += 1
        step_s = min(SAMPLE_S, duration_s - t)
        ns.Simulator.Stop(ns.Seconds(step_s))
        ns.Simulator.Run()
        t += step_s
    wall = time.perf_counter() - wall
    span = duration_s - warmup_s
    out_flows = []
    for i in range(n):
        red = [x for x in em.probes[i].reductions if x >= warmup_s]
        out_flows.append({
            "cc": flows[i]["cc"], "rtt_s": flows[i]["rtt_s"],
            "goodput_bps": (sinks[i].GetTotalRx() - rx0[i]) * 8.0 / span,
            "reductions": len(red), "reduction_times_s": red,
            "drops": int(em.Drops(src_addrs[i].Get()) - drops0[i]),
            "mean_cwnd_pkts": cwnd_sum[i] / max(1, samples),
        })
        if sc.get("cwnd_log_s"):
            out_flows[-1]["cwnd_log"] = [(p.first, p.second / MSS_BYTES) for p in em.probes[i].cwnd_log]
    total = sum(f["goodput_bps"] for f in out_flows)
    ns.Simulator.Destroy()
    return {"name": sc["name"], "flows": out_flows, "utilisation": total * PKT_BYTES / MSS_BYTES / rate_bps,
            "mean_queue_pkts": q_sum / max(1, samples), "wall_s": wall}


def main() -> None:
    scenarios = json.loads(sys.stdin.read())
    from ns import ns  # noqa: E402  (slow: loads the ns-3 libraries)
    import cppyy
    cppyy.cppdef(_CPP)
    for sc in scenarios:
        print(json.dumps(run(sc, ns, cppyy)), flush=True)


if __name__ == "__main__":
    main()
