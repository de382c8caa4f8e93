"""Pensieve-style actor-critic (Mao et al., "Neural Adaptive Video Streaming with Pensieve", SIGCOMM '17).

Network (``sim/a3c.py``, sizes scaled down): one branch per state row,
``Linear(1, h)`` on the last bitrate, the buffer and the chunks remaining, ``Conv1d(1, h, 4)`` on the
throughput and download-time histories and on the next chunk sizes, concatenated, ``Linear(-, h)`` + ReLU, then a
softmax over the 6 levels (actor) or a scalar (critic). Trained with synchronous advantage actor-critic on the
chunk-level simulator (``emu.apps.abr.train.train_pensieve``). At test time the action is sampled from the
policy, as the released ``pensieve()`` does, from a seeded generator.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from emu.apps.abr.player import Observation
from emu.apps.abr.video import N_LEVELS

__all__ = ["ActorCritic", "PensievePolicy"]


class _Trunk(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc_bitrate = nn.Linear(1, hidden)
        self.fc_buffer = nn.Linear(1, hidden)
        self.conv_tput = nn.Conv1d(1, hidden, 4)
        self.conv_delay = nn.Conv1d(1, hidden, 4)
        self.conv_sizes = nn.Conv1d(1, hidden, 4)
        self.fc_remain = nn.Linear(1, hidden)
        self.merge = nn.Linear(hidden * (3 + 3 * 3), hidden)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        b = s.shape[0]
        relu = torch.relu
        parts = [relu(self.fc_bitrate(s[:, 0:1, -1])), relu(self.fc_buffer(s[:, 1:2, -1])),
                 relu(self.conv_tput(s[:, 2:3, :])).reshape(b, -1), relu(self.conv_delay(s[:, 3:4, :])).reshape(b, -1),
                 relu(self.conv_sizes(s[:, 4:5, :N_LEVELS])).reshape(b, -1), relu(self.fc_remain(s[:, 5:6, -1]))]
        return relu(self.merge(torch.cat(parts, dim=1)))


class ActorCritic(nn.Module):
    """Separate actor and critic networks of the same shape (as Pensieve)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.actor_trunk = _Trunk(hidden)
        self.actor_head = nn.Linear(hidden, N_LEVELS)
        self.critic_trunk = _Trunk(hidden)
        self.critic_head = nn.Linear(hidden, 1)

    def logits(self, s: torch.Tensor) -> torch.Tensor:
        return self.actor_head(self.actor_trunk(s))

    def value(self, s: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic_trunk(s)).squeeze(-1)


class PensievePolicy:
    """The trained actor as a lockstep policy; actions sampled from a generator seeded by ``seed``."""

    name = "pensieve"

    def __init__(self, model: ActorCritic, *, seed: int = 0, greedy: bool = False) -> None:
        self.model = model.eval()
        self.seed = seed
        self.greedy = greedy
        self._gen: Optional[torch.Generator] = None

    def reset(self, n_sessions: int) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)

    @torch.inference_mode()
    def select(self, obs: Sequence[Observation]) -> list[int]:
        s = torch.from_numpy(np.stack([o.state for o in obs]).astype(np.float32))
        logits = self.model.logits(s)
        if self.greedy:
            return logits.argmax(-1).tolist()
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self._gen).squeeze(-1).tolist()
