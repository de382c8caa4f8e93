"""``install``: put one endpoint pair of any registered app between two hosts of any network."""
from __future__ import annotations

from typing import Any, Optional, Union

from emu.apps.base import Endpoint, InstallContext, resolve_ref
from emu.apps.registry import get
from emu.validate import MAX_DURATION_S, check_number


def install(net: Any, app: str, *, src: Union[str, Any], dst: Union[str, Any], name: Optional[str] = None,
            scheme: Optional[str] = None, start_s: float = 0.0, **params: Any) -> Endpoint:
    """Install app ``app`` from host ``src`` (sender/server) to host ``dst`` (receiver/client); return its endpoint.

    ``name`` names the instance and every flow it opens (default: the app name, numbered from the second
    instance on: ``chatterbox``, ``chatterbox2``, ...). ``scheme`` defaults to the app's first scheme; ``params``
    are fields of the app's config dataclass. Unknown app, scheme or parameter names fail here, listing the valid
    ones. The endpoint starts itself at ``start_s`` and is listed by ``RunResult(sim).apps()``.
    """
    spec = get(app)
    scheme = spec.check_scheme(scheme)
    config = spec.make_config(params)
    sim = net.sim
    src_host, dst_host = net.host_named(src), net.host_named(dst)
    if src_host is dst_host:
        raise ValueError(f"app {app!r}: src and dst are the same host {src_host.name!r}")
    check_number(f"app {app!r}: start_s", start_s, lo=sim.now_s, hi=MAX_DURATION_S, unit="s")
    taken = {ep.name for ep in sim.apps}
    if name is None:
        name, k = spec.name, 1
        while name in taken:
            k += 1
            name = f"{spec.name}{k}"
    elif not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"app {app!r}: name must be a non-empty string without spaces, got {name!r}")
    elif name in taken:
        raise ValueError(f"app {app!r}: an app instance named {name!r} is installed already; names must differ")
    src_host.need_route(dst_host.name, f"app {name!r}")
    dst_host.need_route(src_host.name, f"app {name!r}")
    ctx = InstallContext(sim=sim, net=net, src=src_host, dst=dst_host, name=name, scheme=scheme,
                         start_s=float(start_s), config=config)
    endpoint = resolve_ref(spec.install, f"app {app!r}: install")(ctx)
    if not isinstance(endpoint, Endpoint):
        raise TypeError(f"app {app!r}: install returned {type(endpoint).__name__}, not an Endpoint")
    endpoint.app = spec.name
    sim.add_app(endpoint)
    endpoint.start()
    return endpoint
