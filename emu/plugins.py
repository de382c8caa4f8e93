"""One registry mechanism for the names a user can extend: apps, queues and congestion controllers (L0, stdlib only).

A ``Registry`` holds three sources of named entries, looked up in this order:
- runtime registrations (``register(name, obj)``, e.g. from a script or a test),
- built-ins (``"module:attribute"`` strings, imported on first use),
- plugins from other packages, through an entry-point group::

    [project.entry-points."emu.queues"]       # or "emu.cc", "emu.apps"
    fq = "mypkg.fq:FQQueue"

Plugins are listed without being imported; one is imported when first named, and a failure names it. A plugin may
not shadow a built-in name (it is ignored with a warning), and unknown names list every valid one.
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping, Optional

log = logging.getLogger(__name__)


def import_ref(ref: str, what: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what}: expected 'package.module:attribute', got {ref!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{what}: module {module_name} has no attribute {attr!r}") from None


class Registry:
    """Named entries of one kind (``kind`` and ``noun`` are used in messages: "queue: unknown queue 'x'").

    ``check(name, obj)`` validates (and may convert) an entry when it is registered or first loaded.
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, Any],
                 check: Optional[Callable[[str, Any], Any]] = None, noun: str = "") -> None:
        self.kind = kind
        self.noun = noun
        self.group = group
        self.builtins = dict(builtins)
        self._check = check
        self._runtime: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._entry_points: Optional[dict[str, Any]] = None

    def _plugins(self) -> dict[str, Any]:
        if self._entry_points is None:
            found = {}
            for ep in entry_points(group=self.group):
                if ep.name in self.builtins:
                    log.warning("%s plugin %r (%s) ignored: the name is built in", self.kind, ep.name, ep.value)
                    continue
                found[ep.name] = ep
            self._entry_points = found
        return self._entry_points

    def refresh(self) -> None:
        """Forget the plugins found so far (after installing a package in a running process)."""
        self._entry_points = None
        self._loaded.clear()

    def names(self) -> list[str]:
        """Every valid name, sorted."""
        return sorted(set(self.builtins) | set(self._plugins()) | set(self._runtime))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def register(self, name: str, obj: Any, *, replace: bool = False) -> Any:
        """Add ``obj`` under ``name`` for this process (``replace=True`` to override an existing name)."""
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"register: a {self.kind} name must be a non-empty string without spaces, got {name!r}")
        if name in self and not replace:
            raise ValueError(f"register: a {self.kind} named {name!r} exists already (pass replace=True)")
        obj = self._check(name, obj) if self._check is not None else obj
        self._runtime[name] = obj
        self._loaded.pop(name, None)
        return obj

    def unregister(self, name: str) -> None:
        """Remove a runtime registration (built-ins and plugins stay)."""
        self._runtime.pop(name, None)
        self._loaded.pop(name, None)

    def get(self, name: Any) -> Any:
        """The entry named ``name``; an unknown name lists the valid ones."""
        if isinstance(name, str):
            if name in self._runtime:
                return self._runtime[name]
            if name in self._loaded:
                return self._loaded[name]
            if name in self.builtins:
                ref = self.builtins[name]
                obj = import_ref(ref, f"{self.kind} {name!r}") if isinstance(ref, str) else ref
            elif name in self._plugins():
                ep = self._plugins()[name]
                try:
                    obj = ep.load()
                except Exception as exc:  # a broken plugin names itself
                    raise ValueError(f"{self.kind} {name!r}: plugin {ep.value} failed to load: "
                                     f"{type(exc).__name__}: {exc}") from None
            else:
                obj = None
            if obj is not None:
                obj = self._check(name, obj) if self._check is not None else obj
                self._loaded[name] = obj
                return obj
        noun = f"{self.noun} " if self.noun else ""
        raise ValueError(f"{self.kind}: unknown {noun}{name!r}; valid names: {', '.join(self.names())}")
