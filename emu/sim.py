"""Sim: a SimPy environment plus the run's seed tree, tracer, packet ids, flows and records.

Hot paths schedule plain callbacks (``call_in``/``call_at``) straight onto SimPy's event heap: one heap entry
and one function call per event, no generator or ``Timeout`` object. Ordinary SimPy processes
(``sim.process(gen)``, ``sim.env.timeout``) run on the same clock, so scripts can mix both styles.
"""
from __future__ import annotations

import gc
import itertools
import logging
from heapq import heappop, heappush
from typing import Any, Callable, Generator

import simpy
from simpy.events import NORMAL

from emu.metrics import Recorder
from emu.rng import SeedTree
from emu.tracer import NullTracer
from emu.validate import MAX_DURATION_S, check_number

log = logging.getLogger(__name__)

# The progress bar says a run is stalled after this many simulated seconds without a delivered packet.
STALL_NOTICE_S = 5.0


class _Call:
    """A minimal event for SimPy's heap: ``Environment.step`` reads ``callbacks`` and ``_ok`` only."""

    __slots__ = ("callbacks", "_ok", "fn", "arg")

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.callbacks = (_fire,)
        self._ok = True
        self.fn = fn
        self.arg = arg


def _fire(call: _Call) -> None:
    call.fn(call.arg)


class _Wake:
    """An even smaller heap event for internal callbacks that take the event itself (and ignore it)."""

    __slots__ = ("callbacks",)
    _ok = True

    def __init__(self, callbacks: tuple) -> None:
        self.callbacks = callbacks


class Sim:
    """One simulation run.

    Args:
        seed: the run seed; every component draws from ``sim.rng(name)``.
        tracer: receives ``emit(kind, t_s, **fields)``; default: none.
        record: ``"full"`` keeps one row per packet (DataFrames, Parquet); ``"summary"`` keeps streaming
            per-flow summaries in constant memory, for very long runs.
    """

    def __init__(self, seed: int = 0, *, tracer: Any = None, record: str = "full") -> None:
        self.env = simpy.Environment()
        self.seeds = SeedTree(seed)
        self.seed = self.seeds.seed
        self.tracer = tracer if tracer is not None else NullTracer()
        self.records = Recorder(mode=record)
        # The kernel's public hot-path handles: components push ``(t_s, NORMAL, next(sim.event_ids), event)`` onto
        # ``sim.heap`` (SimPy's own event heap, so SimPy processes share the clock) and number packets with
        # ``next(sim.pkt_ids)``; ``call_at``/``call_in`` wrap the same for ordinary callbacks.
        self.pkt_ids = itertools.count()
        self._elements: list[Any] = []
        self._apps: list[Any] = []
        self.heap = self.env._queue
        self.event_ids = self.env._eid
        self.ran_until_s = 0.0

    # -- time ---------------------------------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        return self.env._now

    def call_in(self, delay_s: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` after ``delay_s`` seconds (>= 0) of simulated time."""
        heappush(self.heap, (self.env._now + delay_s, NORMAL, next(self.event_ids), _Call(fn, arg)))

    def call_at(self, t_s: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` at absolute time ``t_s`` (not before now)."""
        if not t_s >= self.env._now:   # NaN too
            raise ValueError(f"call_at: time {t_s} s is in the past (now {self.env._now} s)")
        heappush(self.heap, (t_s, NORMAL, next(self.event_ids), _Call(fn, arg)))

    def process(self, generator: Generator) -> simpy.Process:
        """Start a SimPy process (a generator yielding SimPy events)."""
        return self.env.process(generator)

    def timeout(self, delay_s: float) -> simpy.Timeout:
        return self.env.timeout(delay_s)

    # -- identities -----------------------------------------------------------------------------------------------

    def rng(self, name: str):
        """The ``numpy.random.Generator`` of component ``name`` (derived from the run seed and the name)."""
        return self.seeds.rng(name)

    def new_pkt_id(self) -> int:
        return next(self.pkt_ids)

    def flow(self, name: str) -> int:
        """The integer id of flow ``name`` (registered on first use)."""
        return self.records.flow_id(name)

    def register(self, element: Any) -> None:
        """Elements register so the run can check wiring and conservation."""
        self._elements.append(element)

    def add_app(self, endpoint: Any) -> None:
        """Apps' endpoints register here (``emu.apps.install`` does it) so results can list them."""
        self._apps.append(endpoint)

    @property
    def apps(self) -> list[Any]:
        """Installed app endpoints, in installation order."""
        return list(self._apps)

    def events_scheduled(self) -> int:
        """Heap events scheduled since the run began (SimPy processes' events included). Reading it takes one event
        id, which does not change the order of later events."""
        return next(self.event_ids)

    @property
    def sent_pkts(self) -> int:
        """Packets sent by every source so far."""
        return sum(flow.sent_pkts for flow in self.records.flows)

    @property
    def elements(self) -> list[Any]:
        return list(self._elements)

    # -- running ------------------------------------------------------------------------------------------------

    def check_wiring(self) -> None:
        """Raise ValueError naming the first element with an output left unconnected."""
        for element in self._elements:
            check = getattr(element, "check_wiring", None)
            if check is not None:
                check()

    def run(self, until_s: float, *, progress: bool = False, desc: str = "simulating") -> "Sim":
        """Run until simulated time ``until_s`` (events at exactly ``until_s`` are not processed: [0, until_s)).

        ``until_s`` must be finite, after now and at most ``emu.validate.MAX_DURATION_S`` (``sim.run(inf)`` is
        refused: a run with periodic events would never end).

        With ``progress=True`` a tqdm bar advances in simulated seconds.
        """
        check_number("until_s", until_s, lo=self.env._now, lo_open=True, hi=MAX_DURATION_S, unit="s")
        self.check_wiring()
        # Packets are short-lived, acyclic objects: a larger first GC generation saves collector passes
        # during the run (thresholds restored afterwards).
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], 100_000), *thresholds[1:])
        try:
            self._run(until_s, progress, desc)
        finally:
            gc.set_threshold(*thresholds)
        self.ran_until_s = until_s
        return self

    def _run(self, until_s: float, progress: bool, desc: str) -> None:
        if progress:
            from tqdm import tqdm

            steps = 100
            start = self.env._now
            records = self.records
            delivered, moved_s, stalled = records.delivered_total_pkts, start, False
            with tqdm(total=round(until_s - start, 6), unit="sim s", desc=desc, leave=False) as bar:
                for i in range(1, steps + 1):
                    target = start + (until_s - start) * i / steps
                    self._loop(target)
                    # A long trace outage looks like a hang: say so when nothing has been delivered for a while.
                    if records.delivered_total_pkts != delivered:
                        delivered, moved_s = records.delivered_total_pkts, target
                        if stalled:
                            bar.set_postfix_str("", refresh=False)
                            stalled = False
                    elif target - moved_s >= STALL_NOTICE_S:
                        bar.set_postfix_str(f"no packet delivered for {target - moved_s:.1f} sim s",
                                            refresh=not stalled)  # shown at once, however fast the outage runs
                        stalled = True
                    bar.update(round(target - start, 6) - bar.n)
        else:
            self._loop(until_s)

    def _loop(self, until_s: float) -> None:
        """SimPy's ``Environment.step`` inlined into one loop (same order, same error handling), then the clock is
        set to ``until_s`` as ``env.run(until=until_s)`` does. Events at exactly ``until_s`` stay queued."""
        env = self.env
        heap = self.heap
        pop = heappop
        try:
            while heap:
                item = pop(heap)
                if item[0] >= until_s:
                    heappush(heap, item)     # the same entry goes back: the heap order is unchanged
                    break
                env._now = item[0]
                event = item[3]
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except simpy.core.StopSimulation:
            return
        env._now = until_s

    # -- accounting ---------------------------------------------------------------------------------------------

    def packets_in_network(self) -> dict[str, int]:
        """Packets held by elements now: queued, being serialised, propagating."""
        queued = in_flight = 0
        for element in self._elements:
            queued += getattr(element, "queued_pkts", 0)
            in_flight += getattr(element, "in_flight_pkts", 0)
        return {"queued_pkts": queued, "in_flight_pkts": in_flight}
