"""Evaluation: marking policies side by side on one trace and seed (``emu eval swiftqueue``), and predictor accuracy
(``emu eval swiftqueue --predictors``).

Every policy runs the same scenario (``emu.apps.swiftqueue.scenario``) with the same seed: same trace, same frame
sizes and times (the app is not congestion controlled), same cross-traffic schedule. Metrics per policy
(``scenario.summarize``): ``p50_s``/``p95_s``/``p99_s`` one-way latency of the app's media packets (delivered ones;
``app_loss`` reports the rest), ``app_bps``, ``cross_bps`` (all cross flows' delivered bytes), ``l_share``,
``reordered``, ``frame_p99_s`` (through the receiver's jitter buffer).

**Oracle** (``run_oracle``): the true next latency of a packet in each queue is measured, not guessed. Pass 1 runs
per-flow L4S marking with ghost probes (with every app packet, one 1-byte packet into each queue: their one-way
delays are what that packet would have seen in L and in C, at a load of 2 bytes per packet). Pass 2 reruns the
same seeded scenario, marking each packet to the queue whose pass-1 ghost was faster; further passes repeat with
the previous pass's ghosts (default 2 passes in all). Because the app's own packets move between queues, pass 2's
queues differ slightly from pass 1's: the oracle is clairvoyant about the network, not about its own effect.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from emu.packet import ECT0, ECT1

from emu.apps.swiftqueue.policies import ExplorePolicy, OraclePolicy, PerFlowPolicy, PredictivePolicy
from emu.apps.swiftqueue.scenario import ScenarioConfig, run, summarize

POLICIES = ("swiftqueue", "perflow_l4s", "perflow_classic", "oracle")
EXTRA_POLICIES = ("last", "ewma", "gru", "linear", "random")
DEFAULT_TRACE = "mahimahi/Verizon-LTE-short.down"
DEFAULT_DURATION_S = 30.0


def make_policy(name: str, models: Any = None, margin_s: Optional[float] = None):
    """A policy by name (``POLICIES`` + ``EXTRA_POLICIES``; "oracle" is built by ``run_oracle``)."""
    if name == "perflow_l4s":
        return PerFlowPolicy(ECT1)
    if name == "perflow_classic":
        return PerFlowPolicy(ECT0)
    if name == "random":
        return ExplorePolicy(p_l=0.5)
    if name in ("swiftqueue", "last", "ewma", "gru", "linear"):
        from emu.apps.swiftqueue.predictors import make_predictor
        from emu.apps.swiftqueue.weights import decision_margin_s

        predictor = make_predictor("transformer" if name == "swiftqueue" else name, models)
        if margin_s is None:
            margin_s = decision_margin_s(models)
        return PredictivePolicy(predictor, margin_s=margin_s)
    raise ValueError(f"policy: unknown {name!r}; valid: {', '.join(POLICIES + EXTRA_POLICIES)}")


def run_oracle(config: ScenarioConfig, seed: int = 0, passes: int = 2) -> tuple[dict, Any]:
    """The oracle's metrics and final run (see the module docstring)."""
    if not isinstance(passes, int) or passes < 2:
        raise ValueError(f"passes: must be an integer >= 2, got {passes!r}")
    cfg = dataclasses.replace(config, ghosts=True)
    r = run(cfg, PerFlowPolicy(ECT1), seed=seed)
    for _ in range(passes - 1):
        n = r.sender.n_sent
        r.receiver._grow(n)
        policy = OraclePolicy(r.receiver.ghost_l_s[:n].copy(), r.receiver.ghost_c_s[:n].copy())
        r = run(cfg, policy, seed=seed)
    return summarize(r), r


def evaluate(trace: str = DEFAULT_TRACE, seed: int = 0, duration_s: float = DEFAULT_DURATION_S,
             policies: Sequence[str] = POLICIES, models: Any = None, margin_s: Optional[float] = None,
             **scenario: Any) -> dict[str, dict]:
    """``{policy: metrics}`` for each policy on ``trace`` (see the module docstring)."""
    config = ScenarioConfig(trace=trace, duration_s=duration_s, **scenario)
    built = {name: make_policy(name, models, margin_s) for name in policies if name != "oracle"}
    out: dict[str, dict] = {}
    for name in policies:
        if name == "oracle":
            out[name], _ = run_oracle(config, seed)
            continue
        policy = built[name]
        r = run(config, policy, seed=seed)
        m = summarize(r)
        if isinstance(policy, PredictivePolicy):
            m["infer_calls"] = policy.infer_calls
            m["infer_s"] = policy.infer_s
        out[name] = m
    return out


def predictor_accuracy(trace: str = DEFAULT_TRACE, seed: int = 0, duration_s: float = 60.0,
                       predictors: Sequence[str] = ("last", "ewma", "linear", "gru", "transformer"),
                       models: Any = None, runs: int = 1, **scenario: Any) -> dict[str, dict]:
    """MAE (overall, on sharp changes, per queue) of each predictor on exploratory runs of ``trace``.

    The runs use ``ExplorePolicy`` (random marking, probes) so both queues are labelled; MAE is over the media
    packets' latencies, each compared with the prediction for the queue it took.
    """
    from emu.apps.swiftqueue.collector import collect
    from emu.apps.swiftqueue.dataset import from_runs
    from emu.apps.swiftqueue.predictors import make_predictor, mae_table
    from emu.links.tracefile import load_trace

    period = load_trace(trace).period_s
    made = [make_predictor(p, models) for p in predictors]
    data = []
    for k in range(runs):
        cfg = ScenarioConfig(trace=trace, duration_s=duration_s, trace_offset_s=round(period * k / runs, 3),
                             **scenario)
        data.append(collect(cfg, seed=seed * 1000 + k))
    ds = from_runs(data)
    m = ds.media
    idx = np.nonzero(m)[0]
    out: dict[str, dict] = {}
    for pred in made:
        p = np.empty((idx.size, 2))
        for i in range(0, idx.size, 4096):
            p[i:i + 4096] = pred.predict(ds.batch(idx[i:i + 4096]))
        out[pred.name] = mae_table(p, ds.y[idx], ds.queue[idx], ds.sharp[idx])
    return out
