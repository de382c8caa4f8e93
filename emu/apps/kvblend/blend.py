"""CacheBlend's blend pass on the kvfetch language model (torch; imported lazily by the package).

CacheBlend (Yao et al., EuroSys '25, arXiv 2405.16444) reuses the KV caches of text chunks that were prefilled
*on their own*, then recomputes the KV of a few tokens so that the reused caches regain the cross-attention to the
chunks before them. The selection follows the released code (``vllm_blend``: ``models/llama.py`` and
``attention/backends/xformers.py``; notes in apps2.md §2.1), with the check layer and deviation measure made
configurable:

- **Offline** (``chunk_cache``): each chunk is prefilled on its own; per layer its V and its K *before RoPE* are
  stored. As in the released example (``example/blend_musique.py``: every chunk is generated as its own prompt,
  so the tokenizer puts a BOS token first, and the BOS's KV is dropped), a chunk can be prefilled after a
  ``lead`` token (our model's document separator) whose KV is not kept: the chunk's first tokens then do not
  act as the attention sink of a sequence start. The first chunk of an input starts with that token itself.
- **Blend** (``cacheblend``): the input is the chunks concatenated, then the suffix (the query).
  Cached K is re-rotated to its position in the concatenated input.

  - Layers ``< check_layer`` are recomputed for every token (the released code: layer 0).
  - At ``check_layer`` the fresh K/V of every token are computed. The deviation from the cached ones is ranked:
    the squared L2 over heads and dims of V (``measure="value"``, the released code) or of the rotated K
    (``"key"``, LMCache v1's blender). The top ``int(n_context · ratio)`` context tokens plus every suffix
    token are selected. Attention at the check layer uses the fresh K/V of all tokens; then the residual
    stream is cut to the selected tokens.
  - Layers ``> check_layer`` compute only the selected tokens. Their fresh K/V overwrite the cached K/V at
    their positions; every other position keeps the cached (re-rotated) K/V.

  The selection is made once, at one check layer. The paper's gradual layer-by-layer filtering is not in the
  released code.
- ``measure="random"`` draws the same number of tokens uniformly (an ablation).
- ``full_reuse`` recomputes only the suffix, from layer 0.
- ``prefix_reuse`` reuses the first chunk's cache (exact: it was computed at the start) and recomputes the rest.

With ``ratio=1`` every token is recomputed at every layer, so the logits equal a full prefill's (a test).

Tensors are (heads, tokens, head_dim) per layer, batch 1, float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from emu.apps.kvfetch.model import TinyLM, apply_rope

MEASURES = ("value", "key", "random")


@dataclass
class ChunkCache:
    """One chunk's offline KV: ``k`` before RoPE and ``v``, each (layers, heads, tokens, head_dim)."""

    ids: np.ndarray
    k: torch.Tensor
    v: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.k.shape[2])

    @property
    def nbytes_fp16(self) -> int:
        """Size of this cache stored as float16 (what a KV store keeps per chunk)."""
        return 2 * (self.k.numel() + self.v.numel())


@dataclass
class BlendOutput:
    """Logits of the suffix tokens (suffix, vocab) and which context tokens were recomputed."""

    logits: torch.Tensor
    selected: np.ndarray          # context positions recomputed after the check layer (sorted)
    n_context: int
    deviation: Optional[np.ndarray] = None   # per context token at the check layer (None for random/fixed)

    @property
    def recompute_frac(self) -> float:
        return len(self.selected) / self.n_context if self.n_context else 0.0


def _qkv(block, x: torch.Tensor, n_heads: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q, K (both before RoPE), V of ``x`` (1, T, d), each (H, T, hd)."""
    t = x.shape[1]
    q, k, v = block.qkv(block.norm1(x)).view(t, 3, n_heads, head_dim).permute(1, 2, 0, 3)
    return q, k, v


def _finish(block, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """Output projection, residual and MLP after attention ``att`` (H, T, hd)."""
    t = x.shape[1]
    x = x + block.proj(att.transpose(0, 1).reshape(1, t, -1))
    return x + block.fc2(F.gelu(block.fc1(block.norm2(x))))


def _rope(model: TinyLM, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    return apply_rope(x, model.rope_cos[positions], model.rope_sin[positions], model.cfg.rope_dims)


def _check_model(model: TinyLM) -> None:
    if model.shift is not None:
        raise ValueError("model: token-shift models are not supported by the blend pass (a chunk's first input "
                         "would depend on the previous chunk's last token)")


@torch.inference_mode()
def chunk_cache(model: TinyLM, ids: np.ndarray, lead: Optional[int] = None) -> ChunkCache:
    """Prefill ``ids`` on its own (after the token ``lead`` when given, whose KV is dropped) and keep every
    layer's K before RoPE and V."""
    _check_model(model)
    cfg = model.cfg
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("ids: a chunk must be a non-empty 1-D token array")
    if len(ids) + 1 > cfg.max_len:
        raise ValueError(f"ids: {len(ids)} tokens exceed the model's max_len={cfg.max_len}")
    skip = 0 if lead is None else 1
    ids_t = torch.as_tensor(ids if lead is None else np.r_[np.int64(lead), ids])
    pos = torch.arange(len(ids_t))
    x = model.embed(ids_t)[None]
    ks, vs = [], []
    for block in model.blocks:
        q, k, v = _qkv(block, x, cfg.n_heads, cfg.head_dim)
        ks.append(k)
        vs.append(v)
        att = F.scaled_dot_product_attention(_rope(model, q, pos), _rope(model, k, pos), v, is_causal=True)
        x = _finish(block, x, att)
    return ChunkCache(ids, torch.stack(ks)[:, :, skip:], torch.stack(vs)[:, :, skip:])


@torch.inference_mode()
def full_prefill_logits(model: TinyLM, chunks: Sequence[np.ndarray], suffix: np.ndarray) -> torch.Tensor:
    """Logits of the suffix tokens after a normal prefill of the whole concatenated input (the reference)."""
    ids = np.concatenate([*map(np.asarray, chunks), np.asarray(suffix)]).astype(np.int64)
    logits, _ = model(torch.as_tensor(ids)[None])
    return logits[0, -len(suffix):]


Selector = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[np.ndarray, Optional[np.ndarray]]]


@torch.inference_mode()
def blend_pass(model: TinyLM, caches: Sequence[ChunkCache], suffix: np.ndarray, *, full_layers: int,
               select: Optional[Selector] = None, fixed: Optional[np.ndarray] = None) -> BlendOutput:
    """The general blend pass.

    Layers ``< full_layers`` recompute every token. At layer ``full_layers - 1``, ``select(k_new, v_new, k_old,
    v_old)`` is called with the context tokens' rotated K and V (H, n_context, hd). It returns the context
    positions to keep recomputing and their deviation. With ``full_layers == 0``, ``fixed`` gives those
    positions from layer 0 on (empty: full reuse). The suffix is always recomputed.
    """
    _check_model(model)
    cfg = model.cfg
    if not caches:
        raise ValueError("caches: give at least one chunk")
    if not 0 <= full_layers <= cfg.n_layers:
        raise ValueError(f"full_layers: must be in [0, {cfg.n_layers}], got {full_layers!r}")
    if (full_layers > 0) != (select is not None):
        raise ValueError("blend_pass: give select with full_layers > 0, fixed with full_layers == 0")
    suffix = np.asarray(suffix, dtype=np.int64)
    if suffix.ndim != 1 or len(suffix) == 0:
        raise ValueError("suffix: must be a non-empty 1-D token array")
    n_ctx = sum(c.n_tokens for c in caches)
    n = n_ctx + len(suffix)
    if n > cfg.max_len:
        raise ValueError(f"context: {n} tokens exceed the model's max_len={cfg.max_len}")
    ids = torch.as_tensor(np.concatenate([*(c.ids for c in caches), suffix]))
    ctx_pos = torch.arange(n_ctx)
    # The cached K re-rotated to its position in the concatenated input; V as stored.
    k_old = _rope(model, torch.cat([c.k for c in caches], dim=2), ctx_pos)      # (L, H, n_ctx, hd)
    v_old = torch.cat([c.v for c in caches], dim=2)
    x = model.embed(ids)[None]
    all_pos = torch.arange(n)
    suffix_pos = np.arange(n_ctx, n)
    deviation = None
    if full_layers == 0:
        chosen = np.unique(np.asarray(fixed if fixed is not None else [], dtype=np.int64))
        if len(chosen) and (chosen[0] < 0 or chosen[-1] >= n_ctx):
            raise ValueError(f"fixed: context positions must be in [0, {n_ctx})")
        pos = torch.as_tensor(np.concatenate([chosen, suffix_pos]))
        x = x[:, pos]
    else:
        chosen = None
        pos = all_pos
    for layer, block in enumerate(model.blocks):
        q, k, v = _qkv(block, x, cfg.n_heads, cfg.head_dim)
        q, k = _rope(model, q, pos), _rope(model, k, pos)
        if layer < full_layers:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = _finish(block, x, att)
            if layer == full_layers - 1:
                chosen, deviation = select(k[:, :n_ctx], v[:, :n_ctx], k_old[layer], v_old[layer])
                chosen = np.sort(np.asarray(chosen, dtype=np.int64))
                pos = torch.as_tensor(np.concatenate([chosen, suffix_pos]))
                x = x[:, pos]
            continue
        keys = torch.empty(cfg.n_heads, n, cfg.head_dim)
        vals = torch.empty_like(keys)
        keys[:, :n_ctx], vals[:, :n_ctx] = k_old[layer], v_old[layer]
        keys[:, pos], vals[:, pos] = k, v
        mask = all_pos[None, :] <= pos[:, None]
        att = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask)
        x = _finish(block, x, att)
    logits = F.linear(model.norm(x[:, -len(suffix):]), model.embed.weight)[0]
    return BlendOutput(logits, chosen, n_ctx, deviation)


def n_selected(n_context: int, ratio: float) -> int:
    """Context tokens recomputed at ``ratio`` (the released code: ``int((N - suffix) · ratio)``)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio: must be in [0, 1], got {ratio!r}")
    return int(n_context * ratio)


def deviation_selector(ratio: float, measure: str = "value",
                       generator: Optional[torch.Generator] = None) -> Selector:
    """Top ``int(n_context · ratio)`` tokens by squared L2 deviation of V (``"value"``) or rotated K (``"key"``)
    summed over heads and dims; ``"random"`` draws as many uniformly from ``generator``."""
    if measure not in MEASURES:
        raise ValueError(f"measure: must be one of {', '.join(MEASURES)}, got {measure!r}")
    if measure == "random" and generator is None:
        raise ValueError("generator: random selection needs an explicit torch.Generator")

    def select(k_new, v_new, k_old, v_old):
        n_ctx = k_new.shape[1]
        m = n_selected(n_ctx, ratio)
        if measure == "random":
            return torch.randperm(n_ctx, generator=generator)[:m].numpy(), None
        new, old = (v_new, v_old) if measure == "value" else (k_new, k_old)
        dev = (new - old).pow(2).sum(dim=(0, 2))
        return torch.topk(dev, m).indices.numpy(), dev.numpy()

    return select


def cacheblend(model: TinyLM, caches: Sequence[ChunkCache], suffix: np.ndarray, *, ratio: float,
               check_layer: int = 1, measure: str = "value",
               generator: Optional[torch.Generator] = None) -> BlendOutput:
    """CacheBlend with the released defaults (check layer 1, value deviation); see the module doc."""
    if isinstance(check_layer, bool) or not isinstance(check_layer, int) or \
            not 0 <= check_layer < model.cfg.n_layers:
        raise ValueError(f"check_layer: must be an integer in [0, {model.cfg.n_layers - 1}], got {check_layer!r}")
    return blend_pass(model, caches, suffix, full_layers=check_layer + 1,
                      select=deviation_selector(ratio, measure, generator))


def full_reuse(model: TinyLM, caches: Sequence[ChunkCache], suffix: np.ndarray) -> BlendOutput:
    """Every chunk's cache reused as is; only the suffix is computed."""
    return blend_pass(model, caches, suffix, full_layers=0, fixed=np.zeros(0, dtype=np.int64))


def prefix_reuse(model: TinyLM, caches: Sequence[ChunkCache], suffix: np.ndarray) -> BlendOutput:
    """Prefix caching: the first chunk's cache reused (exact), every later token recomputed."""
    n0 = caches[0].n_tokens
    n_ctx = sum(c.n_tokens for c in caches)
    return blend_pass(model, caches, suffix, full_layers=0, fixed=np.arange(n0, n_ctx))


@torch.inference_mode()
def layer_deviations(model: TinyLM, caches: Sequence[ChunkCache], measure: str = "value") -> np.ndarray:
    """Per layer and context token, the squared L2 deviation between the full prefill's K/V and the reused
    (re-rotated) chunk caches: (layers, n_context). For the cross-layer rank correlation of the paper's insight
    that high-deviation tokens stay high across layers."""
    if measure not in ("value", "key"):
        raise ValueError(f"measure: must be 'value' or 'key', got {measure!r}")
    cfg = model.cfg
    ids = torch.as_tensor(np.concatenate([c.ids for c in caches]))
    n = len(ids)
    pos = torch.arange(n)
    k_old = _rope(model, torch.cat([c.k for c in caches], dim=2), pos)
    v_old = torch.cat([c.v for c in caches], dim=2)
    x = model.embed(ids)[None]
    out = []
    for layer, block in enumerate(model.blocks):
        q, k, v = _qkv(block, x, cfg.n_heads, cfg.head_dim)
        q, k = _rope(model, q, pos), _rope(model, k, pos)
        new, old = (v, v_old[layer]) if measure == "value" else (k, k_old[layer])
        out.append((new - old).pow(2).sum(dim=(0, 2)).numpy())
        x = _finish(block, x, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    return np.stack(out)
