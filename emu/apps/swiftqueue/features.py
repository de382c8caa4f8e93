"""Model inputs: the window of recent ACK records and the packet about to be sent, as float32 arrays (numpy only).

The same functions build the inputs offline (dataset, from a run's logged arrays) and online (the marking policy,
from the sender's live ``AckHistory``), so training and deployment see identical features.

History token (one per ACK record, the newest ``W`` received before the send instant ``now``), ``F_HIST = 8``:

====  ===========================================================  =====================
 0    latency - base delay                                          / 0.1 s
 1    queue the packet took (1 = L / ECT(1), 0 = C / ECT(0))
 2    CE-marked (1) or not
 3    size                                                          / 1500 B
 4    age of the ACK: now - ACK arrival                             / 0.1 s
 5    age of the packet: now - its send time                        / 0.1 s
 6    inter-ACK gap (arrival minus the previous ACK's)              / 10 ms, clipped [0, 10]
 7    inter-send gap (send time minus the previous record's)        / 10 ms, clipped [-10, 10]
====  ===========================================================  =====================

Query (the packet to predict), ``F_QUERY = 20``:

====  ===========================================================================================================
 0-3  size / 1500 B, index in its frame / 8, packets in its frame / 8, probe flag
 4-5  time since the newest ACK / 0.1 s (clipped [0, 20]), base delay / 0.1 s
 6-9  newest L and C latency, EWMA L and C latency (- base, / 0.1 s; a queue without a record takes the other's)
10-11 bytes of this frame already sent into L / C (/ 1500 B)
12-13 own bytes sent into L / C in the last ``RECENT_S`` = 100 ms by earlier frames (/ 15000 B)
14-15 age of the oldest un-ACKed packet in L / C (now - its send time, / 0.1 s, clipped [0, 5]; 0 if none)
16-17 un-ACKed bytes in L / C (/ 15000 B, clipped [0, 20])
18    CE fraction of the L records in the history window (0 if none)
19    mean ACK inter-arrival of the L records in the history window (/ 10 ms, clipped [0, 10]; 0 if < 2)
====  ===========================================================================================================

Features 14-19 are the fresher inputs a sender has beyond the ACKed latencies (issue 15 point 5): an un-ACKed packet
sent ``a`` seconds ago is known to take at least ``a`` minus the return delay (RACK-style, RFC 8985 §6.2), one
queueing delay earlier than its ACK; a rising CE fraction and a stretching inter-arrival of the sender's own L
ACKs (the L queue's dequeue rate seen by the flow) announce an L overload before the latency samples do.
"Un-ACKed" counts packets of earlier frames sent within the last ``UNACKED_HORIZON_S`` (older ones are taken for
lost).

The *base delay* is the smallest latency seen so far (RFC 8298's base one-way delay, here over the whole run):
the model predicts the latency above it, in units of 0.1 s (``LAT_SCALE``), and the base is added back.
Windows shorter than ``W`` (start of a run) are left-padded with zeros and flagged in ``pad`` (True = padding).
"""
from __future__ import annotations

import numpy as np

F_HIST = 8
F_QUERY = 20
RECENT_S = 0.1          # own-load window for query features 12-13
UNACKED_HORIZON_S = 0.4  # query features 14-17: un-ACKed packets older than this are taken for lost (the deadline)
WINDOW = 32
LAT_SCALE = 0.1
GAP_SCALE = 0.01
SIZE_SCALE = 1500.0
POS_SCALE = 8.0

# AckHistory columns
ACK_S, SEND_S, LAT_S, SIZE, QUEUE, CE, SEQ = range(7)


def row_features(hist: np.ndarray) -> np.ndarray:
    """Per-row, time-independent parts of the history tokens: (n, 5) = lat, queue, ce, size, inter-ACK, inter-send
    (lat not yet made relative to the base). Computed once per run offline; online only for the window rows."""
    n = hist.shape[0]
    out = np.zeros((n, 6), dtype=np.float64)
    if n == 0:
        return out
    out[:, 0] = hist[:, LAT_S]
    out[:, 1] = hist[:, QUEUE]
    out[:, 2] = hist[:, CE]
    out[:, 3] = hist[:, SIZE] / SIZE_SCALE
    out[1:, 4] = np.diff(hist[:, ACK_S])
    out[1:, 5] = np.diff(hist[:, SEND_S])
    return out


def window_tokens(hist: np.ndarray, rows: np.ndarray, start: np.ndarray, end: np.ndarray, now: np.ndarray,
                  base: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """History tokens for a batch: sample ``b`` uses rows ``[max(start[b], end[b] - window), end[b])`` of ``hist``.

    Args:
        hist: (n, 7) AckHistory columns (several runs may be concatenated: ``start`` is each sample's run start).
        rows: ``row_features(hist)`` (computed per run).
        start, end: (B,) first row of the sample's run and exclusive end row; now: (B,) send instants;
            base: (B,) base delays.
    Returns:
        tokens (B, window, F_HIST) float32 and pad (B, window) bool.
    """
    end = np.asarray(end, dtype=np.int64)
    B = end.shape[0]
    offs = np.arange(-window, 0, dtype=np.int64)
    idx = end[:, None] + offs[None, :]
    pad = idx < np.asarray(start, dtype=np.int64)[:, None]
    idx_c = np.where(pad, 0, idx)
    h = hist[idx_c]                      # (B, W, 7)
    r = rows[idx_c]                      # (B, W, 6)
    now_b = np.asarray(now, dtype=np.float64)[:, None]
    base_b = np.asarray(base, dtype=np.float64)[:, None]
    tok = np.empty((B, window, F_HIST), dtype=np.float32)
    tok[..., 0] = (r[..., 0] - base_b) / LAT_SCALE
    tok[..., 1] = r[..., 1]
    tok[..., 2] = r[..., 2]
    tok[..., 3] = r[..., 3]
    tok[..., 4] = (now_b - h[..., ACK_S]) / LAT_SCALE
    tok[..., 5] = (now_b - h[..., SEND_S]) / LAT_SCALE
    tok[..., 6] = np.clip(r[..., 4] / GAP_SCALE, 0.0, 10.0)
    tok[..., 7] = np.clip(r[..., 5] / GAP_SCALE, -10.0, 10.0)
    tok[pad] = 0.0
    return tok, pad


def query_features(size: np.ndarray, pos: np.ndarray, count: np.ndarray, probe: np.ndarray, now: np.ndarray,
                   last_ack_s: np.ndarray, base: np.ndarray, last: np.ndarray, ewma: np.ndarray, ahead: np.ndarray,
                   recent: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """(B, F_QUERY) float32 query features (see the module docstring); ``last``/``ewma`` are (B, 2) L, C latencies,
    ``ahead`` (B, 2) this frame's bytes already in L / C, ``recent`` (B, 2) own bytes into L / C in the last 100 ms,
    ``fresh`` (B, 6) features 14-19 already scaled (``unacked_features`` and ``l_ack_stats``)."""
    B = np.asarray(size).shape[0]
    q = np.empty((B, F_QUERY), dtype=np.float32)
    q[:, 0] = np.asarray(size, dtype=np.float64) / SIZE_SCALE
    q[:, 1] = np.asarray(pos, dtype=np.float64) / POS_SCALE
    q[:, 2] = np.asarray(count, dtype=np.float64) / POS_SCALE
    q[:, 3] = np.asarray(probe, dtype=np.float64)
    stale = np.asarray(now, dtype=np.float64) - np.asarray(last_ack_s, dtype=np.float64)
    q[:, 4] = np.clip(np.nan_to_num(stale, nan=1.0, posinf=1.0) / LAT_SCALE, 0.0, 20.0)
    base = np.asarray(base, dtype=np.float64)
    q[:, 5] = base / LAT_SCALE
    for j, vals in ((6, last), (8, ewma)):
        v = np.asarray(vals, dtype=np.float64)
        lq = np.where(np.isfinite(v[:, 0]), v[:, 0], v[:, 1])
        cq = np.where(np.isfinite(v[:, 1]), v[:, 1], v[:, 0])
        q[:, j] = np.clip(np.nan_to_num((lq - base) / LAT_SCALE, nan=0.0), -1.0, 50.0)
        q[:, j + 1] = np.clip(np.nan_to_num((cq - base) / LAT_SCALE, nan=0.0), -1.0, 50.0)
    q[:, 10:12] = np.asarray(ahead, dtype=np.float64) / SIZE_SCALE
    q[:, 12:14] = np.asarray(recent, dtype=np.float64) / (10.0 * SIZE_SCALE)
    q[:, 14:20] = fresh
    return q


def unacked_features(send_s: np.ndarray, size: np.ndarray, queue: np.ndarray, ack_s: np.ndarray, now: float,
                     hi: int) -> list:
    """Query features 14-17 at send instant ``now`` (scaled): per queue the age of the oldest un-ACKed packet and
    the un-ACKed bytes, over packets ``[lo, hi)`` of the sender's log (``hi``: the first packet of the frame being
    sent; ``lo``: the first one sent at or after ``now - UNACKED_HORIZON_S``). ``ack_s`` (per packet): when its
    ACK arrived (inf: not yet). The same function offline and online."""
    lo = int(np.searchsorted(send_s[:hi], now - UNACKED_HORIZON_S, side="left"))
    out = [0.0, 0.0, 0.0, 0.0]
    if lo >= hi:
        return out
    open_ = ack_s[lo:hi] > now
    if not open_.any():
        return out
    in_l = queue[lo:hi] == 1
    for col, m in ((0, open_ & in_l), (1, open_ & ~in_l)):
        first = int(m.argmax())
        if m[first]:
            out[col] = min(max((now - float(send_s[lo + first])) / LAT_SCALE, 0.0), 5.0)
            out[2 + col] = min(float(size[lo:hi][m].sum()) / (10.0 * SIZE_SCALE), 20.0)
    return out


def l_ack_stats(queue: np.ndarray, ce: np.ndarray, ack_s: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Query features 18-19 (scaled) from history windows: (B, W) columns of the window rows, ``pad`` True where a
    row is padding. Returns (B, 2): CE fraction of the L rows, their mean ACK inter-arrival / GAP_SCALE."""
    is_l = (queue == 1) & ~pad
    n_l = is_l.sum(axis=1)
    out = np.zeros((queue.shape[0], 2))
    ce_sum = np.where(is_l, ce, 0.0).sum(axis=1)
    out[:, 0] = np.where(n_l > 0, ce_sum / np.maximum(n_l, 1), 0.0)
    first = np.where(is_l, ack_s, np.inf).min(axis=1)
    last = np.where(is_l, ack_s, -np.inf).max(axis=1)
    gap = np.where(n_l >= 2, (last - first) / np.maximum(n_l - 1, 1), 0.0)
    out[:, 1] = np.clip(gap / GAP_SCALE, 0.0, 10.0)
    return out


def shared_query(now: float, last_ack_s: float, base: float, last: tuple, ewma: tuple) -> list:
    """Query features 4-9 for one send instant, as Python floats (the online path; same values as
    ``query_features``)."""
    stale = now - last_ack_s
    stale = 1.0 if stale != stale else stale
    out = [min(max(stale / LAT_SCALE, 0.0), 20.0), base / LAT_SCALE]
    for vals in (last, ewma):
        lq = vals[0] if vals[0] == vals[0] else vals[1]
        cq = vals[1] if vals[1] == vals[1] else vals[0]
        for v in (lq, cq):
            x = (v - base) / LAT_SCALE
            out.append(0.0 if x != x else min(max(x, -1.0), 50.0))
    return out


def own_load(send_s: np.ndarray, size: np.ndarray, queue: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offline query features 10-13 for every packet of a run, from the sender's own log (send order).

    Returns (ahead (n, 2), recent (n, 2)): bytes of the same frame (same send instant) sent earlier into L / C,
    and bytes sent into L / C in ``[t - RECENT_S, t)`` by earlier frames.
    """
    n = send_s.shape[0]
    ahead = np.zeros((n, 2))
    recent = np.zeros((n, 2))
    if n == 0:
        return ahead, recent
    order = np.argsort(send_s, kind="stable")
    t = send_s[order]
    for col, k in ((0, 1), (1, 0)):
        b = np.where(queue[order] == k, size[order], 0).astype(np.float64)
        cum = np.concatenate(([0.0], np.cumsum(b)))
        first_now = np.searchsorted(t, t, side="left")           # first packet of this frame
        first_win = np.searchsorted(t, t - RECENT_S, side="left")
        recent[order, col] = cum[first_now] - cum[first_win]
        ahead[order, col] = cum[np.arange(n)] - cum[first_now]   # earlier packets of the same frame
    return ahead, recent


def running_base(hist: np.ndarray) -> np.ndarray:
    """Base delay after each row: the running minimum of the latency column (n,)."""
    if hist.shape[0] == 0:
        return np.zeros(0)
    return np.minimum.accumulate(hist[:, LAT_S])
