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


def test_a_fresh_connection_hedges_then_starts_on_what_it_measured():
    """The first request on a connection (nothing measured) sends every chunk's text and the smallest level's KV
    of chunks 1-3; the receiver recomputes a chunk unless its KV is already there. The next request starts on
    the measured rate: text only on the slow link (8 kB sent), the best level first on the fast one."""
    m = menu()
    for rate, second in ((2e6, ["text"] * N), (200e6, None)):
        config = KVFetchEvalConfig(rate_bps=rate, prior_bps=20e6, slo_s=1.0)
        memory = config.endpoint_config().new_memory()
        first = eval_fetch(config, "cachegen", m, trace_offset_s=0.0, seed=0, memory=memory)
        assert first.hedged and first.sent == ["text"] + ["text+level1"] * 3
        assert first.sent_bytes == 4 * 2_000 + 3 * 300_000
        assert memory.samples == 1 and memory.estimate_bps == first.measured_bps
        # the path's rate on the slow link; on the fast one 0.9 MB is over within slow start (~5 RTTs)
        assert first.measured_bps == pytest.approx(rate, rel=0.15) if rate < 10e6 else first.measured_bps > 10e6
        again = eval_fetch(config, "cachegen", m, trace_offset_s=10.0, seed=0, memory=memory)
        text = eval_fetch(config, "text", m, trace_offset_s=0.0, seed=0)
        assert not again.hedged
        if second is not None:      # slow: every KV arrives after its text was recomputed
            assert first.choices == ["text"] * N and first.ttft_s == pytest.approx(text.ttft_s, rel=0.01)
            assert again.choices == second and again.sent_bytes == 4 * 2_000
        else:                       # fast: chunks 1-3 arrive while chunk 0 is recomputed
            assert first.choices == ["text"] + ["level1"] * 3 and first.ttft_s < 0.6 * text.ttft_s
            assert again.choices[0] == "level3"


def test_a_late_hedged_kv_is_recomputed_and_an_early_one_decoded():
    """A chunk sent as text and KV (``text+level1``): decoded when its KV is there when the receiver gets to it,
    else recomputed from its text without waiting."""
    from emu.apps.kvfetch.controller import FixedController

    m = menu()
    config = KVFetchEvalConfig(rate_bps=20e6, slo_s=1.0)
    fetch = eval_fetch(config, "text", m, trace_offset_s=0.0, seed=0)   # text: 4 x 0.2 s of recompute
    assert fetch.choices == ["text"] * N
    # The same receiver rule, driven by hand: chunk 1's KV arrives at 0.05 s, chunk 2's at 0.5 s; the receiver
    # is free for chunk 1 at 0.2 s (decode) and for chunk 2 at 0.25 s (recompute).
    fetch._plan = [(True, None), (True, "level1"), (True, "level1"), (True, None)]
    fetch._text_at = {i: 0.0 for i in range(N)}
    fetch._kv_at = {1: 0.05}
    fetch.choices, fetch.arrived_s, fetch.processed_s, fetch._arrived, fetch._gpu_free_s = [], [], [], 0, 0.0
    fetch.start_s = 0.0
    fetch._process(0.1)
    assert fetch.choices == ["text", "level1"]          # chunk 2 may still get its KV before 0.25 s
    fetch._kv_at[2] = 0.5
    fetch._process(0.5)
    assert fetch.choices == ["text", "level1", "text", "text"]
    assert fetch.processed_s == pytest.approx([0.2, 0.25, 0.45, 0.65])
    assert isinstance(FixedController("text").hedge, bool)


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
