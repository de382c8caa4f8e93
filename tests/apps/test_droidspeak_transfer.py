"""DroidSpeak's per-layer transfer and endpoint without any model: literal plans on constant and synthetic-trace
links (fast, no torch)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from emu.apps.droidspeak.transfer import PlanItem, TransferPlan, recompute_seconds, simulate_receiver
from emu.apps.kvfetch.menu import ComputeModel


def _plan(scheme="droidspeak", entry_gpu_s=0.5, layer_bytes=200_000, layers=5, query_s=0.03):
    items = (PlanItem("E2", 100_000, entry_gpu_s),) + tuple(PlanItem(f"L{i}", layer_bytes, 0.01)
                                                             for i in range(layers))
    return TransferPlan(scheme, items, query_s, full_prefill_gpu_s=3.0)


def test_receiver_pipelines_recompute_with_transfer():
    plan = _plan()
    arrivals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7]
    ttft, done = simulate_receiver(plan, arrivals)
    # The recompute (0.5 s) starts when the E-cache lands (0.1) and overlaps the layers' transfer; the layers'
    # decodes queue behind it: 0.6, 0.61, ... then the last one at max(0.7, 0.64) + 0.01.
    assert done[0] == pytest.approx(0.6)
    assert done[-1] == pytest.approx(0.71)
    assert ttft == pytest.approx(0.74)
    serial = arrivals[-1] + plan.gpu_s + plan.query_prefill_s
    assert ttft < serial


def test_recompute_seconds_is_a_share_of_prefill():
    compute = ComputeModel(prefill_tok_s=1000.0)
    assert recompute_seconds(6, 6, 2000, compute) == pytest.approx(2.0)
    assert recompute_seconds(1, 6, 2000, compute) == pytest.approx(2.0 / 6)


def test_plan_validation():
    with pytest.raises(ValueError, match="no items"):
        TransferPlan("droidspeak", (), 0.0, 1.0)
    with pytest.raises(ValueError, match="nbytes and gpu_s"):
        PlanItem("L0", -1, 0.0)
    with pytest.raises(ValueError, match="arrivals"):
        simulate_receiver(_plan(), [0.1])


def _run(plan, scheme, **topo_kw):
    from emu.apps import install
    from emu.sim import Sim
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=3)
    topo = access_bottleneck(sim, rtt_s=0.04, **topo_kw)
    ep = install(topo.net, "droidspeak", src=topo.senders[0], dst=topo.receivers[0], scheme=scheme, plan=plan)
    assert run_until_done(sim, [ep], horizon_s=60.0)
    return ep


def test_endpoint_on_a_constant_link():
    plan = _plan()
    ep = _run(plan, "droidspeak", rate="20Mbps")
    r = ep.result()
    assert ep.done and r["sent_bytes"] == plan.total_bytes == 1_100_000
    serialisation_s = plan.total_bytes * 8 / 20e6
    assert r["fetch_s"] > serialisation_s            # the last byte cannot arrive faster than the link
    assert r["ttft_s"] >= r["fetch_s"] + plan.query_prefill_s
    assert r["prefill_speedup"] == pytest.approx(3.03 / (plan.gpu_s + 0.03))
    # the same bytes with no receiver work: TTFT is transfer + query only
    idle = TransferPlan("droidspeak", tuple(PlanItem(i.label, i.nbytes, 0.0) for i in plan.items), 0.03, 3.0)
    assert _run(idle, "droidspeak", rate="20Mbps").ttft_s < r["ttft_s"]


def test_endpoint_on_a_synthetic_trace(tmp_path):
    # Mahimahi: one 1500-byte opportunity per line; 4 per ms for 2 s then 1 per ms (48 then 12 Mbit/s)
    lines = [str(ms) for ms in range(2000) for _ in range(4)] + [str(ms) for ms in range(2000, 4000)]
    trace = tmp_path / "synthetic.down"
    trace.write_text("\n".join(lines) + "\n")
    small = _run(_plan(layer_bytes=50_000), "droidspeak", trace=str(trace))
    big = _run(_plan(layer_bytes=1_000_000), "droidspeak", trace=str(trace))
    assert small.done and big.done
    assert big.ttft_s > small.ttft_s
    assert math.isfinite(big.fetch_s) and big.fetch_s > 5_100_000 * 8 / 48e6


def test_plan_scheme_must_match():
    with pytest.raises(ValueError, match="plan is for scheme"):
        _run(_plan(scheme="full_reuse"), "droidspeak", rate="20Mbps")


def test_config_rejects_bad_input():
    from emu.apps.droidspeak.app import DroidSpeakConfig

    with pytest.raises(ValueError, match="pair"):
        DroidSpeakConfig(pair="man")
    with pytest.raises(ValueError, match="unknown agent 'gpt'"):
        DroidSpeakConfig(pair="gpt,man")
    with pytest.raises(ValueError, match="codec"):
        DroidSpeakConfig(codec="zip")
    with pytest.raises(ValueError, match="context_tokens"):
        DroidSpeakConfig(context_tokens=10)
    with pytest.raises(ValueError, match="budget_pct"):
        DroidSpeakConfig(budget_pct=-1.0)


def test_eval_config_rejects_bad_input():
    from emu.apps.droidspeak.eval import DroidSpeakEvalConfig

    with pytest.raises(ValueError, match="differ"):
        DroidSpeakEvalConfig(pair="man,man")
    with pytest.raises(ValueError, match="trials"):
        DroidSpeakEvalConfig(trials=0)
    with pytest.raises(ValueError, match="trace"):
        DroidSpeakEvalConfig(trace=None)


def test_groups_of_six_layers():
    pytest.importorskip("torch")
    from emu.apps.droidspeak.mixing import groups

    g = groups(6)
    assert len(g) == 21 and g[0] == (0, 0) and g[-1] == (5, 5) and (0, 5) in g


def test_random_group_avoids_the_profiled_one():
    from emu.apps.droidspeak.prepare import random_group
    from emu.rng import SeedTree

    rng = SeedTree(0).rng("t")
    draws = {random_group(2, 6, rng, avoid=(1, 2)) for _ in range(50)}
    assert (1, 2) not in draws and all(b - a == 1 for a, b in draws) and len(draws) == 4
    assert random_group(0, 6, rng) is None
    assert random_group(6, 6, rng, avoid=(0, 5)) == (0, 5)


def test_spec_is_registered_without_torch():
    import subprocess
    import sys

    code = ("import sys, emu.apps as a; s = a.get('droidspeak'); "
            "assert s.schemes[0] == 'droidspeak' and 'droidspeak-variants' in s.trainers; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_per_layer_coding_matches_whole_cache_sizes():
    pytest.importorskip("constriction")
    from emu.apps.droidspeak.transfer import encode_hidden, encode_layer

    from emu.apps.kvfetch.codec import CacheGenCodec, cachegen_levels, decode_chunk

    rng = np.random.default_rng(0)
    kv = rng.standard_normal((6, 2, 128, 32)).astype(np.float32)
    whole = CacheGenCodec(cachegen_levels(6)["level2"]).encode(kv)
    per_layer = [encode_layer(kv[i], "level2", i, 6) for i in range(6)]
    # each layer keeps its own bins of the level's table: decoded values are those of coding the whole cache
    np.testing.assert_array_equal(np.stack([c.decoded for c in per_layer]), decode_chunk(whole.data))
    assert sum(c.nbytes for c in per_layer) == pytest.approx(whole.nbytes, rel=0.05)
    fp16 = encode_layer(kv[0], "fp16", 0, 6)
    assert fp16.nbytes > kv[0].size * 2 and per_layer[0].nbytes < fp16.nbytes / 2
    assert np.abs(fp16.decoded - kv[0]).max() < 1e-2
    h = rng.standard_normal((64, 16)).astype(np.float32)
    coded = encode_hidden(h, "level2")
    assert coded.kind == "quant8" and coded.decoded.shape == h.shape
    assert np.abs(coded.decoded - h).max() < 0.05 * np.abs(h).max()
    with pytest.raises(ValueError, match="codec"):
        encode_layer(kv, "gzip", 0, 6)


def test_committed_models_are_present():
    # A missing committed model is a defect: this fails (test_droidspeak.py skips only for missing Debian text).
    from emu.apps.artifacts import card_path
    from emu.apps.droidspeak.variants import APP, VARIANTS

    missing = [name for name in (*VARIANTS, "profile") if not card_path(APP, name).is_file()]
    assert not missing, f"committed droidspeak models missing: {missing} (emu train droidspeak-variants / -profile)"
