"""emu.testing on real runs: RunResult/mapping/DataFrame inputs, the seed-has-no-effect trap, workers, the plugin."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from emu import CBRSource, Network, PoissonSource, RunResult, Sim, Sink
from emu.testing import assert_improves, compare, delay_quantile, metric_value
from tests.conftest import REPO


def poisson_run(seed: int, rate: str = "10Mbps", cbr: bool = False) -> RunResult:
    """One Poisson (or CBR) flow at 8 Mbit/s into a ``rate`` link: queueing varies with the seed (Poisson only)."""
    sim = Sim(seed=seed)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate=rate, delay="5ms")
    source = CBRSource if cbr else PoissonSource
    source(sim, a, "b", flow="f", rate_bps=8e6, dport=5000)
    Sink(sim, b, port=5000)
    sim.run(until_s=2.0)
    return RunResult(sim)


slow_link = functools.partial(poisson_run, rate="10Mbps")
fast_link = functools.partial(poisson_run, rate="20Mbps")


def test_runresult_flow_metric_finds_the_faster_link():
    result = assert_improves(slow_link, fast_link, metric="delay_p99_s", flow="f", seeds=5, by=0.3)
    assert result.n == 5 and result.ratio < 0.7
    assert result.table()["baseline"].nunique() == 5  # the seed changes the Poisson arrivals


def test_callable_metric_with_warmup():
    metric = delay_quantile("f", 0.99, warmup_s=0.5, qdelay=True)
    result = compare(slow_link, fast_link, metric=metric, seeds=3)
    assert result.metric.startswith("qdelay_q0.99_s[f")
    frame = slow_link(0).packets()
    expected = frame[(frame["flow"] == "f") & (frame["created_s"] >= 0.5)]["qdelay_s"].quantile(0.99)
    assert result.baseline[0] == pytest.approx(expected)


def test_seed_has_no_effect_is_refused_with_advice():
    cbr_slow = functools.partial(poisson_run, rate="10Mbps", cbr=True)
    cbr_fast = functools.partial(poisson_run, rate="20Mbps", cbr=True)
    with pytest.raises(AssertionError) as info:
        assert_improves(cbr_slow, cbr_fast, metric="delay_p99_s", flow="f", seeds=4)
    message = str(info.value)
    assert "the seed has no effect" in message
    assert "trace_offset" in message and "start_s" in message
    assert compare(cbr_slow, cbr_fast, metric="delay_p99_s", flow="f", seeds=3).seed_has_no_effect


def test_mapping_and_dataframe_results():
    as_dict = lambda seed: {"x": 1.0 + seed, "per_app": {"x": 2.0}}  # noqa: E731
    assert metric_value(as_dict(1), "x") == 2.0
    assert metric_value(as_dict(1), "x", app="per_app") == 2.0
    frame = pd.DataFrame({"flow": ["a", "b"], "x": [1.0, 3.0]})
    assert metric_value(frame, "x", flow="b") == 3.0
    assert metric_value(frame.iloc[0], "x") == 1.0
    with pytest.raises(ValueError, match="exactly one row"):
        metric_value(frame, "x")
    with pytest.raises(ValueError, match="flow='c': no such row.*a, b"):
        metric_value(frame, "x", flow="c")
    with pytest.raises(ValueError, match="metric 'y': not in the result; available: flow, x"):
        metric_value(frame, "y", flow="a")


def test_runresult_errors_name_the_choices():
    run = poisson_run(0)
    with pytest.raises(ValueError, match="no such row in RunResult.flows\\(\\); there are: f"):
        metric_value(run, "delay_p99_s", flow="nope")
    with pytest.raises(ValueError, match="callable metric receives the whole result"):
        metric_value(run, lambda r: 1.0, flow="f")

    class NoApps:  # a RunResult from before per-app rows existed
        sim = None

        def flows(self):
            return run.flows()

    with pytest.raises(ValueError, match="has no apps\\(\\) table"):
        metric_value(NoApps(), "x", app="chat")


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare(slow_link, fast_link, metric="delay_p99_s", flow="f", seeds=[1])
    with pytest.raises(ValueError, match="each seed may appear once"):
        compare(slow_link, fast_link, metric="delay_p99_s", flow="f", seeds=[1, 1])
    with pytest.raises(ValueError, match="the baseline gave 0.0 at seed 0"):
        compare(lambda s: {"x": 0.0}, lambda s: {"x": 1.0}, metric="x", seeds=2)
    with pytest.raises(ValueError, match="by: must be >= 0 and < 1"):
        assert_improves(slow_link, fast_link, metric="x", seeds=2, by=1.0)
    with pytest.raises(ValueError, match="must be picklable"):
        compare(lambda s: {"x": 1.0}, lambda s: {"x": 1.0}, metric="x", seeds=2, workers=2)


def test_workers_give_the_same_comparison_as_serial():
    serial = compare(slow_link, fast_link, metric="delay_p99_s", flow="f", seeds=4)
    parallel = compare(slow_link, fast_link, metric="delay_p99_s", flow="f", seeds=4, workers=2)
    assert parallel == serial


def test_pytest_plugin_option_and_fixture(tmp_path):
    (tmp_path / "test_seeds.py").write_text(textwrap.dedent("""
        def test_seeds(emu_seeds):
            assert emu_seeds == [0, 1, 2]
    """))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "pytest", "-p", "emu.testing_plugin", "-p", "no:cacheprovider",
            str(tmp_path / "test_seeds.py")]
    ok = subprocess.run(base + ["--emu-seeds", "3"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "emu.testing: 3 seeds per comparison" in ok.stdout
    bad = subprocess.run(base + ["--emu-seeds", "1"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 4 and "--emu-seeds: expected an integer >= 2" in bad.stderr


def test_plugin_default_is_8_seeds():
    from emu.testing_plugin import seed_count

    class Config:  # options not registered: the fixture was imported by hand
        def getoption(self, name, default=None):
            return default

        def getini(self, name):
            raise ValueError(name)

    assert seed_count(Config()) == 8


def test_pyproject_registers_the_plugin():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"emu.testing_plugin": "emu.testing_plugin"}


def test_workers_refuse_callables_of_a_main_script(monkeypatch):
    def from_script(seed):
        return {"x": 1.0 + seed}

    from_script.__module__, from_script.__qualname__ = "__main__", "emu_test_from_script"
    monkeypatch.setattr(sys.modules["__main__"], "emu_test_from_script", from_script, raising=False)
    with pytest.raises(ValueError, match="defined in the __main__ script, which worker processes cannot import"):
        compare(from_script, from_script, metric="x", seeds=2, workers=2)


def bulk_app_run(seed: int, rate: str = "10Mbps") -> RunResult:
    """A 1 MB ``bulk`` app transfer over a lossy link (the loss draws change with the seed)."""
    import emu.apps
    from emu import BernoulliLossConfig

    sim = Sim(seed=seed)
    net = Network(sim)
    net.host("a"), net.host("b")
    net.link("a", "b", rate=rate, delay="5ms", loss=BernoulliLossConfig(p=0.01))
    net.build_routes()
    emu.apps.install(net, "bulk", src="a", dst="b", name="xfer", scheme="cubic", size_bytes=1_000_000)
    sim.run(until_s=5.0)
    return RunResult(sim)


def test_app_metric_from_runresult_apps():
    result = compare(bulk_app_run, functools.partial(bulk_app_run, rate="40Mbps"), metric="fct_s", app="xfer",
                     seeds=3)
    assert result.ratio < 1 and len(set(result.baseline)) == 3
    with pytest.raises(ValueError, match="app='nope': no such row in RunResult.apps\\(\\); there are: bulk, xfer"):
        metric_value(bulk_app_run(0), "fct_s", app="nope")
