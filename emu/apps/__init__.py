"""Application endpoints, all through one contract (``emu.apps.base``) and one registry (``emu.apps.registry``).

    import emu.apps
    emu.apps.names()                                   # ['bulk', 'chatterbox', 'grace', 'kvfetch', ...]
    ep = emu.apps.install(net, "chatterbox", src="s0", dst="d0", scheme="chatterbox", n_responses=2)
    sim.run(until_s=30.0); ep.done, ep.result()

Learned apps live in sub-packages and import torch lazily, inside themselves.
"""
from emu.apps.base import AppSpec, Endpoint, InstallContext
from emu.apps.install import install
from emu.apps.registry import get, names, register, unregister

__all__ = ["AppSpec", "Endpoint", "InstallContext", "install", "get", "names", "register", "unregister"]
