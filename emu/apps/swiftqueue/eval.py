"""Evaluation: marking policies (the app's schemes) side by side on one trace and seed (``emu eval swiftqueue``),
predictor accuracy (``emu eval swiftqueue --predictors``) and the scenario's headroom (``--headroom``).

Every scheme runs the same scenario (``emu.apps.swiftqueue.scenario``) with the same seed: same trace, same frame
sizes and times (the app is not congestion controlled), same cross-traffic schedule. Metrics per scheme
(``scenario.summarize``): ``p50_s``/``p95_s``/``p99_s`` one-way latency of all the app's media packets (a lost or
late one scores the playout deadline), ``p99_delivered_s``, ``loss_frac``, ``deadline_miss_frac``, ``app_bps``,
``cross_bps`` (all cross flows' delivered bytes), ``l_share``, ``reordered``, ``frame_p99_s`` (through the
receiver's jitter buffer), and the policy's counters.

**Oracle** (scheme ``oracle``, ``policies.ForkOraclePolicy``): the true next latency of a frame in each queue is
measured, not guessed: at every frame the whole simulation is copied twice, the frame goes into L in one copy and
into C in the other, both copies run until its packets have arrived, and the real run sends the frame where they
arrived sooner. Everything up to the decision is identical in the three, so the comparison is exact for that frame
(later frames are assumed to go to L inside the copies): a clairvoyant greedy per-frame policy. It costs two copies
and ~0.1-0.3 simulated seconds per frame (a 30 s evaluation makes ~1800 copies). ``ghost_bound`` gives a cheaper,
looser reference from one run with ghost probes (each packet's latency in the faster queue with everything else
held fixed).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from emu.apps.swiftqueue.app import KIND_MEDIA
from emu.apps.swiftqueue.policies import EVAL_SCHEMES, make_policy
from emu.apps.swiftqueue.predictors import PREDICTORS
from emu.apps.swiftqueue.scenario import ScenarioConfig, run, summarize


def check_inputs(config: ScenarioConfig, schemes: Sequence[str] = (), predictors: Sequence[str] = ()) -> None:
    """Fail before any simulation on a bad trace (file and line), model card or weight file (hash checked), or
    scheme name."""
    from emu.apps.swiftqueue.weights import make_predictor
    from emu.links.tracefile import load_trace, resolve_trace_path

    load_trace(resolve_trace_path(config.trace))
    for scheme in schemes:
        make_policy(scheme, config.models_dir, config.margin_s)
    for name in predictors:
        make_predictor(name, config.models_dir)


def evaluate(config: ScenarioConfig, *, schemes: Sequence[str] = EVAL_SCHEMES, seed: int = 0) -> dict[str, dict]:
    """``{scheme: metrics}`` for each scheme on ``config`` (see the module docstring)."""
    check_inputs(config, schemes)
    return {scheme: summarize(run(config, scheme, seed=seed)) for scheme in schemes}


def ghost_bound(r: Any) -> dict:
    """Counterfactual bound from one run's ghosts (``ScenarioConfig(ghosts=True)``): each media packet's latency in
    the faster queue at its send instant, everything else held fixed (``bound_p50_s``/``bound_p95_s``/
    ``bound_p99_s``; 1-byte ghosts, so the packet's own serialisation is not included)."""
    cfg = r.config
    n = r.sender.n_sent
    r.receiver.grow(n)
    send = r.sender.send_s[:n]
    best = np.fmin(r.receiver.ghost_l_s[:n], r.receiver.ghost_c_s[:n])
    m = (send >= cfg.warmup_s) & (send < cfg.duration_s) & (r.sender.kind[:n] == KIND_MEDIA) & np.isfinite(best)
    if not m.any():
        return {"bound_p50_s": float("nan"), "bound_p95_s": float("nan"), "bound_p99_s": float("nan")}
    return {f"bound_p{q}_s": float(np.quantile(best[m], q / 100)) for q in (50, 95, 99)}


def predictor_accuracy(config: ScenarioConfig, *, seed: int = 0, predictors: Sequence[str] = PREDICTORS,
                       runs: int = 1) -> dict[str, dict]:
    """MAE (overall, on sharp changes, per queue) of each predictor on ``runs`` exploratory runs of ``config``
    (``duration_s`` each; run k starts k/runs of the trace's period later than ``trace_offset_s``).

    The runs use the ``explore`` scheme (random marking, probes) so both queues are labelled; MAE is over the media
    packets' latencies, each compared with the prediction for the queue it took.
    """
    from emu.apps.swiftqueue.collector import collect
    from emu.apps.swiftqueue.dataset import from_runs
    from emu.apps.swiftqueue.predictors import mae_table
    from emu.apps.swiftqueue.weights import make_predictor
    from emu.links.tracefile import load_trace, resolve_trace_path

    period = load_trace(resolve_trace_path(config.trace)).period_s
    made = [make_predictor(p, config.models_dir) for p in predictors]
    data = []
    for k in range(runs):
        cfg = config.replace(trace_offset_s=config.trace_offset_s + round(period * k / runs, 3))
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


C_FASTER_S = 0.005   # a packet "would have been faster in C" when its C ghost beat its L ghost by more than this


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index of every run of consecutive True values."""
    if not flags.any():
        return []
    d = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0] - 1
    return list(zip(starts.tolist(), ends.tolist()))


def headroom(config: ScenarioConfig, *, seed: int = 0) -> dict:
    """How much any per-packet marking could gain on ``config`` (``emu eval swiftqueue --headroom``), from one
    per-flow-L4S run with ghost probes (a 1-byte probe into each queue just before every packet):

    - ``c_faster_frac``: share of the app's media packets for which the C ghost beat the L ghost by > 5 ms;
    - ``l4s_p99_delivered_s``, ``bound_p99_s`` and ``bound_ratio``: the open-loop bound (each packet in the faster
      queue, everything else held fixed; delivered packets) against per-flow L4S's delivered p99;
    - ``ghost_p99_l_s``/``ghost_p99_c_s``: p99 of each queue's ghosts (the better per-flow policy, roughly);
    - ``c_run_p50_s``/``c_run_p90_s``: lengths of the runs of consecutive C-faster packets (first to last send
      time plus one frame interval), ``feedback_s``: the median time from sending a packet to its ACK (how late a
      causal sender learns anything), and ``c_runs_over_2fb_frac``: the share of C-faster packets in runs longer
      than twice it (what a causal sender can catch);
    - ``zero_capacity_s``: whole seconds of the run with no capacity at all (outages hit both queues);
    - ``loss_frac``: the app's loss under per-flow L4S (overload drops hit both queues).
    """
    check_inputs(config)
    r = run(config.replace(ghosts=True), "perflow_l4s", seed=seed)
    cfg, s, rx = r.config, r.sender, r.receiver
    n = s.n_sent
    rx.grow(n)
    send = s.send_s[:n]
    media = (send >= cfg.warmup_s) & (send < cfg.duration_s) & (s.kind[:n] == KIND_MEDIA)
    gl, gc = rx.ghost_l_s[:n][media], rx.ghost_c_s[:n][media]
    both = np.isfinite(gl) & np.isfinite(gc)
    c_faster = both & (gc < gl - C_FASTER_S)
    t_media = send[media]
    frame_s = 1.0 / r.endpoint.config.fps
    lengths = np.array([t_media[b] - t_media[a] + frame_s for a, b in _runs(c_faster)])
    counts = np.array([b - a + 1 for a, b in _runs(c_faster)])
    hist = s.history.view()
    feedback = float(np.median(hist[:, 0] - hist[:, 1])) if hist.shape[0] else float("nan")
    sched = r.topo.bottleneck.schedule
    zero_s = sum(1 for k in range(int(cfg.duration_s)) if sched.bytes_between(float(k), float(k + 1)) <= 0.0)
    summary = summarize(r)
    bound = ghost_bound(r)
    out = {
        "c_faster_frac": float(c_faster.sum() / max(1, media.sum())),
        "l4s_p99_delivered_s": summary["p99_delivered_s"],
        "bound_p99_s": bound["bound_p99_s"],
        "bound_ratio": bound["bound_p99_s"] / summary["p99_delivered_s"],
        "ghost_p99_l_s": float(np.quantile(gl[np.isfinite(gl)], 0.99)) if np.isfinite(gl).any() else float("nan"),
        "ghost_p99_c_s": float(np.quantile(gc[np.isfinite(gc)], 0.99)) if np.isfinite(gc).any() else float("nan"),
        "c_run_p50_s": float(np.median(lengths)) if lengths.size else 0.0,
        "c_run_p90_s": float(np.quantile(lengths, 0.9)) if lengths.size else 0.0,
        "feedback_s": feedback,
        "c_runs_over_2fb_frac": float(counts[lengths > 2 * feedback].sum() / counts.sum()) if counts.size else 0.0,
        "zero_capacity_s": float(zero_s),
        "loss_frac": summary["loss_frac"],
    }
    return out
