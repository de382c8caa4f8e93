"""The SwiftQueue latency Transformer and the GRU baseline (torch; imported only by the learned predictors).

Dataflow of ``LatencyTransformer``::

    ACK records (B, W=32, 8) ──Linear(8→d)──+ learned position (W, d) ─┐
                                                                       ├─ [h_1 … h_W, q] ── 2 × pre-norm encoder
    query packet (B, 10) ──Linear(10→d)──+ query-type vector (d) ───────┘   layers (4 heads, GELU FFN d_ff)
                                                                                    │ (padding masked)
                                               (ŷ_L, ŷ_C) - base, in 0.1 s  ◄─ Linear(d→2) ◄─ LayerNorm(q's output)

With d = 64, d_ff = 256 it has 103,874 parameters (~100 K, apps.md §1.2 [3P]). One forward pass predicts both
queues (two heads): the marking rule compares them. ``LatencyGRU`` reads the same tokens with a GRU (hidden 64)
and concatenates its last state with the query embedding before a two-layer head (23,554 parameters).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from emu.apps.swiftqueue.features import F_HIST, F_QUERY, WINDOW


@dataclass(frozen=True)
class TransformerConfig:
    window: int = WINDOW
    f_hist: int = F_HIST
    f_query: int = F_QUERY
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GRUConfig:
    window: int = WINDOW
    f_hist: int = F_HIST
    f_query: int = F_QUERY
    hidden: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class LatencyTransformer(nn.Module):
    def __init__(self, config: TransformerConfig = TransformerConfig()) -> None:
        super().__init__()
        c = config
        self.config = c
        self.tok = nn.Linear(c.f_hist, c.d_model)
        self.pos = nn.Parameter(torch.zeros(c.window, c.d_model))
        self.qry = nn.Linear(c.f_query, c.d_model)
        self.qtype = nn.Parameter(torch.zeros(c.d_model))
        layer = nn.TransformerEncoderLayer(c.d_model, c.n_heads, c.d_ff, c.dropout,
                                           activation=nn.GELU(approximate="tanh"), batch_first=True,
                                           norm_first=True)
        self.enc = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, 2)

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """tokens (B, W, F_HIST), pad (B, W) bool (True = padding), query (B, F_QUERY) -> (B, 2)."""
        x = self.tok(tokens) + self.pos
        q = (self.qry(query) + self.qtype).unsqueeze(1)
        seq = torch.cat((x, q), dim=1)
        mask = torch.cat((pad, torch.zeros(pad.shape[0], 1, dtype=torch.bool, device=pad.device)), dim=1)
        h = self.enc(seq, mask=self.attn_mask, src_key_padding_mask=mask)
        return self.head(self.norm(h[:, -1]))

    @property
    def attn_mask(self) -> torch.Tensor:
        """(W+1, W+1) bool, True = blocked: history tokens do not attend to the query token, so the history's
        encoding does not depend on the query and is computed once for all packets of a frame (``NumpyTransformer``
        caches it)."""
        m = getattr(self, "_attn_mask", None)
        if m is None:
            w = self.config.window
            m = torch.zeros(w + 1, w + 1, dtype=torch.bool)
            m[:w, w] = True
            self._attn_mask = m
        return m


class LatencyGRU(nn.Module):
    def __init__(self, config: GRUConfig = GRUConfig()) -> None:
        super().__init__()
        c = config
        self.config = c
        self.gru = nn.GRU(c.f_hist, c.hidden, batch_first=True)
        self.qry = nn.Linear(c.f_query, c.hidden)
        self.head = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.GELU(), nn.Linear(c.hidden, 2))

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        # Left padding is zeros: the GRU starts from a zero state either way, so no packing is needed.
        _, h = self.gru(tokens)
        return self.head(torch.cat((h[-1], torch.relu(self.qry(query))), dim=1))


ARCHS = {"transformer": (LatencyTransformer, TransformerConfig), "gru": (LatencyGRU, GRUConfig)}


def build(arch: str, config: dict | None = None) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"arch: unknown {arch!r}; valid: {', '.join(ARCHS)}")
    cls, cfg_cls = ARCHS[arch]
    return cls(cfg_cls(**(config or {})))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
