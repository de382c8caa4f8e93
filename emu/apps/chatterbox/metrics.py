"""Streaming metrics, defined once and used for every scheme (see docs/chatterbox.md).

For a response whose token i (1..N) is generated at g_i and rendered at r_i (the first moment a contiguous
prefix holding i is on screen), with the request at g_0:

    stall       = sum_{i=2..N} max(0, (r_i - r_{i-1}) - (g_i - g_{i-1}))
    stall_ratio = stall / (r_N - r_1 + (g_1 - g_0))

the time the text is frozen beyond the generation pacing, as a fraction of the streaming duration
(the definition proposed in the reference notes, apps.md §2.3, since the paper's exact formula is not public).
Also: time to first token r_1 - g_0; per-token rendering delay r_i - g_i (p50/p95/p99); bytes on the wire
per token (every byte both endpoints sent, headers and ACKs included, over N).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class StreamMetrics:
    stall_ratio: float
    stall_s: float
    ttft_s: float
    token_delay_p50_s: float
    token_delay_p95_s: float
    token_delay_p99_s: float
    bytes_per_token: float
    n_tokens: int

    def as_dict(self) -> dict:
        return asdict(self)


def stream_metrics(generated_s: np.ndarray, rendered_s: np.ndarray, request_s: float,
                   wire_bytes: int) -> StreamMetrics:
    g = np.asarray(generated_s, dtype=float)
    r = np.asarray(rendered_s, dtype=float)
    if g.shape != r.shape or g.size == 0:
        raise ValueError("generated_s and rendered_s must be non-empty and of equal length")
    if np.isnan(r).any():
        raise ValueError(f"{int(np.isnan(r).sum())} token(s) were never rendered; run longer")
    if (r < g - 1e-12).any():
        raise ValueError("a token was rendered before it was generated")
    stall = float(np.maximum(0.0, np.diff(r) - np.diff(g)).sum()) if g.size > 1 else 0.0
    duration = float(r[-1] - r[0] + (g[0] - request_s))
    delay = r - g
    return StreamMetrics(
        stall_ratio=stall / duration if duration > 0 else 0.0,
        stall_s=stall,
        ttft_s=float(r[0] - request_s),
        token_delay_p50_s=float(np.quantile(delay, 0.50)),
        token_delay_p95_s=float(np.quantile(delay, 0.95)),
        token_delay_p99_s=float(np.quantile(delay, 0.99)),
        bytes_per_token=wire_bytes / g.size,
        n_tokens=int(g.size),
    )
