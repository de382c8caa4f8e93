"""What a KV server can send for each chunk of a context, and what the receiver spends on it (no torch at import).

``prepare_context`` takes a context's real KV cache (the committed model's prefill) and encodes every chunk of
``chunk_tokens`` with every option: the CacheGen levels (``level0`` … ``level3``, bins per layer from the released
tables), 8- and 4-bit uniform quantisation, and text (the chunk's UTF-8 bytes). ``make_menu`` turns the real
encoded sizes and the receiver compute model into the ``ChunkMenu`` the controllers choose from.

Receiver compute model (``ComputeModel``; [DESIGN], calibrated on this project's CPU, docs/kvfetch.md):
recompute (prefill) of text at ``prefill_tok_s``, arithmetic decoding at ``decode_el_s``, dequantisation at
``dequant_el_s``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from emu.apps.kvfetch.controller import ChunkMenu
from emu.validate import check_number

# Calibration (docs/kvfetch.md "Receiver compute model"): ``python -m emu.apps.kvfetch.calibrate`` on this
# project's 2-core CPU with the committed model, torch 2.13 with 2 threads, median of 5 runs. Measured prefill:
# 10,152 tokens/s; the default is that times ``served_model_scale`` (0.094): LongChat-7B's recompute cost per KV
# element on this hardware. Decoding: the slowest CacheGen level (level3, 39.6 M elements/s; level1 45.7 M);
# dequantisation: the slower uniform baseline (4-bit, 1.14 G elements/s).
PREFILL_TOKENS_PER_S = 956.0           # recompute of text (served-model scale)
AC_DECODE_ELEMENTS_PER_S = 40e6        # constriction range decoding + dequantisation
DEQUANT_ELEMENTS_PER_S = 1.1e9         # uint8/nibble unpack + scale (numpy)

MIN_CONTEXT, MAX_CONTEXT = 256, 8192


@dataclass(frozen=True, kw_only=True)
class ComputeModel:
    """Seconds the receiver spends per chunk (decode or recompute) and on the query."""

    prefill_tok_s: float = PREFILL_TOKENS_PER_S
    decode_el_s: float = AC_DECODE_ELEMENTS_PER_S
    dequant_el_s: float = DEQUANT_ELEMENTS_PER_S

    def __post_init__(self) -> None:
        check_number("prefill_tok_s", self.prefill_tok_s, lo=1.0, hi=1e9)
        check_number("decode_el_s", self.decode_el_s, lo=1.0, hi=1e12)
        check_number("dequant_el_s", self.dequant_el_s, lo=1.0, hi=1e12)

    def seconds(self, option: str, n_tokens: int, n_elements: int) -> float:
        if option == "text":
            return n_tokens / self.prefill_tok_s
        if option.startswith("level"):
            return n_elements / self.decode_el_s
        if option.startswith("quant"):
            return n_elements / self.dequant_el_s
        return 0.0


@dataclass
class Prepared:
    """One context: its tokens, original KV and every option's encoded chunks."""

    ids: np.ndarray
    cont: np.ndarray
    kv: np.ndarray
    bounds: list[tuple[int, int]]
    encoded: dict[str, list]          # option -> [EncodedChunk | bytes (text)]
    decoded: dict[str, list]          # option -> [np.ndarray] per chunk (KV options)
    nbytes: dict[str, list[int]]


def prepare_context(model, tokenizer, ids: np.ndarray, cont: np.ndarray, *, chunk_tokens: int,
                    delta: bool = False) -> Prepared:
    """Extract the KV cache of ``ids`` and encode each chunk with every option (``cont``: the continuation,
    kept for quality scoring)."""
    from emu.apps.kvfetch.codec import CacheGenCodec, UniformCodec, cachegen_levels, chunk_bounds, decode_chunk
    from emu.apps.kvfetch.quality import original_kv

    kv = original_kv(model, ids)
    bounds = chunk_bounds(len(ids), chunk_tokens)
    codecs: dict[str, Any] = {name: CacheGenCodec(level, delta=delta)
                              for name, level in cachegen_levels(model.cfg.n_layers).items()}
    codecs["quant8"] = UniformCodec(8)
    codecs["quant4"] = UniformCodec(4)
    encoded, decoded, nbytes = {}, {}, {}
    for name, codec in codecs.items():
        chunks = [codec.encode(kv[:, :, s:e]) for s, e in bounds]
        encoded[name] = chunks
        decoded[name] = [decode_chunk(c.data) for c in chunks]
        nbytes[name] = [c.nbytes for c in chunks]
    texts = [tokenizer.decode(ids[s:e].tolist()).encode("utf-8") for s, e in bounds]
    encoded["text"] = texts
    nbytes["text"] = [len(t) for t in texts]
    return Prepared(ids, cont, kv, bounds, encoded, decoded, nbytes)


def make_menu(prep: Prepared, compute: ComputeModel, *, n_layers: int, channels: int,
              query_tokens: int) -> ChunkMenu:
    """The options of every chunk of ``prep``: real sizes, and receiver seconds from ``compute``."""
    gpu = {}
    for option in prep.nbytes:
        gpu[option] = [compute.seconds(option, e - s, n_layers * 2 * (e - s) * channels) for s, e in prep.bounds]
    levels = tuple(sorted((o for o in prep.nbytes if o.startswith("level")), reverse=True))
    return ChunkMenu(nbytes=prep.nbytes, gpu_s=gpu, levels=levels,
                     query_prefill_s=query_tokens / compute.prefill_tok_s)


def pick_context(stream: np.ndarray, rng: np.random.Generator, context_tokens: int,
                 cont_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded window of the held-out stream: (context ids, continuation ids)."""
    need = context_tokens + cont_tokens
    if need > len(stream):
        raise ValueError(f"context_tokens: {context_tokens} + {cont_tokens} continuation tokens exceed the "
                         f"held-out text ({len(stream)} tokens)")
    start = int(rng.integers(0, len(stream) - need + 1))
    return stream[start:start + context_tokens], stream[start + context_tokens:start + need]


def build_menu(*, context_tokens: int, chunk_tokens: int, delta: bool, query_tokens: int, compute: ComputeModel,
               rng: np.random.Generator, models_dir: Optional[str] = None) -> ChunkMenu:
    """A menu from scratch: load the committed model, pick a held-out context with ``rng``, encode it."""
    from emu.apps.kvfetch.weights import load_model
    from emu.apps.textdata import held_out_stream

    model, tokenizer, _ = load_model(models_dir)
    ids, cont = pick_context(held_out_stream(tokenizer), rng, context_tokens, 2)
    prep = prepare_context(model, tokenizer, ids, cont, chunk_tokens=chunk_tokens, delta=delta)
    return make_menu(prep, compute, n_layers=model.cfg.n_layers, channels=model.cfg.kv_channels,
                     query_tokens=query_tokens)
