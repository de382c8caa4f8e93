"""Validation scenarios for the reliable stream and the closed forms they are checked against.

Each scenario is one or two bulk flows through one bottleneck (constant rate, 1500-B packets, ACK per segment,
SACK, RTO min 200 ms, IW 10), the set-up of the usual ns-3 / Linux comparisons:

- ``single_flow("reno" | "cubic", buffer_bdp=1.0 | 0.25, pacing=...)``: one flow, DropTail of ``buffer_bdp``
  times the bandwidth-delay product;
- ``two_flows_rtt(...)``: two Cubic flows with different base RTTs sharing a DropTail bottleneck;
- ``prague_step(...)``: one Prague flow through a queue that CE-marks every packet above a step threshold
  (DualPI2 with the Linux step, the DCTCP set-up of RFC 8257 §3.1).

Closed forms:

- ``reno_sawtooth_period_s``: AIMD grows the window one segment per round trip from ``W_max / 2`` to the
  window that overflows the queue, ``W_max = BDP + B + 1`` (RFC 5681 §3.1, halving at each loss). A round lasts
  ``max(RTT0, W / C)`` (the queue holds ``W - BDP`` packets once ``W > BDP``). Two more rounds without growth
  complete the cycle: the one in which the loss is detected (the hole reaches the sender) and the recovery
  round (no growth until the cumulative ACK reaches the recovery point, RFC 6675 §5).
- ``cubic_period_s``: without fast convergence firing, each epoch climbs back to the same ``W_max = BDP + B + 1``
  after ``K = cbrt(W_max (1 - beta) / C)`` seconds (RFC 9438 eq. 2), or sooner along the Reno-friendly line
  (§4.3) when that is faster (small windows), plus the same detection and recovery rounds.
- drops per window reduction: with one ACK-clocked flow and a full DropTail queue, the window step of one
  segment overflows the queue by one packet, so one drop per reduction (pacing off). The fast retransmit leaves
  on the ACK that reveals the loss (RACK with the DupThresh rule, RFC 8985 §6.2), in the slot that ACK frees.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

MSS_BYTES = 1448
PKT_BYTES = 1500


def bdp_pkts(rate_bps: float, rtt_s: float, pkt_bytes: int = PKT_BYTES) -> float:
    """Bandwidth-delay product in packets."""
    return rate_bps * rtt_s / 8.0 / pkt_bytes


def _rtt_at(w_pkts: float, rtt_s: float, pkts_per_s: float) -> float:
    return max(rtt_s, w_pkts / pkts_per_s)


def reno_sawtooth_period_s(rate_bps: float, rtt_s: float, buffer_pkts: float, pkt_bytes: int = PKT_BYTES) -> float:
    """Time between two halvings of a lone Reno flow (see the module docstring)."""
    pkts_per_s = rate_bps / 8.0 / pkt_bytes
    w_max = bdp_pkts(rate_bps, rtt_s, pkt_bytes) + buffer_pkts + 1.0
    w = w_max / 2.0
    period = 0.0
    while w < w_max:
        period += _rtt_at(w, rtt_s, pkts_per_s)
        w += 1.0
    return period + 2.0 * _rtt_at(w_max, rtt_s, pkts_per_s)


def cubic_period_s(rate_bps: float, rtt_s: float, buffer_pkts: float, c: float = 0.4, beta: float = 0.7,
                   pkt_bytes: int = PKT_BYTES, arithmetic: str = "rfc9438") -> float:
    """Time between two reductions of a lone CUBIC flow whose peak stays at ``W_max = BDP + B + 1``: the window
    climbs back from ``beta * W_max`` along the cubic curve in ``K`` seconds (RFC 9438 eq. 2) or, if sooner,
    along the Reno-friendly line (``alpha_cubic = 3 (1 - beta) / (1 + beta)`` segments per round, §4.3, a round
    lasting ``max(RTT0, W / C)``); plus the detection and recovery rounds.

    ``arithmetic="linux"`` (``CubicConfig.target_arithmetic``): the target, truncated to whole segments and taken
    one RTT ahead, is ``W_max`` once the curve is within one segment of it, ``cbrt(1 / C)`` seconds before ``K``;
    one more round climbs the last segment."""
    pkts_per_s = rate_bps / 8.0 / pkt_bytes
    w_max = bdp_pkts(rate_bps, rtt_s, pkt_bytes) + buffer_pkts + 1.0
    k_s = (w_max * (1.0 - beta) / c) ** (1.0 / 3.0)
    if arithmetic == "linux":
        k_s = max(0.0, k_s - (1.0 / c) ** (1.0 / 3.0) - rtt_s) + _rtt_at(w_max, rtt_s, pkts_per_s)
    alpha = 3.0 * (1.0 - beta) / (1.0 + beta)
    w, reno_s = beta * w_max, 0.0
    while w < w_max and reno_s < k_s:
        reno_s += _rtt_at(w, rtt_s, pkts_per_s)
        w += alpha
    return min(k_s, reno_s) + 2.0 * _rtt_at(w_max, rtt_s, pkts_per_s)


@dataclass
class FlowResult:
    """What one flow of a validation run did, over the measurement window."""

    name: str
    cc: str
    goodput_bps: float
    reductions: int                 # window reductions in the window (loss or CE)
    reduction_times_s: list = field(default_factory=list)
    drops: int = 0                  # packets of this flow dropped at the bottleneck in the window
    mean_cwnd_pkts: float = 0.0
    retransmitted_pkts: int = 0
    rto_count: int = 0

    @property
    def drops_per_reduction(self) -> float:
        return self.drops / self.reductions if self.reductions else math.nan

    @property
    def mean_period_s(self) -> float:
        t = self.reduction_times_s
        return (t[-1] - t[0]) / (len(t) - 1) if len(t) >= 2 else math.nan


@dataclass
class RunResult:
    flows: list
    utilisation: float
    mean_queue_pkts: float
    sim: Any = None


def _run(flows: list[tuple[str, str, float, dict]], *, rate_bps: float, queue: str, queue_params: dict,
         duration_s: float, warmup_s: float, pacing: bool, seed: int, record: str = "full") -> RunResult:
    """Flows ``(name, cc, base_rtt_s, cc_params)`` from one router through one bottleneck to one receiver host.

    Each sender sits on its own access link whose delay makes its base RTT (the bottleneck adds none), so
    flows with different RTTs share the queue.
    """
    from emu import Network, Sim
    from emu.transport import open_stream

    sim = Sim(seed=seed, record=record)
    net = Network(sim)
    left, dst = net.router("left"), net.host("dst")
    net.link(left, dst, rate=rate_bps, delay=0.0, queue=queue, queue_params=queue_params,
             reverse_queue_params={"limit_pkts": 100_000})
    senders = []
    for name, cc, rtt_s, params in flows:
        h = net.host(f"src_{name}")
        net.link(h, left, rate=100 * rate_bps, delay=rtt_s / 2.0, queue_params={"limit_pkts": 100_000})
        senders.append(h)
    net.build_routes()
    out = []
    for (name, cc, rtt_s, params), h in zip(flows, senders):
        times: list[float] = []
        s, r = open_stream(sim, h, dst, cc=cc, cc_params=params, bulk=True, flow=name, pacing=pacing)
        out.append((name, cc, s, r, times))

        def watch(sample, s=s, times=times, seen=[0]):
            n = s.cc.congestion_events
            if n != seen[0]:
                seen[0] = n
                times.append(sample.now_s)
        s.on_ack_sample = watch
    bottleneck = net.links[("left", "dst")]
    cwnd_sum = {name: 0.0 for name, *_ in flows}
    q_sum = [0.0]
    n_samples = [0]

    def sample_state(_=None):
        for name, _cc, s, _r, _t in out:
            cwnd_sum[name] += s.cc.cwnd_bytes / s.config.mss_bytes
        q_sum[0] += bottleneck.queue.len_pkts
        n_samples[0] += 1
        if sim.now_s + 0.01 < duration_s:
            sim.call_at(sim.now_s + 0.01, sample_state)
    sim.call_at(warmup_s, sample_state)
    sim.run(until_s=warmup_s)
    start = {name: (r.bytes_in_order, s.cc.congestion_events, s.retransmitted_pkts, s.rto_count)
             for name, _cc, s, r, _t in out}
    sim.run(until_s=duration_s)
    span = duration_s - warmup_s
    x = sim.records.dropped_arrays()
    results = []
    total_bps = 0.0
    for name, cc, s, r, times in out:
        b0, e0, rt0, rto0 = start[name]
        fid = sim.flow(name)
        drops = int(((x["flow_id"] == fid) & (x["t_s"] >= warmup_s)).sum())
        gp = (r.bytes_in_order - b0) * 8.0 / span
        total_bps += gp
        results.append(FlowResult(
            name=name, cc=cc, goodput_bps=gp, reductions=s.cc.congestion_events - e0,
            reduction_times_s=[t for t in times if t >= warmup_s], drops=drops,
            mean_cwnd_pkts=cwnd_sum[name] / max(1, n_samples[0]),
            retransmitted_pkts=s.retransmitted_pkts - rt0, rto_count=s.rto_count - rto0))
    # Goodput counts payload only; utilisation counts whole packets on the wire.
    util = total_bps * PKT_BYTES / MSS_BYTES / rate_bps
    return RunResult(results, util, q_sum[0] / max(1, n_samples[0]), sim)


def single_flow(cc: str = "reno", *, rate_bps: float = 10e6, rtt_s: float = 0.040, buffer_bdp: float = 1.0,
                pacing: bool = False, duration_s: float = 30.0, warmup_s: float = 5.0, seed: int = 1,
                cc_params: Optional[dict] = None, record: str = "full") -> RunResult:
    """One bulk flow through a DropTail bottleneck holding ``buffer_bdp`` BDPs (at least 2 packets)."""
    params = {"hystart": False} if cc in ("cubic", "reno") else {}
    params.update(cc_params or {})
    limit = max(2, int(round(buffer_bdp * bdp_pkts(rate_bps, rtt_s))))
    return _run([(cc, cc, rtt_s, params)], rate_bps=rate_bps, queue="droptail", queue_params={"limit_pkts": limit},
                duration_s=duration_s, warmup_s=warmup_s, pacing=pacing, seed=seed, record=record)


def two_flows_rtt(*, rate_bps: float = 20e6, rtt_a_s: float = 0.020, rtt_b_s: float = 0.080,
                  buffer_bdp: float = 1.0, pacing: bool = True, duration_s: float = 30.0, warmup_s: float = 5.0,
                  seed: int = 1, record: str = "full", cubic_params: Optional[dict] = None) -> RunResult:
    """Two Cubic flows with different base RTTs; the buffer is ``buffer_bdp`` BDPs of the longer RTT.
    ``cubic_params``: more config for both controllers (``{"target_arithmetic": "linux"}``)."""
    limit = max(2, int(round(buffer_bdp * bdp_pkts(rate_bps, max(rtt_a_s, rtt_b_s)))))
    params = {"hystart": False, **(cubic_params or {})}
    return _run([("cubic_a", "cubic", rtt_a_s, dict(params)), ("cubic_b", "cubic", rtt_b_s, dict(params))],
                rate_bps=rate_bps, queue="droptail", queue_params={"limit_pkts": limit}, duration_s=duration_s,
                warmup_s=warmup_s, pacing=pacing, seed=seed, record=record)


def prague_step(*, rate_bps: float = 50e6, rtt_s: float = 0.020, step_thresh_s: float = 0.001,
                step_thresh_pkts: Optional[int] = None, pacing: bool = True, duration_s: float = 20.0,
                warmup_s: float = 5.0, seed: int = 1, record: str = "full") -> RunResult:
    """One Prague flow through DualPI2 (Linux preset) whose L queue marks every packet above a step threshold:
    ``step_thresh_s`` of sojourn, or, if ``step_thresh_pkts`` is set, that many packets left in the L queue
    (Linux ``step_thresh`` in packets)."""
    params: dict = {"preset": "linux", "l_step_thresh_s": step_thresh_s}
    if step_thresh_pkts is not None:
        params["l_step_thresh_pkts"] = step_thresh_pkts
    return _run([("prague", "prague", rtt_s, {})], rate_bps=rate_bps, queue="dualpi2",
                queue_params=params, duration_s=duration_s,
                warmup_s=warmup_s, pacing=pacing, seed=seed, record=record)


def trace_run(trace_path: str, queue: str, queue_params, flows: tuple, *, duration_s: float, warmup_s: float,
            rtt_s: float = 0.040, seed: int = 1) -> dict:
    """Bulk flows ``flows`` (controller names) over one trace-driven hop (``rtt_s / 2`` each way, ACKs on a
    1 Gbit/s return link) through ``queue`` (``queue_params=None``: DropTail holding 100 ms at the trace's mean
    rate, at least 32 packets). Returns the trace's capacity in [warmup_s, duration_s), the utilisation of it
    (whole packets) and, per flow, ``<name>_bps``, ``<name>_qdelay_p99_s`` and ``<name>_qdelay_mean_s``."""
    import numpy as np

    from emu import Network, Sim
    from emu.links.tracefile import load_trace
    from emu.transport import open_stream

    schedule = load_trace(trace_path)
    if queue_params is None:      # DropTail: 100 ms at the mean rate, at least 32 packets
        queue_params = {"limit_pkts": max(32, math.ceil(schedule.mean_rate_bps * 0.100 / 8 / 1500))}
    sim = Sim(seed=seed)
    net = Network(sim)
    server, client = net.host("server"), net.host("client")
    net.link(server, client, trace=trace_path, reverse_rate="1Gbps", delay=rtt_s / 2, queue=queue,
             queue_params=dict(queue_params), reverse_queue_params={"limit_pkts": 100_000})
    net.build_routes()
    for name in flows:
        open_stream(sim, server, client, cc=name, bulk=True, flow=name)
    sim.run(until_s=duration_s)
    d = sim.records.delivered_arrays()
    window = (d["delivered_s"] >= warmup_s) & (d["delivered_s"] < duration_s)
    capacity = schedule.bytes_between(warmup_s, duration_s)
    out = {"capacity_bps": capacity * 8 / (duration_s - warmup_s), "delivered_bytes": 0.0}
    for name in flows:
        m = window & (d["flow_id"] == sim.flow(name))
        q = d["qdelay_s"][m]
        out[f"{name}_bps"] = float(d["size_bytes"][m].sum()) * 8 / (duration_s - warmup_s)
        out[f"{name}_qdelay_p99_s"] = float(np.percentile(q, 99)) if len(q) else math.nan
        out[f"{name}_qdelay_mean_s"] = float(np.mean(q)) if len(q) else math.nan
        out["delivered_bytes"] += float(d["size_bytes"][m].sum())
    out["utilisation"] = out["delivered_bytes"] / capacity if capacity > 0 else math.nan
    return out
