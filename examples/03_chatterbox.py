"""Covers: Chatterbox token streaming against TCP-style streaming and packet duplication.

Scenario: responses of 200-800 real tokens paced at 35 ms, 100 ms RTT, a 10 Mbit/s downlink with loss (the
access-bottleneck network of ``emu.topologies``; each response is its own run, as in ``emu eval chatterbox``).
Prints the stall-ratio table across loss rates (independent and bursty), and writes two figures:
a token timeline of one lossy response and stall ratio against loss.

    python examples/03_chatterbox.py            # figures in runs/chatterbox/
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from emu.apps.chatterbox.eval import ChatterboxEvalConfig, evaluate, run_scheme
from emu.apps.chatterbox.plots import plot_stall_vs_loss, plot_timeline
from emu.apps.chatterbox.schemes import SCHEMES

LOSSES = (0.0, 0.01, 0.02, 0.05, 0.10)
BURSTS = (1, 3)


def main(seed: int = 1, n_responses: int = 10, out_dir: str | None = "runs/chatterbox",
         losses: tuple = LOSSES) -> pd.DataFrame:
    rows = []
    for burst in BURSTS:
        for loss in losses:
            config = ChatterboxEvalConfig(loss=loss, burst=burst, rtt_s=0.1, n_responses=n_responses)
            result = evaluate(config, seed=seed)
            for scheme, metrics in result.items():
                rows.append({"loss": loss, "burst": burst, "scheme": scheme, **metrics})
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["burst", "loss"], columns="scheme", values="stall_ratio")[list(SCHEMES)]
    wide["vs_stream_%"] = (1 - wide["chatterbox"] / wide["stream"]) * 100
    wide["vs_duplicate_%"] = (1 - wide["chatterbox"] / wide["duplicate"]) * 100
    print("stall ratio (fraction of streaming time frozen) and chatterbox's reduction")
    print(wide.to_string(float_format=lambda x: f"{x:.4f}"))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = ChatterboxEvalConfig(loss=0.05, burst=3, rtt_s=0.1, n_responses=1)
        runs = [run_scheme(s, config, seed=seed * 1000) for s in SCHEMES]  # response 0 of the table's runs
        plot_timeline(out / "timeline.png", runs)
        plot_stall_vs_loss(out / "stall_vs_loss.png", table)
        table.to_csv(out / "stall_vs_loss.csv", index=False)
        print(f"figures in {out}/")
    return table


if __name__ == "__main__":
    main()
