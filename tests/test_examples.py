"""Every example runs, shortened (as ns-3 smoke-runs its examples)."""
import importlib.util


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
    summary = _load("02_trace_link.py").main(seed=1, duration_s=5.0, out_dir=str(tmp_path / "out"))
    assert summary["delivered_Mbps"] > 0
    assert (tmp_path / "out" / "throughput.png").exists()


def test_chatterbox_example_writes_figures(tmp_path):
    table = _load("03_chatterbox.py").main(seed=1, n_responses=1, out_dir=str(tmp_path), losses=(0.0, 0.05))
    assert {"stream", "duplicate", "chatterbox"} == set(table["scheme"])
    assert (tmp_path / "timeline.png").exists() and (tmp_path / "stall_vs_loss.png").exists()


def test_grace_example_writes_figure(tmp_path):
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("av")
    table = _load("05_grace.py").main(seed=0, out_dir=str(tmp_path), losses=(0.2,))
    assert {"grace", "h265_retx"} <= set(table["scheme"])
    assert (tmp_path / "grace_vs_loss.png").exists()


def test_kvfetch_example_writes_figure(shared_traces, tmp_path):
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("constriction")
    from tests.apps.kvfetch_marks import missing_text

    if (reason := missing_text()) is not None:
        pytest.skip(reason)
    table = _load("06_kvfetch.py").main(seed=0, trials=2, out_dir=str(tmp_path))
    assert {"cachegen", "quant8", "text"} <= set(table.index)
    assert (tmp_path / "kvfetch_ttft.png").exists()
