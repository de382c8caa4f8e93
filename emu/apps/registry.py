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

from emu.apps.base import AppSpec
from emu.plugins import Registry

ENTRY_POINT_GROUP = "emu.apps"

# name -> "module:attribute" of its AppSpec. The only list of built-in apps in the code base.
BUILTIN_SPECS: dict[str, str] = {
    "bulk": "emu.apps.bulk:SPEC",
    "chatterbox": "emu.apps.chatterbox.spec:SPEC",
    "grace": "emu.apps.grace.spec:SPEC",
    "kvblend": "emu.apps.kvblend.spec:SPEC",
    "kvfetch": "emu.apps.kvfetch.spec:SPEC",
    "swiftqueue": "emu.apps.swiftqueue.spec:SPEC",
}

def _spec_entry(name: str, obj: object) -> AppSpec:
    spec = obj() if callable(obj) and not isinstance(obj, AppSpec) else obj
    if not isinstance(spec, AppSpec) or spec.name != name:
        raise ValueError(f"app {name!r}: its entry does not give an AppSpec named {name!r}")
    return spec


APPS = Registry("app", ENTRY_POINT_GROUP, BUILTIN_SPECS, check=_spec_entry)


def register(spec: AppSpec, *, replace: bool = False) -> AppSpec:
    """Add ``spec`` to the registry for this process (``replace=True`` to override an app of the same name)."""
    if not isinstance(spec, AppSpec):
        raise ValueError(f"register: expected an AppSpec, got {type(spec).__name__}")
    return APPS.register(spec.name, spec, replace=replace)


def unregister(name: str) -> None:
    """Remove a runtime registration (built-ins and plugins stay)."""
    APPS.unregister(name)


def names() -> list[str]:
    """Registered app names, sorted."""
    return APPS.names()


def get(name: str) -> AppSpec:
    """The spec of app ``name``; an unknown name lists the registered ones."""
    return APPS.get(name)
