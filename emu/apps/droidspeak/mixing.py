"""Cross-model KV reuse with a recomputed layer group (DroidSpeak, arXiv 2411.02820; torch, imported lazily).

A sender agent S and a receiver agent R share an architecture (fine-tunes of one base). S has prefilled a context
and holds, for every layer ``l``, its KV cache ``KV_S[l]`` and the hidden state entering the layer ``E_S[l]``
(the "E-cache"; ``E_S[0]`` is the token embedding). R reuses ``KV_S`` for every layer outside one contiguous
group ``[a, b]`` and recomputes the group with its own weights, starting from the sender's ``E_S[a]`` (the
transition; for ``a = 0`` R embeds the tokens itself)::

    layers      0 .. a-1          a .. b               b+1 .. L-1
    R's cache   KV_S (reused)     R's blocks on E_S[a]  KV_S (reused)

``group = None`` is full reuse (every layer from S); ``(0, L-1)`` is R's own full prefill. That the critical
layers are found per pair by profiling contiguous groups, and that the E-cache enters at the transition, are
from a third-party review of the paper (apps2.md §3.1, [3P], unverified); the mechanism here is this project's
reading of it.

Quality is measured against R's own full prefill of the same context, on the continuation that follows it:
``loss_increase_pct`` = 100 · (mean NLL(mixed) / mean NLL(own prefill) − 1) and ``top1_agreement`` = the share
of continuation positions where R's top-1 token is the same as with its own cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Group = Optional[tuple[int, int]]


def groups(n_layers: int) -> list[tuple[int, int]]:
    """Every contiguous group [a, b] of ``n_layers`` layers (n(n+1)/2 of them), by start then end."""
    return [(a, b) for a in range(n_layers) for b in range(a, n_layers)]


def group_size(group: Group) -> int:
    return 0 if group is None else group[1] - group[0] + 1


def check_group(group: Group, n_layers: int) -> Group:
    if group is None:
        return None
    a, b = group
    if not (isinstance(a, int) and isinstance(b, int) and 0 <= a <= b < n_layers):
        raise ValueError(f"group: expected 0 <= start <= end < {n_layers}, got {group!r}")
    return (a, b)


def _embed(model, ids: torch.Tensor) -> torch.Tensor:
    """The input of block 0 for a context starting at position 0 (what ``TinyLM.forward`` computes first)."""
    x = model.embed(ids)
    if model.shift is not None:
        x = x + model.shift(torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1))
    return x


@dataclass
class SenderState:
    """What the sender holds after prefilling a context: per-layer KV and the hidden state entering each layer."""

    kv: list            # [(K, V)] per layer, each (1, H, T, hd)
    hidden: list        # [E_0 .. E_{L-1}], each (1, T, d_model)


@torch.inference_mode()
def sender_state(model, ids: np.ndarray) -> SenderState:
    """Prefill ``ids`` with ``model`` recording the KV cache and every layer's input."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
    t = ids_t.shape[1]
    if t > model.cfg.max_len:
        raise ValueError(f"context: {t} tokens exceed the model's max_len={model.cfg.max_len}")
    cos, sin = model.rope_cos[:t], model.rope_sin[:t]
    x = _embed(model, ids_t)
    kv, hidden = [], []
    for block in model.blocks:
        hidden.append(x)
        x, pair = block(x, cos, sin, None)
        kv.append(pair)
    return SenderState(kv, hidden)


@torch.inference_mode()
def recompute_group(model, ids: np.ndarray, entry: Optional[torch.Tensor], group: tuple[int, int]) -> list:
    """The receiver's own KV for layers ``group`` = [a, b], from ``entry`` (the hidden state entering layer a; None
    when a = 0: the receiver embeds ``ids`` itself)."""
    a, b = group
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
    t = ids_t.shape[1]
    cos, sin = model.rope_cos[:t], model.rope_sin[:t]
    x = _embed(model, ids_t) if a == 0 else entry
    out = []
    for layer in range(a, b + 1):
        x, pair = model.blocks[layer](x, cos, sin, None)
        out.append(pair)
    return out


def mixed_cache(receiver, ids: np.ndarray, sender: SenderState, group: Group,
                entry: Optional[torch.Tensor] = None) -> list:
    """The receiver's cache: ``sender.kv`` outside ``group``, recomputed inside it from the sender's E-cache
    (``entry`` overrides ``sender.hidden[a]``, e.g. with a decoded copy)."""
    cache = list(sender.kv)
    group = check_group(group, len(cache))
    if group is not None:
        a, b = group
        e = None if a == 0 else (entry if entry is not None else sender.hidden[a])
        cache[a:b + 1] = recompute_group(receiver, ids, e, group)
    return cache


@dataclass
class Reference:
    """The receiver's own prefill of a context and its continuation scores (what reuse is judged against)."""

    mean_nll: float
    top1: torch.Tensor
    n: int


@torch.inference_mode()
def continuation(model, cache: Sequence, ids: np.ndarray, cont: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token NLL, top-1 ids) of ``cont[1:]`` predicted from ``cont[:-1]`` read after ``cache`` of ``ids``."""
    x = torch.as_tensor(np.asarray(cont[:-1], dtype=np.int64))[None]
    prev = torch.as_tensor([int(ids[-1])])
    logits, _ = model(x, past=list(cache), prev_token=prev)
    target = torch.as_tensor(np.asarray(cont[1:], dtype=np.int64))
    return F.cross_entropy(logits[0], target, reduction="none"), logits[0].argmax(-1)


def reference(receiver, ids: np.ndarray, cont: np.ndarray) -> Reference:
    own = sender_state(receiver, ids)
    nll, top1 = continuation(receiver, own.kv, ids, cont)
    return Reference(float(nll.mean()), top1, len(top1))


@dataclass
class Quality:
    loss_increase_pct: float
    top1_agreement: float
    mean_nll: float


def judge(receiver, cache: Sequence, ids: np.ndarray, cont: np.ndarray, ref: Reference) -> Quality:
    nll, top1 = continuation(receiver, cache, ids, cont)
    mean = float(nll.mean())
    return Quality(100.0 * (mean / ref.mean_nll - 1.0), float((top1 == ref.top1).float().mean()), mean)


def cache_to_layers(cache: Sequence) -> list[np.ndarray]:
    """Per layer (2, T, channels) float32 (K and V with heads merged, the codec's layout)."""
    from emu.apps.kvfetch.model import cache_to_numpy

    kv = cache_to_numpy(cache)
    return [kv[i] for i in range(kv.shape[0])]


def layers_to_cache(layers: Sequence[np.ndarray], cfg) -> list:
    from emu.apps.kvfetch.model import numpy_to_cache

    return numpy_to_cache(np.stack(layers), cfg)


def kv_deviation(a: SenderState, b: SenderState) -> list[float]:
    """Per layer ||KV_a − KV_b|| / ||KV_b|| (keys and values together) for one context."""
    out = []
    for (ka, va), (kb, vb) in zip(a.kv, b.kv):
        num = float((ka - kb).pow(2).sum() + (va - vb).pow(2).sum())
        den = float(kb.pow(2).sum() + vb.pow(2).sum())
        out.append((num / den) ** 0.5)
    return out
