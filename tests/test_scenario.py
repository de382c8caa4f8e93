"""Scenario files: stream flows, [[app]] tables, plugins by name, trace offsets, randomize, and errors that name
the field. The TOML and the Python API build identical runs (sha256 over RunResult.packets())."""
from __future__ import annotations

import hashlib
import sys
import textwrap

import pandas as pd
import pytest

from emu.results import RunResult
from emu.scenario import Scenario, ScenarioError

STREAMS_AND_APP = """
name = "mixed"
seed = 5
duration = "2s"

[topology]
kind = "access_bottleneck"
pairs = 3
rate = "10Mbps"
rtt = "40ms"
queue = "dualpi2"

[[flow]]
name = "prague0"
type = "stream"
cc = "prague"
src = "s0"
dst = "d0"

[[flow]]
name = "cubic0"
type = "stream"
cc = "cubic"
src = "s1"
dst = "d1"
size = "300KB"
start = "0.2s"

[[flow]]
name = "probe"
type = "cbr"
src = "s2"
dst = "d2"
rate = "1Mbps"
size = 200

[[app]]
name = "xfer"
type = "bulk"
scheme = "reno"
src = "s2"
dst = "d2"
start = "0.5s"
[app.params]
size_bytes = "200KB"
"""


def packets_sha256(result: RunResult) -> str:
    frame = result.packets()
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def load(text: str, tmp_path, name: str = "s.toml") -> Scenario:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return Scenario.load(path)


def test_toml_and_python_api_build_identical_runs(tmp_path):
    from emu.apps import install
    from emu.apps.traffic import CBRSource, Sink
    from emu.sim import Sim
    from emu.topologies import access_bottleneck
    from emu.transport.stream import open_stream

    from_toml = load(STREAMS_AND_APP, tmp_path).run()

    sim = Sim(5)
    net = access_bottleneck(sim, pairs=3, rate="10Mbps", rtt_s=0.04, queue="dualpi2").net
    h = net.hosts
    open_stream(sim, h["s0"], h["d0"], cc="prague", flow="prague0", bulk=True)
    sender, _ = open_stream(sim, h["s1"], h["d1"], cc="cubic", flow="cubic0", bulk=False, start_s=0.2)
    sender.write(300_000)
    Sink(sim, h["d2"], 5000)
    CBRSource(sim, h["s2"], "d2", flow="probe", size_bytes=200, dport=5000, rate_bps=1e6)
    install(net, "bulk", src="s2", dst="d2", name="xfer", scheme="reno", start_s=0.5, size_bytes=200_000)
    sim.run(2.0)
    from_python = RunResult(sim, 2.0)

    assert len(from_toml.packets()) > 1000
    assert packets_sha256(from_toml) == packets_sha256(from_python)
    flows = set(from_toml.flows(include_acks=True)["flow"])
    assert {"prague0", "prague0.ack", "cubic0", "probe", "xfer", "xfer.ack"} <= flows
    apps = from_toml.apps()
    assert list(apps["name"]) == ["xfer"] and bool(apps["done"].iloc[0])
    # the hash sees a one-field change: the cubic stream starting 1 ms later
    later = load(STREAMS_AND_APP.replace('start = "0.2s"', 'start = "0.201s"'), tmp_path, "later.toml").run()
    assert packets_sha256(later) != packets_sha256(from_toml)


def test_trace_offset_in_toml_matches_python(tmp_path):
    from emu.links.tracefile import write_mahimahi
    from emu.net import dumbbell
    from emu.sim import Sim
    from emu.transport.stream import open_stream
    import numpy as np

    # a trace with a 1 s outage at the start: the offset decides whether the flow sees it
    ms = np.concatenate([np.arange(1000, 3000, 1), np.arange(3000, 4000, 2)])
    write_mahimahi(tmp_path / "t.trace", ms)
    text = f"""
    seed = 1
    duration = "2s"
    [topology]
    kind = "dumbbell"
    pairs = 1
    trace = "t.trace"
    trace_offset = "1.5s"
    [[flow]]
    name = "f"
    type = "stream"
    cc = "reno"
    src = "s0"
    dst = "d0"
    """
    from_toml = load(text, tmp_path).run()
    sim = Sim(1)
    net = dumbbell(sim, 1, trace=tmp_path / "t.trace", trace_offset=1.5)
    open_stream(sim, net.hosts["s0"], net.hosts["d0"], cc="reno", flow="f", bulk=True)
    sim.run(2.0)
    assert packets_sha256(from_toml) == packets_sha256(RunResult(sim, 2.0))
    no_offset = load(text.replace('trace_offset = "1.5s"', ""), tmp_path, "b.toml").run()
    assert packets_sha256(no_offset) != packets_sha256(from_toml)


def test_randomize_varies_with_the_seed_only(tmp_path):
    text = STREAMS_AND_APP.replace('name = "mixed"', 'name = "mixed"\nrandomize = {start_jitter = "300ms"}')
    sc = load(text, tmp_path)
    a, b, c = (packets_sha256(sc.run(seed=s)) for s in (1, 1, 2))
    assert a == b and a != c
    sc.build(seed=1)
    starts = {name: s.start_s for name, s in sc.streams.items()}
    assert 0.0 < starts["prague0"] < 0.3 and 0.2 < starts["cubic0"] < 0.5
    assert 0.5 < sc.apps[0].start_s < 0.8
    assert sc.run(seed=1).meta["randomize"] == {"trace_offset": False, "start_jitter_s": 0.3}


def test_randomize_trace_offset_draws_within_the_period(tmp_path):
    from emu.links.tracefile import write_mahimahi
    import numpy as np

    write_mahimahi(tmp_path / "t.trace", np.arange(1, 4001, 1))
    text = """
    duration = "1s"
    randomize = {trace_offset = true}
    [topology]
    kind = "dumbbell"
    trace = "t.trace"
    [[flow]]
    type = "stream"
    src = "s0"
    dst = "d0"
    """
    sc = load(text, tmp_path)
    offsets = []
    for seed in (0, 1, 2, 0):
        _, net = sc.build(seed=seed)
        link = net.links[("left", "right")]
        assert link.schedule.period_s == pytest.approx(4.0)  # rotated, not cut
        offsets.append(link.config.offset_s)
    assert all(0.0 <= o < 4.0 for o in offsets)
    assert offsets[0] == offsets[3] and len(set(offsets)) == 3
    with pytest.raises(ScenarioError, match=r"topology.trace_offset: set explicitly while randomize"):
        load(text.replace('trace = "t.trace"', 'trace = "t.trace"\n    trace_offset = "1s"'), tmp_path, "c.toml")


@pytest.mark.parametrize("edit, message", [
    (("n_responses_placeholder", ""), None),
    (('size_bytes = "200KB"', "n_responses = 3"),
     r"app\[0\]\.params\.n_responses: unknown parameter of app 'bulk'; valid: size_bytes, stop_s"),
    (('size_bytes = "200KB"', "size_bytes = 0"), r"app\[0\]\.params\.size_bytes: must be an integer"),
    (('type = "bulk"', 'type = "nope"'), r"app\[0\]\.type: unknown app 'nope'; registered: .*bulk"),
    (('scheme = "reno"', 'scheme = "bbr"'), r"app\[0\]\.scheme: unknown 'bbr' for app 'bulk'; valid: cubic, reno"),
    (('cc = "cubic"', 'cc = "bbr"'), r"flow\[1\]\.cc: unknown congestion control 'bbr'; valid: cubic, prague"),
    (('size = "300KB"', 'size = "300KB"\nstop = "1s"'), r"flow\[1\]\.stop: only for unlimited streams"),
    (('dst = "d0"', 'dst = "d9"'), r"flow\[0\]\.dst: unknown host 'd9'"),
    (('name = "xfer"', 'name = "probe"'), r"app\[0\]\.name: 'probe' is used already"),
    (('queue = "dualpi2"', 'queue = "fq"'), r"topology.queue: unknown queue 'fq'; valid names: codel, droptail, dualpi2, pie"),
    (('start = "0.5s"', 'start = "soon"'), r"app\[0\]\.start: cannot parse 'soon'"),
])
def test_errors_name_the_field_and_the_valid_names(tmp_path, edit, message):
    old, new = edit
    if message is None:
        load(STREAMS_AND_APP, tmp_path)  # the unedited file is valid
        return
    assert old in STREAMS_AND_APP
    with pytest.raises(ScenarioError, match=message):
        load(STREAMS_AND_APP.replace(old, new, 1), tmp_path)


PLUGIN = '''
from emu.queues.droptail import DropTailConfig, DropTailQueue
from emu.transport.cc.reno import RenoCC


class HalfFifo(DropTailQueue):
    """A DropTail registered under another name."""
    config_class = DropTailConfig


class SlowReno(RenoCC):
    """Reno registered under another name."""
'''


@pytest.fixture
def queue_and_cc_plugins(tmp_path, monkeypatch):
    """A package outside emu that registers a queue and a CC through the emu.queues and emu.cc entry points."""
    import emu.queues
    import emu.transport.cc

    site = tmp_path / "site"
    (site / "emu_sc_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "emu_sc_plugin.py").write_text(PLUGIN)
    (site / "emu_sc_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: emu-sc-plugin\nVersion: 0.1\n")
    (site / "emu_sc_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[emu.queues]\nhalffifo = emu_sc_plugin:HalfFifo\n\n[emu.cc]\nslowreno = emu_sc_plugin:SlowReno\n")
    monkeypatch.syspath_prepend(str(site))
    emu.queues.QUEUES.refresh()
    emu.transport.cc.CONTROLLERS.refresh()
    yield
    sys.modules.pop("emu_sc_plugin", None)
    monkeypatch.undo()
    emu.queues.QUEUES.refresh()
    emu.transport.cc.CONTROLLERS.refresh()


def test_queue_and_cc_plugins_are_named_from_toml(tmp_path, queue_and_cc_plugins):
    from emu.queues import queue_names
    from emu.transport.cc import cc_names

    assert "halffifo" in queue_names() and "slowreno" in cc_names()
    text = STREAMS_AND_APP.replace('queue = "dualpi2"', 'queue = "halffifo"').replace('cc = "cubic"',
                                                                                        'cc = "slowreno"')
    sc = load(text, tmp_path)
    sim, net = sc.build()
    assert type(net.links[("left", "right")].queue).__name__ == "HalfFifo"
    assert type(sc.streams["cubic0"].cc).__name__ == "SlowReno"
    result = sc.run()
    assert result.flows().set_index("flow").loc["cubic0", "delivered_pkts"] > 0
    with pytest.raises(ScenarioError, match=r"valid names: codel, droptail, dualpi2, halffifo, pie"):
        load(text.replace('queue = "halffifo"', 'queue = "fq"'), tmp_path, "b.toml")
