"""The scenario and sweep examples load (every table validated, every app installable) and the L4S one shows L4S."""
from __future__ import annotations

import pytest

from emu.scenario import Scenario
from emu.sweep import Sweep
from tests.conftest import REPO

EXAMPLES = REPO / "examples"


def test_l4s_trace_example_keeps_prague_queueing_delay_below_cubic(shared_traces):
    scenario = Scenario.load(EXAMPLES / "l4s_trace.toml")
    assert [a.app for a in scenario.apps] == ["chatterbox"]
    assert {name: s.cc.__class__.__name__ for name, s in scenario.streams.items()} == {
        "prague0": "PragueCC", "prague1": "PragueCC", "cubic0": "CubicCC"}
    scenario.duration_s = 6.0
    flows = scenario.run().flows(2.0).set_index("flow")
    # L4S packets wait in the L queue (1 ms step marking), classic ones behind the PI2 target (RFC 9332)
    assert flows.loc["prague0", "qdelay_p50_s"] < flows.loc["cubic0", "qdelay_p50_s"]
    assert flows.loc["prague0", "delivered_pkts"] > 0 and flows.loc["cubic0", "delivered_pkts"] > 0


# README "Set up and run": the full 20 s run, seed 1, 2 s warm-up; per bottleneck: prague0 and cubic0 queueing
# delay p50 / p99 (ms), Chatterbox stall ratio / time to first token (s), bottleneck utilisation; and the trace's
# mean capacity over the run (4.6 Mbit/s).
README_TABLE = {"dualpi2": ((2.7, 56), (7.3, 105), (0.27, 0.10), 0.65),
                "droptail": ((1253, 2473), (150, 1954), (0.45, 1.06), 0.94)}


@pytest.mark.parametrize("queue", sorted(README_TABLE))
def test_l4s_trace_example_matches_the_readme_table(shared_traces, queue):
    import tomllib

    raw = tomllib.loads((EXAMPLES / "l4s_trace.toml").read_text())
    raw["topology"]["queue"] = queue
    result = Scenario.from_dict(raw, source="l4s_trace.toml").run()
    flows = result.flows(2.0).set_index("flow")
    app = result.apps().set_index("name").loc["chat"]
    link = result.links().set_index("link").loc["left->right"]
    (p50, p99), (c50, c99), (stall, ttft), util = README_TABLE[queue]
    ms = 1e-3
    assert flows.loc["prague0", "qdelay_p50_s"] / ms == pytest.approx(p50, abs=0.5 if p50 > 100 else 0.05)
    assert flows.loc["prague0", "qdelay_p99_s"] / ms == pytest.approx(p99, abs=0.5)
    assert flows.loc["cubic0", "qdelay_p50_s"] / ms == pytest.approx(c50, abs=0.5 if c50 > 100 else 0.05)
    assert flows.loc["cubic0", "qdelay_p99_s"] / ms == pytest.approx(c99, abs=0.5)
    assert app["stall_ratio"] == pytest.approx(stall, abs=0.005)
    assert app["ttft_s"] == pytest.approx(ttft, abs=0.005)
    assert link["utilisation"] == pytest.approx(util, abs=0.005)
    assert link["capacity_bps"] / 1e6 == pytest.approx(4.6, abs=0.05)


def test_codel_example_uses_a_responsive_flow_and_holds_the_queue():
    scenario = Scenario.load(EXAMPLES / "dumbbell_codel.toml")
    assert set(scenario.streams) == {"download"}
    scenario.duration_s = 4.0
    flows = scenario.run().flows(1.5).set_index("flow")
    assert flows.loc["video", "qdelay_p50_s"] < 0.005       # CoDel's target
    assert flows.loc["download", "throughput_bps"] > 8e6     # the download takes most of what video leaves


def test_mixed_apps_example_installs_every_registered_app(tmp_path, monkeypatch):
    import emu.apps
    from emu.apps.abr.video import N_CHUNKS, N_LEVELS

    pytest.importorskip("torch")
    video = tmp_path / "video"                   # the ABR app's chunk sizes: a synthetic folder, no shared data
    video.mkdir()
    for level in range(N_LEVELS):
        (video / f"video_size_{level}").write_text(f"{100_000 * (level + 1)}\n" * (N_CHUNKS + 1))
    monkeypatch.setenv("EMU_ABR_VIDEO_DIR", str(video))
    scenario = Scenario.load(EXAMPLES / "mixed_apps.toml")
    assert sorted(a.app for a in scenario.apps) == sorted(emu.apps.names())
    assert set(scenario.streams) == {"prague0", "cubic0"}


@pytest.mark.parametrize("name", ["sweep_l4s_traces.toml", "sweep_traces.toml", "sweep_codel_vs_droptail.toml"])
def test_sweep_examples_validate(name, shared_traces):
    sweep = Sweep.load(EXAMPLES / name)  # builds every grid point's scenario
    assert len(sweep.tasks) == len(sweep.point_params()) * sweep.replicates
