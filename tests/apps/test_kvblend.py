"""kvblend's blend pass and quality probe on the committed kvfetch model (fixed seeds, small contexts)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.apps.kvfetch_marks import NEEDS_MODEL_AND_TEXT

torch = pytest.importorskip("torch")
pytestmark = NEEDS_MODEL_AND_TEXT

SCHEMES = ("cacheblend", "cacheblend_adaptive", "full_recompute", "prefix_reuse", "full_reuse")
KEYS = ("ttft_s", "quality_loss_pct", "top1_agreement", "recompute_frac", "bytes")


@pytest.fixture(scope="module")
def lm():
    from emu.apps.kvfetch.weights import load_model

    torch.set_num_threads(1)
    model, tokenizer, _ = load_model()
    return model, tokenizer


@pytest.fixture(scope="module")
def stream(lm):
    from emu.apps.textdata import held_out_stream

    return held_out_stream(lm[1]).astype(np.int64)


@pytest.fixture(scope="module")
def probe(lm, stream):
    from emu.apps.kvblend.probe import Probe, ProbeConfig

    model, tokenizer = lm
    return Probe.build(model, tokenizer, ProbeConfig(chunks=8, chunk_tokens=32, cont_tokens=16, samples=8), seed=0,
                       stream=stream)


def _chunks(stream, n=3, t=16, s=8, start=5000):
    ids = stream[start:start + n * t + s]
    return [ids[i * t:(i + 1) * t] for i in range(n)], ids[n * t:]


def test_chunk_cache_keeps_keys_before_rope(lm, stream):
    from emu.apps.kvblend.blend import _rope, chunk_cache
    from emu.apps.kvfetch.model import prefill

    model, _ = lm
    ids = stream[1000:1024]
    cc = chunk_cache(model, ids)
    cache, _ = prefill(model, ids)                  # the model's own cache: K after RoPE
    pos = torch.arange(len(ids))
    for layer, (k, v) in enumerate(cache):
        assert torch.allclose(_rope(model, cc.k[layer], pos), k[0], atol=1e-5)
        assert torch.allclose(cc.v[layer], v[0], atol=1e-5)
        assert not torch.allclose(cc.k[layer], k[0], atol=1e-3)   # really unrotated
    led = chunk_cache(model, ids[1:], lead=int(ids[0]))          # the lead token's KV is dropped
    assert led.n_tokens == len(ids) - 1
    assert torch.allclose(led.v, cc.v[:, :, 1:], atol=1e-5) and torch.allclose(led.k, cc.k[:, :, 1:], atol=1e-5)


def test_ratio_100_is_exactly_full_prefill(lm, stream):
    from emu.apps.kvblend.blend import cacheblend, chunk_cache, full_prefill_logits, prefix_reuse

    model, _ = lm
    chunks, suffix = _chunks(stream)
    caches = [chunk_cache(model, c) for c in chunks]
    ref = full_prefill_logits(model, chunks, suffix)
    for check_layer in (1, 3):
        out = cacheblend(model, caches, suffix, ratio=1.0, check_layer=check_layer)
        assert out.recompute_frac == 1.0
        assert float((out.logits - ref).abs().max()) < 1e-4
    # Prefix caching reuses the first chunk's cache, which a prefill from position 0 computes exactly.
    assert float((prefix_reuse(model, caches, suffix).logits - ref).abs().max()) < 1e-4


def test_selection_is_top_deviation_plus_the_suffix(lm, stream):
    from emu.apps.kvblend.blend import cacheblend, chunk_cache

    model, _ = lm
    chunks, suffix = _chunks(stream, n=4, t=25)
    caches = [chunk_cache(model, c) for c in chunks]
    out = cacheblend(model, caches, suffix, ratio=0.15, check_layer=1, measure="value")
    assert len(out.selected) == int(100 * 0.15) and out.logits.shape[0] == len(suffix)
    top = np.argsort(-out.deviation)[:len(out.selected)]
    assert set(top) == set(out.selected)
    gen = torch.Generator().manual_seed(3)
    rnd = cacheblend(model, caches, suffix, ratio=0.15, measure="random", generator=gen)
    assert len(rnd.selected) == 15 and rnd.deviation is None
    with pytest.raises(ValueError, match="check_layer"):
        cacheblend(model, caches, suffix, ratio=0.15, check_layer=6)
    with pytest.raises(ValueError, match="generator"):
        cacheblend(model, caches, suffix, ratio=0.15, measure="random")
    with pytest.raises(ValueError, match="ratio"):
        cacheblend(model, caches, suffix, ratio=1.5)


def test_cachegen_coded_caches_are_smaller_and_close(probe):
    pytest.importorskip("constriction")
    from emu.apps.kvblend.codec import encode_caches

    caches = probe.samples[0].caches
    decoded, sizes = encode_caches(caches, "level1")
    assert sum(sizes) < sum(c.nbytes_fp16 for c in caches) / 3
    for a, b in zip(caches, decoded):
        assert a.k.shape == b.k.shape and float((a.v - b.v).abs().max()) < 0.5 * float(a.v.abs().max())
    coded = probe.run(("full_reuse",), codec="level1")
    assert coded["kl_nats"] > probe.run(("full_reuse",))["kl_nats"]     # the coding adds its own loss
    with pytest.raises(ValueError, match="kv_codec"):
        encode_caches(caches, "level9")


def test_full_reuse_degrades_measurably(probe):
    reuse = probe.run(("full_reuse",))
    exact = probe.run(("cacheblend", 1.0, 1, "value"))
    assert exact["kl_nats"] < 1e-6 and exact["top1_agreement"] == 1.0
    assert reuse["kl_nats"] > 0.005
    assert reuse["top1_agreement"] < 0.96


def test_cacheblend_at_15pct_recovers_part_of_the_degradation_and_beats_random(probe):
    from emu.apps.kvblend.probe import recovery

    reuse = probe.run(("full_reuse",))
    blend = probe.run(("cacheblend", 0.15, 1, "value"))
    rand = probe.run(("cacheblend", 0.15, 1, "random"))
    blend_rec = recovery(blend["kl_nats"], reuse["kl_nats"])
    rand_rec = recovery(rand["kl_nats"], reuse["kl_nats"])
    # The paper's >= 80 % is out of reach on this 6-layer model (docs/kvblend.md); what holds:
    assert blend_rec >= 0.15
    assert blend_rec > rand_rec
    assert blend["top1_agreement"] > reuse["top1_agreement"]
    more = probe.run(("cacheblend", 0.30, 1, "value"))
    assert recovery(more["kl_nats"], reuse["kl_nats"]) > blend_rec


def test_eval_reports_every_scheme_with_the_contract_keys():
    from emu.apps.kvfetch.controller import BandwidthMemory
    from emu.apps.kvblend.eval import KVBlendEvalConfig, evaluate, run_request

    cfg = KVBlendEvalConfig(trace=None, rate_bps=30e6, trials=2, contexts=1, chunks=4, chunk_tokens=32,
                            cont_tokens=8)
    out = evaluate(cfg, schemes=SCHEMES, seed=0)
    assert set(out) == set(SCHEMES)
    for scheme in SCHEMES:
        assert all(np.isfinite(out[scheme][k]) for k in KEYS)
    assert out["full_recompute"]["quality_loss_pct"] == 0 and out["full_recompute"]["top1_agreement"] == 1
    assert out["full_reuse"]["recompute_frac"] == 0 and out["full_recompute"]["bytes"] == 0
    # Same seed, same request: identical results (the adaptive one with a fresh memory).
    for scheme in SCHEMES:
        again = [run_request(cfg, scheme, 0.0, 0, BandwidthMemory()) for _ in range(2)]
        assert again[0] == again[1]


def test_example_09_writes_the_figure_and_tables(tmp_path):
    import importlib.util

    from emu.links.tracefile import shared_traces_dir
    from tests.conftest import REPO

    if shared_traces_dir() is None:
        pytest.skip("the shared real traces (../shared/traces) are not here")
    spec = importlib.util.spec_from_file_location("example_09", REPO / "examples" / "09_kvblend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    quality, table = module.main(seed=0, samples=2, trials=1, out_dir=str(tmp_path))
    assert (tmp_path / "kvblend_quality.png").exists() and (tmp_path / "kvblend_ttft.csv").exists()
    assert set(SCHEMES) == set(table["scheme"])
    assert len(quality["cross_layer_value"]) == 6 and quality["curves"]["check1_value"][-1]["kl_nats"] < 1e-6
