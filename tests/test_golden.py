"""Deterministic guards: the event budget per packet and a golden record hash that no hash seed can move."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from emu import CBRSource, PoissonSource, RunResult, Sim, Sink, chain, dumbbell

# sha256 of the packets table of golden_run(); changes only when the emulator's behaviour changes (then update it
# in the same commit and say why).
GOLDEN_SHA256 = "4d1d25f95bfe7504ec84f022cc24a3a9c418d7bf39ea6e38a7b79c2c0ded702c"


def golden_run() -> str:
    """Two Poisson sources at 1.1x a 20 Mbit/s CoDel bottleneck, 3 s, seed 11: sha256 of every packet's record."""
    sim = Sim(seed=11)
    net = dumbbell(sim, 2, bottleneck_rate="20Mbps", bottleneck_delay="10ms", queue="codel")
    for i in range(2):
        Sink(sim, net.nodes[f"d{i}"], port=5000)
        PoissonSource(sim, net.nodes[f"s{i}"], f"d{i}", flow=f"p{i}", rate_bps=11e6, dport=5000)
    sim.run(until_s=3.0)
    packets = RunResult(sim).packets()
    return hashlib.sha256(packets.to_csv(index=False).encode()).hexdigest()


def test_one_heap_event_per_uncongested_link_plus_one_per_emission():
    """A CBR flow at 40 % load over three uncongested links: each packet costs its emission plus one arrival per
    link (README "Performance"); a process or timeout per packet would double this."""
    sim = Sim(seed=7)
    net = chain(sim, 2, rate="100Mbps", delay="5ms")
    Sink(sim, net.nodes["dst"], port=5000)
    CBRSource(sim, net.nodes["src"], "dst", flow="cbr", rate_bps=40e6, size_bytes=1500, dport=5000)
    sim.run(until_s=2.0)
    events = sim.events_scheduled()
    flow = RunResult(sim).flows().iloc[0]
    per_packet = 1 + 3  # emission + one arrival event per link
    assert per_packet * flow["delivered_pkts"] <= events <= per_packet * flow["sent_pkts"] + 5


def test_golden_hash_is_stable_across_hash_seeds():
    here = golden_run()
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_golden; " \
           "print(test_golden.golden_run())"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                           cwd=Path(__file__).resolve().parents[1])
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == here
    assert here == GOLDEN_SHA256
