"""The small decoder-only Transformer whose KV cache kvfetch streams (torch; imported lazily by the package).

Dataflow (pre-norm blocks, as GPT-NeoX / Llama)::

    tokens ──embed──► e_t (+ S·e_{t-1} with token_shift) ──► blocks ──RMSNorm──► embedᵀ ──► logits
    block:  x ──RMSNorm──► Wq,Wk,Wv ──► RoPE(q, k) on the first ``rope_dims`` of each head ──► cache (K, V)
            │                      softmax(q·Kᵀ / √d_head) · V  ◄──────────────────────────────────┘
            ▼                                 │ Wo
            x + attn ──RMSNorm──► W1 ─GELU─► W2 ──► x + mlp

- **RoPE** (Su et al. 2021) rotates only the first ``rope_dims`` dimensions of each head (partial rotary, as
  GPT-NeoX's ``rotary_pct``); the other dimensions carry no position (content matching at any distance).
- **Token shift** (``token_shift``; RWKV's time-mix shift, a fixed form of Olsson et al.'s "smeared keys"):
  each input adds a linear map of the previous token's embedding, so one attention layer can match "the token
  before this key" against the current token, i.e. implement an induction (copy) head without first learning a
  previous-token head. A receiver continuing from a cache then needs the id of the cache's last token
  (``prev_token``, two bytes sent with the cache).
- Cached keys are stored **after** RoPE, as real KV caches (HF ``past_key_values``) do; the codec sees these.

The KV cache of a context is exchanged with the codec as one float32 numpy array of shape
``(layers, 2, tokens, channels)`` (index 0 = keys, 1 = values; heads × head_dim merged into channels, as the
released CacheGen code does).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emu.apps.kvfetch.lm_config import LMConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rope_tables(cfg: LMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    half = cfg.rope_dims // 2
    inv = 1.0 / (cfg.rope_base ** (torch.arange(half, dtype=torch.float64) * 2 / max(cfg.rope_dims, 1)))
    ang = torch.arange(cfg.max_len, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rope_dims: int) -> torch.Tensor:
    """Rotate pairs (i, i + rope_dims/2) of the first ``rope_dims`` dims of ``x`` (B, H, T, hd)."""
    if rope_dims == 0:
        return x
    half = rope_dims // 2
    x1, x2, rest = x[..., :half], x[..., half:rope_dims], x[..., rope_dims:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm1 = RMSNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.norm2 = RMSNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.fc2 = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                past: Optional[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, tuple]:
        cfg = self.cfg
        b, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, cfg.n_heads, cfg.head_dim).permute(2, 0, 3, 1, 4)
        q = apply_rope(q, cos, sin, cfg.rope_dims)
        k = apply_rope(k, cos, sin, cfg.rope_dims)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        n_past = k.shape[2] - t
        if n_past == 0:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            mask = torch.ones(t, k.shape[2], dtype=torch.bool).tril(diagonal=n_past)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, cfg.d_model))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x, (k, v)


class TinyLM(nn.Module):
    """Decoder-only Transformer with partial RoPE, tied embeddings, an optional KV cache."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.shift = nn.Linear(cfg.d_model, cfg.d_model, bias=False) if cfg.token_shift else None
        cos, sin = _rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, generator: torch.Generator) -> None:
        """GPT-2 style init from an explicit generator (never the global torch RNG)."""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("proj.weight", "fc2.weight")) else 0.02
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=generator) * std)

    def forward(self, ids: torch.Tensor, past: Optional[Sequence[tuple[torch.Tensor, torch.Tensor]]] = None,
                start_pos: Optional[int] = None, prev_token: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, list]:
        """Logits for ``ids`` (B, T) placed after ``past`` (one (K, V) per layer, each (B, H, P, hd)).

        With ``token_shift`` a continuation needs ``prev_token`` (B,): the id of the last token the cache covers
        (what a KV-cache receiver is told along with the cache). Returns (logits (B, T, vocab), the new cache:
        past + these tokens)."""
        cfg = self.cfg
        t = ids.shape[1]
        if start_pos is None:
            start_pos = 0 if not past else past[0][0].shape[2]
        if start_pos + t > cfg.max_len:
            raise ValueError(f"context: {start_pos + t} tokens exceed the model's max_len={cfg.max_len}")
        cos = self.rope_cos[start_pos:start_pos + t]
        sin = self.rope_sin[start_pos:start_pos + t]
        x = self.embed(ids)
        if self.shift is not None:
            if start_pos > 0 and prev_token is None:
                raise ValueError("prev_token: a token-shift model continuing a cache needs the last cached token id")
            prev = self.embed(torch.as_tensor(prev_token).reshape(-1, 1)) if start_pos > 0 else \
                torch.zeros_like(x[:, :1])
            x = x + self.shift(torch.cat([prev, x[:, :-1]], dim=1))
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cos, sin, None if not past else past[i])
            new.append(kv)
        logits = F.linear(self.norm(x), self.embed.weight)
        return logits, new

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# -- KV cache <-> numpy --------------------------------------------------------------------------------------------

def cache_to_numpy(cache: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
    """(layers, 2, tokens, channels) float32 from a per-layer list of (K, V), each (1, H, T, hd)."""
    out = []
    for k, v in cache:
        _, h, t, d = k.shape
        out.append(torch.stack([k[0].permute(1, 0, 2).reshape(t, h * d), v[0].permute(1, 0, 2).reshape(t, h * d)]))
    return torch.stack(out).numpy().astype(np.float32, copy=False)


def numpy_to_cache(kv: np.ndarray, cfg: LMConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Inverse of ``cache_to_numpy``."""
    kv = np.ascontiguousarray(kv, dtype=np.float32)
    layers, two, t, c = kv.shape
    if layers != cfg.n_layers or two != 2 or c != cfg.kv_channels:
        raise ValueError(f"kv: shape {kv.shape} does not match the model ({cfg.n_layers}, 2, T, {cfg.kv_channels})")
    x = torch.from_numpy(kv).view(layers, 2, t, cfg.n_heads, cfg.head_dim).permute(0, 1, 3, 2, 4)
    return [(x[i, 0][None].contiguous(), x[i, 1][None].contiguous()) for i in range(layers)]


@torch.inference_mode()
def prefill(model: TinyLM, ids: np.ndarray, past: Optional[list] = None, block: int = 1024,
            prev_token: Optional[int] = None) -> tuple[list, torch.Tensor]:
    """Run ``ids`` through the model (in blocks of ``block`` tokens to bound memory) after ``past`` (whose last
    token is ``prev_token``).

    Returns (cache covering past + ids, logits of the last token)."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
    cache = list(past) if past else None
    logits = None
    prev = None if prev_token is None else torch.as_tensor([int(prev_token)])
    for s in range(0, ids_t.shape[1], block):
        logits, cache = model(ids_t[:, s:s + block], past=cache, prev_token=prev)
        prev = ids_t[:, s + block - 1] if s + block <= ids_t.shape[1] else None
    return cache, logits[0, -1]


@torch.inference_mode()
def extract_kv(model: TinyLM, ids: np.ndarray) -> np.ndarray:
    """The KV cache of context ``ids`` as (layers, 2, tokens, channels) float32."""
    cache, _ = prefill(model, ids)
    return cache_to_numpy(cache)

