"""Every example runs, shortened (as ns-3 smoke-runs its examples)."""
import importlib.util

import pytest

from tests.conftest import REPO


def _load(name):
    path = REPO / "examples" / name
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aqm_comparison_orders_queues():
    table = _load("01_aqm_comparison.py").main(seed=1, duration_s=10.0).set_index("queue")
    # Against an unresponsive 10 % overload both AQMs keep the mean queueing delay far below a full DropTail
    # buffer's; PIE, which drops at enqueue with a probability it integrates, holds it closer to its target.
    droptail = table.loc["droptail", "qdelay_mean_ms"]
    assert table.loc["codel", "qdelay_mean_ms"] < droptail / 4
    assert table.loc["pie", "qdelay_mean_ms"] < droptail / 10


def test_trace_link_example(shared_traces, tmp_path):
    """12 Mbit/s CBR into the Verizon LTE downlink for 5 s: the link delivers what the trace's opportunities
    allow and no more. Capacity over [0, 5 s) = lines x 1504 B (9.34 Mbit/s); a link that serves each 100 ms at
    min(12 Mbit/s, that 100 ms's capacity) without any queue would deliver 8.83 Mbit/s, and the 200-packet
    queue only adds to that (measured 9.08). The trace mean (README of the traces: 5.03 Mbit/s at 1500 B a
    line) is reported at 1504 B; the 20 ms propagation delay bounds the median delay from below."""
    import numpy as np

    from emu.links.tracefile import read_mahimahi_ms

    summary = _load("02_trace_link.py").main(seed=1, duration_s=5.0, out_dir=str(tmp_path / "out"))
    lines_ms = read_mahimahi_ms(shared_traces / "mahimahi" / "Verizon-LTE-short.down")
    capacity_Mbps = np.count_nonzero(lines_ms < 5000) * 1504 * 8 / 5.0 / 1e6
    per_100ms_Mbps = np.bincount((lines_ms[lines_ms < 5000] // 100).astype(int), minlength=50) * 1504 * 8 / 0.1 / 1e6
    no_queue_Mbps = float(np.mean(np.minimum(per_100ms_Mbps, 12.0)))
    assert 0.99 * no_queue_Mbps <= summary["delivered_Mbps"] <= capacity_Mbps, (summary, capacity_Mbps)
    assert summary["trace_mean_Mbps"] == pytest.approx(5.03 * 1504 / 1500, abs=0.005 * 1504 / 1500)
    assert 20.0 <= summary["delay_p50_ms"] <= summary["delay_p99_ms"]
    assert (tmp_path / "out" / "throughput.png").exists()


def test_chatterbox_example_writes_figures(tmp_path):
    table = _load("03_chatterbox.py").main(seed=1, n_responses=1, out_dir=str(tmp_path), losses=(0.0, 0.05))
    assert {"stream", "duplicate", "chatterbox"} == set(table["scheme"])
    assert (tmp_path / "timeline.png").exists() and (tmp_path / "stall_vs_loss.png").exists()


def test_grace_example_writes_figure(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    table = _load("05_grace.py").main(seed=0, out_dir=str(tmp_path), losses=(0.2,))
    assert {"grace", "h265_retx"} <= set(table["scheme"])
    assert (tmp_path / "grace_vs_loss.png").exists()


def test_kvfetch_example_writes_figure(shared_traces, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("constriction")
    from tests.apps.kvfetch_marks import missing_text

    if (reason := missing_text()) is not None:
        pytest.skip(reason)
    table = _load("06_kvfetch.py").main(seed=0, trials=2, out_dir=str(tmp_path))
    assert {"cachegen", "quant8", "text"} <= set(table.index)
    assert (tmp_path / "kvfetch_ttft.png").exists()
