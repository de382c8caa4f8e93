"""The committed LM: hash-checked loading, KV extraction for 1-8 k tokens, cache correctness, card contents."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from emu.apps.kvfetch.weights import CARD_NAME, check_model_files, load_model  # noqa: E402
from tests.apps.kvfetch_marks import NEEDS_MODEL_AND_TEXT  # noqa: E402

pytestmark = NEEDS_MODEL_AND_TEXT


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(2)
    model, tok, card = load_model()
    from emu.apps.kvfetch.data import held_out_stream

    return model, tok, card, held_out_stream(tok)


def test_card_records_data_seed_steps_size_ppl_and_hashes(lm):
    model, tok, card, _ = lm
    assert card == check_model_files()
    for key in ("data", "seed", "steps", "params", "size_bytes", "held_out_ppl", "sha256", "config"):
        assert key in card
    assert card["params"] == model.n_params()
    assert sum(card["size_bytes"].values()) < 20_000_000
    assert card["data"]["held_out_files"] > 0 and card["data"]["train_tokens"] > 100_000
    assert 1 < card["held_out_ppl"] < 200
    assert tok.get_vocab_size() == model.cfg.vocab_size


def test_held_out_split_is_by_file_name(lm):
    from emu.apps.kvfetch.data import is_held_out, split_files

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
    from emu.apps.kvfetch.train import TrainConfig, train_lm
    from emu.apps.kvfetch.weights import LMConfig

    card = train_lm(seed=1, out_dir=tmp_path, config=TrainConfig(steps=2, batch=2, seq_len=64, warmup=1),
                    lm_config=LMConfig(n_layers=2, d_model=32, n_heads=2, d_ff=64, rope_dims=8, train_len=64),
                    progress=False, eval_tokens=4096)
    model, _, card2 = load_model(tmp_path)
    assert card2 == json.loads((tmp_path / CARD_NAME).read_text()) == card
    assert model.cfg.n_layers == 2 and card["steps"] == 2
