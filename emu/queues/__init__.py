"""Queues: the one interface (``Queue``) and its disciplines, built by name through ``make_queue``."""
from __future__ import annotations

import dataclasses
import inspect
import importlib
import logging
from importlib.metadata import entry_points
from typing import Any, Optional

from emu.queues.base import FifoQueue, Queue, QueueStats
from emu.queues.droptail import DropTailConfig, DropTailQueue

# name -> "module:QueueClass:ConfigClass"; ids equal the file names. Loaded lazily.
QUEUE_REGISTRY: dict[str, str] = {
    "droptail": "emu.queues.droptail:DropTailQueue:DropTailConfig",
    "codel": "emu.queues.codel:CoDelQueue:CoDelConfig",
    "pie": "emu.queues.pie:PIEQueue:PIEConfig",
    "dualpi2": "emu.queues.dualpi2:DualPI2Queue:DualPI2Config",
}


# Queues from other packages: the ``emu.queues`` entry-point group, the same mechanism as the ``emu.apps`` group::
#
#     [project.entry-points."emu.queues"]
#     fq = "mypkg.fq:FQQueue"      # a Queue class with a ``config_class`` attribute, or a (QueueClass, ConfigClass)
#
# Loaded when first named; a plugin may not shadow a built-in name.
QUEUE_ENTRY_POINT_GROUP = "emu.queues"
_plugins: Optional[dict[str, Any]] = None
log = logging.getLogger(__name__)


def _plugin_queues() -> dict[str, Any]:
    global _plugins
    if _plugins is None:
        _plugins = {}
        for ep in entry_points(group=QUEUE_ENTRY_POINT_GROUP):
            if ep.name in QUEUE_REGISTRY:
                log.warning("queue plugin %r (%s) ignored: the name is a built-in queue", ep.name, ep.value)
                continue
            _plugins[ep.name] = ep
    return _plugins


def queue_names() -> list[str]:
    """Built-in and plugin queue names, sorted."""
    return sorted(set(QUEUE_REGISTRY) | set(_plugin_queues()))


def _plugin_classes(name: str) -> tuple[type, type]:
    ep = _plugin_queues()[name]
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin names itself
        raise ValueError(f"queue {name!r}: plugin {ep.value} failed to load: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, tuple) and len(obj) == 2:
        queue_cls, config_cls = obj
    else:
        queue_cls, config_cls = obj, getattr(obj, "config_class", None)
    if not (isinstance(queue_cls, type) and issubclass(queue_cls, Queue) and dataclasses.is_dataclass(config_cls)):
        raise ValueError(f"queue {name!r}: plugin {ep.value} must give a Queue subclass with a dataclass "
                         "config_class attribute, or a (QueueClass, ConfigClass) pair")
    return queue_cls, config_cls


def queue_classes(name: str) -> tuple[type, type]:
    """Return ``(QueueClass, ConfigClass)`` for a registered name, or raise ValueError listing valid names."""
    if not isinstance(name, str) or name not in QUEUE_REGISTRY:
        if isinstance(name, str) and name in _plugin_queues():
            return _plugin_classes(name)
        raise ValueError(f"queue: unknown queue {name!r}; valid names: {', '.join(queue_names())}")
    module_name, cls_name, cfg_name = QUEUE_REGISTRY[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name), getattr(module, cfg_name)


def make_queue(name: str, preset: str | None = None, rng: Any = None, **params: Any) -> Queue:
    """Build a queue by registry name, e.g. ``make_queue("codel", target_s=0.005)``.

    ``preset`` names a classmethod of the config (``make_queue("dualpi2", preset="linux")``); ``params``
    that are keyword-only arguments of that classmethod go to it, the others override fields of its result. ``rng`` (a numpy Generator) goes to queues that draw random numbers.
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
    if rng is not None and "rng" in inspect.signature(queue_cls.__init__).parameters:
        return queue_cls(config, rng=rng)
    return queue_cls(config)


__all__ = ["Queue", "FifoQueue", "QueueStats", "DropTailQueue", "DropTailConfig", "make_queue", "queue_names"]
