import json

import numpy as np
import pandas as pd
import pytest

from emu import Network, PoissonSource, RunResult, Sim, Sink


def _run(record="full", seed=2, until_s=3.0):
    sim = Sim(seed=seed, record=record)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    net.link(a, b, rate="20Mbps", delay="5ms", queue_params={"limit_pkts": 30})
    Sink(sim, b, 5000)
    Sink(sim, b, 5001)
    PoissonSource(sim, a, "b", flow="x", rate_bps=12e6, dport=5000)
    PoissonSource(sim, a, "b", flow="y", rate_bps=10e6, dport=5001)
    sim.run(until_s=until_s)
    return RunResult(sim)


def test_tables_are_consistent():
    res = _run()
    packets, flows = res.packets(), res.flows()
    assert set(packets["flow"]) == {"x", "y"}
    assert (packets["delay_s"] >= 0.005).all()
    row = flows.set_index("flow").loc["x"]
    assert row["delivered_pkts"] == (packets["flow"] == "x").sum()
    assert row["delivered_pkts"] + row["dropped_pkts"] <= row["sent_pkts"]
    assert row["dropped_pkts"] > 0  # overloaded 30-packet queue
    tput = res.throughput(bin_s=0.5)
    got = tput[tput.flow == "x"]["throughput_bps"].sum() * 0.5 / 8
    assert got == pytest.approx(packets[packets.flow == "x"]["size_bytes"].sum())
    assert set(res.drops()["reason"]) == {"overflow"}


def test_summary_mode_agrees_with_full_mode():
    full, summ = _run("full", until_s=6.0), _run("summary", until_s=6.0)
    f, s = full.flows().set_index("flow"), summ.flows().set_index("flow")
    for col in ("sent_pkts", "delivered_pkts", "dropped_pkts", "delivered_bytes"):
        assert (f[col] == s[col]).all()
    assert np.allclose(f["delay_mean_s"], s["delay_mean_s"])
    assert np.allclose(f["delay_p99_s"], s["delay_p99_s"], rtol=0.01)  # histogram bins are 0.5 % wide
    assert np.allclose(full.throughput(0.5)["throughput_bps"], summ.throughput(0.5)["throughput_bps"])
    with pytest.raises(ValueError, match="record='summary'"):
        summ.packets()


def test_write_is_whole(tmp_path):
    res = _run()
    out = res.write(tmp_path / "r", formats=("csv", "parquet"))
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "flows.csv", "packets.parquet", "delay_cdf.png", "throughput.png",
            "queue_delay.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["seed"] == 2 and {f["flow"] for f in summary["flows"]} == {"x", "y"}
    assert len(pd.read_parquet(out / "packets.parquet")) == summary["totals"]["delivered_pkts"]
    with pytest.raises(FileExistsError):
        res.write(out)


def test_failed_write_leaves_nothing_and_keeps_old(tmp_path, monkeypatch):
    res = _run()
    import emu.plots

    def broken(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(emu.plots, "plot_tables", broken)
    with pytest.raises(RuntimeError):
        res.write(tmp_path / "r")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    res.write(tmp_path / "r")
    before = (tmp_path / "r" / "summary.json").read_text()
    monkeypatch.setattr(emu.plots, "plot_tables", broken)
    with pytest.raises(RuntimeError):
        res.write(tmp_path / "r", overwrite=True)
    assert (tmp_path / "r" / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
