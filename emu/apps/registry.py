"""The one list of applications: built-in specs, entry-point plugins and runtime registrations.

Everything that names an app (``emu eval``, ``emu train``, scenario files' ``[[app]]``, sweeps, ``install``)
looks it up here. Third-party packages register an ``AppSpec`` through the ``emu.apps`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points."emu.apps"]
    myapp = "myapp.spec:SPEC"          # an AppSpec, or a zero-argument callable returning one

or at run time with ``emu.apps.register(spec)``. Specs are imported when first asked for; an app's own modules
(and torch) only when it is installed, evaluated or trained.
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Optional

from emu.apps.base import AppSpec, resolve_ref

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "emu.apps"

# name -> "module:attribute" of its AppSpec. The only list of built-in apps in the code base.
BUILTIN_SPECS: dict[str, str] = {
    "abr": "emu.apps.abr.spec:SPEC",
    "bulk": "emu.apps.bulk:SPEC",
    "chatterbox": "emu.apps.chatterbox.spec:SPEC",
    "grace": "emu.apps.grace.spec:SPEC",
    "kvfetch": "emu.apps.kvfetch.spec:SPEC",
    "swiftqueue": "emu.apps.swiftqueue.spec:SPEC",
}

_registered: dict[str, AppSpec] = {}
_plugins: Optional[dict[str, str]] = None


def _plugin_refs() -> dict[str, object]:
    global _plugins
    if _plugins is None:
        _plugins = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in BUILTIN_SPECS:
                log.warning("app plugin %r (%s) ignored: the name is a built-in app", ep.name, ep.value)
                continue
            _plugins[ep.name] = ep
    return _plugins


def register(spec: AppSpec, *, replace: bool = False) -> AppSpec:
    """Add ``spec`` to the registry (``replace=True`` to override an app of the same name)."""
    if not isinstance(spec, AppSpec):
        raise ValueError(f"register: expected an AppSpec, got {type(spec).__name__}")
    if not replace and spec.name in names():
        raise ValueError(f"register: an app named {spec.name!r} exists already (pass replace=True)")
    _registered[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a runtime registration (built-ins and plugins stay)."""
    _registered.pop(name, None)


def names() -> list[str]:
    """Registered app names, sorted."""
    return sorted(set(BUILTIN_SPECS) | set(_plugin_refs()) | set(_registered))


def get(name: str) -> AppSpec:
    """The spec of app ``name``; an unknown name lists the registered ones."""
    if not isinstance(name, str):
        raise ValueError(f"app: expected a name, got {name!r}")
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_SPECS:
        spec = resolve_ref(BUILTIN_SPECS[name], f"app {name!r}")
    elif name in _plugin_refs():
        ep = _plugin_refs()[name]
        try:
            spec = ep.load()
        except Exception as exc:  # a broken plugin names itself
            raise ValueError(f"app {name!r}: plugin {ep.value} failed to load: {type(exc).__name__}: {exc}") from None
        if callable(spec) and not isinstance(spec, AppSpec):
            spec = spec()
    else:
        raise ValueError(f"app: unknown {name!r}; registered: {', '.join(names())}")
    if not isinstance(spec, AppSpec) or spec.name != name:
        raise ValueError(f"app {name!r}: its entry does not give an AppSpec named {name!r}")
    _registered[name] = spec
    return spec

