"""KV-cache codecs: CacheGen-style quantisation + arithmetic coding, and the uniform-quantisation baselines.

Works on numpy arrays only (no torch): a chunk of a KV cache is ``(layers, 2, tokens, channels)`` float32, index
0 of the second axis = keys, 1 = values, heads × head_dim merged into channels (as the released code does).

CacheGen codec (``CacheGenCodec``), after the released code (UChi-JCL/CacheGen @ 6bed34c, LMCache serde
``cachegen_encoder.py``/``cachegen_decoder.py``/``cachegen_basics.py``; apps.md §4.2)::

    chunk x (L, 2, T, C)
      │ per (layer, K|V, token): s = max_c |x|  (stored as float16)          [torch_quant_vectorized]
      │ q = round(x · C_l / s) + C_l,  C_l = bins_l / 2 − 1,  q ∈ [0, 2 C_l]  (bins_l from the level table)
      ▼
    symbols q ──► per (layer, K|V, channel) histogram of this chunk ──► integer frequency table (shipped)
      │                                                                      │
      └────────────── constriction range coder, Categorical(table) ◄────────┘──► payload

- **Levels** (``cachegen_levels``): the released bins-per-layer table (Mistral-7B, 32 layers: K 16/16/12,
  32/16/16, 32/32/32 for layers 0-9/10-19/20-31; V 16/12, 32/16, 32/32 for layers 0-1/2-31) mapped onto a model
  with fewer layers by relative depth: layer i of n takes the row of layer ⌊32 · i / n⌋ of Mistral's table.
- **Tables** (``table_bits=4``): for each (layer, K|V, channel) the decoder must know the chunk's symbol
  distribution. The released code ships a 33-entry int16 CDF per (layer, channel) (66 B); here each table is the
  support ``[lo, hi]`` (2 B) plus one 4-bit log-frequency code per symbol of the support: code 0 = absent, code c ≥
  1 = weight round(2^((c − 1)·2/3)) (relative step 1.59, 1 … 645). ``table_bits=8`` stores 8-bit codes (step
  2^(1/16)); ``table_bits=16`` stores exact 16-bit counts (clamped). The coder uses the *decoded* integer
  weights on both sides, so encoding and decoding are bit-exact.
- **Delta-to-anchor** (``delta=True``; the paper's §5.2 [RECALL/3P], *absent from every released version*,
  issue UChi-JCL/CacheGen#6): tokens in groups of ``group`` (10); the first token of each group (the anchor) is
  quantised on its own with ``anchor_bins`` (256) bins; every other token is coded as its difference to the
  *decoded* anchor, quantised per token with the layer's bins. Anchors and deltas have separate tables (anchors
  one table per (layer, K|V), deltas one per (layer, K|V, channel)).

Baselines (``UniformCodec``): per-(layer, K|V, token) symmetric uniform quantisation to ``bits`` (8: 255 levels,
the released ``run_quantization_baseline.py --bins 256``; 4: 15 levels), packed, plus float16 scales; no
entropy coding. ``Fp16Codec``: the raw cache in float16.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

MAGIC = b"KVG1"
_HEADER = struct.Struct("<4sBBBBHHHH")   # magic, kind, flags, table_bits, group, layers, tokens, channels, anchor_bins
KIND_CACHEGEN, KIND_UNIFORM, KIND_FP16 = 1, 2, 3
FLAG_DELTA = 1

# Released bins-per-layer table (cachegen_basics.py, Mistral-7B, 32 layers): level -> (K bins for layers 0-9,
# 10-19, 20-31; V bins for layers 0-1, 2-31).
RELEASED_LEVELS = {
    1: ((16, 16, 12), (16, 12)),
    2: ((32, 16, 16), (32, 16)),
    3: ((32, 32, 32), (32, 32)),
}
# Where the released table's bands end, as fractions of the depth (Mistral-7B: K at layers 10 and 20 of 32, V at 2).
RELEASED_EDGES = ((Fraction(10, 32), Fraction(20, 32), Fraction(1)), (Fraction(2, 32), Fraction(1)))


@dataclass(frozen=True)
class QuantLevel:
    """Bins per layer for keys and values (more bins = finer = bigger)."""

    name: str
    k_bins: tuple[int, ...]
    v_bins: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.k_bins) != len(self.v_bins) or not self.k_bins:
            raise ValueError(f"level {self.name}: k_bins and v_bins must be non-empty and equally long")
        for b in (*self.k_bins, *self.v_bins):
            if not isinstance(b, (int, np.integer)) or not 4 <= b <= 256 or b % 2:
                raise ValueError(f"level {self.name}: bins must be even integers in [4, 256], got {b!r}")

    @property
    def n_layers(self) -> int:
        return len(self.k_bins)

    def bins(self) -> np.ndarray:
        """(layers, 2) array of bins."""
        return np.array([self.k_bins, self.v_bins], dtype=np.int64).T


# An older released configuration (UChi-JCL/CacheGen @ 28549b7, ``quantization2.json``; apps.md §4.2): K 32/16/8
# bins, V 32/8. Its layer splits are taken to be those of the sibling ``quantization.json`` (K at 1/4 and 1/2 of
# the depth, V at 1/8) [assumption: the split of quantization2 itself was not recorded].
OLDER_RELEASED_LEVEL0 = ((32, 16, 8), (32, 8))
OLDER_RELEASED_EDGES = ((Fraction(1, 4), Fraction(1, 2), Fraction(1)), (Fraction(1, 8), Fraction(1)))


def _band_bins(edges: tuple[Fraction, ...], bins: tuple[int, ...], n_layers: int) -> tuple[int, ...]:
    """Bins of each of ``n_layers`` layers: layer i takes the band its relative depth i / n_layers falls in."""
    return tuple(next(b for edge, b in zip(edges, bins) if Fraction(i, n_layers) < edge) for i in range(n_layers))


def cachegen_levels(n_layers: int) -> dict[str, QuantLevel]:
    """``level0`` (smallest) … ``level3`` (best), mapped onto ``n_layers`` by relative depth: levels 1-3 are the
    released table (``RELEASED_LEVELS``), level 0 the older released ``quantization2`` configuration (8 bins for
    the deep half of the keys and all but the shallowest values)."""
    tables = {"level0": (OLDER_RELEASED_LEVEL0, OLDER_RELEASED_EDGES),
              **{f"level{lv}": (RELEASED_LEVELS[lv], RELEASED_EDGES) for lv in sorted(RELEASED_LEVELS)}}
    return {name: QuantLevel(name, _band_bins(k_edges, k, n_layers), _band_bins(v_edges, v, n_layers))
            for name, ((k, v), (k_edges, v_edges)) in tables.items()}


# -- quantisation (released code: per (layer, K|V, token) symmetric, scale = max over channels) ------------------

def token_scales(x: np.ndarray) -> np.ndarray:
    """float16 max|x| over channels: (..., T, C) -> (..., T); zero rows get scale 1."""
    s = np.abs(x).max(axis=-1).astype(np.float16)
    s[s == 0] = 1.0
    return s


def quantize(x: np.ndarray, half_levels: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """q = round(x · C / s) + C, clipped to [0, 2C]; ``half_levels`` C broadcast over (..., T, C)."""
    c = half_levels[..., None, None].astype(np.float32)
    q = np.rint(x * (c / scales.astype(np.float32)[..., None])) + c
    return np.clip(q, 0, 2 * c).astype(np.int32)


def dequantize(q: np.ndarray, half_levels: np.ndarray, scales: np.ndarray) -> np.ndarray:
    c = half_levels[..., None, None].astype(np.float32)
    return ((q.astype(np.float32) - c) * (scales.astype(np.float32)[..., None] / c)).astype(np.float32)


# -- frequency tables ----------------------------------------------------------------------------------------------

_W4 = np.array([0] + [int(round(2 ** ((c - 1) * 2 / 3))) for c in range(1, 16)], dtype=np.int64)
_W8 = np.array([0] + [int(round(2 ** ((c - 1) / 16))) for c in range(1, 256)], dtype=np.int64)


def _counts_to_codes(counts: np.ndarray, table_bits: int) -> np.ndarray:
    """Per-row counts (R, S) -> codes (R, S) whose weights approximate the counts (0 = absent)."""
    counts = counts.astype(np.float64)
    if table_bits == 16:
        return np.minimum(counts, 65535).astype(np.int64)
    top = (len(_W4) if table_bits == 4 else len(_W8)) - 1
    step = 2 / 3 if table_bits == 4 else 1 / 16
    wmax = 2 ** ((top - 1) * step)
    rel = counts / np.maximum(counts.max(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore"):
        code = 1 + np.clip(np.rint(np.log2(np.maximum(rel * wmax, 1e-300)) / step), 0, top - 1)
    return np.where(counts > 0, code, 0).astype(np.int64)


def _codes_to_weights(codes: np.ndarray, table_bits: int) -> np.ndarray:
    if table_bits == 16:
        return codes.astype(np.int64)
    return (_W4 if table_bits == 4 else _W8)[codes]


@dataclass
class _Tables:
    """Frequency tables of a set of streams: support [lo, hi] and integer weights per stream."""

    lo: np.ndarray                      # (R,)
    hi: np.ndarray                      # (R,)
    weights: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0
    entropy_bits: float = float("nan")  # sum over rows of N · H(row's empirical distribution)


def _pack_all(codes: np.ndarray, table_bits: int) -> bytes:
    if table_bits == 4:
        c = codes.astype(np.uint8)
        if len(c) % 2:
            c = np.append(c, np.zeros(1, np.uint8))
        return (c[0::2] | (c[1::2] << 4)).tobytes()
    if table_bits == 8:
        return codes.astype(np.uint8).tobytes()
    return codes.astype("<u2").tobytes()


def _unpack_all(buf: memoryview, offset: int, n: int, table_bits: int) -> tuple[np.ndarray, int]:
    if table_bits == 4:
        nb = (n + 1) // 2
        b = np.frombuffer(buf, dtype=np.uint8, count=nb, offset=offset)
        c = np.empty(2 * nb, dtype=np.int64)
        c[0::2] = b & 15
        c[1::2] = b >> 4
        return c[:n], offset + nb
    if table_bits == 8:
        return np.frombuffer(buf, dtype=np.uint8, count=n, offset=offset).astype(np.int64), offset + n
    return np.frombuffer(buf, dtype="<u2", count=n, offset=offset).astype(np.int64), offset + 2 * n


def _build_tables(symbols: np.ndarray, table_bits: int) -> tuple[_Tables, bytes]:
    """``symbols`` (R, N) int -> tables (one per row) and their serialised bytes.

    Layout: lo (R bytes), hi (R bytes), then the codes of every row's support, concatenated and packed."""
    rows, n = symbols.shape
    lo = symbols.min(axis=1).astype(np.int64)
    hi = symbols.max(axis=1).astype(np.int64)
    width = int((hi - lo).max()) + 1
    flat = (np.arange(rows, dtype=np.int64)[:, None] * width + (symbols - lo[:, None])).ravel()
    counts = np.bincount(flat, minlength=rows * width).reshape(rows, width)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(counts > 0, counts * np.log2(np.maximum(counts, 1) / n), 0.0)
    codes = _counts_to_codes(counts, table_bits)
    lengths = hi - lo + 1
    inside = np.arange(width)[None, :] < lengths[:, None]
    blob = lo.astype(np.uint8).tobytes() + hi.astype(np.uint8).tobytes() + _pack_all(codes[inside], table_bits)
    weights_all = _codes_to_weights(codes, table_bits)
    tables = _Tables(lo, hi, [weights_all[r, :lengths[r]] for r in range(rows)], len(blob),
                     float(-plogp.sum()))
    return tables, blob


def _read_tables(buf: memoryview, offset: int, rows: int, table_bits: int) -> tuple[_Tables, int]:
    if offset + 2 * rows > len(buf):
        raise ValueError("kv chunk: truncated frequency tables")
    lo = np.frombuffer(buf, dtype=np.uint8, count=rows, offset=offset).astype(np.int64)
    hi = np.frombuffer(buf, dtype=np.uint8, count=rows, offset=offset + rows).astype(np.int64)
    start = offset
    offset += 2 * rows
    if np.any(hi < lo):
        raise ValueError("kv chunk: corrupt frequency table (hi < lo)")
    lengths = hi - lo + 1
    codes, offset = _unpack_all(buf, offset, int(lengths.sum()), table_bits)
    weights = _codes_to_weights(codes, table_bits)
    tables = _Tables(lo, hi, np.split(weights, np.cumsum(lengths)[:-1]), offset - start)
    return tables, offset


def _model(weights: np.ndarray):
    import constriction

    return constriction.stream.model.Categorical(weights.astype(np.float64), perfect=False)


def _encode_rows(encoder, symbols: np.ndarray, tables: _Tables) -> None:
    for r in range(symbols.shape[0]):
        if tables.hi[r] == tables.lo[r]:
            continue                    # a single-symbol distribution costs no bits
        encoder.encode((symbols[r] - tables.lo[r]).astype(np.int32), _model(tables.weights[r]))


def _decode_rows(decoder, tables: _Tables, n: int) -> np.ndarray:
    rows = len(tables.lo)
    out = np.zeros((rows, n), dtype=np.int32)
    decode = decoder.decode
    single = tables.hi == tables.lo
    for r in range(rows):
        if not single[r]:
            out[r] = decode(_model(tables.weights[r]), n)
    out += tables.lo[:, None].astype(np.int32)
    return out


def entropy_bits(symbols: np.ndarray) -> float:
    """Sum over rows of N · H(empirical distribution of the row), in bits (the bound for per-row static models)."""
    total = 0.0
    for row in symbols:
        _, counts = np.unique(row, return_counts=True)
        p = counts / counts.sum()
        total += float(-(counts * np.log2(p)).sum())
    return total


# -- codecs --------------------------------------------------------------------------------------------------------

@dataclass
class EncodedChunk:
    """Bytes of one chunk and where they went (for bits-per-element accounting)."""

    data: bytes
    payload_bytes: int
    table_bytes: int
    scale_bytes: int
    header_bytes: int
    n_elements: int
    entropy_bits: float = float("nan")   # empirical entropy bound of the coded symbols (per-table static models)

    @property
    def nbytes(self) -> int:
        return len(self.data)


class CacheGenCodec:
    """Quantise per token with per-layer bins, then arithmetic-code per (layer, K|V, channel) (see module doc)."""

    def __init__(self, level: QuantLevel, *, delta: bool = False, group: int = 10, anchor_bins: int = 256,
                 table_bits: int = 4) -> None:
        if table_bits not in (4, 8, 16):
            raise ValueError(f"table_bits: must be 4, 8 or 16, got {table_bits!r}")
        if not isinstance(group, int) or not 2 <= group <= 255:
            raise ValueError(f"group: must be an integer in [2, 255], got {group!r}")
        if not isinstance(anchor_bins, int) or not 4 <= anchor_bins <= 256 or anchor_bins % 2:
            raise ValueError(f"anchor_bins: must be an even integer in [4, 256], got {anchor_bins!r}")
        self.level = level
        self.delta = bool(delta)
        self.group = group
        self.anchor_bins = anchor_bins
        self.table_bits = table_bits
        self.name = level.name + ("+delta" if delta else "")

    # The quantised representation (also used for entropy statistics).
    def _half(self, n_layers: int) -> np.ndarray:
        if n_layers != self.level.n_layers:
            raise ValueError(f"kv: {n_layers} layers, but level {self.level.name} is for {self.level.n_layers}")
        return self.level.bins() // 2 - 1                                    # (L, 2)

    def encode(self, x: np.ndarray) -> EncodedChunk:
        import constriction

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 2:
            raise ValueError(f"kv chunk: expected shape (layers, 2, tokens, channels), got {x.shape}")
        n_layers, _, t, c = x.shape
        if not 1 <= t <= 65535 or not 1 <= c <= 65535:
            raise ValueError(f"kv chunk: tokens and channels must be in [1, 65535], got {t} and {c}")
        half = self._half(n_layers)
        encoder = constriction.stream.queue.RangeEncoder()
        flags = FLAG_DELTA if self.delta else 0
        header = _HEADER.pack(MAGIC, KIND_CACHEGEN, flags, self.table_bits, self.group, n_layers, t, c,
                              self.anchor_bins)
        parts = [header, _bins_bytes(self.level)]
        if not self.delta:
            scales = token_scales(x)                                          # (L, 2, T)
            q = quantize(x, half, scales)                                     # (L, 2, T, C)
            rows = q.transpose(0, 1, 3, 2).reshape(-1, t)                     # (L*2*C, T)
            tables, tblob = _build_tables(rows, self.table_bits)
            _encode_rows(encoder, rows, tables)
            scale_blob = scales.astype("<f2").tobytes()
            ent = tables.entropy_bits
            table_bytes = tables.nbytes
        else:
            anchors_idx = np.arange(0, t, self.group)
            a_half = np.full_like(half, self.anchor_bins // 2 - 1)
            a = x[:, :, anchors_idx]                                          # (L, 2, A, C)
            a_scales = token_scales(a)
            a_q = quantize(a, a_half, a_scales)
            a_hat = dequantize(a_q, a_half, a_scales)
            ref = np.repeat(a_hat, self.group, axis=2)[:, :, :t]
            mask = np.ones(t, dtype=bool)
            mask[anchors_idx] = False
            d = (x - ref)[:, :, mask]                                         # (L, 2, D, C)
            d_scales = token_scales(d) if d.shape[2] else np.zeros(d.shape[:3], np.float16)
            d_q = quantize(d, half, d_scales) if d.shape[2] else np.zeros(d.shape, np.int32)
            a_rows = a_q.reshape(n_layers * 2, -1)                            # one table per (layer, K|V)
            d_rows = d_q.transpose(0, 1, 3, 2).reshape(-1, d.shape[2])        # one per (layer, K|V, channel)
            a_tables, a_blob = _build_tables(a_rows, self.table_bits)
            tblob = a_blob
            table_bytes = a_tables.nbytes
            _encode_rows(encoder, a_rows, a_tables)
            ent = a_tables.entropy_bits
            if d.shape[2]:
                d_tables, d_blob = _build_tables(d_rows, self.table_bits)
                tblob += d_blob
                table_bytes += d_tables.nbytes
                _encode_rows(encoder, d_rows, d_tables)
                ent += d_tables.entropy_bits
            scale_blob = a_scales.astype("<f2").tobytes() + d_scales.astype("<f2").tobytes()
        payload = encoder.get_compressed().astype("<u4").tobytes()
        parts += [scale_blob, tblob, struct.pack("<I", len(payload)), payload]
        data = b"".join(parts)
        return EncodedChunk(data, len(payload), table_bytes, len(scale_blob), len(header) + 2 * n_layers + 4, x.size,
                            ent)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_chunk(data)


def _parse_header(buf: memoryview) -> tuple:
    if len(buf) < _HEADER.size:
        raise ValueError("kv chunk: truncated header")
    fields = _HEADER.unpack_from(buf, 0)
    if fields[0] != MAGIC:
        raise ValueError(f"kv chunk: bad magic {bytes(fields[0])!r}")
    return fields


def decode_chunk(data: bytes, level: Optional[QuantLevel] = None) -> np.ndarray:
    """Decode any chunk written by ``CacheGenCodec``, ``UniformCodec`` or ``Fp16Codec``.

    CacheGen chunks need the level's bins: they are stored in the chunk itself (one byte per layer and K|V)."""
    import constriction

    buf = memoryview(data)
    _, kind, flags, table_bits, group, n_layers, t, c, anchor_bins = _parse_header(buf)
    off = _HEADER.size
    if kind == KIND_FP16:
        return np.frombuffer(buf, dtype="<f2", count=n_layers * 2 * t * c, offset=off).astype(
            np.float32).reshape(n_layers, 2, t, c)
    bins = np.frombuffer(buf, dtype=np.uint8, count=2 * n_layers, offset=off).astype(np.int64).reshape(n_layers, 2)
    off += 2 * n_layers
    half = np.where(bins == 0, 256, bins) // 2 - 1
    if kind == KIND_UNIFORM:
        bits = table_bits
        scales = np.frombuffer(buf, dtype="<f2", count=n_layers * 2 * t, offset=off).reshape(n_layers, 2, t)
        off += scales.nbytes
        n = n_layers * 2 * t * c
        if bits == 8:
            q = np.frombuffer(buf, dtype=np.uint8, count=n, offset=off).astype(np.int32)
        else:
            b = np.frombuffer(buf, dtype=np.uint8, count=(n + 1) // 2, offset=off)
            q = np.empty(2 * len(b), dtype=np.int32)
            q[0::2] = b & 15
            q[1::2] = b >> 4
            q = q[:n]
        return dequantize(q.reshape(n_layers, 2, t, c), half, scales)
    if kind != KIND_CACHEGEN:
        raise ValueError(f"kv chunk: unknown kind {kind}")
    delta = bool(flags & FLAG_DELTA)
    if not delta:
        scales = np.frombuffer(buf, dtype="<f2", count=n_layers * 2 * t, offset=off).reshape(n_layers, 2, t)
        off += scales.nbytes
        tables, off = _read_tables(buf, off, n_layers * 2 * c, table_bits)
        (plen,) = struct.unpack_from("<I", buf, off)
        off += 4
        words = np.frombuffer(buf, dtype="<u4", count=plen // 4, offset=off)
        decoder = constriction.stream.queue.RangeDecoder(words.astype(np.uint32))
        rows = _decode_rows(decoder, tables, t)
        q = rows.reshape(n_layers, 2, c, t).transpose(0, 1, 3, 2)
        return dequantize(q, half, scales)
    anchors_idx = np.arange(0, t, group)
    n_a = len(anchors_idx)
    n_d = t - n_a
    a_half = np.full_like(half, anchor_bins // 2 - 1)
    a_scales = np.frombuffer(buf, dtype="<f2", count=n_layers * 2 * n_a, offset=off).reshape(n_layers, 2, n_a)
    off += a_scales.nbytes
    d_scales = np.frombuffer(buf, dtype="<f2", count=n_layers * 2 * n_d, offset=off).reshape(n_layers, 2, n_d)
    off += d_scales.nbytes
    a_tables, off = _read_tables(buf, off, n_layers * 2, table_bits)
    d_tables = None
    if n_d:
        d_tables, off = _read_tables(buf, off, n_layers * 2 * c, table_bits)
    (plen,) = struct.unpack_from("<I", buf, off)
    off += 4
    words = np.frombuffer(buf, dtype="<u4", count=plen // 4, offset=off)
    decoder = constriction.stream.queue.RangeDecoder(words.astype(np.uint32))
    a_q = _decode_rows(decoder, a_tables, n_a * c).reshape(n_layers, 2, n_a, c)
    a_hat = dequantize(a_q, a_half, a_scales)
    out = np.repeat(a_hat, group, axis=2)[:, :, :t].copy()
    if n_d:
        d_q = _decode_rows(decoder, d_tables, n_d).reshape(n_layers, 2, c, n_d).transpose(0, 1, 3, 2)
        mask = np.ones(t, dtype=bool)
        mask[anchors_idx] = False
        out[:, :, mask] += dequantize(d_q, half, d_scales)
    return out


def _bins_bytes(level: QuantLevel) -> bytes:
    """One byte per (layer, K|V): the level's bins (256 stored as 0)."""
    return (level.bins() % 256).astype(np.uint8).tobytes()


class UniformCodec:
    """Per-(layer, K|V, token) symmetric uniform quantisation to ``bits`` (8 or 4), packed, float16 scales."""

    def __init__(self, bits: int) -> None:
        if bits not in (4, 8):
            raise ValueError(f"bits: must be 8 or 4, got {bits!r}")
        self.bits = bits
        self.name = f"quant{bits}"

    def encode(self, x: np.ndarray) -> EncodedChunk:
        x = np.asarray(x, dtype=np.float32)
        n_layers, _, t, c = x.shape
        bins = 2 ** self.bits                         # 256 -> C = 127 (255 levels); 16 -> C = 7 (15 levels)
        half = np.full((n_layers, 2), bins // 2 - 1, dtype=np.int64)
        scales = token_scales(x)
        q = quantize(x, half, scales).ravel()
        if self.bits == 8:
            payload = q.astype(np.uint8).tobytes()
        else:
            qq = q.astype(np.uint8)
            if len(qq) % 2:
                qq = np.append(qq, np.zeros(1, np.uint8))
            payload = (qq[0::2] | (qq[1::2] << 4)).tobytes()
        header = _HEADER.pack(MAGIC, KIND_UNIFORM, 0, self.bits, 0, n_layers, t, c, 0)
        bins_b = np.full(2 * n_layers, bins % 256, dtype=np.uint8).tobytes()
        scale_blob = scales.astype("<f2").tobytes()
        data = header + bins_b + scale_blob + payload
        return EncodedChunk(data, len(payload), 0, len(scale_blob), len(header) + len(bins_b), x.size)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_chunk(data)


class Fp16Codec:
    name = "fp16"

    def encode(self, x: np.ndarray) -> EncodedChunk:
        x = np.asarray(x, dtype=np.float32)
        n_layers, _, t, c = x.shape
        header = _HEADER.pack(MAGIC, KIND_FP16, 0, 16, 0, n_layers, t, c, 0)
        payload = x.astype("<f2").tobytes()
        return EncodedChunk(header + payload, len(payload), 0, 0, len(header), x.size)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_chunk(data)


# -- chunking ------------------------------------------------------------------------------------------------------

def chunk_bounds(n_tokens: int, chunk_tokens: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of consecutive chunks of ``chunk_tokens`` (the last one may be shorter)."""
    if not isinstance(chunk_tokens, int) or chunk_tokens < 1:
        raise ValueError(f"chunk_tokens: must be an integer >= 1, got {chunk_tokens!r}")
    return [(s, min(n_tokens, s + chunk_tokens)) for s in range(0, n_tokens, chunk_tokens)]


def encode_chunks(kv: np.ndarray, codec, chunk_tokens: int) -> list[EncodedChunk]:
    """Encode a whole context chunk by chunk (tokens axis)."""
    return [codec.encode(kv[:, :, s:e]) for s, e in chunk_bounds(kv.shape[2], chunk_tokens)]


def decode_chunks(chunks: Sequence[bytes]) -> np.ndarray:
    return np.concatenate([decode_chunk(c) for c in chunks], axis=2)


def bits_per_element(chunks: Sequence[EncodedChunk]) -> dict[str, float]:
    """Total, payload-only and entropy-bound bits per element over ``chunks``."""
    n = sum(c.n_elements for c in chunks)
    return {
        "total": 8.0 * sum(c.nbytes for c in chunks) / n,
        "payload": 8.0 * sum(c.payload_bytes for c in chunks) / n,
        "tables": 8.0 * sum(c.table_bytes for c in chunks) / n,
        "scales": 8.0 * sum(c.scale_bytes for c in chunks) / n,
        "entropy": sum(c.entropy_bits for c in chunks) / n,
    }
