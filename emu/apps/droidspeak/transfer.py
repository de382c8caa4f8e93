"""Per-layer KV transfer: what a sender puts on the wire, layer by layer, and what the receiver spends on each
piece (no torch at import).

This module is the separable part of DroidSpeak's network side: it knows nothing about models or groups, only
about per-layer pieces of a KV cache (and of hidden states) and a receiver compute model. Any per-layer KV
transfer with pipelined receiver work (layer-wise reuse, layer-wise blending) can build on it.

- ``encode_layer`` codes one layer's (2, tokens, channels) KV with the kvfetch codecs: ``fp16``, ``quant8``
  (uniform) or a CacheGen level (``level0`` … ``level3``, that layer's bins of the level's table for the whole
  model, so per-layer coding matches coding the whole cache at once);
- ``encode_hidden`` codes a (tokens, d_model) hidden state (the E-cache): ``fp16``, or ``quant8`` for every
  compressed codec (per-token scales over each half of the vector);
- ``TransferPlan``: the ordered pieces (bytes on the wire, receiver seconds once a piece has arrived) and the
  query prefill that follows. The endpoint (``app.py``) sends them back to back on one stream; the receiver
  processes pieces in arrival order on one processor, overlapping the transfer of later pieces.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from emu.apps.kvfetch.menu import ComputeModel

CODECS = ("fp16", "quant8", "level0", "level1", "level2", "level3")


def check_codec(name: str, what: str = "codec") -> str:
    if name not in CODECS:
        raise ValueError(f"{what}: unknown {name!r}; valid: {', '.join(CODECS)}")
    return name


def _codec(name: str, layer: int, n_layers: int):
    from emu.apps.kvfetch.codec import CacheGenCodec, Fp16Codec, QuantLevel, UniformCodec, cachegen_levels

    check_codec(name)
    if name == "fp16":
        return Fp16Codec()
    if name == "quant8":
        return UniformCodec(8)
    full = cachegen_levels(n_layers)[name]
    return CacheGenCodec(QuantLevel(f"{name}.L{layer}", (full.k_bins[layer],), (full.v_bins[layer],)))


@dataclass
class Coded:
    """One coded piece: its size on the wire, what the receiver decodes, the receiver's decode seconds' kind."""

    nbytes: int
    decoded: np.ndarray
    kind: str            # the ComputeModel option whose rate the decode costs ("fp16": none)
    n_elements: int


def encode_layer(kv_layer: np.ndarray, codec: str, layer: int, n_layers: int) -> Coded:
    """Code one layer's KV, shape (2, tokens, channels)."""
    from emu.apps.kvfetch.codec import decode_chunk

    x = np.asarray(kv_layer, dtype=np.float32)[None]
    enc = _codec(codec, layer, n_layers).encode(x)
    return Coded(enc.nbytes, decode_chunk(enc.data)[0], codec, x.size)


def encode_hidden(hidden: np.ndarray, codec: str) -> Coded:
    """Code a hidden state (tokens, d_model): float16 for ``fp16``, else 8-bit uniform (the vector's two halves
    take the places of K and V in the codec's layout, each with its own per-token scale)."""
    from emu.apps.kvfetch.codec import decode_chunk

    check_codec(codec)
    h = np.asarray(hidden, dtype=np.float32)
    t, d = h.shape
    if d % 2:
        raise ValueError(f"hidden: d_model must be even, got {d}")
    kind = "fp16" if codec == "fp16" else "quant8"
    enc = _codec(kind, 0, 1).encode(h.reshape(t, 2, d // 2).transpose(1, 0, 2)[None])
    back = decode_chunk(enc.data)[0].transpose(1, 0, 2).reshape(t, d)
    return Coded(enc.nbytes, back, kind, h.size)


@dataclass(frozen=True)
class PlanItem:
    label: str
    nbytes: int
    gpu_s: float

    def __post_init__(self) -> None:
        if self.nbytes < 0 or not self.gpu_s >= 0:
            raise ValueError(f"plan item {self.label!r}: nbytes and gpu_s must be >= 0")


@dataclass(frozen=True)
class TransferPlan:
    """What one scheme sends, in order, and the receiver's work per piece; then ``query_prefill_s``."""

    scheme: str
    items: tuple[PlanItem, ...]
    query_prefill_s: float
    full_prefill_gpu_s: float          # the receiver's own full prefill of the context (the speed-up reference)

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError(f"plan {self.scheme!r}: no items")

    @property
    def total_bytes(self) -> int:
        return sum(i.nbytes for i in self.items)

    @property
    def gpu_s(self) -> float:
        return sum(i.gpu_s for i in self.items)

    def compute_only_ttft_s(self) -> float:
        """TTFT with an infinitely fast link: the receiver's work alone."""
        return self.gpu_s + self.query_prefill_s

    @property
    def prefill_speedup(self) -> float:
        """The receiver's own full prefill (and query) over this plan's receiver work (and query): the prefill
        speed-up with the network left out."""
        return (self.full_prefill_gpu_s + self.query_prefill_s) / self.compute_only_ttft_s()


def decode_seconds(coded: Coded, compute: ComputeModel, tokens: int) -> float:
    if coded.kind == "fp16":
        return 0.0
    return compute.seconds(coded.kind, tokens, coded.n_elements)


def recompute_seconds(layers: int, n_layers: int, tokens: int, compute: ComputeModel) -> float:
    """Receiver seconds to recompute ``layers`` of ``n_layers`` over ``tokens`` (a layer costs 1/L of a prefill)."""
    return layers / n_layers * tokens / compute.prefill_tok_s


def simulate_receiver(plan: TransferPlan, arrivals_s: list[float]) -> tuple[float, list[float]]:
    """(TTFT, per-piece finish times) for pieces arriving at ``arrivals_s`` (seconds since the request), processed
    in order on one processor; the query prefill follows the last piece."""
    if len(arrivals_s) != len(plan.items):
        raise ValueError(f"arrivals: {len(arrivals_s)} times for {len(plan.items)} items")
    free = 0.0
    done = []
    for item, t in zip(plan.items, arrivals_s):
        free = max(free, t) + item.gpu_s
        done.append(free)
    return free + plan.query_prefill_s, done
