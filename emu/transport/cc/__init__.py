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
from typing import Any

from emu.transport.cc.base import CongestionControl, WindowCC, WindowConfig

# name -> "module:Class"; names equal the file names. Loaded lazily.
CC_REGISTRY: dict[str, str] = {
    "reno": "emu.transport.cc.reno:RenoCC",
    "cubic": "emu.transport.cc.cubic:CubicCC",
    "prague": "emu.transport.cc.prague:PragueCC",
    "rtc": "emu.transport.cc.rtc:RtcRateController",
}


def cc_names() -> list[str]:
    return sorted(CC_REGISTRY)


def cc_class(name: str) -> type:
    """The controller class registered as ``name``; ValueError listing the valid names otherwise."""
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
