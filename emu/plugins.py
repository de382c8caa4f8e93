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

import hashlib
import importlib
import importlib.util
import logging
import os
import sys
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

log = logging.getLogger(__name__)


def import_ref(ref: str, what: str, *, code_path: Sequence[Union[str, Path]] = (),
               beside: Sequence[Union[str, Path]] = (), trust_cwd: bool = True) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now).

    The module is looked up, in order: in each folder of ``code_path``; on the import path (``sys.path``), without
    the current folder (``''``, ``'.'`` or the working directory) unless ``trust_cwd``; in each folder of
    ``beside``. A module found in a folder is loaded under a name of its own (``_emu_local.<hash>.<module>``), so
    it never shadows, nor is shadowed by, a module of the same name elsewhere. A module imported before is reused.
    """
    module_name, sep, attr = ref.partition(":") if isinstance(ref, str) else ("", "", "")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what}: expected 'package.module:attribute', got {ref!r}")
    module = _import_module(module_name, [Path(d) for d in code_path], [Path(d) for d in beside], trust_cwd)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{what}: module {module_name} has no attribute {attr!r}") from None


def _import_module(name: str, code_path: list[Path], beside: list[Path], trust_cwd: bool) -> Any:
    for folder in code_path:
        found = _module_file(folder, name)
        if found is not None:
            return _load_file(found, name)
    try:
        if trust_cwd:
            return importlib.import_module(name)
        with _path_without_cwd():
            return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not (name == missing or name.startswith(missing + ".")):
            raise  # the module exists but something it imports does not
    for folder in beside:
        found = _module_file(folder, name)
        if found is not None:
            return _load_file(found, name)
    places = [*(f"--code-path {d}" for d in code_path), "the import path" + ("" if trust_cwd else
                                                                           " (the current folder left out)"),
              *map(str, beside)]
    hint = ""
    if not trust_cwd and _module_file(Path.cwd(), name) is not None:
        hint = f"; the current folder ({Path.cwd()}) has one, but it is searched only when named (--code-path .)"
    raise ModuleNotFoundError(f"No module named {name!r} in {', '.join(places)}{hint}", name=name)


def _module_file(folder: Path, name: str) -> Optional[Path]:
    """``folder/a/b.py`` or ``folder/a/b/__init__.py`` for the module ``a.b``, if it exists."""
    base = folder.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _load_file(path: Path, name: str) -> Any:
    unique = f"_emu_local.{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}.{name}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"{path}: cannot be loaded as a Python module", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    return module


@contextmanager
def _path_without_cwd() -> Iterator[None]:
    """``sys.path`` without the current folder for the duration (a module there must not shadow an installed
    one); restored afterwards."""
    saved = list(sys.path)
    cwd = os.path.realpath(os.getcwd())
    sys.path[:] = [p for p in saved if p not in ("", ".") and os.path.realpath(p) != cwd]
    try:
        yield
    finally:
        sys.path[:] = saved


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
