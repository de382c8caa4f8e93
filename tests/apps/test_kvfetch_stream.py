"""kvfetch controllers (pure, literal observations) and the KV server/client endpoint over the emulator."""
from __future__ import annotations

import pytest

from emu.apps.kvfetch.app import REQUEST_BYTES
from emu.apps.kvfetch.controller import BudgetController, ChunkMenu, Observation, SloSplitController
from emu.apps.kvfetch.eval import KVFetchEvalConfig, run_fetch as eval_fetch

N = 4
MB = 1_000_000


def menu(query_prefill_s=0.01) -> ChunkMenu:
    return ChunkMenu(
        nbytes={"level3": [500_000] * N, "level2": [400_000] * N, "level1": [300_000] * N, "text": [2_000] * N,
                "quant8": [1_000_000] * N},
        gpu_s={"level3": [0.05] * N, "level2": [0.05] * N, "level1": [0.05] * N, "text": [0.2] * N,
               "quant8": [0.0] * N},
        levels=("level3", "level2", "level1"), query_prefill_s=query_prefill_s)


def test_budget_controller_picks_by_throughput_and_budget():
    m = menu()
    c = BudgetController(slo_s=1.0, prior_bps=20e6)
    # 1 s over 4 chunks, ~0.24 s each: 500 kB needs >= 17 Mbit/s, 300 kB >= 10 Mbit/s
    assert c.choose(0, Observation(0.0, 100e6, 0, 0.0), m) == "level3"
    assert c.choose(0, Observation(0.0, 14e6, 0, 0.0), m) == "level2"
    assert c.choose(0, Observation(0.0, 11e6, 0, 0.0), m) == "level1"
    assert c.choose(0, Observation(0.0, 2e6, 0, 0.0), m) == "text"          # receiver idle: recompute fits
    assert c.choose(0, Observation(0.0, None, 0, 0.0), m) == "level3"       # prior 20 Mbit/s
    # queued bytes eat the budget: 1 MB still queued at 20 Mbit/s is 0.4 s
    assert c.choose(1, Observation(0.1, 20e6, 1 * MB, 0.0), m) == "level1"
    # a busy receiver makes text pointless; the smallest level is the fallback
    assert c.choose(3, Observation(0.9, 2e6, 0, 2.0), m) == "level1"


def test_code_rule_splits_the_slo_evenly():
    m = menu()
    c = SloSplitController(slo_s=1.0, prior_bps=20e6)
    assert c.choose(0, Observation(0.0, 17e6, 0, 0.0), m) == "level3"       # 500 kB in 0.235 s < 0.25 s
    assert c.choose(0, Observation(0.0, 13e6, 0, 0.0), m) == "level2"
    assert c.choose(0, Observation(0.0, 5e6, 0, 0.0), m) == "text"


def test_menu_validation():
    with pytest.raises(ValueError, match="one entry per chunk"):
        ChunkMenu(nbytes={"a": [1, 2]}, gpu_s={"a": [0.1]}, levels=("a",), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="level"):
        ChunkMenu(nbytes={"a": [1]}, gpu_s={"a": [0.1]}, levels=("b",), query_prefill_s=0.0)
    with pytest.raises(ValueError, match="slo_s"):
        BudgetController(slo_s=0.0, prior_bps=1e6)


def run_fetch(menu_, scheme, *, rate_bps, rtt_s=0.04, seed=0, prior_bps=20e6, slo_s=1.0):
    """One fetch through the evaluation's path: access-bottleneck network, ``emu.apps.install``, run until done."""
    config = KVFetchEvalConfig(rate_bps=rate_bps, rtt_s=rtt_s, prior_bps=prior_bps, slo_s=slo_s)
    return eval_fetch(config, scheme, menu_, trace_offset_s=0.0, seed=seed)


def test_fixed_fetch_on_constant_link_matches_hand_computation():
    m = menu()
    rate, rtt = 20e6, 0.04
    res = run_fetch(m, "level1", rate_bps=rate, rtt_s=rtt)
    assert res.choices == ["level1"] * N and res.sent_bytes == 4 * 300_000
    # request (~1/2 RTT) + 1.2 MB at 20 Mbit/s (with 1500/1448 header overhead) + slow-start ramp
    wire_s = 1.2 * MB * 8 / rate * 1500 / 1448
    assert wire_s + rtt / 2 < res.fetch_s < wire_s + rtt / 2 + 8 * rtt
    # the receiver decodes chunk by chunk while later chunks arrive: TTFT = last arrival + last decode + query
    assert res.ttft_s == pytest.approx(max(res.fetch_s, res.processed_s[-2]) + 0.05 + 0.01)
    assert res.arrived_s == sorted(res.arrived_s)


def test_text_fetch_is_recompute_bound():
    res = run_fetch(menu(), "text", rate_bps=20e6, rtt_s=0.04)
    assert res.ttft_s == pytest.approx(res.arrived_s[0] + 4 * 0.2 + 0.01, abs=0.01)
    assert res.sent_bytes == 4 * 2000


def test_adaptive_fetch_uses_text_on_a_slow_link_and_kv_on_a_fast_one():
    m = menu()
    slow = run_fetch(m, "cachegen", prior_bps=2e6, rate_bps=2e6)
    fast = run_fetch(m, "cachegen", prior_bps=2e6, rate_bps=200e6)
    # the prior says text; chunk 1 probes the path with the smallest level, then the measurement decides
    assert slow.choices[:2] == ["text", "level1"] and slow.choices[2:] == ["text", "text"]
    assert fast.choices[:2] == ["text", "level1"] and fast.choices[3] == "level3"
    assert fast.ttft_s < 0.6 < slow.ttft_s


def test_fetch_is_deterministic():
    a = run_fetch(menu(), "cachegen", rate_bps=30e6, seed=3)
    b = run_fetch(menu(), "cachegen", rate_bps=30e6, seed=3)
    assert (a.choices, a.arrived_s, a.ttft_s) == (b.choices, b.arrived_s, b.ttft_s)
    assert REQUEST_BYTES > 0


def test_two_fetches_coexist_with_a_bulk_flow_on_one_bottleneck():
    """Two kvfetch instances and a Cubic bulk transfer share one access bottleneck: distinct flow names, one
    row each in ``RunResult.apps()``, and the shared link slows the fetches down against a fetch alone."""
    from emu import Sim
    from emu.apps import install
    from emu.results import RunResult
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=1)
    topo = access_bottleneck(sim, pairs=3, rate="20Mbps", rtt_s=0.04)
    s, d = topo.senders, topo.receivers
    a = install(topo.net, "kvfetch", src=s[0], dst=d[0], scheme="cachegen", menu=menu())
    b = install(topo.net, "kvfetch", src=s[1], dst=d[1], scheme="level1", menu=menu(), start_s=0.2)
    bulk = install(topo.net, "bulk", src=s[2], dst=d[2], scheme="cubic", stop_s=30.0)
    assert (a.name, b.name) == ("kvfetch", "kvfetch2")
    assert run_until_done(sim, [a, b, bulk], horizon_s=60.0)
    flows = set(RunResult(sim).flows()["flow"])
    assert {"kvfetch.data", "kvfetch.req", "kvfetch2.data", "kvfetch2.req", "bulk"} <= flows
    apps = RunResult(sim).apps().set_index("name")
    assert list(apps.index) == ["kvfetch", "kvfetch2", "bulk"]
    assert apps.loc["kvfetch2", "scheme"] == "level1" and apps.loc["kvfetch2", "choices"] == ",".join(["level1"] * N)
    assert apps.loc["kvfetch2", "sent_bytes"] == N * 300_000 and bool(apps.loc["kvfetch", "done"])
    alone = run_fetch(menu(), "level1", rate_bps=20e6)
    assert apps.loc["kvfetch2", "ttft_s"] > alone.ttft_s
    assert a.result()["ttft_s"] == a.ttft_s and a.result()["slo_met"] == float(a.ttft_s <= 1.0)


def test_install_rejects_bad_parameters_and_a_scheme_the_menu_lacks():
    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck

    topo = access_bottleneck(Sim(seed=0), rate="20Mbps")
    with pytest.raises(ValueError, match="slo_s"):
        install(topo.net, "kvfetch", src="s0", dst="d0", menu=menu(), slo_s=-1.0)
    with pytest.raises(ValueError, match="unknown scheme 'fast'"):
        install(topo.net, "kvfetch", src="s0", dst="d0", menu=menu(), scheme="fast")
    with pytest.raises(ValueError, match="level0"):
        install(topo.net, "kvfetch", src="s0", dst="d0", menu=menu(), scheme="level0")
