"""Offline profiling of one (sender, receiver) pair: every contiguous recompute group, its quality and its cost.

For each of the L(L+1)/2 contiguous groups [a, b] (21 for 6 layers), plus full reuse (no group), the receiver
rebuilds its cache of each profiling context from the sender's (``mixing.mixed_cache``) and is judged on the
continuation against its own full prefill: loss increase (%), top-1 agreement, recompute cost (layers / L of a
full prefill) and bytes to send (float16 KV of the reused layers, plus the E-cache when the group starts above
layer 0, plus the context text when it starts at layer 0). The Pareto front keeps the groups no other group
beats on both recompute cost and loss increase; ``choose`` takes the cheapest group within a loss budget
(DroidSpeak's offline O(L²) profiling, [3P] apps2.md §3.1: unverified detail).

Contexts: the receiver's held-out corpus stream (its own documentation family), windows drawn from the first half
(``profiling_windows``); evaluation draws from the second half (``evaluation_windows``), so a group is never chosen
on the text it is judged on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

FP16_BYTES = 2


@dataclass(frozen=True)
class GroupProfile:
    group: Optional[tuple[int, int]]
    loss_increase_pct: float
    top1_agreement: float
    recompute_layers: int
    recompute_frac: float
    bytes: int

    @property
    def label(self) -> str:
        return "none" if self.group is None else f"{self.group[0]}-{self.group[1]}"


def fp16_bytes(group, n_layers: int, tokens: int, channels: int, d_model: int, text_bytes: int) -> int:
    """Bytes of a float16 transfer for ``group``: reused layers' K and V, the E-cache entering the group (or the
    text when it starts at layer 0)."""
    from emu.apps.droidspeak.mixing import group_size

    reused = n_layers - group_size(group)
    entry = 0 if group is None else (text_bytes if group[0] == 0 else tokens * d_model * FP16_BYTES)
    return reused * 2 * tokens * channels * FP16_BYTES + entry


def windows(stream: np.ndarray, rng: np.random.Generator, n: int, context_tokens: int, cont_tokens: int,
            half: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (context, continuation) windows from the first (``half=0``) or second (``half=1``) half of
    ``stream``."""
    mid = len(stream) // 2
    lo, hi = (0, mid) if half == 0 else (mid, len(stream))
    need = context_tokens + cont_tokens
    if hi - lo < need:
        raise ValueError(f"context_tokens: {context_tokens} + {cont_tokens} continuation tokens exceed half of the "
                         f"held-out text ({hi - lo} tokens)")
    out = []
    for _ in range(n):
        s = int(rng.integers(lo, hi - need + 1))
        out.append((stream[s:s + context_tokens], stream[s + context_tokens:s + need]))
    return out


def profile_pair(sender, receiver, contexts: Sequence[tuple[np.ndarray, np.ndarray]], tokenizer=None
                 ) -> list[GroupProfile]:
    """Profile every contiguous group and full reuse over ``contexts`` (means over contexts)."""
    from emu.apps.droidspeak import mixing

    cfg = receiver.cfg
    rows: dict = {}
    options = [None] + mixing.groups(cfg.n_layers)
    for ids, cont in contexts:
        ref = mixing.reference(receiver, ids, cont)
        state = mixing.sender_state(sender, ids)
        rows.setdefault(None, []).append(mixing.judge(receiver, state.kv, ids, cont, ref))
        for a in range(cfg.n_layers):
            # groups (a, b) share their first layers: one pass of the receiver's layers a..L-1 from E_S[a] gives
            # the recomputed KV of every group starting at a
            chain = mixing.recompute_group(receiver, ids, None if a == 0 else state.hidden[a], (a, cfg.n_layers - 1))
            for b in range(a, cfg.n_layers):
                cache = list(state.kv)
                cache[a:b + 1] = chain[:b - a + 1]
                rows.setdefault((a, b), []).append(mixing.judge(receiver, cache, ids, cont, ref))
    text_bytes = int(np.mean([len(tokenizer.decode(ids.tolist()).encode()) for ids, _ in contexts])) \
        if tokenizer is not None else 0
    tokens = len(contexts[0][0])
    out = []
    for g in options:
        qs = rows[g]
        size = mixing.group_size(g)
        out.append(GroupProfile(g, float(np.mean([q.loss_increase_pct for q in qs])),
                                float(np.mean([q.top1_agreement for q in qs])), size, size / cfg.n_layers,
                                fp16_bytes(g, cfg.n_layers, tokens, cfg.kv_channels, cfg.d_model, text_bytes)))
    return out


def pareto_front(rows: Sequence[GroupProfile]) -> list[GroupProfile]:
    """Groups not dominated on (recompute layers, loss increase): sorted by recompute layers."""
    front = []
    for r in rows:
        dominated = any(o.recompute_layers <= r.recompute_layers and o.loss_increase_pct <= r.loss_increase_pct
                        and (o.recompute_layers < r.recompute_layers or o.loss_increase_pct < r.loss_increase_pct)
                        for o in rows)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: (r.recompute_layers, r.loss_increase_pct))


def choose(rows: Sequence[GroupProfile], budget_pct: float) -> GroupProfile:
    """The cheapest group (fewest recomputed layers, then lowest loss) whose loss increase is within
    ``budget_pct``; the full prefill group (0, L-1) scores 0 by definition, so one always qualifies."""
    ok = [r for r in rows if r.loss_increase_pct <= budget_pct]
    return min(ok, key=lambda r: (r.recompute_layers, r.loss_increase_pct))


def to_json(rows: Sequence[GroupProfile]) -> list[dict]:
    return [{**asdict(r), "group": None if r.group is None else list(r.group), "label": r.label} for r in rows]


def from_json(rows: Sequence[dict]) -> list[GroupProfile]:
    out = []
    for r in rows:
        g = r["group"]
        out.append(GroupProfile(None if g is None else (int(g[0]), int(g[1])), float(r["loss_increase_pct"]),
                                float(r["top1_agreement"]), int(r["recompute_layers"]), float(r["recompute_frac"]),
                                int(r["bytes"])))
    return out
