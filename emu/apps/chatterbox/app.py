"""The Chatterbox endpoint: one chat session (a server host streaming LLM responses to a client host).

``install(net, "chatterbox", src=SERVER, dst=CLIENT, scheme="chatterbox", n_responses=3)`` puts one session on
any network. The session asks for ``n_responses`` responses in turn: the first at ``start_s``, each next one
``think_s`` after the previous one is fully on screen. Each response is a corpus response paced like an LLM
(``tokens.generate``, drawn from ``sim.rng("<name>.tokens")``) or the replayed ``timeline_file``; it is streamed by
the scheme's transport (``schemes.py``) on flows ``<name>`` and ``<name>.ack``. ``result()`` gives the metrics of
``metrics.py`` over the responses finished so far: mean stall ratio and time to first token, per-token delay
quantiles over all their tokens, and bytes on the wire per token generated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from emu.apps.base import Endpoint, InstallContext, finite_or_nan
from emu.apps.chatterbox.metrics import StreamMetrics, stream_metrics
from emu.apps.chatterbox.schemes import SCHEMES, Renderer, make_transport
from emu.apps.chatterbox.tokens import TokenSourceConfig, TokenTimeline, generate, load_timeline


@dataclass(frozen=True, kw_only=True)
class ChatterboxConfig:
    """One session's parameters (the network's rate, RTT and loss belong to the network)."""

    n_responses: int = 1            # responses asked for in turn
    inter_token_s: float = 0.035    # mean generation gap (tokens.py: taivo.ai's GPT-3.5 measurement)
    jitter_cv: float = 0.3          # gamma-distributed gaps with this coefficient of variation (our choice)
    n_tokens: Optional[int] = None  # tokens per response; None: the corpus response's own length (200-800)
    think_s: float = 1.0            # from a response fully rendered to the next request (our choice)
    timeline_file: Optional[str] = None  # replay this time_s<TAB>"token" file as every response
    min_rto_s: float = 0.2          # RFC 6298 RTO floor (Linux's 200 ms) for every scheme
    dup_spacing_s: float = 0.010    # duplicate: the copy follows the original by this much
    models_dir: Optional[str] = None  # folder of the token corpus card (default: $EMU_MODELS_DIR or packaged)

    def __post_init__(self) -> None:
        if isinstance(self.n_responses, bool) or not isinstance(self.n_responses, int) \
                or not 1 <= self.n_responses <= 100_000:
            raise ValueError(f"n_responses: must be an integer in [1, 100000], got {self.n_responses!r}")
        self.token_source()  # validates inter_token_s, jitter_cv and n_tokens
        for name, hi in (("think_s", 3600.0), ("min_rto_s", 60.0), ("dup_spacing_s", 10.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 <= value <= hi:
                raise ValueError(f"{name}: must be in [0, {hi:g}] seconds, got {value!r}")
        if self.timeline_file is not None and not Path(self.timeline_file).is_file():
            raise FileNotFoundError(f"timeline_file: {self.timeline_file} is not a file")

    def token_source(self) -> TokenSourceConfig:
        return TokenSourceConfig(inter_token_s=self.inter_token_s, jitter_cv=self.jitter_cv, n_tokens=self.n_tokens)


class ChatterboxSession(Endpoint):
    """A chat session between ``ctx.src`` (the LLM server) and ``ctx.dst`` (the client that renders)."""

    app = "chatterbox"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        cfg: ChatterboxConfig = ctx.config
        if ctx.scheme not in SCHEMES:
            raise ValueError(f"scheme: unknown {ctx.scheme!r}; valid: {', '.join(SCHEMES)}")
        self.transport = make_transport(ctx.scheme, ctx.sim, ctx.src, ctx.dst, flow=ctx.name,
                                        min_rto_s=cfg.min_rto_s, dup_spacing_s=cfg.dup_spacing_s)
        self.responses = draw_responses(cfg, ctx.sim.rng(f"{ctx.name}.tokens"))  # times from each request
        self.timelines: list[TokenTimeline] = []   # requested responses, absolute generation times
        self.request_s: list[float] = []
        self.renderers: list[Renderer] = []

    def start(self) -> None:
        self.sim.call_at(self.start_s, self._request)

    def _request(self, _: Any = None) -> None:
        k = len(self.timelines)
        now = self.sim.now_s
        relative = self.responses[k]
        timeline = TokenTimeline(relative.times_s + now, relative.tokens)
        renderer = Renderer(timeline, on_complete=self._on_complete)
        self.timelines.append(timeline)
        self.request_s.append(now)
        self.renderers.append(renderer)
        self.transport.begin(k, timeline, renderer)

    def _on_complete(self, now_s: float) -> None:
        if len(self.timelines) < len(self.responses):
            self.sim.call_in(self.config.think_s, self._request)

    @property
    def done(self) -> bool:
        return len(self.renderers) == len(self.responses) and self.renderers[-1].complete

    @property
    def finished(self) -> list[int]:
        """Indices of the responses fully rendered."""
        return [k for k, r in enumerate(self.renderers) if r.complete]

    def response_metrics(self) -> list[StreamMetrics]:
        """``metrics.stream_metrics`` of every finished response (wire bytes: the whole session's)."""
        return [stream_metrics(self.timelines[k].times_s, self.renderers[k].rendered_s, self.request_s[k], 0)
                for k in self.finished]

    def token_delays_s(self) -> np.ndarray:
        """Rendering delay r_i - g_i of every token of the finished responses."""
        parts = [self.renderers[k].rendered_s - self.timelines[k].times_s for k in self.finished]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def generated_tokens(self) -> int:
        now = self.sim.now_s
        return int(sum(np.count_nonzero(t.times_s <= now) for t in self.timelines))

    @property
    def text_ok(self) -> bool:
        """Every finished response rendered exactly the generated text."""
        return all(self.renderers[k].text == self.timelines[k].text for k in self.finished)

    def result(self) -> dict[str, Any]:
        per = self.response_metrics()
        delay = self.token_delays_s()
        tokens = self.generated_tokens
        q = (lambda p: float(np.quantile(delay, p))) if delay.size else (lambda p: math.nan)
        return {
            "stall_ratio": float(np.mean([m.stall_ratio for m in per])) if per else math.nan,
            "stall_s": float(sum(m.stall_s for m in per)),
            "ttft_s": float(np.mean([m.ttft_s for m in per])) if per else math.nan,
            "token_delay_p50_s": q(0.50),
            "token_delay_p95_s": q(0.95),
            "token_delay_p99_s": q(0.99),
            "bytes_per_token": finite_or_nan(self.transport.wire_bytes / tokens if tokens else None),
            "responses_done": len(per),
            "tokens": int(sum(len(self.timelines[k]) for k in self.finished)),
            "text_ok": bool(self.text_ok),
        }


def draw_responses(config: ChatterboxConfig, rng: np.random.Generator) -> list[TokenTimeline]:
    """The session's responses, generation times measured from each request."""
    if config.timeline_file is not None:
        replay = load_timeline(config.timeline_file)
        return [replay] * config.n_responses
    from emu.apps.chatterbox.corpus import load_responses

    corpus = load_responses(config.models_dir)
    source = config.token_source()
    return [generate(source, rng, corpus) for _ in range(config.n_responses)]


def install(ctx: InstallContext) -> ChatterboxSession:
    return ChatterboxSession(ctx)
