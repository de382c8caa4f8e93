"""``emu train droidspeak-profile``: profile every ordered pair of agents offline and commit the result.

For each ordered (sender, receiver) pair of ``variants.AGENTS``: every contiguous recompute group and full reuse
(``profile.profile_pair``) on ``PROFILE_CONTEXTS`` windows of ``CONTEXT_TOKENS`` tokens from the first half of the
receiver's held-out text, the Pareto front and the group chosen at each budget of ``BUDGETS_PCT``. Alongside:
per-layer KV deviation between the two agents on the same contexts, and the weight deviation between every two
agents. Written to ``emu/models/droidspeak/profile.json`` with its card (``profile.card.json``).
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.artifacts import PACKAGED_MODELS, write_card
from emu.rng import SeedTree

CONTEXT_TOKENS = 2048
CONT_TOKENS = 256
PROFILE_CONTEXTS = 4
BUDGETS_PCT = (1.0, 2.0, 5.0)
COMMAND = "emu train droidspeak-profile"


def train_profile(*, seed: int = 0, out_dir: Optional[str] = None, agents: Optional[tuple[str, ...]] = None,
                  contexts: int = PROFILE_CONTEXTS, context_tokens: int = CONTEXT_TOKENS,
                  models_dir: Optional[str] = None) -> dict:
    """Profile all ordered pairs of ``agents`` (default: every agent); write profile.json and its card."""
    import torch

    from emu.apps.droidspeak import mixing
    from emu.apps.droidspeak import profile as prof
    from emu.apps.droidspeak.prepare import held_out_stream
    from emu.apps.droidspeak.train import weight_deviation
    from emu.apps.droidspeak.variants import AGENTS, APP, check_agent, load_agent

    torch.set_num_threads(1)
    agents = tuple(agents or AGENTS)
    for a in agents:
        check_agent(a)
    out = Path(out_dir) if out_dir is not None else (Path(models_dir) if models_dir else PACKAGED_MODELS / APP)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    models = {a: load_agent(a, models_dir)[0] for a in agents}
    tokenizer = load_agent(agents[0], models_dir)[1]
    streams = {a: held_out_stream(tokenizer, a) for a in agents}
    ctxs = {a: prof.windows(streams[a], SeedTree(seed).rng(f"droidspeak.profile.{a}"), contexts, context_tokens,
                            CONT_TOKENS, half=0) for a in agents}
    pairs, kv_dev = {}, {}
    for s, r in itertools.permutations(agents, 2):
        rows = prof.profile_pair(models[s], models[r], ctxs[r], tokenizer)
        devs = [mixing.kv_deviation(mixing.sender_state(models[s], ids), mixing.sender_state(models[r], ids))
                for ids, _ in ctxs[r]]
        kv_dev[f"{s},{r}"] = [round(float(x), 4) for x in np.mean(devs, axis=0)]
        pairs[f"{s},{r}"] = {
            "groups": prof.to_json(rows),
            "pareto": [p.label for p in prof.pareto_front(rows)],
            "chosen": {f"{b:g}": prof.choose(rows, b).label for b in BUDGETS_PCT},
        }
        print(f"{s:>9} -> {r:<9} full reuse {rows[0].loss_increase_pct:6.2f} %  chosen@2% "
              f"{pairs[f'{s},{r}']['chosen']['2']}  {time.perf_counter() - t0:.0f}s", flush=True)
    weights = {f"{a},{b}": weight_deviation(models[a], models[b]) for a, b in itertools.combinations(agents, 2)}
    data = {"context_tokens": context_tokens, "cont_tokens": CONT_TOKENS, "contexts": contexts,
            "budgets_pct": list(BUDGETS_PCT), "agents": list(agents), "pairs": pairs,
            "kv_deviation": kv_dev, "weight_deviation": weights,
            "quality": "loss_increase_pct = 100 (mean NLL / receiver's own-prefill mean NLL - 1) on the "
                       "continuation; top1_agreement against the receiver's own prefill"}
    (out / "profile.json").write_text(json.dumps(data, indent=1) + "\n")
    write_card(out, "profile", app=APP, files=["profile.json"], config={"agents": list(agents),
               "context_tokens": context_tokens, "cont_tokens": CONT_TOKENS, "contexts": contexts},
               data={"contexts": "first half of the receiver's held-out text (emu.apps.droidspeak.profile.windows)"},
               seed=seed, steps=None,
               metrics={"pairs": len(pairs), "seconds": round(time.perf_counter() - t0, 1),
                        "chosen_at_2pct": {k: v["chosen"]["2"] for k, v in pairs.items()}},
               command=COMMAND, what="offline profile of every contiguous recompute group per ordered agent pair")
    return {k: v["chosen"] for k, v in pairs.items()}
