"""``emu train pensieve`` and ``emu train netllm``: reproduce the committed ABR weights with their model cards.

Both train on the chunk-level simulator over the FCC training split (``emu.apps.abr.traces.split_files``) and
select the checkpoint on the validation split; the test sources (pensieve-hsdpa, oboe) are never read here.
CPU only, one thread.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.abr.sessions import simulate, summarise
from emu.apps.abr.traces import load_trace, split_files
from emu.apps.abr.video import load_video
from emu.apps.artifacts import models_dir, write_card
from emu.rng import SeedTree

__all__ = ["train_pensieve", "PENSIEVE_RECIPE"]

PENSIEVE_RECIPE = {
    "hidden": 64,            # Pensieve: 128 filters/units; halved for CPU
    "envs": 16,              # episodes per update (synchronous A2C instead of 16 asynchronous A3C agents)
    "updates": 2000,
    "lr": 1e-3,              # Pensieve: actor 1e-4, critic 1e-3 (A3C); one Adam at 1e-3 here
    "gamma": 0.99,           # Pensieve GAMMA
    "entropy_start": 1.0,    # entropy weight annealed linearly (Pensieve decays it by hand during training)
    "entropy_end": 0.05,
    "value_coef": 0.5,
    "reward_scale": 0.1,     # rewards x 0.1 for the critic's range only
    "clip": 1.0,
    "noise": True,           # released training env: fixed=False
    "eval_every": 50,
}


def _traces(kind: str):
    return [load_trace(f) for f in split_files()[kind]]


def train_pensieve(*, seed: int = 0, out_dir: Optional[str] = None, updates: Optional[int] = None) -> dict:
    """Synchronous advantage actor-critic on the chunk simulator; best validation checkpoint is kept."""
    import torch

    from emu.apps.abr.pensieve import ActorCritic, PensievePolicy

    torch.set_num_threads(1)
    recipe = dict(PENSIEVE_RECIPE)
    if updates is not None:
        recipe["updates"] = int(updates)
    t0 = time.time()
    video = load_video()
    train, valid = _traces("train"), _traces("valid")
    tree = SeedTree(seed)
    pick = tree.rng("pensieve.traces")
    torch_gen = torch.Generator().manual_seed(tree.seed_for("pensieve.init"))
    model = ActorCritic(recipe["hidden"])
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                nn_init = torch.randn(p.shape, generator=torch_gen) * (1.0 / np.sqrt(p.shape[-1] * (p.shape[-2] if p.dim() == 3 else 1)))
                p.copy_(nn_init)
            else:
                p.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    best = (-np.inf, None, 0)
    history = []
    for update in range(recipe["updates"]):
        frac = update / max(recipe["updates"] - 1, 1)
        beta = recipe["entropy_start"] + frac * (recipe["entropy_end"] - recipe["entropy_start"])
        idx = pick.integers(0, len(train), recipe["envs"])
        batch = [train[i] for i in idx]
        actor = PensievePolicy(model, seed=tree.seed_for(f"pensieve.sample/{update}"))
        logs = simulate(actor, batch, video, seed=int(pick.integers(0, 2**31)), noise=recipe["noise"],
                        record_states=True)
        model.train()
        states = torch.from_numpy(np.stack([np.stack(log.states) for log in logs]).astype(np.float32))
        actions = torch.as_tensor(np.stack([log.levels[1:] for log in logs]))
        rewards = np.stack([log.rewards[1:] for log in logs]) * recipe["reward_scale"]
        returns = np.zeros_like(rewards)
        acc = np.zeros(rewards.shape[0])
        for t in range(rewards.shape[1] - 1, -1, -1):
            acc = rewards[:, t] + recipe["gamma"] * acc
            returns[:, t] = acc
        flat = states.reshape(-1, 6, 6)
        logits = model.logits(flat)
        values = model.value(flat)
        ret = torch.as_tensor(returns.reshape(-1), dtype=torch.float32)
        adv = (ret - values).detach()
        logp = torch.log_softmax(logits, -1)
        chosen = logp.gather(1, actions.reshape(-1, 1)).squeeze(1)
        entropy = -(logp.exp() * logp).sum(-1).mean()
        loss = -(chosen * adv).mean() - beta * entropy + recipe["value_coef"] * ((ret - values) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["clip"])
        opt.step()
        if (update + 1) % recipe["eval_every"] == 0 or update + 1 == recipe["updates"]:
            model.eval()
            score = summarise(simulate(PensievePolicy(model, seed=seed), valid, video, seed=seed))["qoe"]
            history.append((update + 1, round(score, 4)))
            if score > best[0]:
                best = (score, {k: v.clone() for k, v in model.state_dict().items()}, update + 1)
    folder = Path(out_dir) if out_dir else models_dir("abr")
    folder.mkdir(parents=True, exist_ok=True)
    rel = "pensieve.pt"
    torch.save(best[1], folder / rel)
    card = write_card(folder, "pensieve", app="abr", files=[rel], config={"hidden": recipe["hidden"]},
                      data={"train": "fcc-hsdpa/train FCC files, split 'train' (emu.apps.abr.traces.split_files)",
                            "train_files": len(train), "valid_files": len(valid), "video": "video1"},
                      seed=seed, steps=recipe["updates"],
                      metrics={"valid_qoe": round(best[0], 4), "best_update": best[2], "valid_curve": history,
                               "train_seconds": round(time.time() - t0, 1), "recipe": recipe},
                      command="emu train pensieve")
    import json
    return json.loads(card.read_text())


NETLLM_RECIPE = {
    "window": 10,            # released --w 20; halved for CPU (80 tokens per window)
    "state_feature_dim": 256,
    "batch": 32,             # released: batch 1 x gradient accumulation 32; here one batch of 32 windows
    "lr": 5e-4,              # released 1e-4 over 80 epochs; raised for a few hundred CPU steps
    "weight_decay": 1e-4,
    "warmup_frac": 0.1,      # released 2000 warm-up steps; here 10 % of the steps
    "epochs": 2,
    "clip": 0.25,
    "pool_seeds": [0],       # one pass of each behaviour policy over the training traces
    "behaviour": ["bba", "mpc"],   # released debug default: bba, mpc, genet (the project's Pensieve is weaker)
    "target_return_scale": 1.0,
}


def behaviour_policies(names, video, models_folder, seed: int):
    from emu.apps.abr.policies import BBA, RobustMPC

    out = []
    for name in names:
        if name == "bba":
            out.append(BBA())
        elif name == "mpc":
            out.append(RobustMPC(video))
        elif name == "pensieve":
            from emu.apps.abr.load import load_pensieve

            out.append(load_pensieve(models_folder, seed=seed))
        else:
            raise ValueError(f"behaviour: unknown policy {name!r} (bba, mpc, pensieve)")
    return out


def train_netllm(*, seed: int = 0, out_dir: Optional[str] = None, arm: str = "netllm",
                 epochs: Optional[int] = None, log=None, max_traces: Optional[int] = None) -> dict:
    """DD-LRNA (Decision Transformer on the experience pool) for one arm; the epoch with the best validation
    QoE is kept. Writes ``<arm>.pt`` (the trained weights only) and ``<arm>.card.json``."""
    import json

    import torch

    from emu.apps.abr.netllm import NetLLMConfig, NetLLMPolicy, build_model, trainable_state
    from emu.apps.abr.pool import RETURN_SCALE, collect_pool

    torch.set_num_threads(1)
    recipe = dict(NETLLM_RECIPE)
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    t0 = time.time()
    folder = Path(out_dir) if out_dir else models_dir("abr")
    folder.mkdir(parents=True, exist_ok=True)
    video = load_video()
    train, valid = _traces("train"), _traces("valid")
    if max_traces:   # smoke runs only
        train, valid = train[:max_traces], valid[:max_traces]
    tree = SeedTree(seed)
    pool = collect_pool(behaviour_policies(recipe["behaviour"], video, folder, seed), train, video,
                        seeds=recipe["pool_seeds"])
    rtg, steps = pool.returns_to_go(RETURN_SCALE)
    w = recipe["window"]
    starts = pool.windows(w)
    cfg = NetLLMConfig(arm=arm, state_feature_dim=recipe["state_feature_dim"], window=w,
                       max_timestep=int(steps.max()))
    gen = torch.Generator().manual_seed(tree.seed_for(f"netllm.init/{arm}"))
    model = build_model(cfg, generator=gen)
    params = [p for p in model.parameters() if p.requires_grad]
    n_batches = int(np.ceil(len(starts) / recipe["batch"]))
    total = n_batches * recipe["epochs"]
    warm = max(1, int(recipe["warmup_frac"] * total))
    opt = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min((k + 1) / warm, 1.0))
    S = torch.from_numpy(pool.states)
    A = torch.from_numpy(pool.actions)
    R = torch.from_numpy(rtg.astype(np.float32))
    T = torch.from_numpy(steps)
    target = float(rtg.max()) * recipe["target_return_scale"]
    order_rng = tree.rng(f"netllm.order/{arm}")
    best = (-np.inf, None, 0)
    curve = []
    offsets = torch.arange(w)

    def policy_for(m):
        return NetLLMPolicy(m, name=arm, target_return=target, reward_min=pool.reward_min,
                            reward_max=pool.reward_max, return_scale=RETURN_SCALE, seed=seed)

    with torch.random.fork_rng():                 # LoRA dropout draws from torch's default generator:
        torch.manual_seed(tree.seed_for(f"netllm.dropout/{arm}"))   # seed it here, restore it afterwards
        for epoch in range(recipe["epochs"]):
            model.train()
            losses = []
            perm = order_rng.permutation(starts)
            for b in range(n_batches):
                idx = torch.as_tensor(perm[b * recipe["batch"]:(b + 1) * recipe["batch"]])[:, None] + offsets
                logits = model(S[idx], R[idx], T[idx], A[idx])
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), A[idx].reshape(-1))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, recipe["clip"])
                opt.step()
                sched.step()
                losses.append(loss.item())
            score = summarise(simulate(policy_for(model), valid, video, seed=seed))["qoe"]
            curve.append((epoch + 1, round(float(np.mean(losses)), 4), round(score, 4)))
            if log:
                log(f"{arm} epoch {epoch + 1}: loss {np.mean(losses):.4f} valid qoe {score:.4f} "
                    f"({time.time() - t0:.0f} s)")
            if score > best[0]:
                best = (score, {k: v.detach().clone() for k, v in trainable_state(model).items()}, epoch + 1)
    rel = f"{arm}.pt"
    torch.save(best[1], folder / rel)
    behaviour_valid = {p.name: round(summarise(simulate(p, valid, video, seed=seed))["qoe"], 4)
                       for p in behaviour_policies(recipe["behaviour"], video, folder, seed)}
    n_trainable = sum(p.numel() for p in params)
    card = write_card(
        folder, arm, app="abr", files=[rel],
        config={**{k: v for k, v in cfg.__dict__.items()},
                "backbone": "emu.apps.kvfetch lm (models/kvfetch/lm.card.json)" if arm == "netllm" else
                "emu.apps.kvfetch TinyLM architecture, random init",
                "target_return": target, "reward_min": pool.reward_min, "reward_max": pool.reward_max,
                "return_scale": RETURN_SCALE},
        data={"pool": f"{', '.join(recipe['behaviour'])} on the FCC training split, noise on, seeds "
                      f"{recipe['pool_seeds']}", "pool_steps": int(pool.actions.size), "windows": int(len(starts)),
              "train_files": len(train), "valid_files": len(valid), "video": "video1"},
        seed=seed, steps=total,
        metrics={"valid_qoe": round(best[0], 4), "best_epoch": best[2], "curve": curve,
                 "behaviour_valid_qoe": behaviour_valid, "trainable_params": n_trainable,
                 "train_seconds": round(time.time() - t0, 1), "recipe": recipe},
        command=f"emu train {arm}")
    return json.loads(card.read_text())


def train_netllm_pretrained(*, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """``emu train netllm``: the pretrained kvfetch LM, frozen, with LoRA."""
    return train_netllm(seed=seed, out_dir=out_dir, arm="netllm")


def train_netllm_random(*, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """``emu train netllm_random``: the same recipe on a randomly initialised LM (the paper's control)."""
    return train_netllm(seed=seed, out_dir=out_dir, arm="netllm_random")


def train_dt_scratch(*, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """``emu train dt_scratch``: the same architecture, every weight trained from scratch (a plain DT)."""
    return train_netllm(seed=seed, out_dir=out_dir, arm="dt_scratch")
