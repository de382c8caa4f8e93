"""Quality probe that the small model can show: consecutive segments of held-out documents cached separately
(torch; imported lazily).

The kvfetch model (6 layers, 3.4 M parameters) cannot answer RAG questions (it does not even retrieve a planted
passcode: docs/kvfetch.md), so the paper's F1 and Rouge-L are out of reach. What it can show is how far a
reused cache drifts from a full prefill when the context is split into chunks prefilled on their own:

- a window of ``chunks · chunk_tokens + cont_tokens`` consecutive tokens is drawn inside one held-out document
  (no end-of-text inside), so every chunk continues the one before it;
- the chunks are cached separately (``blend.chunk_cache``), the continuation is the suffix (the query). As in
  the released example, where every chunk is prefilled after a BOS token whose KV is dropped and only the first
  chunk keeps its BOS, the input starts with the model's document separator (end-of-text) and every later
  chunk is prefilled after one (``lead``);
- the continuation is scored from the suffix logits of each variant against a full prefill of the same tokens:
  ``quality_loss_pct`` = 100 · (NLL / NLL of full prefill − 1) over all scored tokens (the continuation loss
  increase), ``top1_agreement`` = share of positions whose top-1 equals the full prefill's, ``kl_nats`` = mean
  KL(full prefill ‖ variant) per position.

Shorter chunks mean more boundaries and more cross-chunk attention lost; the defaults (8 chunks of 32 tokens, a
16-token continuation) are the small-scale stand-in for the paper's 10 passages of ≈ 550 tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from emu.apps.kvblend import blend as B
from emu.validate import check_int
from emu.rng import SeedTree

RATIOS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 1.0)


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    chunks: int = 8
    chunk_tokens: int = 32
    cont_tokens: int = 16
    samples: int = 32

    def __post_init__(self) -> None:
        check_int("chunks", self.chunks, lo=1, hi=256)
        check_int("chunk_tokens", self.chunk_tokens, lo=2, hi=4096)
        check_int("cont_tokens", self.cont_tokens, lo=2, hi=1024)
        check_int("samples", self.samples, lo=1, hi=10_000)
        if self.chunks * self.chunk_tokens + self.cont_tokens > 8192:
            raise ValueError(f"chunks: {self.chunks} × {self.chunk_tokens} + {self.cont_tokens} tokens exceed 8192")

    @property
    def window_tokens(self) -> int:
        return self.chunks * self.chunk_tokens + self.cont_tokens


def document_windows(stream: np.ndarray, eot: int, n_tokens: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` windows of ``n_tokens`` consecutive tokens, each inside one document of ``stream`` (documents
    end with ``eot``); documents drawn with probability ∝ the windows they hold, offsets uniform."""
    ends = np.flatnonzero(np.asarray(stream) == eot)
    starts = np.r_[0, ends[:-1] + 1]
    room = (ends - starts) - n_tokens + 1
    ok = room > 0
    if not ok.any():
        raise ValueError(f"window: no held-out document holds {n_tokens} tokens (longest: "
                         f"{int((ends - starts).max())}); use fewer or shorter chunks")
    rng = SeedTree(seed).rng("kvblend.probe.windows")
    weights = room[ok] / room[ok].sum()
    docs = rng.choice(np.flatnonzero(ok), size=count, p=weights)
    out = []
    for d in docs:
        s = int(starts[d] + rng.integers(0, room[d]))
        out.append(np.asarray(stream[s:s + n_tokens], dtype=np.int64))
    return out


@dataclass
class Sample:
    chunks: list[np.ndarray]
    cont: np.ndarray
    caches: list[B.ChunkCache]
    ref_logits: torch.Tensor        # full prefill, the suffix positions


@dataclass
class Score:
    """Summed over positions: NLL of the true next token, top-1 agreements with the full prefill, KL."""

    nll: float = 0.0
    agree: int = 0
    kl: float = 0.0
    n: int = 0

    def add(self, other: "Score") -> None:
        self.nll += other.nll
        self.agree += other.agree
        self.kl += other.kl
        self.n += other.n


@dataclass
class Probe:
    """Prepared samples and memoised scores of every variant (see ``run``)."""

    model: Any
    config: ProbeConfig
    samples: list[Sample]
    seed: int = 0
    _memo: dict = field(default_factory=dict)
    _coded: dict = field(default_factory=dict)      # (sample, codec) -> (decoded caches, bytes per chunk)

    def coded(self, k: int, codec: str) -> tuple[list, list[int]]:
        """Sample ``k``'s chunk caches as decoded after ``codec`` and their encoded sizes (``codec.py``)."""
        from emu.apps.kvblend.codec import encode_caches

        if (k, codec) not in self._coded:
            self._coded[(k, codec)] = encode_caches(self.samples[k].caches, codec)
        return self._coded[(k, codec)]

    @classmethod
    def build(cls, model, tokenizer, config: ProbeConfig, seed: int = 0,
              stream: Optional[np.ndarray] = None) -> "Probe":
        from emu.apps.textdata import EOT, held_out_stream

        if stream is None:
            stream = held_out_stream(tokenizer)
        eot = tokenizer.token_to_id(EOT)
        windows = document_windows(stream, eot, config.window_tokens, config.samples, seed)
        t = config.chunk_tokens
        samples = []
        for win in windows:
            chunks = [win[i * t:(i + 1) * t] for i in range(config.chunks)]
            chunks[0] = np.r_[np.int64(eot), chunks[0]]
            cont = win[config.chunks * t:]
            caches = [B.chunk_cache(model, c, lead=None if i == 0 else eot) for i, c in enumerate(chunks)]
            samples.append(Sample(chunks, cont, caches, B.full_prefill_logits(model, chunks, cont)))
        return cls(model, config, samples, seed)

    def _logits(self, k: int, variant: tuple, codec: str) -> tuple[torch.Tensor, float]:
        s = self.samples[k]
        kind = variant[0]
        if kind == "full_prefill":
            return s.ref_logits, 1.0
        caches = self.coded(k, codec)[0]
        if kind == "full_reuse":
            out = B.full_reuse(self.model, caches, s.cont)
        elif kind == "prefix_reuse":
            out = B.prefix_reuse(self.model, caches, s.cont)
        elif kind == "cacheblend":
            _, ratio, check_layer, measure = variant
            gen = None
            if measure == "random":
                gen = torch.Generator().manual_seed(SeedTree(self.seed).seed_for(f"kvblend.random.{k}"))
            out = B.cacheblend(self.model, caches, s.cont, ratio=ratio, check_layer=check_layer,
                               measure=measure, generator=gen)
        else:
            raise ValueError(f"variant: unknown {variant!r}")
        return out.logits, out.recompute_frac

    def score_sample(self, k: int, variant: tuple, codec: str = "fp16") -> tuple[Score, float]:
        key = (k, variant, "fp16" if variant[0] == "full_prefill" else codec)
        if key not in self._memo:
            logits, frac = self._logits(k, variant, codec)
            s = self.samples[k]
            ref = F.log_softmax(s.ref_logits[:-1], -1)
            lp = F.log_softmax(logits[:-1], -1)
            target = torch.as_tensor(s.cont[1:])
            self._memo[key] = (Score(nll=float(F.nll_loss(lp, target, reduction="sum")),
                                     agree=int((lp.argmax(-1) == ref.argmax(-1)).sum()),
                                     kl=float((ref.exp() * (ref - lp)).sum()), n=len(target)), frac)
        return self._memo[key]

    def run(self, variant: tuple, indices: Optional[Sequence[int]] = None, codec: str = "fp16") -> dict[str, float]:
        """Pooled metrics of ``variant`` over the samples (or ``indices``): ``("full_prefill",)``,
        ``("full_reuse",)``, ``("prefix_reuse",)``, ``("cacheblend", ratio, check_layer, measure)``, with the chunk
        caches stored under ``codec`` (``codec.py``)."""
        idx = range(len(self.samples)) if indices is None else indices
        total, ref, fracs = Score(), Score(), []
        for k in idx:
            sc, frac = self.score_sample(k, variant, codec)
            total.add(sc)
            ref.add(self.score_sample(k, ("full_prefill",))[0])
            fracs.append(frac)
        return {"quality_loss_pct": 100.0 * (total.nll / ref.nll - 1.0), "top1_agreement": total.agree / total.n,
                "kl_nats": total.kl / total.n, "nll": total.nll / total.n, "recompute_frac": float(np.mean(fracs))}


def recovery(loss_pct: float, reuse_loss_pct: float) -> float:
    """Share of full reuse's quality loss that a variant recovers (1 = full prefill quality)."""
    return 1.0 - loss_pct / reuse_loss_pct if reuse_loss_pct > 0 else math.nan


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected in float deviations)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def cross_layer_correlation(probe: Probe, measure: str = "value", base_layer: int = 1) -> list[float]:
    """Mean over samples of the rank correlation between each layer's per-token deviation and ``base_layer``'s
    (the paper's insight: tokens with high KV deviation stay high across layers)."""
    rows = []
    for s in probe.samples:
        dev = B.layer_deviations(probe.model, s.caches, measure)
        rows.append([rank_correlation(dev[base_layer], dev[j]) for j in range(len(dev))])
    return [float(x) for x in np.mean(rows, axis=0)]


def sweep(probe: Probe, ratios: Sequence[float] = RATIOS, check_layers: Sequence[int] = (1, 2, 3),
          measures: Sequence[str] = ("value", "key", "random")) -> dict[str, Any]:
    """The quality-vs-ratio curve and the ablations (docs/kvblend.md)."""
    reuse = probe.run(("full_reuse",))
    out: dict[str, Any] = {"full_reuse": reuse, "prefix_reuse": probe.run(("prefix_reuse",)), "curves": {}}
    for c in check_layers:
        for m in measures:
            rows = []
            for r in ratios:
                row = probe.run(("cacheblend", float(r), int(c), m))
                row["ratio"] = float(r)
                row["recovery"] = recovery(row["quality_loss_pct"], reuse["quality_loss_pct"])
                row["kl_recovery"] = recovery(row["kl_nats"], reuse["kl_nats"])
                rows.append(row)
            out["curves"][f"check{c}_{m}"] = rows
    return out
