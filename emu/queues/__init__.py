"""Queues: the one interface (``Queue``) and its disciplines, built by name through ``make_queue``."""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Optional

from emu.plugins import Registry
from emu.queues.base import FifoQueue, Queue, QueueStats
from emu.queues.droptail import DropTailConfig, DropTailQueue

def _queue_entry(name: str, obj: Any) -> tuple[type, type]:
    """A registry entry -> ``(QueueClass, ConfigClass)``: a ``Queue`` subclass with a dataclass ``config_class``
    attribute, or such a pair."""
    if isinstance(obj, tuple) and len(obj) == 2:
        queue_cls, config_cls = obj
    else:
        queue_cls, config_cls = obj, getattr(obj, "config_class", None)
    if not (isinstance(queue_cls, type) and issubclass(queue_cls, Queue) and dataclasses.is_dataclass(config_cls)):
        raise ValueError(f"queue {name!r}: must be a Queue subclass with a dataclass config_class attribute, or a "
                         "(QueueClass, ConfigClass) pair")
    return queue_cls, config_cls


# Built-in queues (name -> "module:QueueClass"; names equal the file names), plugins from the ``emu.queues``
# entry-point group (``fq = "mypkg.fq:FQQueue"``) and ``register_queue`` calls: one registry (``emu.plugins``).
QUEUES = Registry("queue", "emu.queues", {
    "droptail": "emu.queues.droptail:DropTailQueue",
    "codel": "emu.queues.codel:CoDelQueue",
    "pie": "emu.queues.pie:PIEQueue",
    "dualpi2": "emu.queues.dualpi2:DualPI2Queue",
}, check=_queue_entry, noun="queue")


def queue_names() -> list[str]:
    """Built-in, plugin and registered queue names, sorted."""
    return QUEUES.names()


def register_queue(name: str, queue_cls: type, config_cls: Optional[type] = None, *, replace: bool = False) -> None:
    """Make ``name`` a queue for ``make_queue``, ``Network.link(queue=...)`` and scenario files, in this process.
    ``config_cls`` defaults to ``queue_cls.config_class``."""
    QUEUES.register(name, (queue_cls, config_cls or getattr(queue_cls, "config_class", None)), replace=replace)


def queue_classes(name: str) -> tuple[type, type]:
    """Return ``(QueueClass, ConfigClass)`` for a registered name, or raise ValueError listing valid names."""
    return QUEUES.get(name)


def make_queue(name: str, preset: str | None = None, rng: Any = None, **params: Any) -> Queue:
    """Build a queue by registry name, e.g. ``make_queue("codel", target_s=0.005)``.

    ``preset`` names a classmethod of the config (``make_queue("dualpi2", preset="linux")``); ``params``
    that are keyword-only arguments of that classmethod go to it, the others override fields of its result. ``rng`` (a numpy Generator, or a
    function returning one, called only for queues that draw random numbers) goes to queues that draw random numbers.
    """
    queue_cls, config_cls = queue_classes(name)
    if preset is not None:
        factory = getattr(config_cls, preset, None)
        if factory is None or not callable(factory):
            raise ValueError(f"queue {name!r}: unknown preset {preset!r}")
        # Keywords of the preset itself (``rfc9332(link_rate_bps=)``, ``linux(max_rtt_s=)``) go to it; the rest
        # override fields of what it returns.
        own = {k for k, p in inspect.signature(factory).parameters.items() if p.kind == p.KEYWORD_ONLY}
        factory_kw = {k: params.pop(k) for k in list(params) if k in own}
        config = factory(**factory_kw)
        if params:
            config = dataclasses.replace(config, **params)
    else:
        try:
            config = config_cls(**params)
        except TypeError as exc:
            valid = ", ".join(f.name for f in dataclasses.fields(config_cls))
            raise ValueError(f"queue {name!r}: {exc}; valid fields: {valid}") from None
    if rng is not None and _takes_rng(queue_cls):
        return queue_cls(config, rng=rng() if callable(rng) else rng)
    return queue_cls(config)


@functools.lru_cache(maxsize=None)
def _takes_rng(queue_cls: type) -> bool:
    """Whether a queue class's constructor takes ``rng`` (looked up once per class: networks build many queues)."""
    return "rng" in inspect.signature(queue_cls.__init__).parameters


__all__ = ["Queue", "FifoQueue", "QueueStats", "DropTailQueue", "DropTailConfig", "make_queue", "queue_names",
           "register_queue", "queue_classes"]
