"""Evaluate the three token-streaming schemes on identical conditions (``emu eval chatterbox``).

Network: ``emu.topologies.access_bottleneck`` with one pair: server s0 -> left -> bottleneck -> right -> client
d0. The bottleneck runs at ``rate_bps`` (10 Mbit/s) or follows a capacity trace, behind a 1000-packet DropTail
queue, with Bernoulli or Gilbert-Elliott loss on the downlink only (the uplink carries ACKs and is loss-free),
and all the propagation delay (half the base RTT each way). Each response is its own run: response k under seed
S runs on ``Sim(seed=S * 1000 + k)`` with one session of one response installed by ``emu.apps.install`` (the
response is drawn from that run's ``chatterbox.tokens`` stream), so every scheme sees the same responses, pacing
and loss draws.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.chatterbox.app import ChatterboxSession
from emu.apps.chatterbox.schemes import SCHEMES
from emu.apps.chatterbox.tokens import TokenTimeline, TokenSourceConfig
from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig
from emu.validate import MAX_RATE_BPS, check_int, check_number

MAX_BURST_PKTS = 10_000  # longer mean bursts would make the bad state a permanent outage within any run
HORIZON_AFTER_LAST_TOKEN_S = 600.0  # RTO back-off through a long loss state can take minutes


@dataclass(frozen=True, kw_only=True)
class ChatterboxEvalConfig:
    trace: Optional[str] = field(default=None, metadata={"help": "downlink capacity trace (Mahimahi or throughput "
                                                                 "log) instead of rate_bps"})
    loss: float = field(default=0.0, metadata={"help": "mean packet loss rate on the downlink, 0..0.5"})
    burst: float = field(default=1.0, metadata={"help": "mean loss-burst length in packets (Gilbert-Elliott); "
                                                        "1 = independent losses"})
    rtt_s: float = field(default=0.100, metadata={"help": "base round-trip time in seconds"})
    rate_bps: float = field(default=10e6, metadata={"help": "downlink rate when no trace is given"})
    n_responses: int = field(default=10, metadata={"help": "responses streamed per scheme (one run each)"})
    inter_token_s: float = field(default=0.035, metadata={"help": "mean gap between generated tokens"})
    jitter_cv: float = field(default=0.3, metadata={"help": "coefficient of variation of the token gaps"})
    timeline_file: Optional[str] = field(default=None, metadata={"help": 'replay a file of time_s<TAB>"token" '
                                                                         "lines instead of the corpus"})
    models_dir: Optional[str] = None

    def __post_init__(self) -> None:
        check_number("loss", self.loss, lo=0, hi=0.5)
        check_number("burst", self.burst, lo=1, hi=MAX_BURST_PKTS, unit="packets (mean loss-burst length)")
        check_number("rtt_s", self.rtt_s, lo=0, lo_open=True, hi=5, unit="s")
        check_number("rate_bps", self.rate_bps, lo=0, lo_open=True, hi=MAX_RATE_BPS, unit="bit/s")
        check_int("n_responses", self.n_responses, lo=1, hi=10_000)
        TokenSourceConfig(inter_token_s=self.inter_token_s, jitter_cv=self.jitter_cv)
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
    """One response streamed by one scheme (for plots): generation and rendering times, text, wire bytes."""

    scheme: str
    timeline: TokenTimeline
    rendered_s: np.ndarray
    rendered_text: str
    wire_bytes: int


def run_session(scheme: str, config: ChatterboxEvalConfig, seed: int) -> ChatterboxSession:
    """One session of one response on a fresh access-bottleneck network, run until it is rendered whole."""
    from emu.apps.install import install
    from emu.sim import Sim
    from emu.topologies import access_bottleneck, run_until_done

    sim = Sim(seed=seed)
    topo = access_bottleneck(sim, rate=None if config.trace is not None else config.rate_bps, trace=config.trace,
                             rtt_s=config.rtt_s, loss=config.loss_model())
    session = install(topo.net, "chatterbox", src=topo.senders[0], dst=topo.receivers[0], scheme=scheme,
                      n_responses=1, inter_token_s=config.inter_token_s, jitter_cv=config.jitter_cv,
                      timeline_file=config.timeline_file, models_dir=config.models_dir)
    last_token_s = float(session.responses[0].times_s[-1])
    if not run_until_done(sim, [session], horizon_s=last_token_s + HORIZON_AFTER_LAST_TOKEN_S,
                          step_s=max(1.0, 10 * config.rtt_s)):
        raise ValueError(f"chatterbox {scheme}: seed {seed}: the response was not rendered whole within "
                         f"{HORIZON_AFTER_LAST_TOKEN_S:g} s of its last token")
    return session


def run_scheme(scheme: str, config: ChatterboxEvalConfig, seed: int) -> SchemeRun:
    """``run_session`` as a ``SchemeRun`` (what the timeline plot draws)."""
    session = run_session(scheme, config, seed)
    renderer = session.renderers[0]
    return SchemeRun(scheme, session.timelines[0], renderer.rendered_s.copy(), renderer.text,
                     session.transport.wire_bytes)


def evaluate(config: ChatterboxEvalConfig, *, schemes: tuple[str, ...] = SCHEMES, seed: int = 0) -> dict[str, dict]:
    """Stream the same responses with each scheme; return ``{scheme: metrics}`` over all responses.

    Metrics per scheme: ``stall_ratio`` (mean over responses), ``token_delay_p99_s`` and the other delay
    quantiles (over all tokens), ``ttft_s`` (mean), ``bytes_per_token``, ``text_ok`` (rendered == generated).
    """
    if config.timeline_file is not None:   # a bad timeline fails before any session runs, naming the file
        from emu.apps.chatterbox.tokens import load_timeline

        load_timeline(config.timeline_file)
    out: dict[str, dict] = {}
    for scheme in schemes:
        stalls, ttfts, delays, wire, n_tokens, text_ok = [], [], [], 0, 0, True
        for k in range(config.n_responses):
            session = run_session(scheme, config, seed=seed * 1000 + k)
            (m,) = session.response_metrics()
            stalls.append(m.stall_ratio)
            ttfts.append(m.ttft_s)
            delays.append(session.token_delays_s())
            wire += session.transport.wire_bytes
            n_tokens += m.n_tokens
            text_ok &= session.text_ok
        delay = np.concatenate(delays)
        out[scheme] = {
            "stall_ratio": float(np.mean(stalls)),
            "token_delay_p50_s": float(np.quantile(delay, 0.50)),
            "token_delay_p95_s": float(np.quantile(delay, 0.95)),
            "token_delay_p99_s": float(np.quantile(delay, 0.99)),
            "ttft_s": float(np.mean(ttfts)),
            "bytes_per_token": wire / n_tokens,
            "text_ok": bool(text_ok),
            "responses": config.n_responses,
        }
    return out
