"""Grace++ in the emulator on the held-out clip (carphone, never trained on), fixed seed: the paper's comparisons,
quality versus loss, the command line (including bad input, rejected before any work), and calls installed beside
other traffic on one network.

Targets (apps.md §3): p95 frame delay about 2x lower than H.265 with retransmission (asserted: >= 1.5x), fewer
non-rendered frames than FEC, SSIM falling gradually with loss, the no-masking codec degrading far more.
"""
import json
import time

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("av")
pytest.importorskip("zfec")
pytest.importorskip("skvideo")

from emu.apps.grace.app import FEC_REDUNDANCY, SCHEMES
from emu.apps.grace.eval import GraceEvalConfig, run_scheme
from emu.cli import main

FRAMES = 105          # 3.5 s: 1.5 s measured after the 2 s start-up window
SEED = 3
LOSSES = (0.0, 0.1, 0.2, 0.3, 0.5)
_cache: dict = {}


def run(loss: float, schemes=SCHEMES) -> dict:
    """Summaries per scheme at ``loss`` (cached across tests)."""
    out = {}
    for scheme in schemes:
        key = (loss, scheme)
        if key not in _cache:
            _cache[key] = run_scheme(scheme, GraceEvalConfig(loss=loss, max_frames=FRAMES), SEED).result()
        out[scheme] = _cache[key]
    return out


@pytest.mark.parametrize("loss", [0.2, 0.5])
def test_grace_tail_delay_and_rendering_beat_h265(loss):
    r = run(loss)
    grace = r["grace"]
    # p95 frame delay at least 1.5x lower than H.265 with retransmission (paper: ~2x).
    assert r["h265_retx"]["frame_delay_p95_s"] >= 1.5 * grace["frame_delay_p95_s"]
    # Fewer non-rendered frames than FEC whenever the loss reaches its redundancy (FEC 50 % at 20 % loss loses a
    # frame only now and then: never more than Grace there, and it pays in quality instead).
    for fec in ("h265_fec20", "h265_fec50"):
        if loss >= FEC_REDUNDANCY[fec]:
            assert grace["non_rendered_frac"] < r[fec]["non_rendered_frac"], fec
        else:
            assert grace["non_rendered_frac"] <= r[fec]["non_rendered_frac"], fec
            assert grace["stall_s"] <= r[fec]["stall_s"], fec
    assert r["h265_fec50"]["ssim_db"] < r["h265_retx"]["ssim_db"] - 1.0
    # Same 200 kbit/s target for every scheme: Grace's wire rate (key frame and its retransmissions included)
    # stays near it; H.265 with retransmission sends far more at these loss rates.
    assert grace["kbps"] <= 1.25 * 200
    assert grace["kbps"] < r["h265_retx"]["kbps"]
    assert grace["packet_loss"] == pytest.approx(loss, abs=0.06)


def test_quality_falls_gradually_with_loss():
    grace = [run(p, ("grace",))["grace"]["ssim_db"] for p in LOSSES]
    # Monotone (small tolerance for sampling noise) and gradual: at most 1.5 dB per 10 points of loss between
    # neighbouring loss rates, and half the packets lost still leaves a usable picture (> 5 dB, SSIM > 0.68).
    assert all(b <= a + 0.05 for a, b in zip(grace, grace[1:])), grace
    slopes = [(a - b) / (q - p) / 10 for (p, a), (q, b) in zip(zip(LOSSES, grace), zip(LOSSES[1:], grace[1:]))]
    assert max(slopes) <= 1.5, (grace, slopes)
    assert grace[-1] > 5.0, grace


def test_masking_versus_no_masking():
    """Target (GRACE): the codec trained without masking degrades *far* more. Reached here only in part: this
    codec's near-linear transform already degrades gracefully when elements are zero-filled (docs/grace.md), so
    what holds reliably is that masking buys robustness at a lossless cost: the no-masking codec starts higher
    but loses more by 30 % loss and falls below Grace there."""
    grace = {p: run(p, ("grace",))["grace"]["ssim_db"] for p in (0.0, 0.3)}
    nomask = {p: run(p, ("grace_nomask",))["grace_nomask"]["ssim_db"] for p in (0.0, 0.3)}
    assert nomask[0.0] > grace[0.0]                                      # the price of masking at 0 % loss
    assert nomask[0.0] - nomask[0.3] >= 1.15 * (grace[0.0] - grace[0.3]), (grace, nomask)
    assert grace[0.3] > nomask[0.3], (grace, nomask)


def test_lossless_quality_gap_to_h265_is_bounded():
    """Reported, not hidden: at 0 % loss and the same bitrate the small CPU-trained codec is below x265."""
    r = run(0.0, ("grace", "grace_nomask", "h265_retx", "h265_fec20"))
    gap = r["h265_retx"]["ssim_db"] - r["grace"]["ssim_db"]
    assert r["grace"]["non_rendered_frac"] == 0.0 and r["h265_retx"]["non_rendered_frac"] == 0.0
    assert 0.0 <= gap <= 5.0, gap                                        # measured: 3.5 dB (docs/grace.md)
    # Equal bitrate: within 6 % of each other on the wire, and every scheme near the 200 kbit/s target.
    assert abs(r["grace"]["kbps"] - r["h265_retx"]["kbps"]) <= 0.06 * r["h265_retx"]["kbps"]
    for scheme in r:
        assert r[scheme]["kbps"] <= 1.2 * 200, scheme


def test_same_seed_same_result():
    cfg = GraceEvalConfig(loss=0.2, max_frames=20, warmup_s=0.0)
    a = run_scheme("grace", cfg, 9).result()
    b = run_scheme("grace", cfg, 9).result()
    assert a == b


def test_cli_json(capsys):
    assert main(["eval", "grace", "--loss", "0.1", "--max-frames", "8", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(SCHEMES)
    for row in out.values():
        assert {"ssim_db", "frame_delay_p95_s", "non_rendered_frac", "stall_s", "kbps"} <= set(row)
    assert main(["eval", "grace", "--max-frames", "8", "--schemes", "grace,h265_fec20"]) == 0
    text = capsys.readouterr().out
    assert "grace" in text and "h265_fec20" in text and "ssim_db" in text


@pytest.mark.parametrize("argv, message", [
    (["--loss", "1.5"], "loss: must be in"),
    (["--loss", "-0.1"], "loss: must be in"),
    (["--max-frames", "1"], "max_frames"),
    (["--bitrate-bps", "0"], "bitrate_bps"),
    (["--rtt-s", "0"], "rtt_s"),
    (["--payload-bytes", "5"], "payload_bytes"),
    (["--trace", "/nonexistent/trace.down"], "/nonexistent/trace.down"),
    (["--video", "/nonexistent/clip.mp4"], "video: /nonexistent/clip.mp4"),
    (["--schemes", "grace,h264"], "unknown scheme 'h264'"),
])
def test_cli_rejects_bad_parameters(argv, message, capsys):
    t0 = time.perf_counter()
    assert main(["eval", "grace", *argv]) == 2
    assert message in capsys.readouterr().err
    assert time.perf_counter() - t0 < 10.0


def test_cli_rejects_malformed_files_before_any_work(tmp_path, capsys, monkeypatch):
    import emu.apps.grace.eval as grace_eval

    def no_work(*a, **k):
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(grace_eval, "run_scheme", no_work)
    trace = tmp_path / "bad.down"
    trace.write_text("0\n5\nabc\n")
    assert main(["eval", "grace", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "bad.down" in err and "3" in err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"this is not a video" * 10)
    assert main(["eval", "grace", "--video", str(video)]) == 2
    assert "clip.mp4" in capsys.readouterr().err
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["eval", "grace", "--models-dir", str(empty)]) == 2
    assert "model card" in capsys.readouterr().err
    (empty / "grace.card.json").write_text("[1, 2")
    assert main(["eval", "grace", "--models-dir", str(empty)]) == 2
    assert "grace.card.json" in capsys.readouterr().err


def test_trace_driven_link_runs(shared_traces):
    trace = shared_traces / "mahimahi" / "Verizon-LTE-short.down"
    cfg = GraceEvalConfig(trace=str(trace), loss=0.1, max_frames=20, warmup_s=0.0)
    for scheme in ("grace", "h265_retx"):
        s = run_scheme(scheme, cfg, 1).result()
        assert s["frames"] == 20 and 0 <= s["non_rendered_frac"] < 1 and np.isfinite(s["kbps"])


def test_calls_coexist_with_other_traffic_on_one_bottleneck():
    """Two Grace++ calls (flows named from their instance names) and a Cubic transfer share one bottleneck; each
    call gets its own row of metrics and a call's metrics freeze at its end."""
    from emu import Sim
    from emu.apps import install
    from emu.results import RunResult
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=2)
    topo = access_bottleneck(sim, pairs=3, rate="10Mbps", rtt_s=0.06)
    a = install(topo.net, "grace", src="s0", dst="d0", max_frames=15, warmup_s=0.0, expected_rtt_s=0.06)
    b = install(topo.net, "grace", src="s1", dst="d1", scheme="h265_fec20", max_frames=15, warmup_s=0.0,
                start_s=0.3)
    bulk = install(topo.net, "bulk", src="s2", dst="d2", scheme="cubic", size_bytes=300_000)
    assert (a.name, b.name) == ("grace", "grace2")
    assert run_until_done(sim, [a, b, bulk], horizon_s=30.0)
    sim.run(until_s=sim.now_s + 1.0)            # past both calls' ends: their metrics no longer change
    assert {"grace", "grace.fb", "grace.ctrl", "grace2", "grace2.fb"} <= set(sim.records.flow_names)
    apps = RunResult(sim).apps().set_index("name")
    assert list(apps.index) == ["grace", "grace2", "bulk"]
    for name, scheme in (("grace", "grace"), ("grace2", "h265_fec20")):
        row = apps.loc[name]
        assert row["scheme"] == scheme and row["done"] and row["frames"] == 15
        assert row["non_rendered_frac"] < 0.5 and row["ssim_db"] > 5 and 100 < row["kbps"] < 400
    assert apps.loc["grace2", "startup_s"] > 0 and apps.loc["bulk", "fct_s"] > 0
    assert a.result()["kbps"] == apps.loc["grace", "kbps"]


def test_install_rejects_bad_parameters():
    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck

    topo = access_bottleneck(Sim(seed=0), rate="10Mbps")
    with pytest.raises(ValueError, match="max_frames"):
        install(topo.net, "grace", src="s0", dst="d0", max_frames=1)
    with pytest.raises(ValueError, match="valid: video, max_frames"):
        install(topo.net, "grace", src="s0", dst="d0", loss=0.1)      # loss belongs to the network
    with pytest.raises(ValueError, match="unknown scheme 'h264'"):
        install(topo.net, "grace", src="s0", dst="d0", scheme="h264")
