"""SwiftQueue in the ``household`` and ``alternating`` scenarios, with fixed seeds, on a trace never used for training
or model selection (lumos5g 4G, Minneapolis; the models were trained on Mahimahi, NYC, Norway, Oboe and FCC traces).

The issue's targets, the tail counting losses (``p99_s``: a lost or late packet scores the 0.4 s deadline):

- SwiftQueue's p99 >= 30 % below per-flow L4S [paper: 36-45 %];
- not worse than the better of per-flow Classic and the best simple rule (``last_value``, ``ewma``);
- cross-traffic throughput within 10 % of per-flow L4S's.

What holds reliably and is asserted here (numbers, headroom and commands: docs/swiftqueue.md, "Second round"; the
measured values of these runs in brackets):

- every scheme keeps the cross traffic within 10 % of per-flow L4S's [0.99-1.02];
- SwiftQueue's p99 is not much worse than per-flow L4S [household 0.92, alternating 1.20; across the docs' runs
  -8 % to +20 % from its probes' effect on the run]: it keeps nearly all packets in L (the committed model, trained
  on the first round's outage-prone traces, rarely predicts C faster);
- ``household``: the headroom is causally reachable in this run: the best simple rule cuts p99 by >= 30 % against
  per-flow L4S [ewma -58 %, last_value -57 %], so SwiftQueue's miss of the 30 % target [-8 %] and of the simple rules is its own,
  not the scenario's (gap reported);
- ``alternating``: C is the congested queue (per-flow Classic >= 1.5 x per-flow L4S [3.00]; headroom check: 0-9 %
  of packets faster in C), so the target's headroom is not there; SwiftQueue is within 10 % of the better of
  per-flow Classic and the best simple rule [0.97].

Not reached (gap reported in the docs): SwiftQueue's 30 % cut in either scenario, beating the simple rules in
``household``.
"""
from __future__ import annotations

import pytest

from emu.apps.swiftqueue.train import TEST_TRACES, TRAIN_TRACES, VAL_TRACES

SCHEMES = ("swiftqueue", "perflow_l4s", "perflow_classic", "last_value", "ewma")
MAX_CROSS_LOSS = 0.10     # the bound
# (scenario, trace, seed, duration_s): chosen where the headroom check shows L overload episodes in the window.
CASES = {
    "household": ("lumos5g/4G/4g_trace_walking_50035_a", 1, 15.0),
    "alternating": ("lumos5g/4G/4g_trace_walking_50035_a", 1, 15.0),
}
# SwiftQueue p99 / per-flow L4S p99: measured household 0.92, alternating 1.20 (no headroom there; its probes move
# the run's p99 by -8 % to +20 %, docs/swiftqueue.md)
MAX_SQ_OVER_L4S = {"household": 1.15, "alternating": 1.30}
MIN_RULE_GAIN_HOUSEHOLD = 0.30  # best simple rule's p99 cut against per-flow L4S (measured 0.58)
MIN_CLASSIC_OVER_L4S = 1.5    # alternating: per-flow Classic p99 / per-flow L4S p99 (measured 3.00)
MAX_SQ_OVER_BEST = 1.10       # alternating: SwiftQueue / min(per-flow Classic, best rule) (measured 0.97)


@pytest.fixture
def models(shared_traces):
    from emu.apps.artifacts import models_dir

    path = models_dir("swiftqueue")
    assert (path / "swiftqueue.card.json").is_file(), f"committed model card missing in {path}"   # a defect
    return str(path)


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_scenario_tail_with_losses(scenario, models):
    from emu.apps.swiftqueue.eval import evaluate
    from emu.apps.swiftqueue.scenario import ScenarioConfig

    trace, seed, duration_s = CASES[scenario]
    assert trace not in TRAIN_TRACES + VAL_TRACES + TEST_TRACES and trace.startswith("lumos5g/")
    res = evaluate(ScenarioConfig(scenario=scenario, trace=trace, duration_s=duration_s, models_dir=models),
                   schemes=SCHEMES, seed=seed)
    l4s = res["perflow_l4s"]
    for name, row in res.items():
        assert row["p99_delivered_s"] <= row["p99_s"] <= 0.4 and row["loss_frac"] <= row["deadline_miss_frac"]
        assert row["cross_bps"] >= (1.0 - MAX_CROSS_LOSS) * l4s["cross_bps"], (name, row, l4s)
    sq = res["swiftqueue"]["p99_s"]
    best_rule = min(res["last_value"]["p99_s"], res["ewma"]["p99_s"])
    assert sq <= MAX_SQ_OVER_L4S[scenario] * l4s["p99_s"], res
    if scenario == "household":
        assert best_rule <= (1.0 - MIN_RULE_GAIN_HOUSEHOLD) * l4s["p99_s"], res
    else:
        assert res["perflow_classic"]["p99_s"] >= MIN_CLASSIC_OVER_L4S * l4s["p99_s"], res
        assert sq <= MAX_SQ_OVER_BEST * min(res["perflow_classic"]["p99_s"], best_rule), res
