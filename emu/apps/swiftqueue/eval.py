"""Evaluation: marking policies side by side on one trace and seed (``emu eval swiftqueue``), and predictor accuracy
(``emu eval swiftqueue --predictors``).

Every policy runs the same scenario (``emu.apps.swiftqueue.scenario``) with the same seed: same trace, same frame
sizes and times (the app is not congestion controlled), same cross-traffic schedule. Metrics per policy
(``scenario.summarize``): ``p50_s``/``p95_s``/``p99_s`` one-way latency of the app's media packets (delivered ones;
``app_loss`` reports the rest), ``app_bps``, ``cross_bps`` (all cross flows' delivered bytes), ``l_share``,
``reordered``, ``frame_p99_s`` (through the receiver's jitter buffer).

**Oracle** (``ForkOraclePolicy``): the true next latency of a frame in each queue is measured, not guessed: at every
frame the whole simulation is copied twice, the frame goes into L in one copy and into C in the other, both copies
run until its packets have arrived, and the real run sends the frame where they arrived sooner. Everything up to
the decision is identical in the three, so the comparison is exact for that frame (later frames are assumed to go
to L inside the copies): a clairvoyant greedy per-frame policy. It costs two copies and ~0.1-0.3 simulated
seconds per frame (a 30 s evaluation makes ~1800 copies). ``ghost_bound`` gives a cheaper, looser reference from
one run with ghost probes (each packet's latency in the faster queue with everything else held fixed).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from emu.packet import ECT0, ECT1

from emu.apps.swiftqueue.policies import ExplorePolicy, ForkOraclePolicy, PerFlowPolicy, PredictivePolicy
from emu.apps.swiftqueue.scenario import ScenarioConfig, run, summarize

POLICIES = ("swiftqueue", "perflow_l4s", "perflow_classic", "oracle")
EXTRA_POLICIES = ("last", "ewma", "gru", "linear", "random")
DEFAULT_TRACE = "mahimahi/Verizon-LTE-short.down"
DEFAULT_DURATION_S = 30.0


def make_policy(name: str, models: Any = None, margin_s: Optional[float] = None, gate: bool = True):
    """A policy by name (``POLICIES`` + ``EXTRA_POLICIES``; "oracle" is built by ``run_oracle``). ``gate=False``
    runs the model on every frame (no cascade), for the benchmark."""
    if name == "perflow_l4s":
        return PerFlowPolicy(ECT1)
    if name == "perflow_classic":
        return PerFlowPolicy(ECT0)
    if name == "random":
        return ExplorePolicy(p_l=0.5)
    if name in ("swiftqueue", "last", "ewma", "gru", "linear"):
        from emu.apps.swiftqueue.predictors import make_predictor
        from emu.apps.swiftqueue.weights import decision_gate_s, decision_margin_s

        predictor = make_predictor("transformer" if name == "swiftqueue" else name, models)
        if margin_s is None:
            margin_s = decision_margin_s(models)
        gate_s = decision_gate_s(models) if (gate and name == "swiftqueue") else None
        return PredictivePolicy(predictor, margin_s=margin_s, gate_s=gate_s)
    raise ValueError(f"policy: unknown {name!r}; valid: {', '.join(POLICIES + EXTRA_POLICIES)}")


def run_oracle(config: ScenarioConfig, seed: int = 0, horizon_s: float = 2.0) -> tuple[dict, Any]:
    """The oracle's metrics and run (see the module docstring)."""
    policy = ForkOraclePolicy(horizon_s=horizon_s)
    r = run(config, policy, seed=seed)
    out = summarize(r)
    out["oracle_forks"] = policy.forks
    out["oracle_c_frames"] = policy.c_frames
    return out, r


def ghost_bound(r: Any) -> dict:
    """Counterfactual bound from one run's ghosts: each media packet's latency in the faster queue at its send
    instant, everything else held fixed (``bound_p50_s``/``bound_p95_s``/``bound_p99_s``; 1-byte ghosts, so the
    packet's own serialisation is not included)."""
    from emu.apps.swiftqueue.app import KIND_MEDIA

    cfg = r.config
    n = r.sender.n_sent
    r.receiver._grow(n)
    send = r.sender.send_s[:n]
    best = np.fmin(r.receiver.ghost_l_s[:n], r.receiver.ghost_c_s[:n])
    m = (send >= cfg.warmup_s) & (send < cfg.duration_s) & (r.sender.kind[:n] == KIND_MEDIA) & np.isfinite(best)
    if not m.any():
        return {"bound_p50_s": float("nan"), "bound_p95_s": float("nan"), "bound_p99_s": float("nan")}
    return {f"bound_p{q}_s": float(np.quantile(best[m], q / 100)) for q in (50, 95, 99)}


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
            m["gated_frames"] = policy.gated_frames
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
