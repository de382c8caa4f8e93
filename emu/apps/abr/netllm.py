"""NetLLM for ABR (Wu et al., "NetLLM: Adapting Large Language Models for Networking", SIGCOMM '24), on the
project's own small LM (``emu.apps.kvfetch.model.TinyLM``: 6 layers, d_model 192, partial RoPE).

Dataflow (released ``plm_special/models/{state_encoder,rl_policy}.py``)::

    per step t:  R_t ─Linear(1,d)─┐            s_t (6x6) ─ encoder ─ 6 features ─ 6 x Linear(-, d) ─┐
                 a_t ─(a+1)/6─Linear(1,d)─┐     + timestep embedding on every token                  │
    tokens [R_t, s_t^1..s_t^6, a_t] x w steps ─ LayerNorm ─► frozen LM blocks (+ LoRA on qkv) ─► RMSNorm
                 hidden state at s_t^6 ─► networking head Linear(d, 6) ─► logits over bitrate levels

- Encoder (Pensieve/Genet ``EncoderNetwork``): ``Linear(1, F)``+LeakyReLU on last bitrate, buffer, chunks left;
  ``Conv1d(1, F, 4)`` on the throughput and download-time histories; ``Conv1d(1, F, 6)`` on next chunk sizes.
- The LM takes the token stack as input embeddings (its token embedding and LM head are unused). The released
  GPT-2 has its absolute positions removed; this LM has no absolute positions, and keeps its RoPE (relative).
- Low-rank adaptation (Hu et al., LoRA, ICLR '22) via ``peft.inject_adapter_in_model`` on each block's fused
  ``qkv`` projection (the released code targets ``q_proj``/``v_proj``; this LM fuses q, k, v in one Linear, as
  GPT-2's ``c_attn``, so the adapter covers k too). Rank 8 (Llama2's 128/4096 = 1/32 of the width, rounded up),
  ``lora_alpha`` = 2 (the released alpha/r = 32/128 = 0.25), dropout 0.05.
- Arms: ``netllm`` (pretrained LM, frozen, LoRA), ``netllm_random`` (same with a randomly initialised LM),
  ``dt_scratch`` (no LoRA; every backbone weight trained from random init: a plain Decision Transformer).
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from emu.apps.abr.player import Observation
from emu.apps.abr.video import N_LEVELS
from emu.validate import check_int

__all__ = ["NetLLMConfig", "StateEncoder", "DecisionLM", "NetLLMPolicy", "ARMS", "build_model"]

ARMS = ("netllm", "netllm_random", "dt_scratch")
TOKENS_PER_STEP = 8   # [R, s1..s6, a]


@dataclass(frozen=True)
class NetLLMConfig:
    arm: str = "netllm"
    state_feature_dim: int = 256   # released --state-feature-dim
    window: int = 20               # released --w
    max_timestep: int = 47         # decisions per session are 0..46
    lora_rank: int = 8
    lora_alpha: float = 2.0
    lora_dropout: float = 0.05     # released LoraConfig

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm: must be one of {', '.join(ARMS)}, got {self.arm!r}")
        for name in ("state_feature_dim", "window", "max_timestep", "lora_rank"):
            check_int(name, getattr(self, name), lo=1)


class StateEncoder(nn.Module):
    """Genet/NetLLM ``EncoderNetwork``: six features from the 6x6 state."""

    def __init__(self, dim: int, conv_size: int = 4) -> None:
        super().__init__()
        act = nn.LeakyReLU
        self.fc1 = nn.Sequential(nn.Linear(1, dim), act())
        self.fc2 = nn.Sequential(nn.Linear(1, dim), act())
        self.conv3 = nn.Sequential(nn.Conv1d(1, dim, conv_size), act(), nn.Flatten())
        self.conv4 = nn.Sequential(nn.Conv1d(1, dim, conv_size), act(), nn.Flatten())
        self.conv5 = nn.Sequential(nn.Conv1d(1, dim, N_LEVELS), act(), nn.Flatten())
        self.fc6 = nn.Sequential(nn.Linear(1, dim), act())

    def forward(self, state: torch.Tensor) -> list[torch.Tensor]:
        b, t = state.shape[:2]
        s = state.reshape(b * t, 6, 6)
        feats = [self.fc1(s[:, 0:1, -1]), self.fc2(s[:, 1:2, -1]), self.conv3(s[:, 2:3, :]),
                 self.conv4(s[:, 3:4, :]), self.conv5(s[:, 4:5, :N_LEVELS]), self.fc6(s[:, 5:6, -1])]
        return [f.reshape(b, t, -1) for f in feats]


class LMBackbone(nn.Module):
    """The kvfetch LM's blocks and final norm, fed input embeddings (B, T, d) from position 0."""

    def __init__(self, lm) -> None:
        super().__init__()
        self.blocks = lm.blocks
        self.norm = lm.norm
        self.rope_dims = lm.cfg.rope_dims
        self.register_buffer("rope_cos", lm.rope_cos[:512].clone(), persistent=False)
        self.register_buffer("rope_sin", lm.rope_sin[:512].clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        for block in self.blocks:
            x, _ = block(x, cos, sin, None)
        return self.norm(x)


class DecisionLM(nn.Module):
    """The multimodal encoder, the LM backbone and the networking head (see the module docstring)."""

    def __init__(self, cfg: NetLLMConfig, backbone: LMBackbone, d_model: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        f = cfg.state_feature_dim
        self.encoder = StateEncoder(f)
        self.embed_timestep = nn.Embedding(cfg.max_timestep + 1, d_model)
        self.embed_return = nn.Linear(1, d_model)
        self.embed_action = nn.Linear(1, d_model)
        self.embed_state = nn.ModuleList([nn.Linear(f, d_model), nn.Linear(f, d_model), nn.Linear(f * 3, d_model),
                                          nn.Linear(f * 3, d_model), nn.Linear(f, d_model), nn.Linear(f, d_model)])
        self.embed_ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, N_LEVELS)

    def embed_steps(self, states: torch.Tensor, returns: torch.Tensor, timesteps: torch.Tensor,
                    actions: Optional[torch.Tensor]) -> torch.Tensor:
        """Tokens (B, T*8, d) for states (B,T,6,6), returns (B,T), timesteps (B,T), actions (B,T) or None (then
        the last step has no action token: the sequence ends at its last state token)."""
        time = self.embed_timestep(timesteps)
        ret = self.embed_return(returns.unsqueeze(-1)) + time
        feats = self.encoder(states)
        st = [emb(x) + time for emb, x in zip(self.embed_state, feats)]
        if actions is None:
            act = torch.zeros_like(ret)
        else:
            act = self.embed_action(((actions.float() + 1.0) / N_LEVELS).unsqueeze(-1)) + time
        tokens = torch.stack([ret, *st, act], dim=2)               # (B, T, 8, d)
        b, t = tokens.shape[:2]
        tokens = tokens.reshape(b, t * TOKENS_PER_STEP, -1)
        if actions is None:
            tokens = tokens[:, :-1]
        return tokens

    def forward(self, states, returns, timesteps, actions) -> torch.Tensor:
        """Action logits (B, T, 6) at every step's last state token (teacher forcing, as the released trainer)."""
        x = self.backbone(self.embed_ln(self.embed_steps(states, returns, timesteps, actions)))
        t = states.shape[1]
        pos = torch.arange(t) * TOKENS_PER_STEP + TOKENS_PER_STEP - 2
        return self.head(x[:, pos])

    def next_logits(self, states, returns, timesteps, actions_prev) -> torch.Tensor:
        """Logits (B, 6) for the last step of a context whose earlier steps' actions are ``actions_prev``
        (B, T-1)."""
        b, t = states.shape[:2]
        acts = torch.cat([actions_prev, torch.zeros(b, 1, dtype=actions_prev.dtype)], dim=1)
        x = self.backbone(self.embed_ln(self.embed_steps(states, returns, timesteps, acts)[:, :-1]))
        return self.head(x[:, -1])


def _tiny_lm(generator: Optional[torch.Generator], pretrained: bool, lm_dir=None):
    """The kvfetch LM through its model card (``emu.apps.kvfetch.weights``: sha256 checked,
    ``torch.load(weights_only=True)``), or the same architecture initialised from ``generator``."""
    from emu.apps.kvfetch.model import TinyLM
    from emu.apps.kvfetch.weights import lm_config, load_model, model_card

    if pretrained:
        lm, _, _ = load_model(lm_dir)
        return lm
    lm = TinyLM(lm_config(model_card(lm_dir)))
    lm.init_weights(generator)
    return lm


def build_model(cfg: NetLLMConfig, *, generator: torch.Generator, lm_dir=None) -> DecisionLM:
    """The arm's model: backbone frozen + LoRA (``netllm``, ``netllm_random``) or fully trainable
    (``dt_scratch``); the rest initialised from ``generator``."""
    lm = _tiny_lm(generator, cfg.arm == "netllm", lm_dir)
    backbone = LMBackbone(lm)
    if cfg.arm != "dt_scratch":
        from peft import LoraConfig, inject_adapter_in_model

        for p in backbone.parameters():
            p.requires_grad_(False)
        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=["qkv"], bias="none")
        backbone = inject_adapter_in_model(lora, backbone)
    model = DecisionLM(cfg, backbone, lm.cfg.d_model)
    with torch.no_grad():   # explicit init of everything trainable outside the LM (and LoRA A) from the generator
        for name, p in model.named_parameters():
            if name.startswith("backbone.") and "lora_A" not in name:
                continue
            if p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) / np.sqrt(fan_in))
            elif "embed_ln" not in name:
                p.zero_()
    return model


def trainable_state(model: DecisionLM) -> dict:
    """The weights an arm trains (everything but the frozen backbone for the LoRA arms)."""
    if model.cfg.arm == "dt_scratch":
        return {k: v for k, v in model.state_dict().items()}
    return {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.") or "lora_" in k}


class NetLLMPolicy:
    """Return-conditioned sampling as the released ``OfflineRLPolicy.sample``: the last ``window`` steps are the
    context; the target return starts at the pool's best return and drops by each processed reward (the first
    reward of a session is skipped); the action is sampled from the softmax with a seeded generator."""

    def __init__(self, model: DecisionLM, *, name: str, target_return: float, reward_min: float,
                 reward_max: float, return_scale: float, seed: int = 0, greedy: bool = False) -> None:
        self.model = model.eval()
        self.name = name
        self.target0 = float(target_return)
        self.reward_min, self.reward_max, self.scale = float(reward_min), float(reward_max), float(return_scale)
        self.seed = seed
        self.greedy = greedy
        self.window = model.cfg.window

    def process_reward(self, reward: float) -> float:
        r = min(self.reward_max, max(self.reward_min, reward))
        return (r - self.reward_min) / (self.reward_max - self.reward_min) / self.scale

    def reset(self, n_sessions: int) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)
        self._target = [self.target0] * n_sessions
        self._ctx = deque(maxlen=self.window)      # per step: (states (B,6,6), returns (B,), timesteps (B,))
        self._acts = deque(maxlen=self.window - 1)

    @torch.inference_mode()
    def select(self, obs: Sequence[Observation]) -> list[int]:
        for i, o in enumerate(obs):
            if o.step > 0:
                self._target[i] -= self.process_reward(o.reward)
        states = torch.from_numpy(np.stack([o.state for o in obs]).astype(np.float32))
        self._ctx.append((states, torch.tensor(self._target, dtype=torch.float32),
                          torch.tensor([min(o.step, self.model.cfg.max_timestep) for o in obs])))
        acts = list(self._acts)[-(len(self._ctx) - 1):] if len(self._ctx) > 1 else []
        s = torch.stack([c[0] for c in self._ctx], dim=1)
        r = torch.stack([c[1] for c in self._ctx], dim=1)
        ts = torch.stack([c[2] for c in self._ctx], dim=1)
        a = torch.stack(acts, dim=1) if acts else torch.zeros(len(obs), 0, dtype=torch.long)
        logits = self.model.next_logits(s, r, ts, a)
        if self.greedy:
            choice = logits.argmax(-1)
        else:
            choice = torch.multinomial(torch.softmax(logits, -1), 1, generator=self._gen).squeeze(-1)
        self._acts.append(choice.clone())
        return choice.tolist()
