"""Latency predictors: given the ACK history at a send instant, the latency the packet would see in each queue.

Every predictor answers ``predict(batch) -> (B, 2)`` seconds, column 0 = L queue (ECT(1)), column 1 = C queue
(ECT(0)), for a ``Batch`` of packets (built offline by ``emu.apps.swiftqueue.dataset`` or online by the marking
policy from the live history). Non-learned baselines:

- ``last``: the newest ACKed latency of that queue (the other queue's, then the base delay, if none yet);
- ``ewma``: an exponentially weighted moving average per queue over the ACKed latencies, gain 1/8 (the SRTT gain
  of RFC 6298);

learned ones (weights in ``emu/models/swiftqueue/``, fitted by ``emu train swiftqueue``; built by name with
``emu.apps.swiftqueue.weights.make_predictor``):

- ``linear``: linear autoregression, ridge least squares over the flattened window and the query, one output per
  queue (numpy only);
- ``gru``: a small GRU over the same tokens as the Transformer (torch);
- ``transformer``: the SwiftQueue model (``emu.apps.swiftqueue.model``, torch; run in numpy by
  ``emu.apps.swiftqueue.inference``).

torch is imported only when a torch predictor is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.apps.swiftqueue.features import (
    ACK_S, CE, F_HIST, F_QUERY, GAP_SCALE, LAT_S, LAT_SCALE, POS_SCALE, QUEUE, SEND_S, SIZE, SIZE_SCALE, WINDOW,
    running_base, shared_query,
)

EWMA_GAIN = 1.0 / 8.0   # RFC 6298 SRTT gain

PREDICTORS = ("last", "ewma", "linear", "gru", "transformer")
NON_LEARNED = ("last", "ewma")


@dataclass
class Batch:
    """Model inputs for B packets: tokens (B, W, F_HIST) float32, pad (B, W) bool, query (B, F_QUERY) float32,
    base (B,) s, last (B, 2) s and ewma (B, 2) s per queue (NaN where the queue has no record yet)."""

    tokens: np.ndarray
    pad: np.ndarray
    query: np.ndarray
    base: np.ndarray
    last: np.ndarray
    ewma: np.ndarray
    key: object = None    # set when every row shares one history window (one frame): lets models cache it

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def take(self, idx: np.ndarray) -> "Batch":
        return Batch(self.tokens[idx], self.pad[idx], self.query[idx], self.base[idx], self.last[idx],
                     self.ewma[idx], self.key)


def baseline_rows(hist: np.ndarray) -> np.ndarray:
    """(n, 4) after each history row: last L, last C, EWMA L, EWMA C latencies (NaN before a queue's first)."""
    n = hist.shape[0]
    out = np.full((n, 4), np.nan)
    last = [np.nan, np.nan]
    ew = [np.nan, np.nan]
    lat = hist[:, LAT_S].tolist()
    que = hist[:, QUEUE].tolist()
    g = EWMA_GAIN
    for i in range(n):
        k = 0 if que[i] else 1
        v = lat[i]
        last[k] = v
        e = ew[k]
        ew[k] = v if e != e else e + g * (v - e)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = last[0], last[1], ew[0], ew[1]
    return out


class BaselineTracker:
    """Incremental ``baseline_rows`` and base delay for a live history (online policies)."""

    def __init__(self) -> None:
        self.n = 0
        self.last = [np.nan, np.nan]
        self.ewma = [np.nan, np.nan]
        self.base = np.inf

    def update(self, hist: np.ndarray) -> None:
        n = hist.shape[0]
        if n <= self.n:
            return
        g = EWMA_GAIN
        last, ewma, base = self.last, self.ewma, self.base
        # Python floats from one slice (indexing numpy scalars row by row costs more than the arithmetic).
        for que, v in zip(hist[self.n:n, QUEUE].tolist(), hist[self.n:n, LAT_S].tolist()):
            k = 0 if que else 1
            last[k] = v
            e = ewma[k]
            ewma[k] = v if e != e else e + g * (v - e)
            if v < base:
                base = v
        self.base = base
        self.n = n


# hist columns (ACK_S, SEND_S, LAT_S, SIZE, QUEUE, CE) -> token features 0-5 (before the base / now terms)
_AFFINE = np.zeros((6, 6))
_AFFINE[LAT_S, 0] = 1.0 / LAT_SCALE
_AFFINE[QUEUE, 1] = 1.0
_AFFINE[CE, 2] = 1.0
_AFFINE[SIZE, 3] = 1.0 / SIZE_SCALE
_AFFINE[ACK_S, 4] = -1.0 / LAT_SCALE
_AFFINE[SEND_S, 5] = -1.0 / LAT_SCALE
_GAP_LO = np.array([0.0, -10.0], dtype=np.float32)


def _l_ack_stats_one(rows: np.ndarray) -> tuple:
    """``features.l_ack_stats`` for one window of history rows (the online path, fewer numpy calls)."""
    l_rows = rows[rows[:, QUEUE] == 1]
    n_l = l_rows.shape[0]
    if n_l == 0:
        return (0.0, 0.0)
    ce_frac = float(l_rows[:, CE].sum()) / n_l
    if n_l < 2:
        return (ce_frac, 0.0)
    t = l_rows[:, ACK_S]
    gap = (float(t.max()) - float(t.min())) / (n_l - 1) / GAP_SCALE
    return (ce_frac, min(max(gap, 0.0), 10.0))


def online_batch(hist: np.ndarray, tracker: BaselineTracker, now: float, sizes, pos, count, probe,
                 ahead: np.ndarray, recent: np.ndarray, window: int = WINDOW, key: object = None,
                 unacked: Optional[list] = None) -> Batch:
    """The ``Batch`` for packets about to leave at ``now`` given the live history (all rows so far);
    ``ahead`` (B, 2) and ``recent`` (B, 2) are the own-load features, ``unacked`` query features 14-17
    (``features.unacked_features``; None: nothing in flight) (``features.query_features``).

    Same values as the offline builder (``dataset.from_runs`` + ``features.window_tokens``/``query_features``;
    tested), computed with fewer numpy calls: the window rows directly, the frame-wide query columns once.
    """
    tracker.update(hist)
    n = hist.shape[0]
    B = len(sizes)
    base = tracker.base if n else 0.0
    tok = np.zeros((1, window, F_HIST), np.float32)
    pad = np.ones((1, window), bool)
    if n:
        lo = n - window if n > window else 0
        k = n - lo
        part = hist[lo:n]
        t = tok[0, window - k:]
        # Features 0-5 are affine in the ACK columns: one matrix product.
        f = part[:, :6] @ _AFFINE           # float64 until stored (ages subtract large absolute times)
        f[:, 0] -= base / LAT_SCALE
        f[:, 4:6] += now / LAT_SCALE
        t[:, :6] = f
        if lo > 0:
            t[:, 6:8] = (part[:, :2] - hist[lo - 1:n - 1, :2]) / GAP_SCALE
        else:
            t[1:, 6:8] = (part[1:, :2] - part[:-1, :2]) / GAP_SCALE
        np.clip(t[:, 6:8], _GAP_LO, 10.0, out=t[:, 6:8])
        pad[0, window - k:] = False
        last_ack = float(hist[n - 1, ACK_S])
        stats = _l_ack_stats_one(part)
    else:
        last_ack = float("nan")
        stats = (0.0, 0.0)
    last = (tracker.last[0], tracker.last[1])
    ewma = (tracker.ewma[0], tracker.ewma[1])
    query = np.empty((B, F_QUERY), np.float32)
    query[:, 0] = np.asarray(sizes, dtype=np.float64) / SIZE_SCALE
    query[:, 1] = np.asarray(pos, dtype=np.float64) / POS_SCALE
    query[:, 2] = np.asarray(count, dtype=np.float64) / POS_SCALE
    query[:, 3] = np.asarray(probe, dtype=np.float64)
    query[:, 4:10] = shared_query(now, last_ack, base, last, ewma)
    query[:, 10:12] = np.asarray(ahead, dtype=np.float64) / SIZE_SCALE
    query[:, 12:14] = np.asarray(recent, dtype=np.float64) / (10.0 * SIZE_SCALE)
    query[:, 14:18] = (0.0, 0.0, 0.0, 0.0) if unacked is None else unacked
    query[:, 18:20] = stats
    # Frame-wide rows as read-only broadcasts (predictors copy before they modify: ``_fill``).
    return Batch(np.broadcast_to(tok, (B, window, F_HIST)), np.broadcast_to(pad, (B, window)), query,
                 np.full(B, base, dtype=np.float64), np.broadcast_to(np.array(last, dtype=np.float64), (B, 2)),
                 np.broadcast_to(np.array(ewma, dtype=np.float64), (B, 2)), key)


def _fill(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-queue values with a missing queue taken from the other one, then from the base delay."""
    out = values.copy()
    for k in (0, 1):
        miss = ~np.isfinite(out[:, k])
        out[miss, k] = values[miss, 1 - k]
    miss = ~np.isfinite(out)
    out[miss] = np.broadcast_to(base[:, None], out.shape)[miss]
    return out


class Predictor:
    name = "predictor"

    def predict(self, batch: Batch) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class LastValuePredictor(Predictor):
    name = "last"

    def predict(self, batch: Batch) -> np.ndarray:
        return _fill(batch.last, batch.base)


class EwmaPredictor(Predictor):
    name = "ewma"

    def predict(self, batch: Batch) -> np.ndarray:
        return _fill(batch.ewma, batch.base)


def linear_design(batch: Batch) -> np.ndarray:
    """Design matrix of the linear AR predictor: flattened window tokens, query features, a constant."""
    B = len(batch)
    return np.concatenate((batch.tokens.reshape(B, -1).astype(np.float64), batch.query.astype(np.float64),
                           np.ones((B, 1))), axis=1)


class LinearARPredictor(Predictor):
    """Linear autoregression: ``(y - base) / 0.1 s = X w_q`` per queue, with ``X = linear_design(batch)``."""

    name = "linear"

    def __init__(self, weights: np.ndarray) -> None:
        w = np.asarray(weights, dtype=np.float64)
        expected = WINDOW * F_HIST + F_QUERY + 1
        if w.shape != (expected, 2):
            raise ValueError(f"linear weights: expected shape ({expected}, 2), got {w.shape}")
        self.weights = w

    @classmethod
    def fit(cls, X: np.ndarray, y_rel: np.ndarray, queue: np.ndarray, ridge: float = 1e-2,
            sample_weight: Optional[np.ndarray] = None) -> "LinearARPredictor":
        """Ridge least squares per queue; ``queue`` (N,) is 1 for L-labelled samples, 0 for C."""
        ws = []
        for k in (1, 0):  # column 0 = L
            m = queue == k
            Xk, yk = X[m], y_rel[m]
            sw = np.ones(m.sum()) if sample_weight is None else sample_weight[m]
            A = (Xk * sw[:, None]).T @ Xk + ridge * np.eye(X.shape[1])
            b = (Xk * sw[:, None]).T @ yk
            ws.append(np.linalg.solve(A, b))
        return cls(np.stack(ws, axis=1))

    def predict(self, batch: Batch) -> np.ndarray:
        rel = linear_design(batch) @ self.weights
        return batch.base[:, None] + LAT_SCALE * rel


class TorchPredictor(Predictor):
    """Wraps a torch model ``f(tokens, pad, query) -> (B, 2)`` relative latencies; inference only."""

    def __init__(self, model, name: str) -> None:
        import torch

        self.torch = torch
        self.model = model.eval()
        self.name = name

    def predict(self, batch: Batch) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch.tokens)),
                             torch.from_numpy(np.ascontiguousarray(batch.pad)),
                             torch.from_numpy(np.ascontiguousarray(batch.query))).numpy()
        return batch.base[:, None] + LAT_SCALE * out.astype(np.float64)


def mae_table(pred: np.ndarray, y: np.ndarray, queue: np.ndarray, sharp: np.ndarray) -> dict:
    """MAE (s) of the prediction for the queue each packet took: overall, on sharp changes, and per queue."""
    p = np.where(queue == 1, pred[:, 0], pred[:, 1])
    err = np.abs(p - y)
    f = lambda m: float(err[m].mean()) if m.any() else float("nan")  # noqa: E731
    return {"mae_s": f(np.ones_like(y, bool)), "mae_sharp_s": f(sharp.astype(bool)), "mae_l_s": f(queue == 1),
            "mae_c_s": f(queue == 0), "n": int(y.size), "n_sharp": int(sharp.sum())}


__all__ = ["Batch", "Predictor", "LastValuePredictor", "EwmaPredictor", "LinearARPredictor", "TorchPredictor",
           "PREDICTORS", "NON_LEARNED", "baseline_rows", "BaselineTracker", "online_batch", "mae_table",
           "linear_design", "running_base"]
