"""One place for event tracing: ``tracer.emit(kind, t_s, **fields)``.

The default ``NullTracer`` costs one attribute check on hot paths (elements test ``tracer.enabled``).
``ListTracer`` keeps events in memory for debugging and tests, optionally filtered by kind prefix.
"""
from __future__ import annotations

from typing import Any


class NullTracer:
    enabled = False

    def emit(self, kind: str, t_s: float, **fields: Any) -> None:  # pragma: no cover - never called hot
        pass


class ListTracer:
    """Collects ``(t_s, kind, fields)`` tuples; ``prefixes`` keeps only kinds starting with one of them."""

    enabled = True

    def __init__(self, prefixes: tuple[str, ...] = ()) -> None:
        self.prefixes = tuple(prefixes)
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def emit(self, kind: str, t_s: float, **fields: Any) -> None:
        if self.prefixes and not kind.startswith(self.prefixes):
            return
        self.events.append((t_s, kind, fields))

    def of_kind(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, f) for t, k, f in self.events if k == kind]
