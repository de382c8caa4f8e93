"""Congestion controllers, built by name: ``make_cc("cubic", mss_bytes=1448, hystart=False)``.

Controllers are pure strategy objects (no SimPy): see ``emu.transport.cc.base`` for the contract.

=========  ===============================================  ===================
name       class                                            ECN codepoint
=========  ===============================================  ===================
reno       ``RenoCC`` (RFC 5681, RFC 3168 with ecn=True)    Not-ECT / ECT(0)
cubic      ``CubicCC`` (RFC 9438, HyStart++ RFC 9406)       Not-ECT / ECT(0)
prague     ``PragueCC`` (draft-briscoe-iccrg-prague, L4S)   ECT(1)
rtc        ``RtcRateController`` (SCReAM-like, rate based)  ECT(1) when l4s
=========  ===============================================  ===================
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any, Optional

from emu.transport.cc.base import CongestionControl, WindowCC, WindowConfig

# name -> "module:Class"; names equal the file names. Loaded lazily.
CC_REGISTRY: dict[str, str] = {
    "reno": "emu.transport.cc.reno:RenoCC",
    "cubic": "emu.transport.cc.cubic:CubicCC",
    "prague": "emu.transport.cc.prague:PragueCC",
    "rtc": "emu.transport.cc.rtc:RtcRateController",
}


# Controllers from other packages: the ``emu.cc`` entry-point group, the same mechanism as the ``emu.apps`` group::
#
#     [project.entry-points."emu.cc"]
#     bbr = "mypkg.bbr:BbrCC"       # a CongestionControl subclass, built as cls(mss_bytes=..., **params)
#
# Loaded when first named; a plugin may not shadow a built-in name.
CC_ENTRY_POINT_GROUP = "emu.cc"
_plugins: Optional[dict[str, Any]] = None
log = logging.getLogger(__name__)


def _plugin_ccs() -> dict[str, Any]:
    global _plugins
    if _plugins is None:
        _plugins = {}
        for ep in entry_points(group=CC_ENTRY_POINT_GROUP):
            if ep.name in CC_REGISTRY:
                log.warning("cc plugin %r (%s) ignored: the name is a built-in controller", ep.name, ep.value)
                continue
            _plugins[ep.name] = ep
    return _plugins


def cc_names() -> list[str]:
    """Built-in and plugin controller names, sorted."""
    return sorted(set(CC_REGISTRY) | set(_plugin_ccs()))


def cc_class(name: str) -> type:
    """The controller class registered as ``name``; ValueError listing the valid names otherwise."""
    if isinstance(name, str) and name not in CC_REGISTRY and name in _plugin_ccs():
        ep = _plugin_ccs()[name]
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin names itself
            raise ValueError(f"cc {name!r}: plugin {ep.value} failed to load: {type(exc).__name__}: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, CongestionControl)):
            raise ValueError(f"cc {name!r}: plugin {ep.value} is not a CongestionControl subclass")
        return cls
    if not isinstance(name, str) or name not in CC_REGISTRY:
        raise ValueError(f"cc: unknown congestion control {name!r}; valid names: {', '.join(cc_names())}")
    module_name, cls_name = CC_REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def make_cc(name: Any, mss_bytes: int = 1448, **params: Any) -> CongestionControl:
    """Build a controller by registry name (``params`` override its config fields), or pass an instance through.

    An instance is returned as is (``params`` must then be empty).
    """
    if isinstance(name, CongestionControl):
        if params:
            raise ValueError("cc: parameters given together with a controller instance")
        return name
    return cc_class(name)(mss_bytes=mss_bytes, **params)


__all__ = ["CongestionControl", "WindowCC", "WindowConfig", "CC_REGISTRY", "cc_names", "cc_class", "make_cc"]
