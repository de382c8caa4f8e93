"""The Transformer's forward pass in numpy: SwiftQueue's inference engine (no torch at inference).

``NumpyTransformer`` computes ``emu.apps.swiftqueue.model.LatencyTransformer``'s forward pass in float32 numpy from
the same state dict (``NumpyTransformer.from_state_dict``; ``emu.apps.swiftqueue.weights`` builds it from the
committed, hash-checked weights). On one CPU thread it needs fewer and cheaper calls than torch eager. Because
history tokens never attend to the query token (``LatencyTransformer.attn_mask``), the history is encoded once per
frame and all of the frame's packets are predicted in the same pass (``forward_frame``): inference is batched per
frame.

Imports numpy and the feature scales only (nothing else of the app), so every other module may import it.
"""
from __future__ import annotations

import math

import numpy as np

from emu.apps.swiftqueue.features import LAT_SCALE

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _ln(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    inv_d = 1.0 / x.shape[-1]
    xc = x - np.add.reduce(x, -1, keepdims=True) * inv_d
    var = np.add.reduce(xc * xc, -1, keepdims=True) * inv_d
    return xc * (1.0 / np.sqrt(var + eps)) * w + b


def _std(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """LayerNorm without its affine part (folded into the next linear map on the fast path)."""
    inv_d = np.float32(1.0 / x.shape[-1])
    xc = x - np.add.reduce(x, -1, keepdims=True) * inv_d
    v = np.add.reduce(xc * xc, -1, keepdims=True)
    v *= inv_d
    v += np.float32(eps)
    np.sqrt(v, out=v)
    xc /= v
    return xc


def _gelu_(x: np.ndarray) -> np.ndarray:
    """tanh-GELU, in place (x is overwritten and returned)."""
    u = x * x
    u *= np.float32(0.044715 * _SQRT_2_OVER_PI)
    u += np.float32(_SQRT_2_OVER_PI)
    u *= x
    np.tanh(u, out=u)
    u += np.float32(1.0)
    u *= np.float32(0.5)
    x *= u
    return x


def _softmax_(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place."""
    x -= x.max(-1, keepdims=True)
    np.exp(x, out=x)
    x /= np.add.reduce(x, -1, keepdims=True)
    return x


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


class NumpyTransformer:
    """``LatencyTransformer``'s forward pass in numpy (float32), with the history encoded once per call.

    ``forward``: any batch (one window per row, or one shared window); ``forward_frame``: the online fast path.
    """

    name = "transformer"

    def __init__(self, params: dict, n_heads: int, n_layers: int) -> None:
        self.p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
        self.h = n_heads
        self.n_layers = n_layers
        self.d = self.p["tok.weight"].shape[0]
        self.window = self.p["pos"].shape[0]
        if self.d % n_heads:
            raise ValueError(f"d_model {self.d} is not divisible by n_heads {n_heads}")
        self.dh = self.d // n_heads
        # Pre-transpose weights once.
        self.t = {k: np.ascontiguousarray(v.T) for k, v in self.p.items() if v.ndim == 2 and k != "pos"}
        self._tok_bias = (self.p["tok.bias"] + self.p["pos"]).astype(np.float32)
        self._qry_bias = (self.p["qry.bias"] + self.p["qtype"]).astype(np.float32)
        # Fast path: fold each LayerNorm's scale and shift into the linear map that follows it.
        self.f = {}
        for i in range(n_layers):
            pre = f"enc.layers.{i}."
            for norm, lin_w, lin_b in (("norm1", "self_attn.in_proj_weight", "self_attn.in_proj_bias"),
                                       ("norm2", "linear1.weight", "linear1.bias")):
                w, b = self.p[pre + norm + ".weight"], self.p[pre + norm + ".bias"]
                W = self.t[pre + lin_w]
                Wf = np.ascontiguousarray(w[:, None] * W)
                bf = (b @ W + self.p[pre + lin_b]).astype(np.float32)
                if norm == "norm1":  # fold the 1/sqrt(dh) of the attention scores into the query projection
                    Wf[:, :self.d] *= np.float32(1.0 / math.sqrt(self.dh))
                    bf[:self.d] *= np.float32(1.0 / math.sqrt(self.dh))
                self.f[pre + lin_w] = Wf
                self.f[pre + lin_b] = bf
        w, b = self.p["norm.weight"], self.p["norm.bias"]
        self.f["head.weight"] = np.ascontiguousarray(w[:, None] * self.t["head.weight"])
        self.f["head.bias"] = (b @ self.t["head.weight"] + self.p["head.bias"]).astype(np.float32)

    @classmethod
    def from_state_dict(cls, state: dict, config: dict) -> "NumpyTransformer":
        n_layers = int(config.get("n_layers", 2))
        n_heads = int(config.get("n_heads", 4))
        needed = ["tok.weight", "tok.bias", "pos", "qry.weight", "qry.bias", "qtype", "norm.weight", "norm.bias",
                  "head.weight", "head.bias"]
        for i in range(n_layers):
            pre = f"enc.layers.{i}."
            needed += [pre + s for s in ("self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                         "self_attn.out_proj.weight", "self_attn.out_proj.bias", "linear1.weight",
                                         "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight",
                                         "norm1.bias", "norm2.weight", "norm2.bias")]
        missing = [k for k in needed if k not in state]
        if missing:
            raise KeyError(f"missing {', '.join(missing[:3])}")
        return cls({k: state[k] for k in needed}, n_heads, n_layers)

    def _attn(self, i: int, q_in: np.ndarray, kv_in: np.ndarray, key_ok: np.ndarray) -> np.ndarray:
        """Multi-head attention of layer ``i``: q_in (B, Lq, d), kv_in (B, Lk, d), key_ok (B, Lk) bool."""
        pre = f"enc.layers.{i}.self_attn."
        w = self.t[pre + "in_proj_weight"]          # (d, 3d)
        b = self.p[pre + "in_proj_bias"]
        d, h, dh = self.d, self.h, self.dh
        q = q_in @ w[:, :d] + b[:d]
        kv = kv_in @ w[:, d:] + b[d:]
        k, v = kv[..., :d], kv[..., d:]
        B, Lq, _ = q.shape
        Lk = k.shape[1]
        q = q.reshape(B, Lq, h, dh).transpose(0, 2, 1, 3)
        k = k.reshape(B, Lk, h, dh).transpose(0, 2, 3, 1)
        v = v.reshape(B, Lk, h, dh).transpose(0, 2, 1, 3)
        s = (q @ k) * (1.0 / math.sqrt(dh))           # (B, h, Lq, Lk)
        s = np.where(key_ok[:, None, None, :], s, -np.inf)
        a = _softmax(s) @ v                             # (B, h, Lq, dh)
        a = a.transpose(0, 2, 1, 3).reshape(B, Lq, d)
        return a @ self.t[pre + "out_proj.weight"] + self.p[pre + "out_proj.bias"]

    def _ff(self, i: int, x: np.ndarray) -> np.ndarray:
        pre = f"enc.layers.{i}."
        y = _ln(x, self.p[pre + "norm2.weight"], self.p[pre + "norm2.bias"])
        y = _gelu(y @ self.t[pre + "linear1.weight"] + self.p[pre + "linear1.bias"])
        return x + y @ self.t[pre + "linear2.weight"] + self.p[pre + "linear2.bias"]

    def encode(self, tokens: np.ndarray, pad: np.ndarray) -> tuple:
        """The history's per-layer (normalised) inputs: all a query token needs from it. tokens (Bt, W, F)."""
        p = self.p
        x = tokens.astype(np.float32) @ self.t["tok.weight"] + p["tok.bias"] + p["pos"]
        hist_ok = ~pad.astype(bool)
        layers = []
        for i in range(self.n_layers):
            pre = f"enc.layers.{i}."
            xn = _ln(x, p[pre + "norm1.weight"], p[pre + "norm1.bias"])
            layers.append(xn)
            if i + 1 < self.n_layers:  # the last layer's history output is never read
                x = self._ff(i, x + self._attn(i, xn, xn, hist_ok))
        return layers, hist_ok

    def query_pass(self, cache: tuple, query: np.ndarray) -> np.ndarray:
        """(B, 2) relative latencies of ``query`` rows (B, Fq) against an encoded history (Bt = 1 or B windows)."""
        layers, hist_ok = cache
        p = self.p
        B = query.shape[0]
        d = self.d
        q = (query.astype(np.float32) @ self.t["qry.weight"] + p["qry.bias"] + p["qtype"]).reshape(B, 1, d)
        ok = np.concatenate((np.broadcast_to(hist_ok, (B, hist_ok.shape[1])), np.ones((B, 1), bool)), axis=1)
        for i in range(self.n_layers):
            pre = f"enc.layers.{i}."
            xn = layers[i]
            qn = _ln(q, p[pre + "norm1.weight"], p[pre + "norm1.bias"])
            kv = np.concatenate((np.broadcast_to(xn, (B,) + xn.shape[1:]), qn), axis=1)
            q = self._ff(i, q + self._attn(i, qn, kv, ok))
        out = _ln(q[:, 0], p["norm.weight"], p["norm.bias"]) @ self.t["head.weight"] + p["head.bias"]
        return out.astype(np.float64)

    # -- fast path for one shared window (online, one frame): history keys/values cached per layer -------------

    def _ff_fast(self, i: int, x: np.ndarray) -> np.ndarray:
        pre = f"enc.layers.{i}."
        y = _std(x) @ self.f[pre + "linear1.weight"]
        y += self.f[pre + "linear1.bias"]
        z = _gelu_(y) @ self.t[pre + "linear2.weight"]
        z += self.p[pre + "linear2.bias"]
        z += x
        return z

    def forward_frame(self, tokens: np.ndarray, pad: np.ndarray, query: np.ndarray) -> np.ndarray:
        """One shared window (tokens (1, W, F), pad (1, W)) and B query rows -> (B, 2), in a single pass.

        The window and the B query tokens form one sequence of W + B tokens with an additive mask: history tokens
        attend to (unpadded) history, each query token to the history and to itself. That is exactly B separate
        passes of the model (history never sees a query, so it is encoded once), with LayerNorm affines folded
        into the following linear maps: ~90 numpy calls per frame whatever B is.
        """
        p, t, f = self.p, self.t, self.f
        d, h, dh = self.d, self.h, self.dh
        W = tokens.shape[1]
        B = query.shape[0]
        L = W + B
        x = np.empty((L, d), np.float32)
        np.matmul(tokens[0], t["tok.weight"], out=x[:W])
        x[:W] += self._tok_bias
        np.matmul(query, t["qry.weight"], out=x[W:])
        x[W:] += self._qry_bias
        mask = np.full((L, L), -np.inf, np.float32)
        hist_ok = ~pad[0]
        mask[:, :W][:, hist_ok] = 0.0
        idx = np.arange(W, L)
        mask[idx, idx] = 0.0
        last = self.n_layers - 1
        for i in range(self.n_layers):
            pre = f"enc.layers.{i}."
            proj = _std(x) @ f[pre + "self_attn.in_proj_weight"] + f[pre + "self_attn.in_proj_bias"]   # (L, 3d)
            proj = proj.reshape(L, 3, h, dh).transpose(1, 2, 0, 3)                                        # (3, h, L, dh)
            rows = slice(W, L) if i == last else slice(0, L)   # the last layer's history outputs are unused
            s = proj[0][:, rows] @ proj[1].transpose(0, 2, 1)                                              # (h, r, L)
            s += mask[rows]
            a = (_softmax_(s) @ proj[2]).transpose(1, 0, 2).reshape(-1, d)
            y = a @ t[pre + "self_attn.out_proj.weight"]
            y += p[pre + "self_attn.out_proj.bias"]
            y += x[rows]
            x = self._ff_fast(i, y)
        out = _std(x) @ f["head.weight"]
        out += f["head.bias"]
        return out.astype(np.float64)

    def forward(self, tokens: np.ndarray, pad: np.ndarray, query: np.ndarray) -> np.ndarray:
        """tokens (1, W, F) and pad (1, W) shared by all ``query`` rows (B, Fq), or one window per row
        (tokens (B, W, F), pad (B, W)) -> (B, 2) relative latencies."""
        return self.query_pass(self.encode(tokens, pad), query)

    def predict(self, batch) -> np.ndarray:
        """(B, 2) seconds. A batch with a ``key`` shares one window (one frame): one joint pass
        (``forward_frame``); otherwise each row's window is encoded (``forward``)."""
        B = len(batch)
        if B == 0:
            return np.zeros((0, 2))
        if batch.key is not None:
            rel = self.forward_frame(np.asarray(batch.tokens[:1], np.float32), batch.pad[:1],
                                     np.asarray(batch.query, np.float32))
        else:
            rel = self.forward(batch.tokens, batch.pad, batch.query)
        return batch.base[:, None] + LAT_SCALE * rel
