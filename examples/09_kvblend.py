"""Covers: CacheBlend (selective KV recompute of separately cached chunks) against full recompute, prefix caching
and full reuse: quality against the recompute ratio, and time to first token over real traces.

Quality: consecutive segments of held-out documents cached separately (8 chunks of 32 tokens, a 16-token
continuation), scored against a full prefill at ratios 0-100 % with the released selection (check layer 1, value
deviation) and the ablations (check layer 2 and 3, key deviation, random tokens). TTFT: ``emu eval kvblend`` on
each trace (8 chunks of 128 tokens fetched layer by layer over the trace, 40 ms RTT, recompute timed as
Mistral-7B's).

    python examples/09_kvblend.py                          # figure, JSON and CSV in runs/kvblend/
    python examples/09_kvblend.py --samples 48 --trials 8  # the numbers of docs/kvblend.md
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

TRACES = ("lumos5g/4G/4g_trace_driving_50015_dr", "lumos5g/4G/4g_trace_driving_50031_dr",
          "mahimahi/Verizon-LTE-short.down")


def quality_sweep(samples: int, seed: int = 0, chunks: int = 8, chunk_tokens: int = 32) -> dict:
    """``probe.sweep`` on the committed model (the curves and ablations of docs/kvblend.md)."""
    import torch

    from emu.apps.kvblend.probe import Probe, ProbeConfig, cross_layer_correlation, sweep
    from emu.apps.kvfetch.weights import load_model

    torch.set_num_threads(1)
    model, tokenizer, _ = load_model()
    probe = Probe.build(model, tokenizer, ProbeConfig(chunks=chunks, chunk_tokens=chunk_tokens, samples=samples),
                        seed=seed)
    out = sweep(probe)
    out["cross_layer_value"] = cross_layer_correlation(probe, "value")
    out["cross_layer_key"] = cross_layer_correlation(probe, "key")
    out["config"] = dict(probe.config.__dict__, seed=seed)
    return out


def plot_quality(result: dict, path: Path) -> None:
    """Left: KL to full prefill against the ratio (selection variants, check layer 1); middle: top-1
    agreement; right: the check layer (value deviation)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    reuse = result["full_reuse"]
    curves = result["curves"]
    for key, label in (("check1_value", "value deviation (released)"), ("check1_key", "key deviation"),
                       ("check1_random", "random tokens")):
        rows = curves[key]
        x = [100 * r["ratio"] for r in rows]
        style = {"lw": 2.5, "color": "k"} if key == "check1_value" else {"lw": 1.2}
        axes[0].plot(x, [r["kl_nats"] for r in rows], marker="o", label=label, **style)
        axes[1].plot(x, [r["top1_agreement"] for r in rows], marker="o", label=label, **style)
    for c in (1, 2, 3):
        rows = curves[f"check{c}_value"]
        axes[2].plot([100 * r["ratio"] for r in rows], [r["kl_nats"] for r in rows], marker="o",
                     label=f"check layer {c}", **({"lw": 2.5, "color": "k"} if c == 1 else {"lw": 1.2}))
    for ax in (axes[0], axes[2]):
        ax.axhline(reuse["kl_nats"], color="r", ls=":", label="full reuse")
        ax.set(xlabel="recompute ratio (%)", ylabel="KL to full prefill (nats/token)")
    axes[1].axhline(reuse["top1_agreement"], color="r", ls=":", label="full reuse")
    axes[1].set(xlabel="recompute ratio (%)", ylabel="top-1 agreement with full prefill")
    axes[0].set_title("selection (check layer 1)")
    axes[1].set_title("top-1 agreement")
    axes[2].set_title("check layer (value deviation)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ttft_table(traces, trials: int, seed: int = 0) -> pd.DataFrame:
    from emu.apps.kvblend.eval import KVBlendEvalConfig, evaluate

    rows = []
    for trace in traces:
        result = evaluate(KVBlendEvalConfig(trace=trace, trials=trials), seed=seed)
        for scheme, m in result.items():
            rows.append({"trace": trace, "scheme": scheme, **{k: v for k, v in m.items()
                                                              if not isinstance(v, list)}})
    return pd.DataFrame(rows)


def main(seed: int = 0, samples: int = 4, trials: int = 2, traces=TRACES[:1], out_dir: str = "runs/kvblend",
         chunks: int = 8, chunk_tokens: int = 32):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quality = quality_sweep(samples, seed, chunks, chunk_tokens)
    (out / "kvblend_quality.json").write_text(json.dumps(quality, indent=1))
    plot_quality(quality, out / "kvblend_quality.png")
    if not traces:
        return quality, None
    table = ttft_table(traces, trials, seed)
    table.to_csv(out / "kvblend_ttft.csv", index=False)
    print(table[["trace", "scheme", "ttft_s", "quality_loss_pct", "top1_agreement", "recompute_frac",
                 "bytes"]].to_string(index=False))
    return quality, table


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=4, help="probe windows (docs: 48)")
    p.add_argument("--trials", type=int, default=2, help="requests per scheme and trace (docs: 8)")
    p.add_argument("--traces", default=",".join(TRACES[:1]), help="comma-separated traces ('' : quality only)")
    p.add_argument("--chunks", type=int, default=8, help="probe: chunks per window")
    p.add_argument("--chunk-tokens", type=int, default=32, help="probe: tokens per chunk")
    p.add_argument("--out", default="runs/kvblend")
    a = p.parse_args()
    main(a.seed, a.samples, a.trials, tuple(t for t in a.traces.split(",") if t), a.out, a.chunks, a.chunk_tokens)
