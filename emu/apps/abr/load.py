"""Load the committed ABR policies through their model cards (``emu.apps.artifacts``: sha256 checked,
``torch.load(weights_only=True)``); torch is imported only when a learned policy is loaded."""
from __future__ import annotations

from typing import Optional

from emu.apps.artifacts import read_card

__all__ = ["load_pensieve", "load_netllm", "LEARNED"]

LEARNED = ("pensieve", "netllm", "netllm_random", "dt_scratch")


def load_pensieve(models_dir=None, *, seed: int = 0):
    from emu.apps.abr.pensieve import ActorCritic, PensievePolicy

    card = read_card("abr", "pensieve", models_dir)
    model = ActorCritic(int(card.config["hidden"]))
    state = card.load_state_dict("pensieve.pt")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{card.dir / 'pensieve.pt'}: weights do not fit the card's config ({exc})") from None
    return PensievePolicy(model, seed=seed)


def load_netllm(arm: str, models_dir=None, *, seed: int = 0, lm_dir: Optional[str] = None):
    """The ``arm`` policy (netllm, netllm_random, dt_scratch) from ``<arm>.card.json``: the backbone is rebuilt
    (the pretrained LM loaded through its own card, or the random init regenerated from the card's seed), then
    the trained weights are loaded over it."""
    import torch

    from emu.apps.abr.netllm import ARMS, NetLLMConfig, NetLLMPolicy, build_model
    from emu.rng import SeedTree

    if arm not in ARMS:
        raise ValueError(f"arm: must be one of {', '.join(ARMS)}, got {arm!r}")
    card = read_card("abr", arm, models_dir)
    c = card.config
    cfg = NetLLMConfig(arm=c["arm"], state_feature_dim=c["state_feature_dim"], window=c["window"],
                       max_timestep=c["max_timestep"], lora_rank=c["lora_rank"], lora_alpha=c["lora_alpha"],
                       lora_dropout=c["lora_dropout"])
    gen = torch.Generator().manual_seed(SeedTree(int(card["seed"])).seed_for(f"netllm.init/{arm}"))
    model = build_model(cfg, generator=gen, lm_dir=lm_dir)
    state = card.load_state_dict(f"{arm}.pt")
    missing, unexpected = model.load_state_dict(state, strict=False)
    frozen_ok = all(k.startswith("backbone.") and "lora_" not in k for k in missing)
    if unexpected or not frozen_ok or (arm == "dt_scratch" and missing):
        raise ValueError(f"{card.dir / (arm + '.pt')}: weights do not fit the card's config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return NetLLMPolicy(model, name=arm, target_return=c["target_return"], reward_min=c["reward_min"],
                        reward_max=c["reward_max"], return_scale=c["return_scale"], seed=seed)
