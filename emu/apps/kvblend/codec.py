"""Chunk caches through the kvfetch codec: what a KV store holding CacheGen-coded chunks sends and what the
receiver blends with (torch and constriction; imported lazily).

``kv_codec="fp16"`` keeps the caches as computed (2 bytes per element on the wire). A CacheGen level
(``level0`` … ``level3``, ``emu.apps.kvfetch.codec``: per-token quantisation with per-layer bins, arithmetic
coding) encodes each chunk's ``(layers, 2, tokens, channels)`` cache, K before RoPE as stored; the sizes are the
real encoded sizes and the blend pass uses the decoded caches, so the quality loss of the coding is measured.
"""
from __future__ import annotations

import numpy as np
import torch

from emu.apps.kvblend.blend import ChunkCache

FP16 = "fp16"


def codec_names(n_layers: int) -> tuple[str, ...]:
    from emu.apps.kvfetch.codec import cachegen_levels

    return (FP16, *sorted(cachegen_levels(n_layers)))


def _to_array(c: ChunkCache) -> np.ndarray:
    layers, heads, t, hd = c.k.shape
    kv = torch.stack([c.k, c.v], dim=1)                       # (L, 2, H, T, hd)
    return kv.permute(0, 1, 3, 2, 4).reshape(layers, 2, t, heads * hd).numpy()


def _from_array(ids: np.ndarray, kv: np.ndarray, heads: int) -> ChunkCache:
    layers, _, t, channels = kv.shape
    x = torch.from_numpy(np.ascontiguousarray(kv, dtype=np.float32)).view(layers, 2, t, heads, channels // heads)
    x = x.permute(0, 1, 3, 2, 4)
    return ChunkCache(ids, x[:, 0].contiguous(), x[:, 1].contiguous())


def encode_caches(caches: list[ChunkCache], codec: str) -> tuple[list[ChunkCache], list[int]]:
    """(the caches as the receiver decodes them, encoded bytes of each chunk) under ``codec``."""
    if codec == FP16:
        return list(caches), [c.nbytes_fp16 for c in caches]
    from emu.apps.kvfetch.codec import CacheGenCodec, cachegen_levels, decode_chunk

    n_layers, heads = caches[0].k.shape[0], caches[0].k.shape[1]
    levels = cachegen_levels(n_layers)
    if codec not in levels:
        raise ValueError(f"kv_codec: unknown {codec!r}; valid: {', '.join(codec_names(n_layers))}")
    coder = CacheGenCodec(levels[codec])
    decoded, sizes = [], []
    for c in caches:
        enc = coder.encode(_to_array(c))
        decoded.append(_from_array(c.ids, decode_chunk(enc.data), heads))
        sizes.append(enc.nbytes)
    return decoded, sizes
