"""``emu train swiftqueue``: data -> split -> linear AR, GRU, Transformer -> ``emu/models/swiftqueue/`` + model card.

Steps (all seeded from ``--seed``; CPU, one torch thread, data collection on two processes):

1. collect exploratory runs in the named scenarios on the training and validation traces
   (``emu.apps.swiftqueue.train.DATA_PLAN``: ``household`` and ``alternating`` on lumos5g 4G traces, ``mixed`` on
   the first round's; the two splits share no trace, and neither shares one with the test traces) and write
   ``train.npz``/``val.npz`` to ``<out>/data`` (default ``build/swiftqueue-data``, not committed);
2. fit the linear AR (ridge), the GRU and the Transformer on ``train``, keeping the checkpoint with the best
   validation MAE;
3. choose the marking margin on the validation traces (``select_margin``: the lowest mean p99, losses counted,
   relative to per-flow L4S among 0, 2, 5, 10 ms, in ``household`` and ``alternating``);
4. write ``linear.npy``, ``gru.pt``, ``transformer.pt`` and the model card ``swiftqueue.card.json``
   (``emu.apps.artifacts.write_card``: sha256 of each file; config = architectures, training settings and the
   marking policy with its margin table; data, seed, steps; metrics on the validation traces for every predictor)
   into the output folder (files are written to a temporary sibling folder first and moved in at the end).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.apps.artifacts import models_dir as app_models_dir, write_card
from emu.apps.swiftqueue.train import (
    DATA_PLAN, LUMOS_VAL_TRACES, SCENARIO_TEST_TRACES, TEST_TRACES, TrainConfig, eval_mae, fit_linear, fit_torch,
    predict_torch,
)
from emu.apps.swiftqueue.weights import APP, CARD, FILES

log = logging.getLogger(__name__)

TRANSFORMER_STEPS = 1200
GRU_STEPS = 1500
MARGIN_CANDIDATES_S = (0.0, 0.002, 0.005, 0.010)
# Cascade gate: skip the model when the newest latency and the EWMA both say C is slower by more than this.
# Chosen by measurement (docs/swiftqueue.md): at 10 ms it never disagreed with the model on 6,300 frames of the
# validation and test traces, and saves the model call on 6-52 % of frames.
GATE_S = 0.010
MARGIN_EVAL_DURATION_S = 15.0
MARGIN_SCENARIOS = ("household", "alternating")


def select_margin(models_dir: Path, traces: list, seed: int, duration_s: float = MARGIN_EVAL_DURATION_S) -> dict:
    """Pick the marking margin on the validation traces: the candidate with the lowest mean p99 (losses counted)
    relative to per-flow L4S over ``MARGIN_SCENARIOS`` x ``traces`` (ties: the smaller margin). Returns the table
    too."""
    from emu.apps.swiftqueue.scenario import ScenarioConfig, run, summarize

    table = {f"{m * 1e3:g}ms": [] for m in MARGIN_CANDIDATES_S}
    for s_i, scenario in enumerate(MARGIN_SCENARIOS):
        for k, trace in enumerate(traces):
            cfg = ScenarioConfig(trace=trace, duration_s=duration_s, models_dir=str(models_dir), scenario=scenario)
            run_seed = seed + 10 * s_i + k
            base = summarize(run(cfg, "perflow_l4s", seed=run_seed))["p99_s"]
            for m in MARGIN_CANDIDATES_S:
                # the card being written has gate_s = GATE_S: the swiftqueue scheme runs with that cascade gate
                p99 = summarize(run(cfg.replace(margin_s=m), "swiftqueue", seed=run_seed))["p99_s"]
                table[f"{m * 1e3:g}ms"].append(round(p99 / base, 4))
    means = {key: float(np.mean(v)) for key, v in table.items()}
    best_key = min(means, key=lambda key: (round(means[key], 4), float(key[:-2])))
    return {"margin_s": float(best_key[:-2]) / 1e3, "p99_over_perflow_l4s": table, "mean": means}


def train_all(seed: int = 0, out_dir: Union[str, Path, None] = None, *, data_dir: Union[str, Path, None] = None,
              transformer_steps: int = TRANSFORMER_STEPS, gru_steps: int = GRU_STEPS, workers: int = 2,
              plan: Optional[dict] = None, margin_traces: Optional[list] = None,
              config: Optional[TrainConfig] = None, select_margins: bool = True) -> dict:
    """Run the whole pipeline; return the card (with ``_out`` = the folder written)."""
    import torch

    from emu.apps.swiftqueue.dataset import SwiftQueueDataset, build_plan
    from emu.apps.swiftqueue.model import n_params
    from emu.apps.swiftqueue.predictors import EwmaPredictor, LastValuePredictor

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    plan = dict(plan or DATA_PLAN)
    margin_traces = list(margin_traces or LUMOS_VAL_TRACES)
    train_traces = sorted({t for _, traces, _, _ in plan["train"] for t in traces})
    val_traces = sorted({t for _, traces, _, _ in plan["val"] for t in traces})
    test_traces = TEST_TRACES + SCENARIO_TEST_TRACES
    leaked = sorted(set(test_traces) & set(train_traces + val_traces + margin_traces))
    if leaked:
        raise ValueError(f"plan: test traces used for training or selection: {', '.join(leaked)}")
    out = Path(out_dir) if out_dir is not None else app_models_dir(APP)
    data = Path(data_dir) if data_dir is not None else (
        out / "data" if out_dir is not None else Path("build") / "swiftqueue-data")
    t_start = time.perf_counter()
    train_path, val_path = build_plan(plan, data, seed=seed, workers=workers)
    t_data = time.perf_counter() - t_start
    train, val = SwiftQueueDataset.load(train_path), SwiftQueueDataset.load(val_path)
    log.info("data: %d train / %d val samples in %.0f s", len(train), len(val), t_data)
    base_cfg = config or TrainConfig()

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".swiftqueue-", dir=out.parent))
    try:
        models: dict = {}
        metrics_of = lambda pred: {k: (round(v, 6) if isinstance(v, float) else v)  # noqa: E731
                                   for k, v in eval_mae(pred, val).items()}
        bv = val.batch(np.arange(len(val)))
        baselines = {"last": metrics_of(LastValuePredictor().predict(bv)),
                     "ewma": metrics_of(EwmaPredictor().predict(bv))}
        t0 = time.perf_counter()
        lin = fit_linear(train, alpha=base_cfg.alpha, seed=seed)
        np.save(tmp / "linear.npy", lin.weights)
        models["linear"] = {"file": "linear.npy", "arch": "linear", "params": int(lin.weights.size),
                            "metrics": metrics_of(lin.predict(bv)), "train_s": round(time.perf_counter() - t0, 1)}
        for arch, steps in (("gru", gru_steps), ("transformer", transformer_steps)):
            cfg = TrainConfig(**{**base_cfg.__dict__, "steps": steps})
            t0 = time.perf_counter()
            model, hist = fit_torch(arch, train, val, cfg, seed=seed)
            torch.save(model.state_dict(), tmp / f"{arch}.pt")
            models[arch] = {"file": f"{arch}.pt", "arch": arch, "config": model.config.to_dict(),
                            "params": n_params(model), "steps": steps, "best_step": hist["best_step"],
                            "metrics": metrics_of(predict_torch(model, val)),
                            "train_s": round(time.perf_counter() - t0, 1), "history": hist["history"]}
        data_info = {"train_traces": train_traces, "val_traces": val_traces, "test_traces_never_used": test_traces,
                     "plan": {name: [{"scenario": sc, "traces": list(tr), "runs_per_trace": n, "run_duration_s": d}
                                     for sc, tr, n, d in plan[name]] for name in ("train", "val")},
                     "train_samples": len(train), "val_samples": len(val),
                     "scenario": "emu.apps.swiftqueue.scenario named scenarios (plan), exploratory marking "
                                 "(ExplorePolicy: p_l ~ U(0.3, 0.7) per run, one probe per frame)",
                     "traces_dir": "../shared/traces (see its README for origins and licences)"}
        training = {k: v for k, v in base_cfg.__dict__.items() if k != "steps"} | {
            "optimizer": "AdamW, linear warm-up then cosine decay, grad-norm clip 1.0",
            "loss": "smooth L1 (beta 1 ms) on the head of the queue taken, weight 1 + alpha * sharp",
            "sharp_change": "|dy| >= 20 ms and >= 20 % of the previous latency in that queue [3P]"}
        policy = {"rule": "ECT(1) iff pred_L <= pred_C + margin_s", "margin_s": 0.0, "probes": True, "gate_s": GATE_S,
                  "gate_rule": "skip the model (mark ECT(1)) when last_C - last_L > gate_s and "
                               "ewma_C - ewma_L > gate_s"}
        timing = {"data": round(t_data, 1), "total": round(time.perf_counter() - t_start, 1)}
        environment = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                       "threads": base_cfg.threads}
        card_args = dict(seed=seed, steps=transformer_steps, models=models, baselines=baselines, data=data_info,
                         training=training, policy=policy, timing_s=timing, environment=environment)
        write_model_card(tmp, **card_args)
        if select_margins:
            t0 = time.perf_counter()
            chosen = select_margin(tmp, margin_traces, seed)
            policy.update(chosen, selected_on={"traces": margin_traces, "scenarios": list(MARGIN_SCENARIOS),
                                               "metric": "p99_s (losses counted) / per-flow L4S's"},
                          select_s=round(time.perf_counter() - t0, 1))
            timing["total"] = round(time.perf_counter() - t_start, 1)
            write_model_card(tmp, **card_args)
        card_file = f"{CARD}.card.json"
        for name in list(FILES.values()) + [card_file]:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    card = json.loads((out / card_file).read_text(encoding="utf-8"))
    card["_out"] = str(out)
    return card


def write_model_card(out: Path, *, seed: int, steps: int, models: dict, baselines: dict, data: dict, training: dict,
                     policy: dict, timing_s: dict, environment: dict) -> Path:
    """The model card of the three predictors in ``out`` (``emu.model-card/1``; the weight files must be there).

    ``models``: per predictor (linear, gru, transformer) its ``file``, ``arch``, ``params``, ``metrics`` on the
    validation traces, ``train_s`` and, for the torch ones, ``config``, ``steps``, ``best_step``, ``history``;
    ``baselines``: the validation metrics of ``last`` and ``ewma``. The card's ``config`` holds the architectures,
    ``training`` and the marking ``policy`` (what the loader reads); ``metrics.val`` every predictor's MAE table.
    """
    best_base = min(baselines.values(), key=lambda m: m["mae_s"])
    val = dict(baselines)
    config: dict = {}
    summary: dict = {}
    for name, entry in models.items():
        val[name] = entry["metrics"]
        if "config" in entry:
            config[name] = entry["config"]
        summary[name] = {k: v for k, v in entry.items() if k not in ("metrics", "config", "sha256", "bytes")}
    config["training"] = training
    config["policy"] = policy
    return write_card(
        out, CARD, app=APP, files=[models[name]["file"] for name in FILES], config=config, data=data, seed=seed,
        steps=steps,
        metrics={"transformer_vs_best_nonlearned": round(1.0 - models["transformer"]["metrics"]["mae_s"]
                                                         / best_base["mae_s"], 4), "val": val},
        command=f"emu train swiftqueue --seed {seed}",
        description="SwiftQueue per-packet L4S queue selection: latency predictors (next packet's one-way latency in "
                    "the L and C queues of a DualPI2 bottleneck) trained on emulated runs over real capacity traces.",
        models=summary, timing_s=timing_s, environment=environment)


def train_swiftqueue(*, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """``emu train swiftqueue [--seed S] [--out DIR]``: the whole pipeline; returns the folder and the metrics."""
    card = train_all(seed=seed, out_dir=out_dir)
    return {"out": card["_out"], "metrics": card["metrics"]}
