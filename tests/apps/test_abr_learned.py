"""ABR learned policies with the committed weights: loading through hash-checked cards, determinism, and the
NetLLM arms against the baselines on a test source never trained on (the first 12 Oboe traces; training and
checkpoint selection used FCC files only). docs/abr.md has the full tables (142 HSDPA and 50 Oboe traces)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from emu.apps.abr.load import load_netllm, load_pensieve  # noqa: E402
from emu.apps.artifacts import models_dir  # noqa: E402


@pytest.fixture(scope="module")
def test_set():
    from emu.apps.abr.traces import load_trace, trace_files
    from emu.apps.abr.video import load_video
    from emu.links.tracefile import shared_traces_dir

    shared = shared_traces_dir()
    if shared is None:
        pytest.skip("the real traces folder ../shared/traces is not available")
    files = trace_files(shared / "oboe")[:12]                # Oboe: never trained or validated on
    return load_video(), [load_trace(f) for f in files]


@pytest.fixture(scope="module")
def scores(test_set):
    from emu.apps.abr.schemes import make_policy
    from emu.apps.abr.sessions import simulate, summarise

    torch.set_num_threads(1)
    video, traces = test_set
    out = {s: summarise(simulate(make_policy(s, video), traces, video, seed=0))["qoe"]
           for s in ("bba", "mpc", "pensieve", "netllm", "netllm_random")}
    print("abr learned, oboe[:12], seed 0:", {k: round(v, 3) for k, v in out.items()})
    return out


def test_tampered_weights_fail_naming_the_file(tmp_path):
    for name in ("pensieve.card.json", "pensieve.pt"):
        shutil.copy(models_dir("abr") / name, tmp_path / name)
    load_pensieve(tmp_path)                                   # intact copy loads
    data = bytearray((tmp_path / "pensieve.pt").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "pensieve.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="pensieve.pt"):
        load_pensieve(tmp_path)
    with pytest.raises(ValueError, match="arm"):
        load_netllm("gpt")


def test_netllm_sampling_is_seeded(test_set):
    from emu.apps.abr.sessions import simulate

    video, traces = test_set
    runs = [simulate(load_netllm("netllm", seed=5), traces[:2], video, seed=0) for _ in range(2)]
    assert [log.levels for log in runs[0]] == [log.levels for log in runs[1]]


def test_pretrained_backbone_beats_the_random_one_on_an_unseen_source(scores):
    """The paper's control: the same recipe on a randomly initialised frozen backbone scores lower (paper: ~0.1
    vs 1.0 normalised; here see docs/abr.md)."""
    assert scores["netllm"] > scores["netllm_random"], scores


def test_netllm_trails_the_best_baseline_on_an_unseen_source(scores):
    """What holds at this scale (3.4 M-parameter backbone, 96 CPU steps, FCC-only pool): on a source never trained
    on, NetLLM stays below the best baseline (it wins on held-out FCC files, docs/abr.md). The paper's +14.5 % over
    the best baseline is not reproduced; if this starts failing, the docs' table must change."""
    best = max(scores["bba"], scores["mpc"], scores["pensieve"])
    assert scores["netllm"] < best, scores
