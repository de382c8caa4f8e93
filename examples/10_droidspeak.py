"""Covers: DroidSpeak cross-agent KV reuse (a profiled recomputed layer group) against full prefill, full reuse,
compressed full reuse and a random group of the same size.

Scenario: the ``man`` agent has prefilled a 2048-token context of the ``copyright`` agent's documentation and
hands its cache over across the Verizon 4G driving trace (lumos5g), 40 ms RTT; the copyright agent recomputes the
group profiled offline for this pair (2 % continuation-loss budget), pipelined with the transfer, then prefills a
32-token query. The evaluation behind ``emu eval droidspeak --pair man,copyright``, called through the app
registry (one context and two request times, to run in about a minute); prints the per-scheme table (``pair="changelog,base"`` for the strongly diverged sender).

    python examples/10_droidspeak.py
"""
from __future__ import annotations

import pandas as pd

import emu.apps

COLUMNS = ("group", "ttft_s", "ttft_speedup", "prefill_speedup", "quality_loss_pct", "top1_agreement", "bytes")


def main(seed: int = 0, pair: str = "man,copyright", trials: int = 2, contexts: int = 1) -> pd.DataFrame:
    result = emu.apps.get("droidspeak").run_evaluation(seed=seed, pair=pair, trials=trials, contexts=contexts)
    table = pd.DataFrame(result).T.loc[:, list(COLUMNS)]
    print(table.to_string(float_format=lambda x: f"{x:.3g}"))
    return table


if __name__ == "__main__":
    main()
