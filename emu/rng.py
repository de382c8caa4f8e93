"""Seed tree: one run seed, one independent numpy Generator per component name.

A component's stream depends only on the run seed and its stable name, so adding a flow or a link does not
reshuffle the draws of the others (ns-3's AssignStreams without manual numbering).
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_name_key(name: str) -> int:
    """A 64-bit key from a name, identical across processes and Python versions (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class SeedTree:
    """Hands out one ``numpy.random.Generator`` per name, derived from ``seed`` and the name."""

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self._generators: dict[str, np.random.Generator] = {}

    def rng(self, name: str) -> np.random.Generator:
        """The generator for ``name`` (the same object on every call with that name)."""
        gen = self._generators.get(name)
        if gen is None:
            seq = np.random.SeedSequence(entropy=self.seed, spawn_key=(stable_name_key(name),))
            gen = np.random.Generator(np.random.PCG64(seq))
            self._generators[name] = gen
        return gen

    def seed_for(self, name: str) -> int:
        """A 63-bit integer seed for libraries that want one (e.g. ``torch.Generator().manual_seed``)."""
        seq = np.random.SeedSequence(entropy=self.seed, spawn_key=(stable_name_key(name),))
        return int(seq.generate_state(2, np.uint64)[0] >> np.uint64(1))
