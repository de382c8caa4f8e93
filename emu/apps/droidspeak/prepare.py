"""From agents and a context to each scheme's transfer plan and delivered quality (torch; imported lazily).

``prepare_pair`` loads the two agents and the profile of the pair; ``context_case`` prefills one context with the
sender (KV and E-cache per layer) and the receiver (its own reference); ``scheme_case`` codes what a scheme ships
(``transfer.py``), builds the receiver's cache exactly as the receiver would from the *decoded* pieces, scores
it against the receiver's own prefill (``mixing.judge``) and returns the plan with its real sizes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.apps.droidspeak.transfer import (PlanItem, TransferPlan, decode_seconds, encode_hidden, encode_layer,
                                          recompute_seconds)


@dataclass
class Pair:
    sender_name: str
    receiver_name: str
    sender: object
    receiver: object
    tokenizer: object
    profile: list            # [GroupProfile]
    chosen: object           # GroupProfile
    held_out: np.ndarray     # the receiver's held-out stream


@dataclass
class ContextCase:
    ids: np.ndarray
    cont: np.ndarray
    state: object            # mixing.SenderState
    ref: object              # mixing.Reference
    layers: list             # the sender's KV per layer, (2, T, C) float32
    text_bytes: int


@dataclass
class SchemeCase:
    plan: TransferPlan
    group: Optional[tuple[int, int]]
    loss_increase_pct: float
    top1_agreement: float


def held_out_stream(tokenizer, agent: str) -> np.ndarray:
    """The evaluation text of ``agent``: its corpus's held-out files (the base: the base's held-out files)."""
    from emu.apps.droidspeak.variants import BASE, RECIPES

    if agent == BASE:
        from emu.apps.textdata import held_out_stream as base_stream

        return base_stream(tokenizer)
    from emu.apps.droidspeak import corpora
    from emu.apps.textdata import encode_stream

    corpus = corpora.get_corpus(RECIPES[agent].corpus)
    return encode_stream(tokenizer, corpora.texts(corpus, corpora.split(corpus)[1]))


def prepare_pair(pair: str, *, budget_pct: float, context_tokens: int, models_dir=None, profile_contexts: int = 4,
                 cont_tokens: int = 256, seed: int = 0, reprofile: bool = False) -> Pair:
    """Agents, tokenizer and the pair's profile: the committed one (``profile.json``) when it covers this pair at
    this context length and ``reprofile`` is off, else profiled now on ``profile_contexts`` windows."""
    from emu.apps.droidspeak import profile as prof
    from emu.apps.droidspeak.variants import load_agent, parse_pair
    from emu.rng import SeedTree

    s_name, r_name = parse_pair(pair)
    sender, tokenizer = load_agent(s_name, models_dir)
    receiver, _ = load_agent(r_name, models_dir)
    stream = held_out_stream(tokenizer, r_name)
    rows = None if reprofile else committed_profile(pair, context_tokens, models_dir)
    if rows is None:
        rng = SeedTree(seed).rng(f"droidspeak.profile.{r_name}")  # as train_profile
        ctxs = prof.windows(stream, rng, profile_contexts, context_tokens, cont_tokens, half=0)
        rows = prof.profile_pair(sender, receiver, ctxs, tokenizer)
    return Pair(s_name, r_name, sender, receiver, tokenizer, rows, prof.choose(rows, budget_pct), stream)


def committed_profile(pair: str, context_tokens: int, models_dir=None) -> Optional[list]:
    """The committed profile rows of ``pair`` (None when the card or the pair at this context length is absent)."""
    from emu.apps.artifacts import CardError, read_card
    from emu.apps.droidspeak import profile as prof
    from emu.apps.droidspeak.variants import APP

    try:
        card = read_card(APP, "profile", models_dir)
        data = card.read_json("profile.json")
    except CardError:
        return None
    entry = data.get("pairs", {}).get(pair)
    if entry is None or data.get("context_tokens") != context_tokens:
        return None
    return prof.from_json(entry["groups"])


def context_case(pair: Pair, ids: np.ndarray, cont: np.ndarray) -> ContextCase:
    from emu.apps.droidspeak import mixing

    state = mixing.sender_state(pair.sender, ids)
    ref = mixing.reference(pair.receiver, ids, cont)
    return ContextCase(ids, cont, state, ref, mixing.cache_to_layers(state.kv),
                       len(pair.tokenizer.decode(ids.tolist()).encode("utf-8")))


def random_group(size: int, n_layers: int, rng: np.random.Generator,
                 avoid: Optional[tuple[int, int]] = None) -> Optional[tuple[int, int]]:
    """A uniformly drawn contiguous group of ``size`` layers, other than ``avoid`` when another exists (None for
    size 0: nothing recomputed)."""
    if size == 0:
        return None
    starts = [a for a in range(n_layers - size + 1) if (a, a + size - 1) != avoid] or [0]
    a = int(starts[int(rng.integers(len(starts)))])
    return (a, a + size - 1)


def scheme_case(pair: Pair, case: ContextCase, scheme: str, *, codec: str, group: Optional[tuple[int, int]],
                compute, query_tokens: int) -> SchemeCase:
    """Plan and delivered quality of ``scheme`` (``group`` for droidspeak / random_group) on one context."""
    import torch

    from emu.apps.droidspeak import mixing

    cfg = pair.receiver.cfg
    n, t = cfg.n_layers, len(case.ids)
    full_gpu = recompute_seconds(n, n, t, compute)
    query_s = query_tokens / compute.prefill_tok_s
    if scheme == "full_prefill":
        plan = TransferPlan(scheme, (PlanItem("text", case.text_bytes, full_gpu),), query_s, full_gpu)
        return SchemeCase(plan, (0, n - 1), 0.0, 1.0)
    if scheme in ("full_reuse", "full_reuse_compressed"):
        group = None
        codec = "fp16" if scheme == "full_reuse" else codec
    # droidspeak / random_group with group None: the budget allows full reuse (every layer coded with ``codec``)
    items: list[PlanItem] = []
    entry = None
    if group is not None:
        a, b = group
        work = recompute_seconds(b - a + 1, n, t, compute)
        if a == 0:
            items.append(PlanItem("text", case.text_bytes, work))
        else:
            coded = encode_hidden(case.state.hidden[a][0].numpy(), codec)
            entry = torch.from_numpy(coded.decoded)[None]
            items.append(PlanItem(f"E{a}", coded.nbytes, work + decode_seconds(coded, compute, t)))
    decoded_layers = list(case.layers)
    for layer in range(n):
        if group is not None and group[0] <= layer <= group[1]:
            continue
        coded = encode_layer(case.layers[layer], codec, layer, n)
        decoded_layers[layer] = coded.decoded
        items.append(PlanItem(f"L{layer}", coded.nbytes, decode_seconds(coded, compute, t)))
    state = mixing.SenderState(mixing.layers_to_cache(decoded_layers, cfg), case.state.hidden)
    cache = mixing.mixed_cache(pair.receiver, case.ids, state, group, entry=entry)
    q = mixing.judge(pair.receiver, cache, case.ids, case.cont, case.ref)
    plan = TransferPlan(scheme, tuple(items), query_s, full_gpu)
    return SchemeCase(plan, group, q.loss_increase_pct, q.top1_agreement)


def build_plan(config, scheme: str, *, rng: np.random.Generator) -> TransferPlan:
    """A plan from scratch (an endpoint installed without one): agents, profile, one evaluation window."""
    from emu.apps.droidspeak import profile as prof
    from emu.apps.droidspeak.mixing import group_size

    pair = prepare_pair(config.pair, budget_pct=config.budget_pct, context_tokens=config.context_tokens,
                        models_dir=config.models_dir)
    (ids, cont), = prof.windows(pair.held_out, rng, 1, config.context_tokens, 2, half=1)
    case = context_case(pair, ids, cont)
    group = pair.chosen.group
    if scheme == "random_group":
        group = random_group(group_size(group), pair.receiver.cfg.n_layers, rng, group)
    return scheme_case(pair, case, scheme, codec=config.codec, group=group, compute=config.compute(),
                       query_tokens=config.query_tokens).plan
