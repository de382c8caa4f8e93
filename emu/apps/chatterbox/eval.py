"""Evaluate the three token-streaming schemes on identical conditions (``emu eval chatterbox``).

Network: server -- router -- client. The router->client link is the bottleneck: ``rate_bps`` (10 Mbit/s) or a
capacity trace, a 1000-packet DropTail queue, Bernoulli or Gilbert-Elliott loss (downlink only; the uplink
carries ACKs and is loss-free), and half the base RTT of propagation each way. Every scheme sees the same
responses, pacing and loss parameters (same seed); each response is its own run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from emu.apps.chatterbox.corpus import load_responses
from emu.apps.chatterbox.metrics import stream_metrics
from emu.apps.chatterbox.schemes import SCHEME_CLASSES, SCHEMES
from emu.apps.chatterbox.tokens import TokenSourceConfig, TokenTimeline, generate, load_timeline
from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig
from emu.net import Network
from emu.rng import SeedTree
from emu.sim import Sim


@dataclass(frozen=True, kw_only=True)
class ChatterboxEvalConfig:
    loss: float = 0.0            # mean packet loss rate on the downlink, 0..0.5
    burst: float = 1.0           # mean loss-burst length in packets; 1 = independent (Bernoulli) losses
    rtt_s: float = 0.100         # base round-trip time
    rate_bps: float = 10e6       # downlink rate when no trace is given
    trace: Optional[str] = None  # capacity trace for the downlink (Mahimahi or throughput log)
    n_responses: int = 10
    tokens: TokenSourceConfig = TokenSourceConfig()
    timeline_file: Optional[str] = None  # replay this (time, token) file instead of the corpus

    def __post_init__(self) -> None:
        if not isinstance(self.loss, (int, float)) or not 0 <= self.loss <= 0.5:
            raise ValueError(f"loss: must be in [0, 0.5], got {self.loss!r}")
        if not isinstance(self.burst, (int, float)) or not self.burst >= 1:
            raise ValueError(f"burst: mean burst length must be >= 1 packet, got {self.burst!r}")
        if not isinstance(self.rtt_s, (int, float)) or not 0 < self.rtt_s <= 5:
            raise ValueError(f"rtt_s: must be in (0, 5] seconds, got {self.rtt_s!r}")
        if not isinstance(self.rate_bps, (int, float)) or not self.rate_bps > 0:
            raise ValueError(f"rate_bps: must be > 0, got {self.rate_bps!r}")
        if not isinstance(self.n_responses, int) or self.n_responses < 1:
            raise ValueError(f"n_responses: must be an integer >= 1, got {self.n_responses!r}")
        for name in ("trace", "timeline_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise FileNotFoundError(f"{name}: {value} is not a file")

    def loss_model(self):
        if self.loss == 0:
            return None
        if self.burst == 1:
            return BernoulliLossConfig(p=self.loss)
        # Gilbert-Elliott with a lossless good state and an all-loss bad state: mean burst = 1 / p_bad_to_good,
        # stationary loss = p_gb / (p_gb + p_bg).
        p_bg = 1.0 / self.burst
        p_gb = self.loss * p_bg / (1 - self.loss)
        return GilbertElliottLossConfig(p_good_to_bad=p_gb, p_bad_to_good=p_bg)


@dataclass
class SchemeRun:
    scheme: str
    timeline: TokenTimeline
    rendered_s: np.ndarray
    rendered_text: str
    wire_bytes: int


def run_scheme(scheme: str, timeline: TokenTimeline, config: ChatterboxEvalConfig, seed: int) -> SchemeRun:
    """One response streamed by one scheme."""
    if scheme not in SCHEME_CLASSES:
        raise ValueError(f"scheme: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
    sim = Sim(seed=seed)
    net = Network(sim)
    server, router, client = net.host("server"), net.router("router"), net.host("client")
    one_way_s = config.rtt_s / 2
    net.link(server, router, rate="1Gbps", delay=one_way_s / 2)
    if config.trace is not None:
        net.link(router, client, trace=config.trace, reverse_rate="1Gbps", delay=one_way_s / 2,
                 loss=config.loss_model())
    else:
        net.link(router, client, rate=config.rate_bps, delay=one_way_s / 2, loss=config.loss_model())
    run = SCHEME_CLASSES[scheme](sim, server, client, timeline)
    end_s = float(timeline.times_s[-1])
    horizon_s = end_s + 600.0  # RTO back-off through a long loss state can take minutes
    step_s = max(1.0, 10 * config.rtt_s)
    t = min(horizon_s, end_s + step_s)
    while True:
        sim.run(until_s=t)
        if run.renderer.prefix == len(timeline) or t >= horizon_s:
            break
        t = min(horizon_s, t + step_s)
    return SchemeRun(scheme, timeline, run.renderer.rendered_s.copy(), run.renderer.text, run.wire_bytes)


def timelines(config: ChatterboxEvalConfig, seed: int) -> list[TokenTimeline]:
    if config.timeline_file is not None:
        return [load_timeline(config.timeline_file)]
    responses = load_responses()
    rng = SeedTree(seed).rng("chatterbox.tokens")
    return [generate(config.tokens, rng, responses) for _ in range(config.n_responses)]


def evaluate(config: Optional[ChatterboxEvalConfig] = None, seed: int = 0,
             schemes: tuple[str, ...] = SCHEMES, **overrides: Any) -> dict[str, dict]:
    """Stream the same responses with each scheme; return ``{scheme: metrics}`` averaged over responses.

    Metrics per scheme: ``stall_ratio`` (mean over responses), ``token_delay_p99_s`` and the other delay
    quantiles (over all tokens), ``ttft_s`` (mean), ``bytes_per_token``, ``text_ok`` (rendered == generated).
    """
    if config is None:
        config = ChatterboxEvalConfig(**overrides)
    elif overrides:
        import dataclasses

        config = dataclasses.replace(config, **overrides)
    lines = timelines(config, seed)
    out: dict[str, dict] = {}
    for scheme in schemes:
        stalls, ttfts, delays, wire, n_tokens, text_ok = [], [], [], 0, 0, True
        for k, timeline in enumerate(lines):
            run = run_scheme(scheme, timeline, config, seed=seed * 1000 + k)
            m = stream_metrics(timeline.times_s, run.rendered_s, 0.0, run.wire_bytes)
            stalls.append(m.stall_ratio)
            ttfts.append(m.ttft_s)
            delays.append(run.rendered_s - timeline.times_s)
            wire += run.wire_bytes
            n_tokens += len(timeline)
            text_ok &= run.rendered_text == timeline.text
        delay = np.concatenate(delays)
        out[scheme] = {
            "stall_ratio": float(np.mean(stalls)),
            "token_delay_p50_s": float(np.quantile(delay, 0.50)),
            "token_delay_p95_s": float(np.quantile(delay, 0.95)),
            "token_delay_p99_s": float(np.quantile(delay, 0.99)),
            "ttft_s": float(np.mean(ttfts)),
            "bytes_per_token": wire / n_tokens,
            "text_ok": bool(text_ok),
            "responses": len(lines),
        }
    return out
