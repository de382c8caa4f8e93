"""Deterministic figures quoted in README.md and docs/ that are cheap to recompute: each test recomputes the
quantity in the configuration the text quotes and checks it rounds to the quoted value, and that the text still
quotes it (so a change on either side fails here)."""
from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import REPO


def quoted(doc: str, phrase: str) -> None:
    text = " ".join((REPO / doc).read_text().split())
    assert phrase in text, f"{doc} no longer says {phrase!r}"


def test_kvfetch_card_metrics_quoted_in_readme():
    card = json.loads((REPO / "emu/models/kvfetch/lm.card.json").read_text())
    assert round(card["metrics"]["held_out_ppl"], 1) == 31.4
    assert round(card["metrics"]["params"] / 1e6, 1) == 3.4
    assert round(card["metrics"]["train_seconds"] / 60) == 27
    quoted("README.md", "The model is a 3.4 M-parameter Transformer")
    quoted("README.md", "held-out perplexity 31.4")
    quoted("README.md", "rebuilds them in about 27 min")


def test_kvfetch_connection_memory_constants_quoted_in_readme():
    from emu.apps.kvfetch.controller import FORGET_S, HALF_LIFE_S, PRIOR_BPS

    assert (PRIOR_BPS, HALF_LIFE_S, FORGET_S) == (20e6, 10.0, 60.0)
    quoted("README.md", "20 Mbit/s prior, 10 s half-life, trusted for 60 s")


def test_swiftqueue_card_margin_table_and_samples_quoted_in_docs():
    card = json.loads((REPO / "emu/models/swiftqueue/swiftqueue.card.json").read_text())
    policy = card["config"]["policy"]
    assert (policy["margin_s"], policy["gate_s"]) == (0.005, 0.01)
    means = [f"{policy['mean'][m]:.3f}" for m in ("0ms", "2ms", "5ms", "10ms")]
    assert means == ["0.928", "0.936", "0.920", "0.954"]
    quoted("docs/swiftqueue.md", "card `config.policy.p99_over_perflow_l4s`: 0.928, 0.936, 0.920, 0.954): 5 ms")
    assert (card["data"]["train_samples"], card["data"]["val_samples"]) == (88_330, 11_407)
    quoted("docs/swiftqueue.md", "88,330 training and 11,407 validation samples")


def test_core_benchmark_heap_events_per_packet_hop():
    """README "Performance" and docs/performance.md: 2.90 heap events per packet-hop in bench_core's scenario
    (Poisson at 90 % of 100 Mbit/s, 10 s simulated, seed 1, about 75 k packets)."""
    spec = importlib.util.spec_from_file_location("bench_core", REPO / "benchmarks" / "bench_core.py")
    bench_core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_core)
    received_pkts, _ = bench_core.run_emu()
    assert round(received_pkts / 1000) == 75
    assert f"{bench_core.EMU_EVENTS['events_per_packet_hop']:.2f}" == "2.90"
    quoted("README.md", "Heap events per packet-hop: 2.90")
    quoted("docs/performance.md", "It costs 2.9 heap events per packet-hop")


def test_l4s_example_table_seed_1():
    """docs/l4s.md's first table: examples/04_l4s_coexistence.py's scenario (seed 1, rfc9332, 10 s, [3 s, 10 s))."""
    from emu.experiments import l4s_coexistence

    result = l4s_coexistence(duration_s=10.0, warmup_s=3.0, preset="rfc9332", seed=1)
    assert f"{result['l_sojourn_p99_s'] * 1e3:.2f}" == "0.12"
    assert f"{result['c_sojourn_mean_s'] * 1e3:.1f}" == "12.7"
    assert 1.6 <= round(result["throughput_ratio"], 2) <= 1.75
    assert round(result["utilisation"] * 100) == 100
    quoted("docs/l4s.md", "| L-queue sojourn, p99 | 0.12 ms |")
    quoted("docs/l4s.md", "| C-queue sojourn, mean | 12.7 ms |")
    quoted("docs/l4s.md", "| throughput Prague / Cubic | 1.6–1.75 |")
    quoted("docs/l4s.md", "| link utilisation | 100 % |")


def test_dualpi2_parameter_table():
    """docs/dualpi2.md's parameter table, the rows tests/queues/test_dualpi2.py does not already pin."""
    from emu.queues.dualpi2 import DualPI2Config

    rfc, linux = DualPI2Config.rfc9332(), DualPI2Config.linux()
    for c in (rfc, linux):
        assert (c.limit_pkts, c.limit_bytes, c.mtu_bytes, c.k, c.target_s, c.rtt_max_s) == (
            10_000, None, 1500, 2, 0.015, 0.100)
        assert (c.delay_estimate, c.l_min_qlen_step_pkts, c.drop_on_overload, c.classify) == (
            "max_head", 0, True, "l4s_ect")
    assert (rfc.tupdate_s, rfc.alpha_hz, rfc.beta_hz) == (None, None, None)
    assert (rfc.l_aqm, rfc.l_marking, rfc.c_marking, rfc.scheduler, rfc.tshift_s) == (
        "ramp", "recur", "recur", "tshift", 0.050)
    assert (rfc.aqm_min_backlog_bytes, rfc.l_th_len_pkts) == (0, 1)
    assert (linux.l_step_thresh_s, linux.l_step_thresh_pkts, linux.l_th_len_pkts) == (0.001, None, None)
    assert (linux.l_marking, linux.c_marking, linux.c_protection_pct) == ("random", "random", 10)
    from emu.queues.dualpi2 import _IDLE_EXACT_MAX, LOW_RATE_STEP_THRESH_PKTS

    assert (_IDLE_EXACT_MAX, LOW_RATE_STEP_THRESH_PKTS) == (100_000, 8)
    quoted("docs/dualpi2.md", "would take more than 100 000 updates, the rest is computed in closed form")
    quoted("docs/dualpi2.md", "| `tshift_s` | 0.050 | (unused) |")
    quoted("docs/dualpi2.md", "| `l_step_thresh_s` / `l_step_thresh_pkts` | (unused) | 1 ms / None |")


def test_errors_limits_table():
    """docs/errors.md "Limits": the constants behind each row."""
    from emu import validate
    from emu.apps.chatterbox.tokens import MAX_TIMELINE_BYTES
    from emu.links import tracefile
    from emu.net import MAX_PAIRS
    from emu.scenario import MAX_SCENARIO_BYTES

    assert (validate.MAX_DURATION_S, validate.MAX_DELAY_S, validate.MAX_RATE_BPS) == (1e7, 3600, 1e12)
    assert round(validate.MAX_DURATION_S / 86_400) == 116
    assert (validate.MAX_PACKET_BYTES, validate.MAX_TRANSFER_BYTES, validate.MAX_COUNT) == (65_535, 1e12, 10**7)
    assert MAX_PAIRS == 100_000
    assert (tracefile.MAX_TRACE_FILE_BYTES, tracefile.MAX_TRACE_MS, tracefile.MAX_TRACE_HZ, tracefile.MAX_BINS) == (
        256 * 2**20, 10**10, 1e6, 1e6)
    assert (MAX_SCENARIO_BYTES, MAX_TIMELINE_BYTES) == (16 * 2**20, 64 * 2**20)
    quoted("docs/errors.md", "| run duration, any start, stop or trace offset | 10^7 s (116 days) simulated")


def test_fuzz_suite_counts():
    """docs/errors.md "The fuzz suite": the size of each case list, and the 203 tests it collects."""
    import subprocess
    import sys

    from tests.fuzz import test_cli_table, test_generated, test_scenario_table

    assert len(test_scenario_table.CASES) == 93
    assert (len(test_cli_table.RUN), len(test_cli_table.TRACE), len(test_cli_table.EVAL)) == (33, 23, 24)
    assert len(test_cli_table.SUBPROCESS) == 3
    assert test_generated.SETTINGS.max_examples == 120
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/fuzz"], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert "203 tests collected" in collected.stdout, collected.stdout[-500:]
    assert collected.stdout.count("tests/fuzz/test_app_inputs.py::") == 20
    quoted("docs/errors.md", "| 93 mutations of a valid table, 8 run ends |")
    quoted("docs/errors.md", "| 33 run, 23 trace, 24 eval |")
    quoted("docs/errors.md", "| 20 tests (one of them: every numeric eval field x 7 bad values) |")
    quoted("docs/errors.md", "python -m pytest -q tests/fuzz # 203 tests")


def test_swiftqueue_predictor_sizes():
    """docs/swiftqueue.md "Predictors": the parameter counts of the committed predictors."""
    import numpy as np

    torch = pytest.importorskip("torch")
    models = REPO / "emu/models/swiftqueue"
    assert np.load(models / "linear.npy", allow_pickle=False).shape == (277, 2)
    counts = {name: sum(v.numel() for v in torch.load(models / f"{name}.pt", map_location="cpu",
                                                       weights_only=True).values())
              for name in ("gru", "transformer")}
    assert counts == {"gru": 23_938, "transformer": 104_258}
    quoted("docs/swiftqueue.md", "over the flattened window + query, per queue | 2 x 277 |")
    quoted("docs/swiftqueue.md", "2-layer head | 23,938 |")
    quoted("docs/swiftqueue.md", "query token, 2 heads | 104,258 |")


def test_trace_stats_example(shared_traces):
    """docs/traces.md's `trace_stats` example, at the precision it prints."""
    from emu.links.tracefile import trace_stats

    path = shared_traces / "mahimahi/ATT-LTE-driving.down"
    if not path.is_file():
        pytest.skip(f"{path} is not in {shared_traces}")
    st = trace_stats(path, opportunity_bytes=1500)
    assert (st["format"], f"{st['duration_s']:.3f}") == ("mahimahi", "786.112")
    assert [f"{st[k] / 1e6:.2f}" for k in ("mean_bps", "p5_bps", "p95_bps")] == ["5.17", "0.66", "9.53"]
    quoted("docs/traces.md", "{'format': 'mahimahi', 'duration_s': 786.112, 'mean_bps': 5.17e6, 'p5_bps': 0.66e6, "
                             "'p95_bps': 9.53e6, ...}")


def test_full_records_cost_40_bytes_per_delivered_packet():
    """docs/performance.md: `record="full"` keeps 40 bytes per delivered packet (six typed columns)."""
    from emu.sim import Sim

    records = Sim(seed=1).records
    columns = [name for name in vars(records) if name.startswith("d_")]
    assert sorted(columns) == ["d_arrived", "d_created", "d_flow", "d_pkt", "d_qdelay", "d_size"]
    assert sum(getattr(records, name).itemsize for name in columns) == 40
    quoted("docs/performance.md", "(`record=\"full\"`: 40 bytes per delivered packet)")


def test_swiftqueue_scenario_presets_table():
    """docs/swiftqueue.md "Named scenarios": the presets table, column by column."""
    from emu.apps.swiftqueue.scenario import SCENARIOS, ScenarioConfig

    keys = ("app_rate_frac", "l4s_bulk", "l4s_onoff", "classic_onoff", "onoff_on_s", "onoff_off_s", "l4s_udp",
            "udp_rate_frac", "udp_on_s", "udp_off_s", "episodes")
    table = {
        "mixed": (0.15, 1, 2, 2, 1.0, 2.0, 1, 0.5, 0.3, 1.5, "exponential"),
        "household": (0.015, 1, 2, 1, 1.0, 4.0, 2, 0.3, 3.0, 3.0, "exponential"),
        "alternating": (0.015, 1, 0, 1, 1.0, 4.0, 1, 0.6, 2.0, 4.0, "uniform"),
    }
    for name, row in table.items():
        cfg = ScenarioConfig(trace="x", scenario=name)
        assert tuple(getattr(cfg, k) for k in keys) == row, name
    assert set(SCENARIOS) == set(table)
    quoted("docs/swiftqueue.md", "| unresponsive ECT(1) UDP streams: count, rate while ON / mean, mean ON / OFF | "
                                 "1, 0.5, 0.3 s / 1.5 s | 2, 0.3, 3 s / 3 s | 1, 0.6, 2 s / 4 s |")


def test_kvfetch_every_trace_gaps_quoted_in_readme():
    """README "CacheGen": 212 of the 1101 traces miss the target, each recorded with its ratio (up to 15.5x)."""
    gaps = json.loads((REPO / "tests/apps/kvfetch_trace_gaps.json").read_text())
    assert len(gaps) == 212 and round(max(gaps.values()), 1) == 15.5 and min(gaps.values()) > 1.10
    quoted("README.md", "It holds on 889 of the 1101 distinct traces")
    quoted("README.md", "The 212 misses are")
    quoted("README.md", "(up to 15.5x)")
