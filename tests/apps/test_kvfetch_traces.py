"""The adaptive KV fetch against text recompute and the best fixed level on every trace of the shared set.

Each distinct trace file of ../shared/traces that the emulator reads (1101 of 1327: ``emu.links.tracefile`` does
not read the 5gophers and nuwins-5g-uplink CSVs, and 151 files are byte-for-byte copies of others) gets three
requests 30 s apart on one connection, from a seeded start: ``cachegen`` with one ``BandwidthMemory`` carried
across them (the first request has measured nothing and hedges; the later ones start on what the earlier ones
measured), against ``text`` and ``level0`` at the same times.

Target (issue 17): the adaptive mean TTFT is never more than 10 % above the better of text and the best fixed
level. It holds on 889 of the 1101 traces. The other 212 are recorded with their measured ratio in
``kvfetch_trace_gaps.json`` (docs/kvfetch.md, "Every shared trace"): there the target is an expected failure,
and a trace that starts meeting it fails the test until it is removed from the list. What holds on every trace
is asserted too: the adaptive mean is never more than 10 % above the worse of the two.

A small configuration keeps this CPU-cheap (2.5 min on two shared cores, 8 min when they are busy): a
256-token context of the committed model in four 64-token chunks (every option's real encoded size), 40 ms RTT,
and an SLO no option meets
(50 ms), so the controller's objective is the earliest finish, which is what the target measures (at a looser
SLO it spends the slack on quality by design). ``level0`` stands for the best fixed level: each chunk of it is
smaller than the same chunk at every other level at the same decoding cost, and
``test_level0_is_the_fastest_fixed_level`` checks that it finishes first.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("constriction")
pytest.importorskip("tokenizers")

from emu.links.tracefile import TraceFormatError, load_trace, shared_traces_dir  # noqa: E402
from tests.apps.kvfetch_marks import NEEDS_TEXT  # noqa: E402

pytestmark = NEEDS_TEXT

REQUESTS = 3
GAP_S = 30.0                 # < FORGET_S: the later requests are informed by the earlier ones
TARGET = 1.10
GAPS = json.loads(Path(__file__).with_name("kvfetch_trace_gaps.json").read_text())   # trace -> measured ratio
RTT_S = 0.04


def distinct_trace_files() -> list:
    """Every file of the shared traces folder, one per distinct content, in path order (README excluded)."""
    root = shared_traces_dir()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="real traces folder ../shared/traces not found "
                                                                  "beside the checkout (set EMU_TRACES_DIR)"))]
    seen, out = set(), []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("README")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(str(path.relative_to(root)))
    return out


TRACES = distinct_trace_files()


@pytest.fixture(scope="module")
def menu():
    """The committed model's KV of a held-out 256-token context in 64-token chunks, every option encoded."""
    import torch

    from emu.apps.kvfetch.menu import ComputeModel, build_menu
    from emu.rng import SeedTree

    torch.set_num_threads(1)
    return build_menu(context_tokens=256, chunk_tokens=64, delta=False, query_tokens=32, compute=ComputeModel(),
                      rng=SeedTree(0).rng("kvfetch.traces.context"))


def fetch_ttfts(trace: str, menu, schemes: tuple[str, ...]) -> tuple[dict[str, list[float]], object]:
    """TTFT of each request per scheme (cachegen carries one memory across its requests), and that memory."""
    from emu.apps.kvfetch.eval import KVFetchEvalConfig, run_fetch, trial_offsets

    config = KVFetchEvalConfig(trace=trace, trials=REQUESTS, request_gap_s=GAP_S, slo_s=0.05, horizon_s=600.0,
                               context_tokens=256, chunk_tokens=64, rtt_s=RTT_S)
    schedule = load_trace(trace)
    offsets = trial_offsets(config, 0, schedule.period_s)
    memory = config.endpoint_config().new_memory()
    out: dict[str, list[float]] = {}
    for scheme in schemes:
        out[scheme] = [run_fetch(config, scheme, menu, trace_offset_s=t0, seed=0, schedule=schedule,
                                 memory=memory if scheme == "cachegen" else None).ttft_s for t0 in offsets]
    return out, memory


@pytest.mark.parametrize("trace", TRACES)
def test_adaptive_mean_ttft_within_10pct_of_text_and_the_best_level(trace, menu):
    try:
        load_trace(trace)
    except TraceFormatError as exc:
        pytest.skip(f"not a link trace emu reads: {exc}")
    ttft, memory = fetch_ttfts(trace, menu, ("cachegen", "text", "level0"))
    assert memory.samples >= 1          # the first request measured the path for the next ones
    mean = {s: float(np.mean(v)) for s, v in ttft.items()}
    assert mean["cachegen"] <= TARGET * max(mean["text"], mean["level0"]), (mean, ttft)   # holds everywhere
    ratio = mean["cachegen"] / min(mean["text"], mean["level0"])
    if trace in GAPS:
        assert ratio > TARGET, (f"{trace} now meets the target ({ratio:.3f}x); remove it from "
                                f"kvfetch_trace_gaps.json and docs/kvfetch.md")
        pytest.xfail(f"target missed: {ratio:.3f}x the better of text and level0 (recorded {GAPS[trace]}x)")
    assert ratio <= TARGET, (mean, ttft)


@pytest.mark.parametrize("trace", ["lumos5g/5G/5g_trace_26_walking", "oboe/oboe_trace_98.txt",
                                   "mahimahi/Verizon-LTE-short.down",
                                   "fcc-hsdpa/train/trace_925800_http---www.ebay.com",
                                   "nyc-cellular-2019/trace-3114405-bus"])
def test_level0_is_the_fastest_fixed_level(trace, menu):
    if shared_traces_dir() is None:
        pytest.skip("real traces folder ../shared/traces not found beside the checkout (set EMU_TRACES_DIR)")
    for level in ("level0", "level1", "level2", "level3"):
        assert all(a <= b for a, b in zip(menu.nbytes["level0"], menu.nbytes[level]))
    ttft, _ = fetch_ttfts(trace, menu, ("level0", "level1", "level2", "level3"))
    for k in range(REQUESTS):
        assert ttft["level0"][k] <= min(ttft[lv][k] for lv in ("level1", "level2", "level3")), ttft
