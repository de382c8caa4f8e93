"""The committed LM: hash-checked loading, KV extraction for 1-8 k tokens, cache correctness, card contents."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from emu.apps.artifacts import validate_card  # noqa: E402
from emu.apps.kvfetch.weights import check_model_files, load_model  # noqa: E402
from tests.apps.kvfetch_marks import NEEDS_MODEL_AND_TEXT  # noqa: E402

pytestmark = NEEDS_MODEL_AND_TEXT


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(2)
    model, tok, card = load_model()
    from emu.apps.textdata import held_out_stream

    return model, tok, card, held_out_stream(tok)


def test_card_records_data_seed_steps_size_ppl_and_hashes(lm):
    model, tok, card, _ = lm
    assert card.data == check_model_files().data
    validate_card(card.data, "lm.card.json")
    assert card["app"] == "kvfetch" and card["command"] == "emu train lm" and card["steps"] == 1200
    assert set(card["files"]) == {"lm.pt", "tokenizer.json"}
    assert card.metrics["params"] == model.n_params()
    assert sum(f["bytes"] for f in card["files"].values()) < 20_000_000
    assert card["data"]["held_out_files"] > 0 and card["data"]["train_tokens"] > 100_000
    assert 1 < card.metrics["held_out_ppl"] < 200
    assert tok.get_vocab_size() == model.cfg.vocab_size


def test_held_out_split_is_by_file_name(lm):
    from emu.apps.textdata import is_held_out, split_files

    train, held = split_files()
    assert held and train and not set(train) & set(held)
    assert all(is_held_out(p) for p in held) and not any(is_held_out(p) for p in train)
    assert sorted(p.name for p in held) == sorted(lm[2]["data"]["held_out_names"])


def test_kv_extraction_shapes_and_cache_equivalence(lm):
    from emu.apps.kvfetch.model import cache_to_numpy, extract_kv, numpy_to_cache

    model, _, _, stream = lm
    ids = stream[:1100]
    kv = extract_kv(model, ids[:1024])
    cfg = model.cfg
    assert kv.shape == (cfg.n_layers, 2, 1024, cfg.kv_channels) and kv.dtype == np.float32
    np.testing.assert_array_equal(cache_to_numpy(numpy_to_cache(kv, cfg)), kv)
    with torch.inference_mode():
        full, _ = model(torch.as_tensor(ids[None].astype(np.int64)))
        cont, _ = model(torch.as_tensor(ids[None, 1024:].astype(np.int64)), past=numpy_to_cache(kv, cfg),
                        prev_token=torch.as_tensor([int(ids[1023])]))
    torch.testing.assert_close(cont[0], full[0, 1024:], rtol=1e-4, atol=1e-4)


def test_eight_thousand_token_context(lm):
    from emu.apps.kvfetch.model import extract_kv

    model, _, _, stream = lm
    kv = extract_kv(model, stream[:8192])
    assert kv.shape[2] == 8192 and np.isfinite(kv).all()
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros((1, 2), dtype=torch.long), start_pos=model.cfg.max_len - 1)


def test_train_lm_smoke(tmp_path):
    """The training entry point runs end to end (a few steps of a tiny config) and writes a loadable model."""
    from emu.apps.kvfetch.lm_config import LMConfig
    from emu.apps.kvfetch.train import TrainConfig, train_lm

    card = train_lm(seed=1, out_dir=str(tmp_path), config=TrainConfig(steps=2, batch=2, seq_len=64, warmup=1),
                    lm_config=LMConfig(n_layers=2, d_model=32, n_heads=2, d_ff=64, rope_dims=8, train_len=64),
                    progress=False, eval_tokens=4096)
    model, _, card2 = load_model(tmp_path)
    assert card2.data == json.loads((tmp_path / "lm.card.json").read_text()) == card
    assert model.cfg.n_layers == 2 and card["steps"] == 2 and card["seed"] == 1
    # the same keys as the committed card (what `emu train lm` writes is what is committed)
    committed = check_model_files()
    assert set(card) == set(committed.data) and set(card["metrics"]) == set(committed.metrics)
    assert set(card["data"]) == set(committed["data"])


def test_endpoint_builds_its_own_menu_from_the_committed_model(lm):
    """Installed without a menu, the endpoint loads the model, draws a held-out context from the run's seed and
    encodes it; the same seed gives the same context."""
    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck, run_until_done

    def one(seed):
        sim = Sim(seed=seed)
        topo = access_bottleneck(sim, rate="50Mbps", rtt_s=0.04)
        ep = install(topo.net, "kvfetch", src="s0", dst="d0", scheme="level1", context_tokens=512, chunk_tokens=256)
        assert run_until_done(sim, [ep], horizon_s=30.0)
        return ep

    a, b = one(2), one(2)
    assert a.menu.n_chunks == 2 and a.result()["sent_bytes"] == sum(a.menu.nbytes["level1"])
    assert a.menu.nbytes == b.menu.nbytes and a.ttft_s == b.ttft_s
