"""Marking policies: which queue (ECN codepoint) each packet of the app flow takes. They are the app's schemes.

A policy answers ``mark_frame(sender, now_s, sizes) -> [ECT1 | ECT0, ...]`` once per frame (one batched decision
for all of the frame's packets) and may set ``probes = True`` to have the sender add one probe per frame to the
other queue (``emu.apps.swiftqueue.app``). ``start(endpoint)`` is called when the endpoint starts (before its first
frame); ``stats()`` adds the policy's own counters to the endpoint's metrics.

- ``PerFlowPolicy(ECT1)`` — per-flow L4S, the status quo SwiftQueue is compared with: every packet ECT(1).
- ``PerFlowPolicy(ECT0)`` — per-flow Classic: every packet ECT(0). ``PerFlowPolicy(ECT1, probes=True)``: always L
  with probes, the control for SwiftQueue's decisions (same packets and probes, no choice).
- ``ExplorePolicy`` — data collection: each packet ECT(1) with probability ``p_l`` (drawn per run from
  ``U(p_min, p_max)`` unless given), with probes.
- ``PredictivePolicy(predictor)`` — SwiftQueue: predict each packet's latency in both queues and mark ECT(1)
  iff ``pred_L <= pred_C + margin_s``; probes on so both predictions stay informed. With the Transformer this is
  SwiftQueue; with ``last``/``ewma`` (schemes ``last_value``/``ewma``) it is the same rule on a non-learned predictor.
- ``ForkOraclePolicy`` — the oracle: at every frame it copies the whole simulation twice, sends the frame into L in
  one copy and into C in the other, runs both copies until the frame's packets have arrived, and marks the frame
  for the queue where they arrived sooner (mean latency of the delivered ones; ``horizon_s`` if none arrived). The
  choice is made with the *true* next latency of this frame in each queue, everything before it identical; later
  frames are assumed to go to L inside the copies. A clairvoyant greedy per-frame policy, not a global optimum.

``make_policy(name, ...)`` builds one by scheme name (``SCHEMES``); it is what an installed endpoint calls.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Optional

import numpy as np

from emu.packet import ECT0, ECT1

from emu.apps.swiftqueue.features import RECENT_S, SIZE_SCALE, unacked_features
from emu.apps.swiftqueue.predictors import BaselineTracker, Predictor, online_batch


class Policy:
    """The interface every marking policy implements (see the module docstring)."""

    probes = False

    def start(self, endpoint: Any) -> None:
        """Called once when the endpoint starts, before its first frame."""

    def stats(self) -> dict:
        """The policy's own counters, added to the endpoint's metrics."""
        return {}

    def mark_frame(self, sender: Any, now_s: float, sizes: list) -> list:  # pragma: no cover - interface
        raise NotImplementedError


class PerFlowPolicy(Policy):
    """Every packet ``ecn``; ``probes=True`` adds the predictive policies' probe per frame into the other queue
    (the "always L with probes" control: SwiftQueue's traffic without its decisions)."""

    probes = False

    def __init__(self, ecn: int = ECT1, probes: bool = False) -> None:
        if ecn not in (ECT1, ECT0):
            raise ValueError(f"ecn: must be ECT1 or ECT0, got {ecn!r}")
        if not isinstance(probes, bool):
            raise ValueError(f"probes: must be True or False, got {probes!r}")
        self.ecn = int(ecn)
        self.probes = probes

    def mark_frame(self, sender: Any, now_s: float, sizes: list) -> list:
        return [self.ecn] * len(sizes)


class ExplorePolicy(Policy):
    """Random per-packet marking for data collection (probes on)."""

    probes = True

    def __init__(self, p_l: Optional[float] = None, p_min: float = 0.3, p_max: float = 0.7) -> None:
        if p_l is not None and not 0.0 <= p_l <= 1.0:
            raise ValueError(f"p_l: must be in [0, 1], got {p_l!r}")
        if not 0.0 <= p_min <= p_max <= 1.0:
            raise ValueError(f"p_min, p_max: need 0 <= p_min <= p_max <= 1, got {p_min!r}, {p_max!r}")
        self.p_l = p_l
        self.p_min, self.p_max = p_min, p_max
        self.rng = None

    def start(self, endpoint: Any) -> None:
        self.rng = endpoint.sim.rng(f"{endpoint.name}.explore")
        if self.p_l is None:
            self.p_l = float(self.rng.uniform(self.p_min, self.p_max))

    def mark_frame(self, sender: Any, now_s: float, sizes: list) -> list:
        draws = self.rng.random(len(sizes)) < self.p_l
        return [ECT1 if d else ECT0 for d in draws]


class PredictivePolicy(Policy):
    """Mark by the lower predicted latency (SwiftQueue when the predictor is the Transformer).

    ``margin_s`` >= 0 biases towards L (ECT(1)) when the two predictions are within it. ``gate_s`` (optional)
    makes it a cascade: when both the newest latency and the EWMA of C exceed L's by more than ``gate_s`` the
    frame goes to L without running the model (``gated_frames`` counts them). Inference is cached per
    frame: the history window is built (and, by the Transformer, encoded) once, then each packet costs one query
    pass. ``infer_s`` (wall seconds)/``infer_calls``/``infer_pkts`` count its cost for the benchmark.
    """

    probes = True

    def __init__(self, predictor: Predictor, margin_s: float = 0.0, probes: bool = True,
                 gate_s: Optional[float] = None) -> None:
        if not isinstance(margin_s, (int, float)) or not 0.0 <= margin_s <= 1.0:
            raise ValueError(f"margin_s: must be in [0, 1] seconds, got {margin_s!r}")
        if gate_s is not None and (not isinstance(gate_s, (int, float)) or not 0.0 <= gate_s <= 1.0):
            raise ValueError(f"gate_s: must be None or in [0, 1] seconds, got {gate_s!r}")
        self.gate_s = gate_s
        self.gated_frames = 0
        self.predictor = predictor
        self.margin_s = float(margin_s)
        self.probes = bool(probes)
        self.tracker = BaselineTracker()
        self.infer_s = 0.0
        self.infer_calls = 0
        self.infer_pkts = 0

    def start(self, endpoint: Any) -> None:
        self.tracker = BaselineTracker()

    def stats(self) -> dict:
        return {"infer_calls": self.infer_calls, "infer_s": self.infer_s, "gated_frames": self.gated_frames}

    def mark_frame(self, sender: Any, now_s: float, sizes: list) -> list:
        hist = sender.history.view()
        if hist.shape[0] == 0:
            return [ECT1] * len(sizes)
        t0 = time.perf_counter()
        count = len(sizes)
        first = sender.n_sent
        # Own bytes sent into L / C in the last RECENT_S (earlier frames), from the sender's log.
        send = sender.send_s[:first]
        lo = int(np.searchsorted(send, now_s - RECENT_S, side="left"))
        q_recent = sender.queue[lo:first]
        b_recent = sender.size[lo:first].astype(np.float64)
        recent = np.array([[b_recent[q_recent == 1].sum(), b_recent[q_recent == 0].sum()]])
        if self.gate_s is not None:
            # Cascade: when the newest latency *and* the EWMA of C both exceed L's by more than gate_s, the frame
            # goes to L without running the model (measured agreement with the model: docs/swiftqueue.md).
            tr = self.tracker
            tr.update(hist)
            if tr.last[1] - tr.last[0] > self.gate_s and tr.ewma[1] - tr.ewma[0] > self.gate_s:
                self.gated_frames += 1
                self.infer_s += time.perf_counter() - t0
                return [ECT1] * count
        ack_s = getattr(sender, "ack_s", None)
        unacked = None if ack_s is None else unacked_features(send, sender.size, sender.queue, ack_s, now_s, first)
        batch = online_batch(hist, self.tracker, now_s, sizes, np.arange(count), np.full(count, count),
                             np.zeros(count), np.zeros((count, 2)), np.repeat(recent, count, axis=0),
                             key=(first, hist.shape[0]), unacked=unacked)
        # Packet by packet: the frame's earlier packets are ahead of this one in the queue they took. Predictions
        # are made for all remaining packets at once under the hypothesis that they all go to L, and redone for
        # the rest only after a packet goes to C: the same decisions as one call per packet, usually one call.
        sz = np.asarray(sizes, dtype=np.float64)
        cum = np.concatenate(([0.0], np.cumsum(sz)))
        q = batch.query
        q[:, 10] = cum[:-1] / SIZE_SCALE
        q[:, 11] = 0.0
        predict = self.predictor.predict
        pred = predict(batch)
        marks = []
        in_l = in_c = 0.0
        margin = self.margin_s
        for i in range(count):
            pl, pc = pred[i]
            sender.pred_l[first + i] = pl
            sender.pred_c[first + i] = pc
            if pl <= pc + margin:
                marks.append(ECT1)
                in_l += sz[i]
            else:
                marks.append(ECT0)
                in_c += sz[i]
                if i + 1 < count:
                    rest = np.arange(i + 1, count)
                    q[rest, 10] = (in_l + cum[rest] - cum[i + 1]) / SIZE_SCALE
                    q[rest, 11] = in_c / SIZE_SCALE
                    pred[rest] = predict(batch.take(rest))
        self.infer_s += time.perf_counter() - t0
        self.infer_calls += 1
        self.infer_pkts += count
        return marks


def _share_immutables(memo: dict, obj: Any) -> None:
    """Let copies share the trace arrays (read-only, often 10^5 entries) instead of duplicating them."""
    for name in ("_ts", "timestamps_ms", "_t", "_r", "_c", "_next_pos", "times_s", "rates_bps"):
        v = getattr(obj, name, None)
        if v is not None:
            memo[id(v)] = v


class ForkOraclePolicy(Policy):
    """The clairvoyant per-frame oracle (see the module docstring). ``start(endpoint)`` must be called (the endpoint
    does). ``forks`` counts the simulation copies made."""

    probes = False

    def __init__(self, horizon_s: float = 2.0) -> None:
        if not isinstance(horizon_s, (int, float)) or not 0.05 <= horizon_s <= 30.0:
            raise ValueError(f"horizon_s: must be in [0.05, 30] seconds, got {horizon_s!r}")
        self.horizon_s = float(horizon_s)
        self.run = None
        self.forks = 0
        self.l_frames = 0
        self.c_frames = 0

    def start(self, endpoint: Any) -> None:
        self.run = endpoint

    def stats(self) -> dict:
        return {"oracle_forks": self.forks, "oracle_c_frames": self.c_frames}

    def _memo(self) -> dict:
        from emu.metrics import Recorder

        r = self.run
        memo: dict = {id(self): PerFlowPolicy(ECT1)}   # inside a copy, later frames go to L
        rec = r.sim.records
        light = Recorder(mode=rec.mode, bin_s=rec.bin_s)  # copies record into a fresh, empty recorder
        for name in rec.flow_names:
            light.flow_id(name)
        for name in rec.where_names:
            light.where_id(name)
        for name in rec.reason_names:
            light.reason_id(name)
        memo[id(rec)] = light
        for i, counters in enumerate(rec.flows):
            memo[id(counters)] = light.flows[i]
        for link in r.ctx.net.links.values():   # every trace-driven link of the network
            schedule = getattr(link, "schedule", None)
            if schedule is not None:
                _share_immutables(memo, schedule)
                _share_immutables(memo, getattr(getattr(link, "config", None), "trace", None))
        return memo

    def _try(self, sender: Any, now_s: float, sizes: list, ecn: int) -> float:
        r = self.run
        sim_c, snd_c, rx_c = copy.deepcopy((r.sim, sender, r.receiver), self._memo())
        self.forks += 1
        first = snd_c.n_sent
        snd_c.emit_frame(now_s, sizes, [ecn] * len(sizes))
        seqs = np.arange(first, first + len(sizes))
        t = now_s
        end = now_s + self.horizon_s
        while t < end:
            t = min(end, t + 0.02)
            sim_c.run(until_s=t)
            rx_c.grow(first + len(sizes))
            if np.all(np.isfinite(rx_c.lat_s[seqs])):
                break
        lat = rx_c.lat_s[seqs]
        got = np.isfinite(lat)
        # Latency only (the metric's quantiles are over delivered packets): a frame with nothing delivered within
        # the horizon scores the horizon.
        return float(lat[got].mean()) if got.any() else self.horizon_s

    def mark_frame(self, sender: Any, now_s: float, sizes: list) -> list:
        if self.run is None:
            raise RuntimeError("ForkOraclePolicy.start(endpoint) was not called")
        lat_l = self._try(sender, now_s, sizes, ECT1)
        lat_c = self._try(sender, now_s, sizes, ECT0)
        if lat_c < lat_l:
            self.c_frames += 1
            return [ECT0] * len(sizes)
        self.l_frames += 1
        return [ECT1] * len(sizes)


# The schemes of the app, in the order ``emu eval swiftqueue --json`` lists them; the first six are evaluated by
# default (``EVAL_SCHEMES``), the rest on request (``--schemes``).
EVAL_SCHEMES = ("swiftqueue", "perflow_l4s", "perflow_classic", "last_value", "ewma", "oracle")
SCHEMES = EVAL_SCHEMES + ("gru", "linear", "random", "explore")
RULES = ("last_value", "ewma")   # the non-learned rules: argmin of the newest / EWMA latency per queue
_PREDICTOR_OF = {"swiftqueue": "transformer", "last_value": "last", "ewma": "ewma", "gru": "gru", "linear": "linear"}


def make_policy(name: str, models_dir: Any = None, margin_s: Optional[float] = None, gate: bool = True) -> Policy:
    """The marking policy of scheme ``name`` (one per endpoint: policies keep per-run state).

    ======================  ============================================================================
    ``swiftqueue``          ``PredictivePolicy`` on the Transformer (numpy inference), with the card's margin and
                            cascade gate (``gate=False``: run the model on every frame, for the benchmark)
    ``perflow_l4s``         every packet ECT(1) (``PerFlowPolicy(ECT1)``)
    ``perflow_classic``     every packet ECT(0) (``PerFlowPolicy(ECT0)``)
    ``oracle``              ``ForkOraclePolicy()``: per-frame fork of the whole simulation (slow: ~2 copies a frame)
    ``last_value``          the SwiftQueue rule on the newest measured latency of each queue (no model)
    ``ewma``                the SwiftQueue rule on the EWMA (gain 1/8) of each queue's latency (no model)
    ``gru``, ``linear``     the SwiftQueue rule on the GRU / linear AR predictor
    ``random``              ``ExplorePolicy(p_l=0.5)``: each packet ECT(1) with probability 0.5, probes on
    ``explore``             ``ExplorePolicy()``: ``p_l`` drawn per run from U(0.3, 0.7), probes on (training data)
    ======================  ============================================================================

    ``models_dir`` is the folder of the model card (default: ``$EMU_MODELS_DIR/swiftqueue`` or the packaged
    models); the learned schemes load their weights from it, hash-checked, and take the marking margin from the
    card unless ``margin_s`` (seconds, >= 0) is given; ``last_value`` and ``ewma`` use margin 0 (the plain argmin)
    unless ``margin_s`` is given. Unknown names list the valid ones.
    """
    if name == "perflow_l4s":
        return PerFlowPolicy(ECT1)
    if name == "perflow_classic":
        return PerFlowPolicy(ECT0)
    if name == "oracle":
        return ForkOraclePolicy()
    if name == "random":
        return ExplorePolicy(p_l=0.5)
    if name == "explore":
        return ExplorePolicy()
    if name in _PREDICTOR_OF:
        from emu.apps.swiftqueue.weights import decision_gate_s, decision_margin_s, make_predictor

        predictor = make_predictor(_PREDICTOR_OF[name], models_dir)
        if margin_s is None:
            # The simple rules are the plain argmin (margin 0): the card's margin was chosen for its learned models.
            margin_s = 0.0 if name in RULES else decision_margin_s(models_dir)
        gate_s = decision_gate_s(models_dir) if (gate and name == "swiftqueue") else None
        return PredictivePolicy(predictor, margin_s=margin_s, gate_s=gate_s)
    raise ValueError(f"policy: unknown {name!r}; valid: {', '.join(SCHEMES)}")


__all__ = ["Policy", "PerFlowPolicy", "ExplorePolicy", "PredictivePolicy", "ForkOraclePolicy", "SCHEMES",
           "EVAL_SCHEMES", "make_policy"]
