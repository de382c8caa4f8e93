"""Covers: ABR video streaming with BBA, RobustMPC, Pensieve and the NetLLM arms, chunk level and packet level.

Scenario: the 48-chunk video1 ladder over Norway HSDPA throughput logs (pensieve-hsdpa, a source never trained
on). Prints the QoE table (chunk-level simulator), and writes two figures: the CDF of per-trace QoE for every
scheme, and one session's bitrate and buffer over time played on the packet-level emulator (TCP-like
transport across a trace-driven bottleneck with an 80 ms RTT).

    python examples/08_abr.py            # figures in runs/abr/
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from emu.apps.abr.eval import AbrEvalConfig, evaluate_detailed
from emu.apps.abr.plots import plot_qoe_cdf, plot_session_timeline
from emu.apps.abr.sessions import summarise

SCHEMES = ("bba", "mpc", "pensieve", "netllm", "netllm_random", "dt_scratch")


def main(seed: int = 0, n_traces: int = 24, out_dir: Optional[str] = "runs/abr", schemes: tuple = SCHEMES,
         timeline_trace: str = "pensieve-hsdpa/norway_tram_10") -> pd.DataFrame:
    logs = evaluate_detailed(AbrEvalConfig(traces="pensieve-hsdpa", limit=n_traces), schemes=schemes, seed=seed)
    table = pd.DataFrame({s: summarise(v) for s, v in logs.items()}).T
    print(f"chunk level, pensieve-hsdpa, first {n_traces} traces, seed {seed}")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        per_trace = {s: [log.summary()["qoe"] for log in v] for s, v in logs.items()}
        plot_qoe_cdf(out / "qoe_cdf.png", per_trace, title=f"pensieve-hsdpa, {n_traces} traces (chunk level)")
        packet = evaluate_detailed(AbrEvalConfig(trace=timeline_trace, level="packet"),
                                   schemes=tuple(s for s in ("bba", "mpc", "netllm") if s in schemes), seed=seed)
        plot_session_timeline(out / "timeline.png", {s: v[0] for s, v in packet.items()},
                              title=f"{Path(timeline_trace).name}, packet level")
        table.to_csv(out / "qoe.csv")
        print(f"figures in {out}/")
    return table


if __name__ == "__main__":
    main()
