"""Optional time series of a run (per-flow congestion window, per-queue state) recorded through trace hooks.

``TraceHub`` is a tracer (``emit(kind, t_s, **fields)``) with any number of subscribers per kind prefix; its
``enabled`` flag stays False until someone subscribes, so elements that test ``tracer.enabled`` on their hot path
pay one attribute read and nothing else. Recorders subscribe to it:

- ``CwndSeries``: ``transport.ack`` / ``transport.loss`` events of every stream (``emu.transport.stream``):
  ``cwnd_bytes``, ``srtt_s``, ``inflight_bytes`` per flow;
- ``QueueSeries``: ``queue.state`` events: after every enqueue and dequeue of the queues it hooks, their length
  (packets, bytes) and, for DualPI2 (RFC 9332 §2.4), the base probability ``p_prime`` (p'), the classic
  probability ``p_c`` (p'^2) and the L4S marking probability ``p_l``. Queues emit nothing themselves, so
  ``hook_queue`` wraps the ``enqueue``/``dequeue`` of the queue instances asked for (only those; others keep the
  class methods) to emit these events into the hub.

Both keep at most one sample per key per ``interval_s`` (default 1 ms, the last state of the interval is not
kept: the first event after the interval opens a new sample), in flat arrays; ``frame()`` returns a DataFrame
``time_s, key, <values>``.

    hub = TraceHub()
    sim = Sim(1, tracer=hub)
    ... build the network and flows ...
    cwnd = CwndSeries(hub)
    queues = QueueSeries(hub, [net.links[("left", "right")]])
    sim.run(10.0)
    cwnd.frame(), queues.frame()

Scenario files ask for them with ``timeseries = ["cwnd", "queue"]`` (``queue``: every link whose queue is not a
DropTail, else every link that is not an access link).
"""
from __future__ import annotations

from array import array
from typing import Any, Callable, Iterable, Optional

import numpy as np
import pandas as pd

TIMESERIES_KINDS = ("cwnd", "queue")
DEFAULT_INTERVAL_S = 1e-3


class TraceHub:
    """A tracer that fans events out to subscribers by kind prefix; disabled (free) while nobody subscribes."""

    def __init__(self) -> None:
        self.enabled = False
        self._subscribers: list[tuple[str, Callable[[str, float, dict], None]]] = []

    def subscribe(self, prefix: str, fn: Callable[[str, float, dict], None]) -> None:
        """Call ``fn(kind, t_s, fields)`` for every event whose kind starts with ``prefix``."""
        if not isinstance(prefix, str) or not callable(fn):
            raise ValueError("subscribe: expected a kind prefix (str) and a callable")
        self._subscribers.append((prefix, fn))
        self.enabled = True

    def emit(self, kind: str, t_s: float, **fields: Any) -> None:
        for prefix, fn in self._subscribers:
            if kind.startswith(prefix):
                fn(kind, t_s, fields)


class _Series:
    """Decimated samples: one per key per ``interval_s``."""

    columns: tuple[str, ...] = ()

    def __init__(self, interval_s: float) -> None:
        if not interval_s >= 0:
            raise ValueError(f"interval_s: must be >= 0, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._t = array("d")
        self._key = array("i")
        self._values = {c: array("d") for c in self.columns}
        self._keys: dict[str, int] = {}
        self._last: list[float] = []

    def _add(self, t_s: float, key: str, values: dict) -> None:
        k = self._keys.get(key)
        if k is None:
            k = self._keys[key] = len(self._keys)
            self._last.append(-np.inf)
        if t_s - self._last[k] < self.interval_s:
            return
        self._last[k] = t_s
        self._t.append(t_s)
        self._key.append(k)
        for c in self.columns:
            v = values.get(c)
            self._values[c].append(float(v) if v is not None else np.nan)

    def frame(self) -> pd.DataFrame:
        names = list(self._keys)
        keys = np.frombuffer(self._key, dtype=np.int32) if len(self._key) else np.zeros(0, dtype=np.int32)
        out = {"time_s": np.round(np.frombuffer(self._t, dtype=np.float64), 9) if len(self._t) else np.zeros(0),
               "key": pd.Categorical.from_codes(keys, categories=names) if names else []}
        for c in self.columns:
            values = np.frombuffer(self._values[c], dtype=np.float64).copy() if len(self._values[c]) else np.zeros(0)
            if c.startswith("len_") and np.isfinite(values).all():
                values = values.astype(np.int64)  # queue lengths are counts
            elif c.endswith("_s"):
                values = np.round(values, 9)
            out[c] = values
        return pd.DataFrame(out)


class CwndSeries(_Series):
    """Congestion window, smoothed RTT and bytes in flight per stream flow (key = flow name)."""

    columns = ("cwnd_bytes", "srtt_s", "inflight_bytes")

    def __init__(self, hub: TraceHub, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(interval_s)
        hub.subscribe("transport.", self._on_event)

    def _on_event(self, kind: str, t_s: float, fields: dict) -> None:
        if kind in ("transport.ack", "transport.loss"):
            self._add(t_s, fields["flow"], fields)


class QueueSeries(_Series):
    """Queue length and (DualPI2) probabilities per hooked link (key = link name)."""

    columns = ("len_pkts", "len_bytes", "p_prime", "p_c", "p_l")

    def __init__(self, hub: TraceHub, links: Iterable[Any], interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(interval_s)
        hub.subscribe("queue.state", self._on_event)
        for link in links:
            hook_queue(hub, link)

    def _on_event(self, kind: str, t_s: float, fields: dict) -> None:
        self._add(t_s, fields["link"], fields)


def _state(queue: Any) -> dict:
    out = {"len_pkts": queue.len_pkts, "len_bytes": queue.len_bytes}
    for name in ("p_prime", "p_c", "p_l"):
        value = getattr(queue, name, None)
        if value is not None:
            out[name] = value
    return out


def hook_queue(hub: TraceHub, link: Any) -> None:
    """Make ``link``'s queue emit ``queue.state`` into ``hub`` after each enqueue and dequeue (this instance only;
    hooking the same queue twice is a no-op)."""
    queue = link.queue
    if getattr(queue, "_emu_hooked", False):
        return
    enqueue, dequeue, name, emit = queue.enqueue, queue.dequeue, link.name, hub.emit

    def traced_enqueue(pkt: Any, now_s: float) -> bool:
        accepted = enqueue(pkt, now_s)
        emit("queue.state", now_s, link=name, **_state(queue))
        return accepted

    def traced_dequeue(now_s: float) -> Optional[Any]:
        pkt = dequeue(now_s)
        emit("queue.state", now_s, link=name, **_state(queue))
        return pkt

    queue.enqueue = traced_enqueue
    queue.dequeue = traced_dequeue
    queue._emu_hooked = True


def default_queue_links(net: Any) -> list[Any]:
    """The links whose queue is not a DropTail; if none, the links between routers (the bottlenecks of the
    helper topologies)."""
    links = list(net.links.values())
    special = [link for link in links if getattr(link.queue, "kind", "") != "droptail"]
    if special:
        return special
    routers = {name for name, node in net.nodes.items() if type(node).__name__ == "Router"}
    return [link for (a, b), link in net.links.items() if a in routers and b in routers]
