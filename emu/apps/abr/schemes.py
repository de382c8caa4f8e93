"""Scheme names -> policies (torch is imported only for the learned ones)."""
from __future__ import annotations

from typing import Optional

from emu.apps.abr.video import Video

__all__ = ["SCHEMES", "make_policy"]

SCHEMES = ("bba", "mpc", "pensieve", "netllm", "netllm_random", "dt_scratch")


def make_policy(scheme: str, video: Video, *, models_dir: Optional[str] = None, seed: int = 0,
                sample: bool = False):
    """A fresh policy object for ``scheme``; learned ones load their committed weights (hash-checked).

    ``sample``: learned policies draw each action from their softmax (the released test code does; seeded by
    ``seed``); default False: they take the most likely level (greedy), see docs/abr.md for both numbers."""
    from emu.apps.abr.policies import BBA, RobustMPC

    if scheme == "bba":
        return BBA()
    if scheme == "mpc":
        return RobustMPC(video)
    if scheme == "pensieve":
        from emu.apps.abr.load import load_pensieve

        policy = load_pensieve(models_dir, seed=seed)
        policy.greedy = not sample
        return policy
    if scheme in ("netllm", "netllm_random", "dt_scratch"):
        from emu.apps.abr.load import load_netllm

        policy = load_netllm(scheme, models_dir, seed=seed)
        policy.greedy = not sample
        return policy
    raise ValueError(f"scheme: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
