"""``emu train lm``: train the kvfetch language model on CPU and write ``emu/models/kvfetch/`` (weights, tokenizer,
card).

Recipe (all of it seeded from one run seed through ``emu.rng.SeedTree``; no global RNG is touched):

1. Text: the Debian prose of ``emu.apps.textdata`` (git release notes + licence texts, one normalised text per
   file), split by file-name hash into training files (~90 %) and held-out files (~10 %).
2. Tokenizer: byte-level BPE (``textdata.train_bpe``), 4096 tokens, trained on the training files only.
3. Batches: random windows of ``seq_len`` + 1 tokens from the training stream. In a fraction ``copy_prob`` of the
   windows one span of 4-24 tokens is copied from an earlier place of the window to a later one (a synthetic
   repetition): natural text repeats itself too, but this small corpus is too short for induction (copy) heads to
   form reliably without it, and the long-context retrieval task needs them.
4. AdamW (betas 0.9/0.95, weight decay 0.1), linear warm-up then cosine decay to 10 %, gradient clip 1.0.
5. Card (``emu.apps.artifacts.write_card``, ``lm.card.json``): config, data (files, split, tokens), seed, steps,
   sha256 and size of weights and tokenizer; metrics: held-out perplexity (and by position in 4096-token
   windows), tokens seen, parameter count, training time and the measured CPU prefill throughput used to
   calibrate the text-recompute baseline.

Weights are stored in float16 (half the size); the loader converts them back to float32.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.artifacts import PACKAGED_MODELS, write_card
from emu.rng import SeedTree
from emu.validate import check_int

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    steps: int = 1200
    batch: int = 2
    seq_len: int = 2048
    lr: float = 2e-3
    min_lr_frac: float = 0.1
    warmup: int = 60
    weight_decay: float = 0.1
    clip: float = 1.0
    copy_prob: float = 0.9
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "seq_len", "warmup", "threads"):
            check_int(name, getattr(self, name), lo=1)
        if not 0 <= self.copy_prob <= 1:
            raise ValueError(f"copy_prob: must be in [0, 1], got {self.copy_prob!r}")


def make_batch(stream: np.ndarray, rng: np.random.Generator, batch: int, seq_len: int, copy_prob: float,
               vocab_size: int = 4096) -> np.ndarray:
    """``batch`` windows of ``seq_len + 1`` tokens; in a fraction ``copy_prob`` of them one or two spans of 6-24
    tokens are copied from earlier in the window to a later place (half of the copied spans are first replaced
    by random tokens, so that only copying, not the language prior, predicts them)."""
    starts = rng.integers(0, len(stream) - seq_len - 1, size=batch)
    out = np.stack([stream[s:s + seq_len + 1] for s in starts]).astype(np.int64)
    for row in out:
        if rng.random() >= copy_prob:
            continue
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(6, 25))
            src = int(rng.integers(0, seq_len // 2))
            dst = int(rng.integers(src + length, seq_len + 1 - length))
            if rng.random() < 0.5:
                row[src:src + length] = rng.integers(0, vocab_size, size=length)
            row[dst:dst + length] = row[src:src + length]
    return out


def evaluate_ppl(model, stream: np.ndarray, seq_len: int = 512, max_windows: Optional[int] = None) -> float:
    """Held-out perplexity over non-overlapping windows of ``seq_len`` tokens (every token predicted once)."""
    import torch
    import torch.nn.functional as F

    n = (len(stream) - 1) // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, n, 8):
            rows = [stream[j * seq_len:(j + 1) * seq_len + 1] for j in range(i, min(n, i + 8))]
            x = torch.as_tensor(np.stack(rows).astype(np.int64))
            logits, _ = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            total += float(loss)
            count += x[:, 1:].numel()
    return math.exp(total / count)


def ppl_by_position(model, stream: np.ndarray, length: int = 4096,
                    edges: tuple[int, ...] = (0, 512, 1024, 2048, 4096)) -> dict[str, float]:
    """Perplexity of the tokens at positions [a, b) of ``length``-token held-out windows (long-context check)."""
    import torch
    import torch.nn.functional as F

    n = (len(stream) - 1) // length
    sums = np.zeros(len(edges) - 1)
    counts = np.zeros(len(edges) - 1)
    with torch.inference_mode():
        for j in range(n):
            x = torch.as_tensor(stream[j * length:(j + 1) * length + 1].astype(np.int64))[None]
            cache, nll = None, []
            for s in range(0, length, 1024):
                prev = x[:, s - 1] if s > 0 else None
                logits, cache = model(x[:, s:s + 1024], past=cache, prev_token=prev)
                nll.append(F.cross_entropy(logits[0], x[0, s + 1:s + 1025], reduction="none"))
            nll = torch.cat(nll).numpy()
            for b in range(len(edges) - 1):
                sums[b] += nll[edges[b]:edges[b + 1]].sum()
                counts[b] += edges[b + 1] - edges[b]
    return {f"{edges[b]}-{edges[b + 1]}": round(math.exp(sums[b] / counts[b]), 3) for b in range(len(edges) - 1)}


def measure_prefill_tokens_per_s(model, stream: np.ndarray, context_tokens: int = 2048, repeats: int = 3) -> float:
    """Median CPU prefill throughput (tokens/s) of ``context_tokens`` held-out tokens (calibration for the
    text-recompute baseline)."""
    from emu.apps.kvfetch.model import prefill

    ids = stream[:context_tokens]
    prefill(model, ids[:256])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        prefill(model, ids)
        times.append(time.perf_counter() - t0)
    return context_tokens / float(np.median(times))


def train_lm(*, seed: int = 0, out_dir: Optional[str] = None, config: Optional[TrainConfig] = None,
             lm_config=None, progress: bool = True, eval_tokens: Optional[int] = None) -> dict:
    """Train the tokenizer and the LM; write weights, tokenizer and card to ``out_dir``; return the card.

    ``eval_tokens`` limits the held-out evaluation to that many tokens (smoke tests); None uses all of it."""
    import torch
    import torch.nn.functional as F

    from emu.apps import textdata as data
    from emu.apps.kvfetch.lm_config import LMConfig
    from emu.apps.kvfetch.model import TinyLM
    from emu.apps.kvfetch.weights import APP, CARD_NAME, TOKENIZER_FILE, TRAIN_COMMAND, WEIGHTS_FILE

    cfg = config or TrainConfig()
    lm_cfg = lm_config or LMConfig(train_len=cfg.seq_len)
    out = Path(out_dir) if out_dir is not None else PACKAGED_MODELS / APP
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    seeds = SeedTree(seed)
    t_start = time.perf_counter()

    train_files, held_files = data.split_files()
    train_texts, held_texts = data.file_texts(train_files), data.file_texts(held_files)
    tokenizer = data.train_bpe(train_texts, lm_cfg.vocab_size, special_tokens=[data.EOT])
    tok_path = out / TOKENIZER_FILE
    tokenizer.save(str(tok_path))
    train_stream = data.encode_stream(tokenizer, train_texts)
    held_stream = data.encode_stream(tokenizer, held_texts)

    model = TinyLM(lm_cfg)
    model.init_weights(torch.Generator().manual_seed(seeds.seed_for("kvfetch.lm.init")))
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    rng = seeds.rng("kvfetch.lm.batches")

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    losses = []
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x = torch.as_tensor(make_batch(train_stream, rng, cfg.batch, cfg.seq_len, cfg.copy_prob,
                                           lm_cfg.vocab_size))
        logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, lm_cfg.vocab_size), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        losses.append(float(loss.detach()))
        if progress and (step % 50 == 0 or step == cfg.steps - 1):
            print(f"step {step:5d}  loss {np.mean(losses[-50:]):.3f}  lr {lr_at(step):.2e}  "
                  f"{time.perf_counter() - t_start:.0f}s", flush=True)
    train_s = time.perf_counter() - t_start
    model.eval()

    state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
    w_path = out / WEIGHTS_FILE
    torch.save(state, w_path)
    # Evaluate the weights as stored (float16 -> float32), exactly what load_model gives.
    model.load_state_dict({k: v.float() for k, v in state.items()})
    eval_stream = held_stream if eval_tokens is None else held_stream[:eval_tokens]
    held_ppl = evaluate_ppl(model, eval_stream, cfg.seq_len)
    by_pos = ppl_by_position(model, eval_stream) if len(eval_stream) > 4096 else {}
    prefill_tps = measure_prefill_tokens_per_s(model, eval_stream)

    card_path = write_card(
        out, CARD_NAME, app=APP, files=[WEIGHTS_FILE, TOKENIZER_FILE], config=asdict(lm_cfg),
        data={
            "sources": list(data.TEXT_SOURCES),
            "normalisation": "emu.apps.textdata.normalise",
            "split": f"held out when sha256(file name)[0] < {data.HOLDOUT_BYTE}",
            "train_files": len(train_files), "held_out_files": len(held_files),
            "train_tokens": int(len(train_stream)), "held_out_tokens": int(len(held_stream)),
            "held_out_names": [p.name for p in held_files],
        },
        seed=seed, steps=cfg.steps,
        metrics={
            "held_out_ppl": round(held_ppl, 3),
            "held_out_ppl_by_position_4096": by_pos,
            "final_train_loss": round(float(np.mean(losses[-50:])), 4),
            "params": model.n_params(),
            "tokens_seen": cfg.steps * cfg.batch * cfg.seq_len,
            "train_seconds": round(train_s, 1),
            "prefill_tokens_per_s_cpu": round(prefill_tps, 1),
        },
        command=TRAIN_COMMAND,
        what="decoder-only Transformer (partial RoPE) whose KV cache emu.apps.kvfetch streams",
        train={**cfg.__dict__},
        tokenizer=f"byte-level BPE (tokenizers library), vocab {lm_cfg.vocab_size}, trained on the training files",
    )
    return json.loads(card_path.read_text())
