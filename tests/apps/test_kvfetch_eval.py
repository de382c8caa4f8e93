"""End to end on a real bandwidth trace (committed model, fixed seed): adaptive vs baselines, CLI output."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("constriction")
pytest.importorskip("tokenizers")

from tests.apps.kvfetch_marks import NEEDS_MODEL_AND_TEXT  # noqa: E402

pytestmark = NEEDS_MODEL_AND_TEXT

TRACE = "lumos5g/4G/4g_trace_driving_50015_dr"


@pytest.fixture(scope="module")
def result(request):
    from emu.links.tracefile import shared_traces_dir

    if shared_traces_dir() is None:
        pytest.skip("real traces folder ../shared/traces not found")
    from emu.apps.kvfetch.eval import KVFetchEvalConfig, evaluate

    return evaluate(KVFetchEvalConfig(trace=TRACE, trials=TRIALS, slo_s=SLO_S), seed=0)


SCHEMES = ("cachegen", "code_rule", "quant8", "quant4", "text", "level0", "level1", "level2", "level3")


TRIALS = 24
SLO_S = 1.0


def test_schemes_and_metrics(result):
    assert tuple(result) == SCHEMES
    for row in result.values():
        for key in ("ttft_s", "ttft_p95_s", "sent_bytes", "ppl_increase_pct", "slo_met"):
            assert key in row
        assert row["trials"] == TRIALS and len(row["ttft_per_trial_s"]) == TRIALS
    assert result["text"]["ppl_increase_pct"] == 0.0
    assert result["level0"]["sent_bytes"] < result["level1"]["sent_bytes"] < result["level3"]["sent_bytes"] \
        < result["quant8"]["sent_bytes"]


def test_adaptive_beats_text_recompute_and_8bit(result):
    cg = result["cachegen"]
    assert cg["ttft_s"] < result["text"]["ttft_s"]
    assert cg["ttft_s"] < result["quant8"]["ttft_s"]


def test_adaptive_meets_the_slo_as_often_as_any_fixed_level_at_better_quality(result):
    """Target: strictly more often than any fixed level. Measured: as often as the smallest levels (a tie), at a
    fraction of their perplexity increase (docs/kvfetch.md "Gaps")."""
    fixed = {k: v for k, v in result.items() if k.startswith("level")}
    best_slo = max(r["slo_met"] for r in fixed.values())
    assert result["cachegen"]["slo_met"] >= best_slo
    assert result["cachegen"]["slo_met"] > result["level3"]["slo_met"]
    tied = [k for k, r in fixed.items() if r["slo_met"] == best_slo]
    assert all(result["cachegen"]["ppl_increase_pct"] < fixed[k]["ppl_increase_pct"] for k in tied), tied


def test_cli_json_keys(capsys):
    from emu.cli import main

    code = main(["eval", "kvfetch", "--rate-bps", "30e6", "--context-tokens", "512", "--chunk-tokens", "256",
                 "--trials", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == SCHEMES
    for row in out.values():
        assert {"ttft_s", "sent_bytes", "ppl_increase_pct", "slo_met"} <= set(row)
    code = main(["eval", "kvfetch", "--rate-bps", "30e6", "--context-tokens", "512", "--chunk-tokens", "256",
                 "--trials", "1", "--schemes", "text,level1"])
    assert code == 0
    table = capsys.readouterr().out
    assert "ttft_s" in table and "level1" in table and "cachegen" not in table
