"""``emu train droidspeak-variants``: fine-tune the kvfetch base LM into one agent per corpus (CPU, one thread).

Recipe per agent (``variants.RECIPES``; all randomness from the run seed through ``emu.rng.SeedTree``):
full fine-tuning of every weight from the committed base (``emu/models/kvfetch/lm.pt``), random windows of
``seq_len + 1`` tokens of the agent's training stream (``corpora.py``, the base's tokenizer), AdamW
(betas 0.9/0.95), linear warm-up then cosine decay to 10 %, gradient clip 1.0. Weights are stored in float16.

Card metrics: held-out loss (nats/token) of the agent and of the base on every corpus (the fine-tune should win
on its own family), and the weight deviation from the base: ``||W_v - W_b|| / ||W_b||`` over all weights and per
layer.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.artifacts import PACKAGED_MODELS, write_card
from emu.rng import SeedTree

EVAL_TOKENS = 16_384        # held-out tokens scored per corpus in the card


def corpus_streams(tokenizer, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(training stream, held-out stream) of corpus ``name`` in the base tokenizer."""
    from emu.apps.droidspeak import corpora
    from emu.apps.textdata import encode_stream

    corpus = corpora.get_corpus(name)
    train_files, held_files = corpora.split(corpus)
    return (encode_stream(tokenizer, corpora.texts(corpus, train_files)),
            encode_stream(tokenizer, corpora.texts(corpus, held_files)))


def mean_loss(model, stream: np.ndarray, seq_len: int = 256, max_tokens: int = EVAL_TOKENS) -> float:
    """Mean next-token loss (nats) over non-overlapping windows of the first ``max_tokens`` tokens."""
    from emu.apps.kvfetch.train import evaluate_ppl

    return math.log(evaluate_ppl(model, stream[:max_tokens + 1], seq_len))


def weight_deviation(model, base) -> dict:
    """Relative L2 deviation of the weights from ``base``: overall, per block and for the embedding."""
    import torch

    a, b = dict(model.state_dict()), dict(base.state_dict())
    out = {}

    def rel(keys) -> float:
        num = sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in keys)
        den = sum(float(b[k].float().pow(2).sum()) for k in keys)
        return math.sqrt(num / den)

    with torch.no_grad():
        out["all"] = rel(list(b))
        out["embed"] = rel([k for k in b if k.startswith(("embed.", "norm."))])
        for i in range(base.cfg.n_layers):
            out[f"layer{i}"] = rel([k for k in b if k.startswith(f"blocks.{i}.")])
    return {k: round(v, 5) for k, v in out.items()}


def fine_tune(base_state: dict, cfg, recipe, stream: np.ndarray, seed_tree: SeedTree, progress: bool = True):
    """The base fine-tuned on ``stream`` with ``recipe``; returns (model, recent mean training loss, seconds)."""
    import torch
    import torch.nn.functional as F

    from emu.apps.kvfetch.model import TinyLM

    model = TinyLM(cfg)
    model.load_state_dict(base_state)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.95), weight_decay=recipe.weight_decay)
    rng = seed_tree.rng(f"droidspeak.{recipe.name}.batches")

    def lr_at(step: int) -> float:
        if step < recipe.warmup:
            return recipe.lr * (step + 1) / recipe.warmup
        frac = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    t0 = time.perf_counter()
    model.train()
    losses = []
    for step in range(recipe.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        starts = rng.integers(0, len(stream) - recipe.seq_len - 1, size=recipe.batch)
        x = torch.as_tensor(np.stack([stream[s:s + recipe.seq_len + 1] for s in starts]).astype(np.int64))
        logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        opt.step()
        losses.append(float(loss.detach()))
        if progress and (step % 25 == 0 or step == recipe.steps - 1):
            print(f"{recipe.name}: step {step:4d} loss {np.mean(losses[-25:]):.3f} "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
    model.eval()
    return model, float(np.mean(losses[-25:])), time.perf_counter() - t0


def train_variants(*, seed: int = 0, out_dir: Optional[str] = None, names: Optional[tuple[str, ...]] = None,
                   progress: bool = True, threads: int = 1) -> dict:
    """Fine-tune every agent of ``variants.RECIPES`` (or ``names``); write ``<name>.pt`` and its card to
    ``out_dir`` (default: the packaged ``emu/models/droidspeak/``); return {name: card metrics}."""
    import torch

    from emu.apps.droidspeak.corpora import get_corpus
    from emu.apps.droidspeak.variants import APP, RECIPES, TRAIN_COMMAND
    from emu.apps.kvfetch.model import TinyLM
    from emu.apps.kvfetch.weights import load_model

    names = tuple(names or RECIPES)
    for n in names:
        if n not in RECIPES:
            raise ValueError(f"names: unknown variant {n!r}; valid: {', '.join(RECIPES)}")
    torch.set_num_threads(threads)
    out = Path(out_dir) if out_dir is not None else PACKAGED_MODELS / APP
    out.mkdir(parents=True, exist_ok=True)
    base, tokenizer, base_card = load_model()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    streams = {c: corpus_streams(tokenizer, c) for c in sorted({RECIPES[n].corpus for n in RECIPES})}
    base_loss = {c: round(mean_loss(base, held), 4) for c, (_, held) in streams.items()}
    seeds = SeedTree(seed)
    summary = {}
    for name in names:
        recipe = RECIPES[name]
        corpus = get_corpus(recipe.corpus)
        train_stream, held_stream = streams[recipe.corpus]
        model, train_loss, seconds = fine_tune(base_state, base.cfg, recipe, train_stream, seeds, progress)
        state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
        rel = f"{name}.pt"
        torch.save(state, out / rel)
        stored = TinyLM(base.cfg)   # metrics of the weights as stored (float16 -> float32)
        stored.load_state_dict({k: v.float() for k, v in state.items()})
        stored.eval()
        metrics = {
            "held_out_loss": {c: round(mean_loss(stored, held), 4) for c, (_, held) in streams.items()},
            "base_held_out_loss": base_loss,
            "final_train_loss": round(train_loss, 4),
            "weight_deviation_from_base": weight_deviation(stored, base),
            "tokens_seen": recipe.steps * recipe.batch * recipe.seq_len,
            "train_seconds": round(seconds, 1),
            "threads": threads,
        }
        write_card(out, name, app=APP, files=[rel], config=dict(base_card.config),
                   data={"corpus": corpus.name, "what": corpus.what, "patterns": list(corpus.patterns),
                         "keep": f"sha256(path)[0] < {corpus.keep_byte}", "max_chars_per_file": corpus.max_chars,
                         "split": "held out when sha256(path)[1] < 26",
                         "train_tokens": int(len(train_stream)), "held_out_tokens": int(len(held_stream)),
                         "base": {"card": "kvfetch/lm", "sha256": base_card.data["files"]["lm.pt"]["sha256"]}},
                   seed=seed, steps=recipe.steps, metrics=metrics, command=TRAIN_COMMAND,
                   what=f"the kvfetch base LM fully fine-tuned on {corpus.what}",
                   train={**recipe.__dict__}, tokenizer="the base's (emu/models/kvfetch/tokenizer.json)")
        summary[name] = metrics
    return summary
