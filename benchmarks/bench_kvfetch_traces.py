"""The adaptive KV fetch against the better of text recompute and level0, on a seeded sample of the shared traces.

The configuration of ``tests/apps/test_kvfetch_traces.py`` (a 256-token held-out context in four 64-token chunks,
40 ms RTT, a 50 ms SLO, three requests 30 s apart on one connection), on ``--sample`` traces drawn with
``--seed`` from every trace file the emulator reads. Prints, per trace, the adaptive mean TTFT over the better
of the two fixed options, then how many are within 10 %, the median, the 90th percentile and the largest.

    python benchmarks/bench_kvfetch_traces.py --sample 80

It also runs on a checkout from before the connection memory (no ``request_gap_s``: the same request times are
computed here), which is how docs/kvfetch.md compares the two.
"""
from __future__ import annotations

import argparse
import inspect
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REQUESTS, GAP_S = 3, 30.0


def trace_files() -> list[str]:
    from emu.links.tracefile import load_trace, require_shared_traces

    root = require_shared_traces()
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("README")):
        try:
            load_trace(path)
        except ValueError:
            continue
        out.append(str(path.relative_to(root)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="adaptive KV fetch against text and level0 on sampled traces")
    parser.add_argument("--sample", type=int, default=80)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    import torch

    from emu.apps.kvfetch.eval import KVFetchEvalConfig, run_fetch
    from emu.apps.kvfetch.menu import ComputeModel, build_menu
    from emu.links.tracefile import load_trace
    from emu.rng import SeedTree

    torch.set_num_threads(1)
    menu = build_menu(context_tokens=256, chunk_tokens=64, delta=False, query_tokens=32, compute=ComputeModel(),
                      rng=SeedTree(0).rng("kvfetch.traces.context"))
    files = trace_files()
    sample = random.Random(args.seed).sample(files, min(args.sample, len(files)))
    with_memory = "memory" in inspect.signature(run_fetch).parameters
    ratios = []
    for trace in sample:
        config = KVFetchEvalConfig(trace=trace, trials=REQUESTS, slo_s=0.05, horizon_s=600.0, context_tokens=256,
                                   chunk_tokens=64)
        # request_offsets with gap_s (emu.apps.requests), written out to run on older checkouts too
        usable = max(1.0, load_trace(trace).period_s - 20.0)
        start = float(SeedTree(0).rng("kvfetch.trials").uniform(0, usable))
        offsets = [start + k * GAP_S for k in range(REQUESTS)]
        memory = config.endpoint_config().new_memory() if with_memory else None
        mean = {}
        for scheme in ("cachegen", "text", "level0"):
            extra = {"memory": memory} if with_memory and scheme == "cachegen" else {}
            mean[scheme] = float(np.mean([run_fetch(config, scheme, menu, trace_offset_s=t0, seed=0, **extra).ttft_s
                                          for t0 in offsets]))
        ratios.append(mean["cachegen"] / min(mean["text"], mean["level0"]))
        print(f"{ratios[-1]:.3f}  {trace}", flush=True)
    r = np.array(ratios)
    print(f"connection memory: {with_memory}; within 10 %: {int((r <= 1.1).sum())} of {len(r)}; "
          f"median {np.median(r):.2f}x, p90 {np.quantile(r, 0.9):.2f}x, max {r.max():.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
