"""SwiftQueue building blocks: the endpoint on any network, scenario, features, dataset, predictors, numpy inference,
loader, and the package's import order."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emu.packet import ECT0, ECT1

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "emu" / "apps" / "swiftqueue"
TRACE = "nyc-cellular-2019/trace-2925703-home1"


@pytest.fixture
def traces(shared_traces):
    return shared_traces


def test_import_does_not_load_torch():
    code = ("import sys, emu, emu.apps.swiftqueue.cli, emu.apps.swiftqueue.spec, emu.apps.swiftqueue.scenario, "
            "emu.apps.swiftqueue.policies, emu.apps.swiftqueue.endpoint, emu.apps.swiftqueue.eval, "
            "emu.apps.swiftqueue.weights, emu.apps.swiftqueue.inference, emu.apps.swiftqueue.dataset, "
            "emu.apps.swiftqueue.pipeline, emu.cli; "
            "emu.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _imports_of(path: Path) -> set[str]:
    """Sibling modules ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("emu.apps.swiftqueue."):
                mod = name.split(".")[3]
                if (PACKAGE / f"{mod}.py").is_file() and mod != path.stem:
                    found.add(mod)
    return found


def test_no_import_cycles_in_the_package():
    """Every module imports only modules earlier in one order, lazy (in-function) imports included."""
    graph = {p.stem: _imports_of(p) for p in PACKAGE.glob("*.py")}
    order: list[str] = []
    while len(order) < len(graph):
        ready = sorted(m for m in graph if m not in order and graph[m] <= set(order))
        assert ready, f"import cycle among {sorted(set(graph) - set(order))}: " \
                      f"{ {m: sorted(graph[m] - set(order)) for m in graph if m not in order} }"
        order += ready
    assert order.index("inference") < order.index("weights") and "weights" not in graph["predictors"]


def test_registered_for_eval_and_train():
    from emu.apps import get, names
    from emu.apps.swiftqueue.policies import EVAL_SCHEMES, SCHEMES
    from emu.cli import build_parser

    spec = get("swiftqueue")
    assert "swiftqueue" in names() and spec.schemes == SCHEMES and spec.default_eval_schemes() == EVAL_SCHEMES
    args = build_parser().parse_args(["train", "swiftqueue", "--seed", "3", "--out", "x"])
    assert args.trainer == "emu.apps.swiftqueue.pipeline:train_swiftqueue" and args.seed == 3 and args.out == "x"
    args = build_parser().parse_args(["eval", "swiftqueue", "--seed", "2", "--json", "--duration-s", "9"])
    assert args.seed == 2 and args.json and not args.predictors and args.cfg_duration_s == 9.0


def test_make_policy_names_every_scheme():
    from emu.apps.swiftqueue.policies import ExplorePolicy, ForkOraclePolicy, PerFlowPolicy, SCHEMES, make_policy

    assert make_policy("perflow_l4s").ecn == ECT1 and make_policy("perflow_classic").ecn == ECT0
    assert isinstance(make_policy("oracle"), ForkOraclePolicy)
    assert make_policy("random").p_l == 0.5 and make_policy("explore").p_l is None
    assert isinstance(make_policy("explore"), ExplorePolicy) and isinstance(make_policy("perflow_l4s"), PerFlowPolicy)
    with pytest.raises(ValueError, match="valid: " + ", ".join(SCHEMES)):
        make_policy("fastest")


# -- the endpoint on any network ---------------------------------------------------------------------------------------

def test_two_instances_and_a_bulk_flow_share_one_dualpi2_bottleneck():
    from emu import Sim
    from emu.apps import install
    from emu.results import RunResult
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=4)
    topo = access_bottleneck(sim, pairs=2, rate="8Mbps", rtt_s=0.03, queue="dualpi2",
                             queue_params={"preset": "linux"})
    s0, d0 = topo.senders[0], topo.receivers[0]
    # two SwiftQueue pairs on the same two hosts (ports and flow names must not collide), a Prague flow beside them
    a = install(topo.net, "swiftqueue", src=s0, dst=d0, name="call_a", scheme="perflow_l4s", rate_bps=1.5e6,
                duration_s=4.0, warmup_s=1.0)
    b = install(topo.net, "swiftqueue", src=s0, dst=d0, name="call_b", scheme="perflow_classic", rate_bps=1.5e6,
                duration_s=4.0, warmup_s=1.0, start_s=0.5)
    install(topo.net, "bulk", src=topo.senders[1], dst=topo.receivers[1], scheme="prague")
    assert run_until_done(sim, [a, b], horizon_s=10.0) and sim.now_s == 6.0   # 1 s steps past b's 5.5 s
    names = set(sim.records.flow_names)
    assert {"call_a.app", "call_a.ack", "call_b.app", "call_b.ack", "bulk"} <= names
    assert a.sender.dport != b.sender.dport
    rows = RunResult(sim).apps().set_index("name")
    assert list(rows.index) == ["call_a", "call_b", "bulk"]
    assert rows.loc["call_a", "l_share"] == 1.0 and rows.loc["call_b", "l_share"] == 0.0
    for name in ("call_a", "call_b"):
        row = rows.loc[name]
        assert row["done"] and row["app"] == "swiftqueue" and row["app_rate_bps"] == 1.5e6
        assert 0.015 <= row["p50_s"] <= row["p99_s"] < 1.0 and 0.5e6 < row["app_bps"] < 2.5e6
    assert rows.loc["bulk", "goodput_bps"] > 1e6
    # same seed, same records, whatever else the run asks for
    assert a.result() == a.result()


def test_install_names_bad_parameters():
    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck

    topo = access_bottleneck(Sim(seed=0), rate="5Mbps", queue="dualpi2")
    with pytest.raises(ValueError, match="fps"):
        install(topo.net, "swiftqueue", src="s0", dst="d0", fps=0.0)
    with pytest.raises(ValueError, match="unknown scheme 'fastest'"):
        install(topo.net, "swiftqueue", src="s0", dst="d0", scheme="fastest")
    with pytest.raises(ValueError, match="model card not found"):
        install(topo.net, "swiftqueue", src="s0", dst="d0", scheme="swiftqueue", models_dir=str(REPO / "nowhere"))


def test_learned_scheme_on_a_constant_rate_network():
    pytest.importorskip("torch")
    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=2)
    topo = access_bottleneck(sim, rate="6Mbps", rtt_s=0.04, queue="dualpi2", queue_params={"preset": "linux"})
    ep = install(topo.net, "swiftqueue", src="s0", dst="d0", duration_s=3.0, warmup_s=0.5)
    assert ep.scheme == "swiftqueue" and run_until_done(sim, [ep], horizon_s=5.0)
    res = ep.result()
    assert res["infer_calls"] + res["gated_frames"] > 50 and 0.02 <= res["p50_s"] < 0.5


# -- scenario and app ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("duration_s", 0.1), ("warmup_s", -1.0), ("rtt_s", -0.01), ("app_rate_bps", 0.0), ("margin_s", -0.1),
    ("app_rate_frac", 0.0), ("l4s_bulk", -1), ("classic_onoff", 1.5), ("queue_preset", "fifo"),
    ("onoff_off_s", 0.0), ("udp_rate_frac", float("nan")),
])
def test_scenario_config_names_bad_field(field, value):
    from emu.apps.swiftqueue.scenario import ScenarioConfig

    with pytest.raises(ValueError, match=field):
        ScenarioConfig(trace="x", **{field: value})


def test_endpoint_config_names_bad_field():
    from emu.apps.swiftqueue.endpoint import SwiftQueueConfig

    for field, value in (("fps", 0.0), ("max_payload_bytes", 8), ("key_frame_every", 0), ("probe_bytes", 0),
                         ("duration_s", 0.5), ("warmup_s", 40.0), ("margin_s", 2.0), ("ghosts", 1),
                         ("models_dir", "")):
        with pytest.raises(ValueError, match=field):
            SwiftQueueConfig(**{field: value})


def test_rotate_schedule_keeps_capacity(traces):
    from emu.links.schedule import rotate_schedule
    from emu.links.tracefile import load_trace

    for name in (TRACE, "pensieve-hsdpa/norway_bus_1"):
        s = load_trace(traces / name)
        for off in (0.0, 7.25, s.period_s * 0.6):
            r = rotate_schedule(s, off)
            assert r.period_s == pytest.approx(s.period_s)
            assert r.mean_rate_bps == pytest.approx(s.mean_rate_bps, rel=2e-3)
            assert r.bytes_between(0.0, 10.0) == pytest.approx(s.bytes_between(off, off + 10.0), rel=2e-3, abs=3100)


def _run(scheme, seed=1, duration_s=8.0, **kw):
    from emu.apps.swiftqueue.scenario import ScenarioConfig, run

    return run(ScenarioConfig(trace=TRACE, duration_s=duration_s, warmup_s=1.0, **kw), scheme, seed=seed)


def test_per_flow_policies_and_determinism(traces):
    from emu.apps.swiftqueue.scenario import summarize

    a = summarize(_run("perflow_l4s"))
    b = summarize(_run("perflow_l4s"))
    c = summarize(_run("perflow_classic"))
    assert a == b                                   # same seed, same numbers
    assert a["l_share"] == 1.0 and c["l_share"] == 0.0
    assert a["reordered"] == 0.0                    # one queue: no reordering
    assert 0 < a["p50_s"] <= a["p95_s"] <= a["p99_s"] < 2.0
    assert a["p50_s"] >= 0.015                      # never below the propagation delay
    assert a["app_bps"] > 0 and a["cross_bps"] > 0
    # the app offers identical packets whatever the marking
    r1, r2 = _run("perflow_l4s"), _run("perflow_classic")
    n = r1.sender.n_sent
    assert n == r2.sender.n_sent
    assert np.array_equal(r1.sender.size[:n], r2.sender.size[:n])
    assert np.array_equal(r1.sender.send_s[:n], r2.sender.send_s[:n])


def test_receiver_acks_every_packet_and_probes_stay_out_of_metrics(traces):
    from emu.apps.swiftqueue.app import KIND_PROBE

    r = _run("random")
    s, rx = r.sender, r.receiver
    n = s.n_sent
    probes = s.kind[:n] == KIND_PROBE
    assert probes.sum() == s.frames_sent            # one probe per frame
    assert np.all(s.size[:n][probes] == 64)
    delivered = np.isfinite(rx.lat_s[:n])
    # every delivered packet was acknowledged (all but the last ACKs in flight at the end)
    assert s.history.n >= delivered.sum() - 20
    h = s.history.view()
    assert np.allclose(h[:, 2], rx.lat_s[h[:, 6].astype(int)])   # the ACK carries the packet's latency
    assert rx.rx_pkts == (delivered & ~probes).sum()             # media counted, probes not
    assert 0.3 < s.queue[:n][~probes].mean() < 0.7
    assert rx.reordered_pkts > 0                                 # two queues reorder; the jitter buffer copes
    assert len(rx.frame_done_s) > 0.8 * s.frames_sent


def test_ghosts_measure_both_queues(traces):
    r = _run("perflow_l4s", ghosts=True)
    n = r.sender.n_sent
    gl, gc = r.receiver.ghost_l_s[:n], r.receiver.ghost_c_s[:n]
    ok = np.isfinite(gl) & np.isfinite(gc)
    assert ok.mean() > 0.8
    assert np.all(gl[ok] >= 0.015) and np.all(gc[ok] >= 0.015)
    # a 1-byte ghost in the packet's own queue is not slower than the packet itself (same instant, FIFO)
    lat = r.receiver.lat_s[:n]
    m = ok & np.isfinite(lat)
    assert np.mean(gl[m] <= lat[m] + 1e-9) > 0.95


# -- features and dataset --------------------------------------------------------------------------------------------

def test_own_load_and_sharp_flags_by_hand():
    from emu.apps.swiftqueue.dataset import sharp_flags
    from emu.apps.swiftqueue.features import own_load

    send = np.array([0.0, 0.0, 0.0, 0.05, 0.05, 0.2])
    size = np.array([1000, 500, 200, 100, 300, 50])
    queue = np.array([1, 0, 1, 1, 1, 0])
    ahead, recent = own_load(send, size, queue, np.array([0, 1, 2, 0, 1, 0]))
    assert ahead.tolist() == [[0, 0], [1000, 0], [1000, 500], [0, 0], [100, 0], [0, 0]]
    assert recent.tolist() == [[0, 0], [0, 0], [0, 0], [1200, 500], [1200, 500], [0, 0]]
    lat = np.array([0.030, 0.030, 0.055, 0.060, 0.061, 0.031])
    # L: 30 -> 55 (sharp: +25 ms, +83 %), 55 -> 60 (no), 60 -> 61 (no); C: 30 -> 31 (no)
    assert sharp_flags(send, queue, lat).tolist() == [False, False, True, False, False, False]


def test_window_tokens_pad_and_relative_latency():
    from emu.apps.swiftqueue.features import F_HIST, row_features, window_tokens

    hist = np.array([[0.10, 0.05, 0.030, 1240, 1, 0, 0],
                     [0.11, 0.06, 0.032, 1240, 0, 1, 1],
                     [0.12, 0.07, 0.050, 64, 1, 0, 2]])
    tok, pad = window_tokens(hist, row_features(hist), np.array([0]), np.array([3]), np.array([0.2]),
                             np.array([0.030]), window=4)
    assert tok.shape == (1, 4, F_HIST) and pad.tolist() == [[True, False, False, False]]
    assert np.allclose(tok[0, 1:, 0], [0.0, 0.02, 0.2])           # (lat - base) / 0.1 s
    assert tok[0, 2:, 1].tolist() == [0.0, 1.0] and tok[0, 2, 2] == 1.0
    assert np.allclose(tok[0, 1:, 4], [1.0, 0.9, 0.8])            # ACK ages / 0.1 s
    assert np.all(tok[0, 0] == 0)


def test_dataset_roundtrip_and_split_by_trace(tmp_path, traces):
    from emu.apps.swiftqueue.collector import collect
    from emu.apps.swiftqueue.dataset import SwiftQueueDataset, build_split, from_runs, merge
    from emu.apps.swiftqueue.scenario import ScenarioConfig

    runs = [collect(ScenarioConfig(trace=TRACE, duration_s=6.0, warmup_s=1.0), seed=3)]
    ds = from_runs(runs, warmup_s=1.0)
    assert len(ds) > 200 and ds.media.any() and (~ds.media).any()
    assert np.all(ds.end > ds.start) and np.all(ds.base <= ds.y + 1e-12)
    path = ds.save(tmp_path / "d.npz")
    back = SwiftQueueDataset.load(path)
    assert np.array_equal(back.y, ds.y) and back.runs == ds.runs
    both = merge([ds, back])
    assert len(both) == 2 * len(ds)
    assert np.array_equal(both.batch(np.arange(len(ds), len(both))).tokens, ds.batch(np.arange(len(ds))).tokens)
    with pytest.raises(ValueError, match="val_traces"):
        build_split([TRACE], [TRACE], tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        SwiftQueueDataset.load(tmp_path / "bad.npz")


# -- predictors ------------------------------------------------------------------------------------------------------

def test_baselines_by_hand():
    from emu.apps.swiftqueue.predictors import Batch, EwmaPredictor, LastValuePredictor, baseline_rows

    hist = np.zeros((3, 7))
    hist[:, 2] = [0.040, 0.080, 0.048]
    hist[:, 4] = [1, 0, 1]
    rows = baseline_rows(hist)
    assert rows[-1, 0] == 0.048 and rows[-1, 1] == 0.080
    assert rows[-1, 2] == pytest.approx(0.040 + (0.048 - 0.040) / 8)
    b = Batch(np.zeros((2, 4, 8), np.float32), np.zeros((2, 4), bool), np.zeros((2, 14), np.float32),
              np.array([0.03, 0.03]), np.array([[0.05, np.nan], [np.nan, np.nan]]), np.array([[0.04, 0.06]] * 2))
    assert LastValuePredictor().predict(b).tolist() == [[0.05, 0.05], [0.03, 0.03]]
    assert EwmaPredictor().predict(b).tolist() == [[0.04, 0.06], [0.04, 0.06]]


def test_linear_ar_fits_a_linear_rule():
    from emu.apps.swiftqueue.features import F_HIST, F_QUERY, WINDOW
    from emu.apps.swiftqueue.predictors import Batch, LinearARPredictor, linear_design

    rng = np.random.default_rng(0)
    n = 2000
    b = Batch(rng.normal(size=(n, WINDOW, F_HIST)).astype(np.float32), np.zeros((n, WINDOW), bool),
              rng.normal(size=(n, F_QUERY)).astype(np.float32), np.zeros(n), np.zeros((n, 2)), np.zeros((n, 2)))
    X = linear_design(b)
    w_true = rng.normal(size=X.shape[1])
    y_rel = X @ w_true
    q = rng.integers(0, 2, n)
    lin = LinearARPredictor.fit(X, y_rel, q, ridge=1e-8)
    assert np.allclose(lin.predict(b)[:, 0], 0.1 * y_rel, atol=1e-6)


def test_numpy_transformer_matches_torch():
    torch = pytest.importorskip("torch")
    from emu.apps.swiftqueue.features import F_QUERY
    from emu.apps.swiftqueue.model import build, n_params
    from emu.apps.swiftqueue.predictors import Batch
    from emu.apps.swiftqueue.train import init_params
    from emu.apps.swiftqueue.inference import NumpyTransformer

    model = build("transformer")
    init_params(model, torch.Generator().manual_seed(5))
    assert 90_000 <= n_params(model) <= 110_000          # ~100 K (apps.md §1.2)
    model.eval()
    nt = NumpyTransformer.from_state_dict({k: v.numpy() for k, v in model.state_dict().items()},
                                          model.config.to_dict())
    rng = np.random.default_rng(1)
    tok = rng.normal(size=(1, 32, 8)).astype(np.float32)
    pad = np.zeros((1, 32), bool)
    pad[0, :9] = True
    query = rng.normal(size=(4, F_QUERY)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(np.repeat(tok, 4, 0)), torch.from_numpy(np.repeat(pad, 4, 0)),
                    torch.from_numpy(query)).numpy()
    assert np.allclose(nt.forward(tok, pad, query), ref, atol=1e-4)          # general path
    batch = Batch(np.repeat(tok, 4, 0), np.repeat(pad, 4, 0), query, np.zeros(4), np.zeros((4, 2)),
                  np.zeros((4, 2)), key="frame")
    cached = np.concatenate([nt.predict(batch.take(np.array([i]))) for i in range(4)])
    assert np.allclose(cached, 0.1 * ref, atol=1e-5)                        # per-frame fast path, row by row
    assert np.allclose(nt.predict(batch), 0.1 * ref, atol=1e-5)              # per-frame fast path, whole frame


def test_init_is_seeded_without_global_rng():
    torch = pytest.importorskip("torch")
    from emu.apps.swiftqueue.model import build
    from emu.apps.swiftqueue.train import init_params

    state = torch.random.get_rng_state()
    a, b = build("gru"), build("gru")
    init_params(a, torch.Generator().manual_seed(9))
    init_params(b, torch.Generator().manual_seed(9))
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)
    # building draws from the global RNG (torch's own defaults) but init_params overwrites every weight
    torch.random.set_rng_state(state)


# -- the loader ------------------------------------------------------------------------------------------------------

def _copy_models(tmp_path):
    import shutil

    from emu.apps.artifacts import models_dir

    src = models_dir("swiftqueue")
    assert (src / "swiftqueue.card.json").is_file(), f"committed model card missing in {src}"   # a defect
    dst = tmp_path / "m"
    shutil.copytree(src, dst)
    return dst


def test_loader_checks_hash_and_names_files(tmp_path):
    pytest.importorskip("torch")
    from emu.apps.artifacts import CardError, sha256_file
    from emu.apps.swiftqueue.weights import decision_gate_s, decision_margin_s, load_predictor, read_card

    d = _copy_models(tmp_path)
    assert read_card(d)["app"] == "swiftqueue" and decision_margin_s(d) == 0.005 and decision_gate_s(d) == 0.01
    load_predictor("transformer", d)
    load_predictor("linear", d)
    # corrupt one byte: the hash check fails, naming the file, before deserialisation
    p = d / "transformer.pt"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CardError, match=r"transformer\.pt.*sha256"):
        load_predictor("transformer", d)
    # a well-hashed but malformed file: named as unreadable
    p.write_bytes(b"garbage")
    card = json.loads((d / "swiftqueue.card.json").read_text())
    card["files"]["transformer.pt"] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    (d / "swiftqueue.card.json").write_text(json.dumps(card))
    with pytest.raises(CardError, match=r"transformer\.pt: cannot be read"):
        load_predictor("transformer", d)
    (d / "gru.pt").unlink()
    with pytest.raises(CardError, match=r"gru\.pt: missing"):
        load_predictor("gru", d)
    (d / "swiftqueue.card.json").write_text("{not json")
    with pytest.raises(CardError, match="not valid JSON"):
        read_card(d)
    with pytest.raises(CardError, match="model card not found"):
        read_card(tmp_path / "nowhere")


def test_committed_card_lists_the_committed_weights():
    from emu.apps.artifacts import models_dir, read_card

    d = models_dir("swiftqueue")
    assert (d / "swiftqueue.card.json").is_file(), f"committed model card missing in {d}"   # a defect
    card = read_card("swiftqueue", "swiftqueue")
    card.verify()
    assert list(card["files"]) == ["linear.npy", "gru.pt", "transformer.pt"]
    assert card["command"] == "emu train swiftqueue --seed 0" and card["seed"] == 0
    assert {"gru", "transformer", "training", "policy"} <= set(card.config)
    assert set(card.metrics["val"]) == {"last", "ewma", "linear", "gru", "transformer"}


def test_online_features_equal_offline(traces):
    """The policy's live inputs equal the dataset's for the same packet (one code path for both)."""
    from emu.apps.swiftqueue.collector import run_arrays
    from emu.apps.swiftqueue.dataset import from_runs
    from emu.apps.swiftqueue.features import ACK_S, unacked_features
    from emu.apps.swiftqueue.predictors import BaselineTracker, online_batch

    r = _run("random", duration_s=6.0)
    arrays = run_arrays(r)
    ds = from_runs([arrays], warmup_s=1.0)
    hist = arrays["hist"]
    rng = np.random.default_rng(0)
    fresh_seen = False
    for j in rng.choice(len(ds), 40, replace=False):
        end = int(ds.end[j])
        b_off = ds.batch(np.array([j]))
        tracker = BaselineTracker()
        q = ds.query[j]
        snd = r.sender
        first = int(np.searchsorted(snd.send_s[:snd.n_sent], ds.now[j], side="left"))
        unacked = unacked_features(snd.send_s, snd.size, snd.queue, snd.ack_s, float(ds.now[j]), first)
        b_on = online_batch(hist[:end], tracker, float(ds.now[j]), [int(ds.size[j])], [q[1] * 8], [q[2] * 8],
                            [q[3]], [q[10:12] * 1500], [q[12:14] * 15000], key=1, unacked=unacked)
        assert hist[end - 1, ACK_S] <= ds.now[j]
        assert np.allclose(b_on.tokens[0], b_off.tokens[0], atol=1e-5)
        assert np.array_equal(b_on.pad[0], b_off.pad[0])
        assert np.allclose(b_on.query[0], b_off.query[0], atol=1e-5)
        assert np.allclose(b_on.last, b_off.last, equal_nan=True) and b_on.base[0] == b_off.base[0]
        fresh_seen = fresh_seen or bool(np.any(b_off.query[0, 14:20] != 0))
    assert fresh_seen   # the fresher inputs (un-ACKed age/bytes, CE fraction, L ACK gap) are not all zero


def test_named_scenarios_fill_unset_fields_and_follow_replace():
    from emu.apps.swiftqueue.scenario import SCENARIOS, ScenarioConfig

    assert set(SCENARIOS) == {"mixed", "household", "alternating"}
    mixed = ScenarioConfig(trace="x")
    assert (mixed.scenario, mixed.l4s_udp, mixed.udp_on_s, mixed.app_rate_frac) == ("mixed", 1, 0.3, 0.15)
    home = mixed.replace(scenario="household")
    assert all(getattr(home, k) == v for k, v in SCENARIOS["household"].items())
    own = ScenarioConfig(trace="x", scenario="household", l4s_udp=5).replace(scenario="alternating")
    assert own.l4s_udp == 5 and own.udp_rate_frac == SCENARIOS["alternating"]["udp_rate_frac"]
    with pytest.raises(ValueError, match="scenario"):
        ScenarioConfig(trace="x", scenario="party")
    with pytest.raises(ValueError, match="udp_rate_frac"):
        ScenarioConfig(trace="x", scenario="household", udp_rate_frac=-1.0)


def test_tail_counts_losses_as_deadline_misses(tmp_path):
    from emu.apps.swiftqueue.endpoint import SwiftQueueConfig
    from emu.apps.swiftqueue.scenario import ScenarioConfig, run

    with pytest.raises(ValueError, match="deadline_s"):
        SwiftQueueConfig(deadline_s=0.0)
    trace = tmp_path / "steady.down"               # synthetic: 3 opportunities per 2 ms (18 Mbit/s), looping
    trace.write_text("".join(f"{ms}\n" * 3 for ms in range(2, 1001, 2)))
    r = run(ScenarioConfig(trace=str(trace), duration_s=6.0, warmup_s=1.0), "perflow_l4s", seed=1)
    m = r.endpoint.result()
    assert m["p99_delivered_s"] <= m["p99_s"] <= r.endpoint.config.deadline_s
    assert m["loss_frac"] <= m["deadline_miss_frac"]
    # every packet past the deadline: all are misses and every quantile is the deadline
    from dataclasses import replace
    r.endpoint.config = replace(r.endpoint.config, deadline_s=0.001)
    tight = r.endpoint.result()
    assert tight["deadline_miss_frac"] == 1.0 and tight["p50_s"] == tight["p99_s"] == 0.001
    assert tight["p99_delivered_s"] == m["p99_delivered_s"]


def test_unacked_features_and_l_ack_stats_by_hand():
    """Query features 14-19: the oldest un-ACKed packet per queue, its bytes, the CE fraction and ACK gap of L."""
    from emu.apps.swiftqueue.features import l_ack_stats, unacked_features

    send = np.array([0.0, 0.0, 0.1, 0.1, 0.2, 0.5, 0.6])
    size = np.array([1000, 500, 1000, 1000, 200, 300, 400])
    queue = np.array([1, 0, 1, 0, 1, 1, 0])
    ack = np.array([0.05, np.inf, 0.7, 0.65, 0.3, np.inf, np.inf])
    # At 0.6, first packet of the frame = 6: packets sent in [0.2, 0.6) count: 5 is open in L, 4 was ACKed
    # at 0.3; packet 3 (C, ACKed at 0.65) is older than the horizon.
    assert np.allclose(unacked_features(send, size, queue, ack, 0.6, 6), [1.0, 0.0, 300 / 15000, 0.0])
    # At 0.45 (hi = 5): packets 2 (L, ack 0.7) and 3 (C, ack 0.65) sent at 0.1 >= 0.05 are open; 4 is ACKed.
    assert np.allclose(unacked_features(send, size, queue, ack, 0.45, 5), [3.5, 3.5, 1000 / 15000, 1000 / 15000])
    assert unacked_features(send, size, queue, ack, 0.0, 0) == [0.0, 0.0, 0.0, 0.0]
    q = np.array([[1, 0, 1, 1], [0, 0, 0, 1]])
    ce = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    t = np.array([[0.0, 0.01, 0.02, 0.05], [0.0, 0.01, 0.02, 0.03]])
    pad = np.array([[False, False, False, False], [True, False, False, False]])
    out = l_ack_stats(q, ce, t, pad)
    assert np.allclose(out[0], [1 / 3, 2.5]) and np.allclose(out[1], [1.0, 0.0])
