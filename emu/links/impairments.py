"""Loss and delay-jitter stages applied after a packet is serialised (pure logic; draws from a given rng).

- ``BernoulliLoss``: each packet lost independently with probability ``p``.
- ``GilbertElliottLoss``: a two-state Markov chain (Gilbert 1960, Elliott 1963): per packet the state moves
  good->bad with ``p_good_to_bad`` and bad->good with ``p_bad_to_good``, then the packet is lost with
  ``loss_in_good`` or ``loss_in_bad``. Mean burst length in the bad state is ``1 / p_bad_to_good`` packets.
- ``Jitter``: an extra non-negative delay per packet, ``uniform`` on [0, 2·mean] or ``exponential`` with that
  mean; with ``reorder=False`` a packet never overtakes the one before it (netem's rate-limited behaviour),
  with ``reorder=True`` it may.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emu.validate import MAX_DELAY_S, check_bool, check_number

_BATCH = 4096


class _UniformStream:
    """Uniform [0, 1) draws served one at a time from batches (one numpy call per 4096 packets)."""

    __slots__ = ("rng", "buf", "i")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.buf: list[float] = []
        self.i = 0

    def next(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(_BATCH).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]


def _check_prob(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class BernoulliLossConfig:
    p: float

    def __post_init__(self) -> None:
        _check_prob("loss.p", self.p)


@dataclass(frozen=True, kw_only=True)
class GilbertElliottLossConfig:
    p_good_to_bad: float
    p_bad_to_good: float
    loss_in_good: float = 0.0
    loss_in_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p_good_to_bad", "p_bad_to_good", "loss_in_good", "loss_in_bad"):
            _check_prob(f"loss.{name}", getattr(self, name))

    @property
    def mean_loss(self) -> float:
        """Stationary loss rate: pi_bad * loss_in_bad + pi_good * loss_in_good."""
        total = self.p_good_to_bad + self.p_bad_to_good
        pi_bad = self.p_good_to_bad / total if total > 0 else 0.0
        return pi_bad * self.loss_in_bad + (1 - pi_bad) * self.loss_in_good


class BernoulliLoss:
    def __init__(self, config: BernoulliLossConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._p = config.p
        self._u = _UniformStream(rng)

    def lost(self) -> bool:
        return self._u.next() < self._p


class GilbertElliottLoss:
    def __init__(self, config: GilbertElliottLossConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.bad = False
        self._u = _UniformStream(rng)

    def lost(self) -> bool:
        c = self.config
        u = self._u.next()
        if self.bad:
            if u < c.p_bad_to_good:
                self.bad = False
        elif u < c.p_good_to_bad:
            self.bad = True
        return self._u.next() < (c.loss_in_bad if self.bad else c.loss_in_good)


def make_loss(config, rng: np.random.Generator):
    if isinstance(config, BernoulliLossConfig):
        return BernoulliLoss(config, rng)
    if isinstance(config, GilbertElliottLossConfig):
        return GilbertElliottLoss(config, rng)
    raise ValueError(f"loss: unsupported config {config!r}")


@dataclass(frozen=True, kw_only=True)
class JitterConfig:
    mean_s: float
    distribution: str = "uniform"
    reorder: bool = False

    def __post_init__(self) -> None:
        check_number("jitter.mean_s", self.mean_s, lo=0, hi=MAX_DELAY_S, unit="s")
        check_bool("jitter.reorder", self.reorder)
        if self.distribution not in ("uniform", "exponential"):
            raise ValueError(
                f"jitter.distribution: unknown {self.distribution!r}; valid: exponential, uniform")


class Jitter:
    def __init__(self, config: JitterConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0
        self.last_delivery_s = 0.0

    def extra_delay_s(self) -> float:
        i = self._i
        if i >= len(self._buf):
            c = self.config
            if c.distribution == "uniform":
                self._buf = self._rng.uniform(0.0, 2.0 * c.mean_s, _BATCH).tolist()
            else:
                self._buf = self._rng.exponential(c.mean_s, _BATCH).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]

    def delivery_time_s(self, base_arrival_s: float) -> float:
        """Arrival time with jitter added; clamped to keep order unless ``reorder``."""
        t = base_arrival_s + self.extra_delay_s()
        if not self.config.reorder:
            if t < self.last_delivery_s:
                t = self.last_delivery_s
            self.last_delivery_s = t
        return t
