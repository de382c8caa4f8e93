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


# -- warm-up, ACK flows, counters, links, time series ---------------------------------------------------------------

def _streams_run(timeseries=False, seed=1, until_s=3.0):
    """A Prague and a Cubic stream over a 10 Mbit/s DualPI2 bottleneck; unused third pair (idle links)."""
    from emu.net import dumbbell
    from emu.timeseries import CwndSeries, QueueSeries, TraceHub
    from emu.transport.stream import open_stream

    hub = TraceHub()
    sim = Sim(seed, tracer=hub)
    net = dumbbell(sim, 3, bottleneck_rate="10Mbps", bottleneck_delay="10ms", queue="dualpi2")
    h = net.hosts
    open_stream(sim, h["s0"], h["d0"], cc="prague", flow="p", bulk=True)
    open_stream(sim, h["s1"], h["d1"], cc="cubic", flow="c", bulk=True, start_s=0.5)
    series = {}
    if timeseries:
        series = {"cwnd": CwndSeries(hub), "queue": QueueSeries(hub, [net.links[("left", "right")]])}
    sim.run(until_s)
    return RunResult(sim, until_s, timeseries={k: v.frame() for k, v in series.items()})


def test_ack_flows_are_hidden_by_default_and_kept_in_the_data():
    res = _streams_run()
    assert list(res.flows()["flow"]) == ["p", "c"]
    assert list(res.flows(include_acks=True)["flow"]) == ["p", "p.ack", "c", "c.ack"]
    assert {"p.ack", "c.ack"} <= set(res.packets()["flow"])
    assert "p.ack" not in res.table()


def test_warmup_window_counts_only_later_packets():
    res = _streams_run()
    whole, late = res.flows().set_index("flow"), res.flows(1.0).set_index("flow")
    packets = res.packets()
    for flow in ("p", "c"):
        mine = packets[packets.flow == flow]
        assert late.loc[flow, "delivered_pkts"] == (mine.delivered_s >= 1.0).sum() < whole.loc[flow, "delivered_pkts"]
        after = mine[mine.delivered_s >= 1.0]
        assert late.loc[flow, "throughput_bps"] == pytest.approx(after.size_bytes.sum() * 8 / 2.0)
        assert late.loc[flow, "delay_p99_s"] == pytest.approx(np.quantile(after.delay_s, 0.99), abs=2e-9)
    assert "sent_pkts" not in late and "sent_pkts" in whole  # send counters have no timestamps
    # Cubic's slow-start overshoot lies in the warm-up: its tail delay after 1 s differs from the whole run's
    assert late.loc["c", "delay_p99_s"] != whole.loc["c", "delay_p99_s"]
    with pytest.raises(ValueError, match=r"start_s: the warm-up must be in \[0, 3\) s"):
        res.flows(3.0)
    with pytest.raises(ValueError, match="record='summary'"):
        _run("summary").flows(1.0)


def test_counters_are_integers_and_times_are_rounded(tmp_path):
    res = _streams_run()
    flows, links = res.flows(), res.links()
    for col in ("sent_pkts", "delivered_pkts", "dropped_pkts", "delivered_bytes"):
        assert flows[col].dtype.kind == "i", col
    counters = [c for c in links.columns if c.endswith(("_pkts", "_bytes")) or c.startswith(("drops_", "marks_"))]
    assert counters and all(links[c].dtype.kind == "i" for c in counters)
    assert not np.array_equal(res.packets()["delay_s"], res.packets()["delay_s"].round(9))  # exact in memory
    for column in ("delay_p50_s", "qdelay_p99_s", "first_delivery_s"):
        assert np.array_equal(flows[column], flows[column].round(9))
    written = pd.read_csv(res.write(tmp_path / "r", plots=False) / "packets.csv")
    assert np.array_equal(written["delay_s"], written["delay_s"].round(9))


def test_idle_links_are_hidden_and_utilisation_is_bits_over_capacity():
    res = _streams_run()
    all_links = res.links().set_index("link")
    busy = res.links(include_idle=False).set_index("link")
    assert "s2->left" in all_links.index and "s2->left" not in busy.index
    assert all_links.loc["s2->left", "tx_pkts"] == 0
    bott = busy.loc["left->right"]
    assert bott["capacity_bps"] == 10e6
    assert bott["utilisation"] == pytest.approx(bott["tx_bytes"] * 8 / (10e6 * 3.0))
    assert 0.8 < bott["utilisation"] <= 1.0
    assert "s2->left" not in res.table()


def test_time_series_come_from_hooks_and_do_not_change_the_run():
    plain, traced = _streams_run(False), _streams_run(True)
    pd.testing.assert_frame_equal(plain.packets(), traced.packets())
    cwnd, queue = traced.timeseries["cwnd"], traced.timeseries["queue"]
    assert set(cwnd["key"]) == {"p", "c"} and (cwnd["cwnd_bytes"] > 0).all()
    assert cwnd[cwnd.key == "c"]["time_s"].min() >= 0.5
    assert set(queue["key"]) == {"left->right"}
    assert queue["p_prime"].max() > 0 and queue["len_pkts"].max() > 0
    # DualPI2 couples the classic probability to the base one: p_C = p'^2 (RFC 9332 §2.4)
    assert np.allclose(queue["p_c"], queue["p_prime"] ** 2)
    assert np.all(np.diff(queue["time_s"]) >= 1e-3 - 1e-12)  # one sample per key per millisecond at most


def test_a_hub_without_subscribers_is_disabled():
    from emu.timeseries import TraceHub

    hub = TraceHub()
    assert hub.enabled is False
    got = []
    hub.subscribe("queue.", lambda kind, t, f: got.append((kind, t, f)))
    hub.subscribe("queue.state", lambda kind, t, f: got.append("second"))
    hub.emit("transport.ack", 1.0, flow="x")
    hub.emit("queue.state", 2.0, link="l")
    assert hub.enabled and got == [("queue.state", 2.0, {"link": "l"}), "second"]


def test_write_adds_capacity_and_time_series_tables_and_titled_plots(tmp_path):
    from emu.plots import plot_title

    res = _streams_run(True)
    res.meta["scenario"] = "two-streams"
    out = res.write(tmp_path / "r")
    for name in ("timeseries_cwnd.csv", "timeseries_queue.csv", "timeseries_queue.png", "throughput.png"):
        assert (out / name).exists(), name
    assert not (out / "capacity.csv").exists()  # no trace-driven link
    assert plot_title(res.meta) == "two-streams (seed 1) - left->right: dualpi2"
    flows = pd.read_csv(out / "flows.csv")
    assert "p.ack" in set(flows["flow"])  # the written table is the data: ACK flows included


def test_progress_bar_says_when_nothing_is_delivered(tmp_path, monkeypatch):
    import tqdm

    from emu.links.tracefile import write_mahimahi
    from emu.net import dumbbell
    from emu.transport.stream import open_stream

    notes = []
    original = tqdm.tqdm.set_postfix_str
    monkeypatch.setattr(tqdm.tqdm, "set_postfix_str",
                        lambda self, s="", refresh=True: (notes.append(s), original(self, s, refresh))[1])
    # capacity for 1 s, then a 14 s outage
    write_mahimahi(tmp_path / "t", np.concatenate([np.arange(1, 1000), np.arange(15000, 16000)]))
    sim = Sim(1)
    net = dumbbell(sim, 1, trace=tmp_path / "t")
    open_stream(sim, net.hosts["s0"], net.hosts["d0"], cc="reno", flow="f", bulk=True)
    sim.run(12.0, progress=True)
    assert notes and notes[0].startswith("no packet delivered for 5.")
    assert max(float(n.split()[4]) for n in notes if n) > 9.0
