"""``emu eval droidspeak``: one agent hands its cache of a shared context to another across a real trace.

What runs (everything from one seed):

1. The pair's agents (``--pair SENDER,RECEIVER``) and its profile (the committed ``profile.json``, or profiled
   now with ``--reprofile``): the chosen group is the cheapest contiguous group within ``--budget-pct``.
2. ``contexts`` evaluation windows of the receiver's held-out text (the half the profile never saw): the sender's
   real KV and E-cache, coded per layer (``transfer.py``); every scheme's plan and the quality the receiver gets
   from what was actually delivered (decoded), against its own full prefill.
3. For each of ``trials`` request times spread over the trace, each scheme's hand-over runs across the
   access-bottleneck network (``emu.topologies.access_bottleneck``), installed with ``emu.apps.install``; all
   schemes see the same request times (paired comparison).

Metrics per scheme: ``ttft_s`` (mean; ``ttft_p95_s``), ``prefill_speedup`` (the receiver's compute for its own
full prefill and the query over the scheme's compute: recompute + decoding + query, the network left out, as the
paper's prefill speed-up), ``ttft_speedup`` (mean over trials of full prefill's TTFT over the scheme's), ``quality_loss_pct``
(continuation-loss increase), ``top1_agreement``, ``bytes`` (on the wire), ``recompute_layers`` and ``group``.
Receiver compute: the kvfetch calibration (measured on this CPU, scaled to LongChat-7B's cost per KV element,
``emu.apps.kvfetch.calibrate``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from emu.apps.droidspeak.app import MAX_CONTEXT, MIN_CONTEXT, SCHEMES, DroidSpeakConfig
from emu.apps.kvfetch.menu import AC_DECODE_ELEMENTS_PER_S, DEQUANT_ELEMENTS_PER_S, PREFILL_TOKENS_PER_S
from emu.apps.requests import request_offsets, run_request
from emu.rng import SeedTree
from emu.validate import check_bool, check_int, check_number

DEFAULT_TRACE = "lumos5g/4G/4g_trace_driving_50015_dr"   # Verizon 4G LTE, driving (kvfetch's default)


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class DroidSpeakEvalConfig:
    trace: Optional[str] = field(default=DEFAULT_TRACE, metadata=_help(
        "downlink capacity trace (Mahimahi or throughput log); replaced by --rate-bps"))
    rate_bps: Optional[float] = field(default=None, metadata=_help("a constant bottleneck rate in bit/s"))
    rtt_s: float = field(default=0.04, metadata=_help("base round-trip time in s"))
    pair: str = field(default="man,copyright", metadata=_help(
        "SENDER,RECEIVER agents: base, man, changelog, copyright"))
    context_tokens: int = field(default=2048, metadata=_help(f"shared context, {MIN_CONTEXT}..{MAX_CONTEXT} tokens"))
    cont_tokens: int = field(default=256, metadata=_help("continuation tokens scored for quality"))
    query_tokens: int = field(default=32, metadata=_help("query tokens prefilled after the context"))
    codec: str = field(default="level2", metadata=_help(
        "coding of shipped KV for droidspeak, random_group, full_reuse_compressed: fp16, quant8, level0..level3"))
    budget_pct: float = field(default=2.0, metadata=_help("continuation-loss increase allowed to the chosen group"))
    contexts: int = field(default=3, metadata=_help("evaluation contexts (trials cycle through them)"))
    trials: int = field(default=8, metadata=_help("hand-overs per scheme, spread over the trace"))
    profile_contexts: int = field(default=4, metadata=_help("contexts profiled when profiling now"))
    reprofile: bool = field(default=False, metadata=_help("profile the pair now instead of reading profile.json"))
    prefill_tok_s: float = field(default=PREFILL_TOKENS_PER_S, metadata=_help(
        "receiver prefill throughput, tokens/s (kvfetch calibration, 7B-scaled)"))
    decode_el_s: float = field(default=AC_DECODE_ELEMENTS_PER_S, metadata=_help(
        "receiver CacheGen decoding throughput, KV elements/s"))
    dequant_el_s: float = field(default=DEQUANT_ELEMENTS_PER_S, metadata=_help(
        "receiver 8-bit dequantisation throughput, elements/s"))
    horizon_s: float = field(default=120.0, metadata=_help("simulated time one hand-over may take"))
    models_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.rate_bps is not None:
            check_number("rate_bps", self.rate_bps, lo=1e3, hi=1e12)
            object.__setattr__(self, "trace", None)
        elif self.trace is None:
            raise ValueError("trace: give a trace, or a constant link with rate_bps")
        check_number("rtt_s", self.rtt_s, lo=1e-4, hi=5.0)
        check_int("cont_tokens", self.cont_tokens, lo=2, hi=4096)
        check_int("contexts", self.contexts, lo=1, hi=64)
        check_int("trials", self.trials, lo=1, hi=10_000)
        check_int("profile_contexts", self.profile_contexts, lo=1, hi=64)
        check_bool("reprofile", self.reprofile)
        check_number("horizon_s", self.horizon_s, lo=1.0, hi=1e5)
        self.endpoint_config()

    def endpoint_config(self, **extra: Any) -> DroidSpeakConfig:
        names = {f.name for f in dataclasses.fields(DroidSpeakConfig)} - {"plan"}
        return DroidSpeakConfig(**{n: getattr(self, n) for n in names if hasattr(self, n)}, **extra)

    def check_inputs(self) -> None:
        """Trace, agents' cards and weights' hashes: fail before any work, naming the file."""
        from emu.apps.droidspeak.variants import check_agent_files, parse_pair

        if self.trace is not None:
            from emu.links.tracefile import load_trace, resolve_trace_path

            load_trace(resolve_trace_path(self.trace))
        check_agent_files(parse_pair(self.pair), self.models_dir)


def run_handover(config: DroidSpeakEvalConfig, scheme: str, plan, *, trace_offset_s: float, seed: int):
    """One hand-over on its own access-bottleneck network; returns the finished endpoint."""
    return run_request("droidspeak", scheme, trace=config.trace, rate_bps=config.rate_bps,
                       trace_offset_s=trace_offset_s, rtt_s=config.rtt_s, seed=seed, horizon_s=config.horizon_s,
                       what="hand-over", **dataclasses.asdict(config.endpoint_config()) | {"plan": plan})


def evaluate(config: DroidSpeakEvalConfig, *, schemes: tuple[str, ...] = SCHEMES, seed: int = 0) -> dict[str, dict]:
    """``{scheme: metrics}`` on the same contexts and request times (module doc)."""
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise ValueError(f"schemes: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
    config.check_inputs()
    import torch

    from emu.apps.droidspeak import profile as prof
    from emu.apps.droidspeak.mixing import group_size
    from emu.apps.droidspeak.prepare import context_case, prepare_pair, random_group, scheme_case

    torch.set_num_threads(min(2, torch.get_num_threads()))
    pair = prepare_pair(config.pair, budget_pct=config.budget_pct, context_tokens=config.context_tokens,
                        models_dir=config.models_dir, profile_contexts=config.profile_contexts,
                        cont_tokens=config.cont_tokens, seed=seed, reprofile=config.reprofile)
    n_layers = pair.receiver.cfg.n_layers
    chosen = pair.chosen.group
    groups = {"droidspeak": chosen,
              "random_group": random_group(group_size(chosen), n_layers, SeedTree(seed).rng("droidspeak.random"),
                                           chosen)}
    compute = config.endpoint_config().compute()
    windows = prof.windows(pair.held_out, SeedTree(seed).rng("droidspeak.eval"), config.contexts,
                           config.context_tokens, config.cont_tokens, half=1)
    run_schemes = tuple(dict.fromkeys(("full_prefill",) + tuple(schemes)))
    cases: dict[str, list] = {s: [] for s in run_schemes}
    for ids, cont in windows:
        case = context_case(pair, ids, cont)
        for s in run_schemes:
            cases[s].append(scheme_case(pair, case, s, codec=config.codec, group=groups.get(s), compute=compute,
                                        query_tokens=config.query_tokens))
    # The rng keeps the name of the kvfetch evaluation this one was built from (the same request times).
    offsets = request_offsets(config.trace, config.trials, seed, "kvfetch.trials")
    ttft: dict[str, list[float]] = {s: [] for s in run_schemes}
    for s in run_schemes:
        for k, t0 in enumerate(offsets):
            ep = run_handover(config, s, cases[s][k % config.contexts].plan, trace_offset_s=t0, seed=seed)
            ttft[s].append(ep.ttft_s)
    base = np.array(ttft["full_prefill"])
    out: dict[str, dict] = {}
    for s in schemes:
        cs = cases[s]
        t = np.array(ttft[s])
        group = cs[0].group
        out[s] = {
            "ttft_s": float(t.mean()),
            "ttft_p95_s": float(np.quantile(t, 0.95)),
            "prefill_speedup": float(np.mean([c.plan.prefill_speedup for c in cs])),
            "ttft_speedup": float(np.mean(base / t)),
            "quality_loss_pct": float(np.mean([c.loss_increase_pct for c in cs])),
            "top1_agreement": float(np.mean([c.top1_agreement for c in cs])),
            "bytes": float(np.mean([c.plan.total_bytes for c in cs])),
            "receiver_gpu_s": float(np.mean([c.plan.gpu_s for c in cs])),
            "recompute_layers": group_size(group),
            "group": "none" if group is None else f"{group[0]}-{group[1]}",
            "trials": len(t),
            "ttft_per_trial_s": [float(x) for x in t],
        }
    return out
