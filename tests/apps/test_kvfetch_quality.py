"""Size vs quality on real KV caches of held-out text (committed model, fixed seeds).

Targets (issue; CacheGen paper: 3.5-4.3x smaller than 8-bit quantisation at ~2 % quality loss):
at <= 2 % perplexity increase and <= 2 points of retrieval accuracy, the KV is >= 3x smaller than 8-bit.

The committed model does not answer the retrieval task (0 % with the original cache; see docs/kvfetch.md "Gaps"),
so the retrieval condition holds trivially; the quality tests that bite are perplexity and top-1 agreement with
the original cache.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("constriction")
pytest.importorskip("tokenizers")

from tests.apps.kvfetch_marks import NEEDS_MODEL_AND_TEXT  # noqa: E402

pytestmark = NEEDS_MODEL_AND_TEXT

CONTEXT = 2048
CHUNK = 512
N_CONTEXTS = 4
N_RETRIEVAL = 12


@pytest.fixture(scope="module")
def study():
    """Encode 4 held-out contexts with every codec; score continuation and retrieval from the decoded caches."""
    from emu.apps.kvfetch import quality as Q
    from emu.apps.kvfetch.codec import (CacheGenCodec, UniformCodec, cachegen_levels, decode_chunks,
                                        encode_chunks)
    from emu.apps.textdata import held_out_stream
    from emu.apps.kvfetch.weights import load_model
    from emu.rng import SeedTree

    torch.set_num_threads(2)
    model, tok, _ = load_model()
    stream = held_out_stream(tok)
    seeds = SeedTree(0)
    rng = seeds.rng("test.kvfetch.contexts")
    levels = cachegen_levels(model.cfg.n_layers)
    codecs = {name: CacheGenCodec(lv) for name, lv in levels.items()}
    codecs.update({f"{name}+delta": CacheGenCodec(lv, delta=True) for name, lv in levels.items()})
    codecs["quant8"] = UniformCodec(8)
    codecs["quant4"] = UniformCodec(4)
    rows = {name: {"bytes": 0, "nll": 0.0, "n": 0, "correct": 0, "agree": 0, "hits": 0, "payload": 0,
                   "entropy": 0.0, "elements": 0} for name in codecs}
    ref = {"nll": 0.0, "n": 0, "correct": 0, "hits": 0, "total": 0}
    starts = rng.choice(len(stream) - CONTEXT - 300, size=N_CONTEXTS, replace=False)
    for s in starts:
        ids, cont = stream[s:s + CONTEXT], stream[s + CONTEXT:s + CONTEXT + 256]
        kv = Q.original_kv(model, ids)
        sc, top1 = Q.score_continuation(model, kv, cont, int(ids[-1]))
        ref["nll"] += sc.nll_sum
        ref["n"] += sc.n
        ref["correct"] += sc.correct
        for name, codec in codecs.items():
            chunks = encode_chunks(kv, codec, CHUNK)
            dec = decode_chunks([c.data for c in chunks])
            sc2, _ = Q.score_continuation(model, dec, cont, int(ids[-1]), top1)
            r = rows[name]
            r["bytes"] += sum(c.nbytes for c in chunks)
            r["payload"] += sum(c.payload_bytes for c in chunks)
            r["entropy"] += sum(c.entropy_bits for c in chunks)
            r["elements"] += kv.size
            r["nll"] += sc2.nll_sum
            r["n"] += sc2.n
            r["correct"] += sc2.correct
            r["agree"] += sc2.agree
    alphabet = Q.code_vocabulary(tok)
    rrng = seeds.rng("test.kvfetch.retrieval")
    for _ in range(N_RETRIEVAL):
        sample = Q.make_retrieval_sample(tok, stream, rrng, CONTEXT, alphabet=alphabet)
        kv = Q.original_kv(model, sample.context)
        h, t = Q.score_retrieval(model, kv, sample)
        ref["hits"] += h
        ref["total"] += t
        for name, codec in codecs.items():
            dec = decode_chunks([c.data for c in encode_chunks(kv, codec, CHUNK)])
            rows[name]["hits"] += Q.score_retrieval(model, dec, sample)[0]
    ppl0 = np.exp(ref["nll"] / ref["n"])
    out = {"_ref": {"ppl": ppl0, "acc": ref["correct"] / ref["n"], "retrieval": ref["hits"] / ref["total"]}}
    for name, r in rows.items():
        out[name] = {
            "bytes": r["bytes"], "ratio_vs_quant8": rows["quant8"]["bytes"] / r["bytes"],
            "bits": 8 * r["bytes"] / r["elements"], "payload_bits": 8 * r["payload"] / r["elements"],
            "entropy_bits": r["entropy"] / r["elements"],
            "ppl_increase_pct": 100 * (np.exp(r["nll"] / r["n"]) / ppl0 - 1),
            "acc_drop_pts": 100 * (ref["correct"] - r["correct"]) / ref["n"],
            "retrieval_drop_pts": 100 * (ref["hits"] - r["hits"]) / ref["total"],
            "agree": r["agree"] / r["n"],
        }
    return out


def test_report(study, capsys):
    with capsys.disabled():
        print("\nkvfetch size/quality (4 held-out contexts x 2048 tokens):", {k: round(v, 4) for k, v in
                                                                              study["_ref"].items()})
        for name, r in study.items():
            if name != "_ref":
                print(f"  {name:<14}" + "  ".join(f"{k}={v:.3f}" for k, v in r.items() if k != "bytes"))


def test_original_cache_is_a_real_language_model(study):
    """Held-out continuation from the original 2048-token cache: far better than a unigram guess."""
    assert study["_ref"]["ppl"] < 80 and study["_ref"]["acc"] > 0.25


def test_three_times_smaller_than_8bit_at_two_percent(study):
    best = max((r["ratio_vs_quant8"], name) for name, r in study.items()
               if name.startswith("level") and r["ppl_increase_pct"] <= 2.0 and r["retrieval_drop_pts"] <= 2.0)
    assert best[0] >= 3.0, best


def test_decoded_caches_keep_the_original_top1(study):
    """Every CacheGen level keeps >= 93 % of the original cache's top-1 predictions; 8-bit keeps >= 99 %."""
    for name, r in study.items():
        if name.startswith("level"):
            assert r["agree"] >= 0.93, name
    assert study["quant8"]["agree"] >= 0.99


def test_levels_trade_size_for_fidelity(study):
    """Smaller levels are smaller and agree less with the original cache than level 3."""
    assert study["level0"]["bytes"] < study["level1"]["bytes"] < study["level2"]["bytes"] < study["level3"]["bytes"]
    assert study["level0"]["agree"] < study["level3"]["agree"]


def test_quant8_is_nearly_lossless_and_quant4_is_not_free(study):
    assert abs(study["quant8"]["ppl_increase_pct"]) < 0.5
    assert study["quant4"]["bits"] > study["level1"]["bits"]


def test_arithmetic_coder_reaches_the_entropy_bound(study):
    for name, r in study.items():
        if name.startswith("level"):
            assert r["entropy_bits"] <= r["payload_bits"] <= 1.02 * r["entropy_bits"] + 0.01, name
