"""Covers: CacheGen KV-cache streaming (adaptive levels or text) against 8-bit KV, text recompute and fixed levels.

Scenario: a 2048-token held-out context fetched over the Verizon 4G driving trace (lumos5g), 40 ms RTT, a 1 s
time-to-first-token SLO, 24 request times spread over the trace: the evaluation behind ``emu eval kvfetch
--trials 24``, called through the app registry. Prints the per-scheme table and draws the TTFT distribution of
every scheme and each scheme's size against its perplexity increase.

    python examples/06_kvfetch.py               # figure and CSV in runs/kvfetch/
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import emu.apps  # noqa: E402

SHOWN = ("cachegen", "code_rule", "quant8", "text", "level0", "level1", "level3")


def plot(result: dict, slo_s: float, path: Path) -> None:
    """Left: TTFT CDF per scheme with the SLO; right: MB sent against perplexity increase."""
    fig, (ax_t, ax_q) = plt.subplots(1, 2, figsize=(10, 4))
    for scheme in SHOWN:
        ttft = np.sort(result[scheme]["ttft_per_trial_s"])
        style = {"lw": 2.5, "color": "k"} if scheme == "cachegen" else {"lw": 1.2}
        ax_t.step(ttft, np.arange(1, len(ttft) + 1) / len(ttft), where="post", label=scheme, **style)
        ax_q.scatter(result[scheme]["sent_bytes"] / 1e6, result[scheme]["ppl_increase_pct"], s=40,
                     color="k" if scheme == "cachegen" else None)
        ax_q.annotate(scheme, (result[scheme]["sent_bytes"] / 1e6, result[scheme]["ppl_increase_pct"]), fontsize=8,
                      xytext=(4, 3), textcoords="offset points")
    ax_t.axvline(slo_s, color="r", ls=":", label="SLO")
    ax_t.set(xlabel="time to first token (s)", ylabel="fraction of requests", xscale="log",
             title="TTFT over the 4G trace")
    ax_q.set(xlabel="MB sent per context", ylabel="perplexity increase (%)", title="size against quality")
    ax_t.legend(fontsize=8)
    for ax in (ax_t, ax_q):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(seed: int = 0, trials: int = 24, slo_s: float = 1.0, out_dir: str | None = "runs/kvfetch") -> pd.DataFrame:
    result = emu.apps.get("kvfetch").run_evaluation(seed=seed, trials=trials, slo_s=slo_s)
    cols = ("ttft_s", "ttft_p50_s", "ttft_p95_s", "sent_bytes", "ppl_increase_pct", "slo_met")
    table = pd.DataFrame({k: {c: v[c] for c in cols} for k, v in result.items()}).T
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "kvfetch.csv")
        plot(result, slo_s, out / "kvfetch_ttft.png")
        print(f"figure and table in {out}/")
    return table


if __name__ == "__main__":
    main()
