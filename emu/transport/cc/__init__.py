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

from typing import Any

from emu.plugins import Registry
from emu.transport.cc.base import CongestionControl, WindowCC, WindowConfig

def _cc_entry(name: str, obj: Any) -> type:
    if not (isinstance(obj, type) and issubclass(obj, CongestionControl)):
        raise ValueError(f"cc {name!r}: must be a CongestionControl subclass, built as cls(mss_bytes=..., **params)")
    return obj


# Built-in controllers (name -> "module:Class"; names equal the file names), plugins from the ``emu.cc`` entry-point
# group (``bbr = "mypkg.bbr:BbrCC"``) and ``register_cc`` calls: one registry (``emu.plugins``).
CONTROLLERS = Registry("cc", "emu.cc", {
    "reno": "emu.transport.cc.reno:RenoCC",
    "cubic": "emu.transport.cc.cubic:CubicCC",
    "prague": "emu.transport.cc.prague:PragueCC",
    "rtc": "emu.transport.cc.rtc:RtcRateController",
}, check=_cc_entry, noun="congestion control")


def cc_names() -> list[str]:
    """Built-in, plugin and registered controller names, sorted."""
    return CONTROLLERS.names()


def register_cc(name: str, cls: type, *, replace: bool = False) -> None:
    """Make ``name`` a congestion controller for ``open_stream(cc=...)``, bulk apps and scenario files."""
    CONTROLLERS.register(name, cls, replace=replace)


def cc_class(name: str) -> type:
    """The controller class registered as ``name``; ValueError listing the valid names otherwise."""
    return CONTROLLERS.get(name)


def make_cc(name: Any, mss_bytes: int = 1448, **params: Any) -> CongestionControl:
    """Build a controller by registry name (``params`` override its config fields), or pass an instance through.

    An instance is returned as is (``params`` must then be empty).
    """
    if isinstance(name, CongestionControl):
        if params:
            raise ValueError("cc: parameters given together with a controller instance")
        return name
    return cc_class(name)(mss_bytes=mss_bytes, **params)


__all__ = ["CongestionControl", "WindowCC", "WindowConfig", "CONTROLLERS", "cc_names", "cc_class", "make_cc",
           "register_cc"]
