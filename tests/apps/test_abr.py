"""ABR app: QoE formula, the released chunk simulator's semantics, BBA/RobustMPC, bad input, the packet-level
endpoint and the Gymnasium environments (no torch needed here; learned policies: test_abr_learned.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from emu.apps.abr.chunk_sim import ChunkSimulator
from emu.apps.abr.policies import BBA, RobustMPC, jump_combos
from emu.apps.abr.qoe import chunk_qoe, session_summary
from emu.apps.abr.traces import Trace
from emu.apps.abr.video import N_CHUNKS, N_LEVELS, Video, load_video


def flat_video(size_bytes: int = 950_000) -> Video:
    return Video(np.full((N_LEVELS, N_CHUNKS + 1), size_bytes, dtype=np.int64))


def flat_trace(mbps: float, seconds: int = 2000) -> Trace:
    t = np.arange(seconds + 1, dtype=float)
    return Trace("flat", t, np.full(t.size, mbps))


@pytest.fixture(scope="module")
def video():
    try:
        return load_video()
    except FileNotFoundError:
        pytest.skip("../shared/abr/video-sizes is not available")


@pytest.fixture(scope="module")
def small_video_dir(video, tmp_path_factory):
    """video1 with every chunk 1/8 the size: packet-level tests send 8x fewer packets (links scaled alike)."""
    folder = tmp_path_factory.mktemp("video_small")
    for level in range(N_LEVELS):
        sizes = video.sizes_bytes[level] // 8
        (folder / f"video_size_{level}").write_text("".join(f"{x}\n" for x in sizes))
    return folder


# -- QoE --------------------------------------------------------------------------------------------------------

def test_chunk_qoe_by_hand():
    # 4.3 Mbit/s - 4.3 * 0.5 s - |4300 - 2850| / 1000 = 4.3 - 2.15 - 1.45
    assert chunk_qoe(4300, 0.5, 2850) == pytest.approx(0.7)
    assert chunk_qoe(300, 0.0, 300) == pytest.approx(0.3)


def test_session_summary_skips_the_first_chunk():
    s = session_summary([300, 750, 750], [2.0, 0.0, 0.1])
    # chunk 2: 0.75 - 0 - 0.45 = 0.30; chunk 3: 0.75 - 0.43 - 0 = 0.32 (chunk 1's 2-s stall is not scored)
    assert s["qoe"] == pytest.approx(0.31)
    assert s["rebuffer_s"] == pytest.approx(0.05)
    assert s["smooth_mbps"] == pytest.approx(0.225)
    assert s["bitrate_mbps"] == pytest.approx(0.75)
    assert s["n_chunks"] == 2


# -- chunk simulator ------------------------------------------------------------------------------------------

def test_chunk_sim_delay_rebuffer_buffer_by_hand():
    # 8 Mbit/s = 1e6 B/s x 0.95 payload: 950 kB take exactly 1 s, + 80 ms link RTT
    sim = ChunkSimulator(flat_video(), flat_trace(8.0), start=1)
    first = sim.download(0)
    assert first.delay_s == pytest.approx(1.08)
    assert first.rebuffer_s == pytest.approx(1.08)
    assert first.buffer_s == pytest.approx(4.0)
    second = sim.download(5)
    assert second.rebuffer_s == 0.0
    assert second.buffer_s == pytest.approx(4.0 - 1.08 + 4.0)
    assert second.chunks_remaining == N_CHUNKS - 2


def test_chunk_sim_buffer_cap_sleeps_in_half_seconds():
    sim = ChunkSimulator(flat_video(95_000), flat_trace(80.0), start=1)   # 0.01 s + 0.08 s per chunk
    results = [sim.download(0) for _ in range(N_CHUNKS)]
    assert max(r.buffer_s for r in results) <= 60.0
    slept = [r for r in results if r.sleep_s > 0]
    assert slept and all(math.isclose(r.sleep_s / 0.5, round(r.sleep_s / 0.5)) for r in slept)
    assert results[-1].end_of_video and sim.done
    with pytest.raises(RuntimeError):
        sim.download(0)


def test_chunk_sim_noise_is_seeded():
    a = ChunkSimulator(flat_video(), flat_trace(8.0), start=1, noise_rng=np.random.default_rng(3))
    b = ChunkSimulator(flat_video(), flat_trace(8.0), start=1, noise_rng=np.random.default_rng(3))
    da, db = a.download(0).delay_s, b.download(0).delay_s
    assert da == db and 1.08 * 0.9 <= da <= 1.08 * 1.1 and da != pytest.approx(1.08)


# -- baselines --------------------------------------------------------------------------------------------------

def test_bba_map():
    bba = BBA()
    assert [bba.level(b) for b in (0.0, 4.99, 5.0, 7.0, 10.0, 14.99, 15.0, 60.0)] == [0, 0, 0, 1, 2, 4, 5, 5]


def test_mpc_combos_move_at_most_one_level():
    for start in range(N_LEVELS):
        combos = jump_combos(start)
        steps = np.diff(np.concatenate([np.full((len(combos), 1), start), combos], axis=1), axis=1)
        assert np.abs(steps).max() == 1 and len({tuple(c) for c in combos}) == len(combos)
    assert len(jump_combos(0)) < len(jump_combos(2))


def test_mpc_picks_top_level_on_a_fast_link_and_bottom_on_a_slow_one(video):
    from emu.apps.abr.sessions import simulate

    fast = simulate(RobustMPC(video), [flat_trace(50.0)], video)[0]
    slow = simulate(RobustMPC(video), [flat_trace(0.2)], video)[0]
    assert fast.levels[-1] == N_LEVELS - 1 and np.all(np.abs(np.diff(fast.levels)) <= 1)
    assert max(slow.levels) <= 1


# README and docs/abr.md (seed 0, chunk level, the same trace sets): QoE / bitrate / rebuffer / smooth.
QUOTED_BASELINES = {
    "pensieve-hsdpa": {"bba": (0.673, 1.163, 0.030, 0.361), "mpc": (0.797, 1.180, 0.056, 0.144)},
    "oboe": {"bba": (1.930, 2.385, 0.005, 0.435), "mpc": (2.208, 2.441, 0.014, 0.174)},
}


@pytest.mark.parametrize("folder,limit", [("pensieve-hsdpa", 0), ("oboe", 50)])
def test_bba_below_mpc_on_test_sources(shared_traces, video, folder, limit):
    from emu.apps.abr.eval import AbrEvalConfig, evaluate

    out = evaluate(AbrEvalConfig(traces=folder, limit=limit), schemes=("bba", "mpc"), seed=0)
    assert out["bba"]["qoe"] < out["mpc"]["qoe"]
    assert out["bba"]["n_traces"] == out["mpc"]["n_traces"] >= 50
    for scheme, quoted in QUOTED_BASELINES[folder].items():     # the table's figures, to their three decimals
        row = out[scheme]
        got = (row["qoe"], row["bitrate_mbps"], row["rebuffer_s"], row["smooth_mbps"])
        assert got == pytest.approx(quoted, abs=0.0005 + 1e-9), (scheme, got)


# -- bad input --------------------------------------------------------------------------------------------------

def test_missing_video_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_video(tmp_path / "nowhere")


def test_malformed_video_line_is_named(tmp_path):
    for level in range(N_LEVELS):
        (tmp_path / f"video_size_{level}").write_text("\n".join(["1000"] * (N_CHUNKS + 1)) + "\n")
    (tmp_path / "video_size_3").write_text("1000\nabc\n")
    with pytest.raises(ValueError, match=r"video_size_3:2"):
        load_video(tmp_path)
    (tmp_path / "video_size_3").write_text("1000\n" * 10)
    with pytest.raises(ValueError, match="need at least 49"):
        load_video(tmp_path)


def test_bad_configs_name_the_field():
    from emu.apps.abr.app import AbrConfig
    from emu.apps.abr.eval import AbrEvalConfig

    with pytest.raises(ValueError, match="level"):
        AbrEvalConfig(level="pkt")
    with pytest.raises(ValueError, match="trace/traces"):
        AbrEvalConfig(trace="a", traces="b")
    with pytest.raises(ValueError, match="cc"):
        AbrConfig(cc="bbr")
    with pytest.raises(ValueError, match="level"):
        ChunkSimulator(flat_video(), flat_trace(8.0)).download(6)
    with pytest.raises(ValueError, match="start"):
        ChunkSimulator(flat_video(), flat_trace(8.0), start=0)


def test_eval_unknown_scheme_and_folder_fail_early(tmp_path):
    import emu.apps

    spec = emu.apps.get("abr")
    with pytest.raises(ValueError, match="unknown scheme 'foo'"):
        spec.run_evaluation(schemes=("foo",))
    video = tmp_path / "video"                       # a synthetic chunk-size folder: no shared data needed
    video.mkdir()
    for level in range(N_LEVELS):
        (video / f"video_size_{level}").write_text(f"{100_000 * (level + 1)}\n" * (N_CHUNKS + 1))
    with pytest.raises(FileNotFoundError, match="nope"):
        spec.run_evaluation(schemes=("bba",), traces=str(tmp_path / "nope"), video=str(video))


# -- packet level -----------------------------------------------------------------------------------------------

def _rate_log(tmp_path, mbps: float, seconds: int = 600):
    path = tmp_path / f"flat_{mbps}.log"
    path.write_text("".join(f"{t}\t{mbps}\n" for t in range(seconds + 1)))
    return path


def test_packet_app_installs_through_the_contract_and_two_instances_coexist(small_video_dir):
    from emu import Sim
    from emu.apps import install
    from emu.results import RunResult
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=1)
    topo = access_bottleneck(sim, pairs=2, rate="0.75Mbps", rtt_s=0.08)
    a = install(topo.net, "abr", src=topo.senders[0], dst=topo.receivers[0], scheme="bba",
                video=str(small_video_dir))
    b = install(topo.net, "abr", src=topo.senders[1], dst=topo.receivers[1], scheme="mpc",
                video=str(small_video_dir))
    assert a.name != b.name
    assert run_until_done(sim, [a, b], horizon_s=900.0)
    table = RunResult(sim).apps().set_index("name")
    assert set(table["scheme"]) == {"bba", "mpc"} and table["done"].all()
    assert (table["chunks"] == N_CHUNKS).all()
    for ep in (a, b):
        r = ep.result()
        assert 0.3 <= r["bitrate_mbps"] <= 4.3 and math.isfinite(r["qoe"])
        # playback accounting: content (48 x 4 s) + stalls - what is still buffered = the session clock
        log = ep.log
        assert log.times_s[-1] == pytest.approx(N_CHUNKS * 4.0 + sum(log.rebuffers_s) - log.buffers_s[-1])
        assert r["session_s"] <= log.times_s[-1]


def test_packet_level_matches_chunk_level_on_a_constant_link(tmp_path, small_video_dir):
    """Same policy, same link (3 Mbit/s for full-size chunks, scaled with them): the two levels' QoE agree
    closely (TCP and header costs vs the released 0.95 payload factor and fixed 80 ms are the differences)."""
    from emu.apps.abr.packet_session import run_packet_session
    from emu.apps.abr.sessions import simulate, trace_start
    from emu.apps.abr.traces import load_trace

    video = load_video(small_video_dir)
    path = _rate_log(tmp_path, 3.0 / 8)
    trace = load_trace(path)
    for policy in (BBA(), RobustMPC(video)):
        chunk = simulate(policy, [trace], video, seed=0)[0].summary()
        packet = run_packet_session(policy, trace, path, trace_start(trace, 0), video).summary()
        assert abs(packet["qoe"] - chunk["qoe"]) < 0.15, (policy.name, packet, chunk)


# -- Gymnasium --------------------------------------------------------------------------------------------------

def test_chunk_env_passes_the_checker_and_is_seeded(video):
    pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from emu.apps.abr.gym_env import AbrChunkEnv

    env = AbrChunkEnv([flat_trace(2.0, 400), flat_trace(5.0, 300)], video, noise=True)
    check_env(env, skip_render_check=True)
    obs1, _ = env.reset(seed=7)
    r1 = [env.step(3)[1] for _ in range(5)]
    obs2, _ = env.reset(seed=7)
    r2 = [env.step(3)[1] for _ in range(5)]
    assert np.array_equal(obs1, obs2) and r1 == r2
    steps, done = 5, False
    while not done:
        _, _, done, truncated, _ = env.step(0)
        steps += 1
    assert steps == N_CHUNKS - 1


def test_packet_env_passes_the_checker(tmp_path, small_video_dir):
    pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from emu.apps.abr.gym_env import AbrPacketEnv
    from emu.apps.abr.traces import load_trace

    path = _rate_log(tmp_path, 0.5, 1000)
    env = AbrPacketEnv([load_trace(path)], load_video(small_video_dir), trace_paths=[str(path)])
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(2)
    assert obs.shape == (6, 6) and info["bitrate_kbps"] == 1200 and not terminated
