"""DroidSpeak as an app endpoint: one agent ships its cache of a shared context to another agent, layer by layer.

::

    receiver (dst) ──request (stream ``<name>.req``, 200 B)──► sender (src)
    sender: writes the scheme's pieces back to back on ``<name>.data`` (``transfer.TransferPlan``): for
            ``droidspeak`` the E-cache entering the recomputed group first (or the text when the group starts
            at layer 0), then the reused layers' KV in layer order
    receiver: each piece joins one processor's queue when its last byte arrives: the entry piece starts the
            recompute of the group (pipelined with the transfer of the reused layers), a coded layer is decoded
            TTFT = last piece processed + query prefill − request time

Schemes: ``droidspeak`` (the profiled group), ``full_prefill`` (text only: the receiver prefills everything),
``full_reuse`` (every layer's float16 KV, nothing recomputed), ``full_reuse_compressed`` (every layer coded with
``codec``), ``random_group`` (a seeded random contiguous group of the profiled group's size).

The plan comes from ``prepare.py`` (real coded sizes of a real context's caches). Give ``plan`` to reuse one
(``emu eval droidspeak`` builds one per scheme and context); without it the endpoint builds its own from the
committed agents, a held-out context drawn from ``sim.rng("<name>.context")`` and the committed profile.

    install(net, "droidspeak", src="s0", dst="d0", scheme="droidspeak", pair="man,copyright")
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from emu.apps.base import Endpoint, InstallContext, finite_or_nan
from emu.apps.droidspeak.transfer import TransferPlan, check_codec, simulate_receiver
from emu.apps.kvfetch.menu import (AC_DECODE_ELEMENTS_PER_S, DEQUANT_ELEMENTS_PER_S, PREFILL_TOKENS_PER_S,
                                   ComputeModel)
from emu.validate import check_int, check_number

REQUEST_BYTES = 200
SCHEMES = ("droidspeak", "full_prefill", "full_reuse", "full_reuse_compressed", "random_group")
MIN_CONTEXT, MAX_CONTEXT = 128, 4096


@dataclass(frozen=True, kw_only=True)
class DroidSpeakConfig:
    """One cache hand-over: which agents, the context, the codec, the quality budget, the receiver compute model."""

    pair: str = "man,copyright"          # "SENDER,RECEIVER"
    context_tokens: int = 2048
    query_tokens: int = 32
    codec: str = "level2"                # coding of the shipped KV for droidspeak, random_group, full_reuse_compressed
    budget_pct: float = 2.0              # continuation-loss increase the chosen group may cost
    prefill_tok_s: float = PREFILL_TOKENS_PER_S
    decode_el_s: float = AC_DECODE_ELEMENTS_PER_S
    dequant_el_s: float = DEQUANT_ELEMENTS_PER_S
    cc: str = "cubic"
    models_dir: Optional[str] = None
    plan: Optional[TransferPlan] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from emu.apps.droidspeak.variants import parse_pair

        parse_pair(self.pair)
        check_int("context_tokens", self.context_tokens, lo=MIN_CONTEXT, hi=MAX_CONTEXT)
        check_int("query_tokens", self.query_tokens, lo=1, hi=4096)
        check_codec(self.codec)
        check_number("budget_pct", self.budget_pct, lo=0.0, hi=1000.0)
        if not isinstance(self.cc, str) or not self.cc:
            raise ValueError(f"cc: must be a congestion-control name, got {self.cc!r}")
        if self.plan is not None and not isinstance(self.plan, TransferPlan):
            raise ValueError(f"plan: must be a TransferPlan or None, got {type(self.plan).__name__}")
        self.compute()

    def compute(self) -> ComputeModel:
        return ComputeModel(prefill_tok_s=self.prefill_tok_s, decode_el_s=self.decode_el_s,
                            dequant_el_s=self.dequant_el_s)


class DroidSpeakTransfer(Endpoint):
    """Sender (``ctx.src``) and receiver (``ctx.dst``) of one hand-over; the request leaves at ``start_s``."""

    app = "droidspeak"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        self.plan: Optional[TransferPlan] = self.config.plan
        self.arrived_s: list[float] = []       # since the request
        self.ttft_s = math.nan
        self.fetch_s = math.nan
        self._ends: list[int] = []
        self._sent = False
        self._done = False
        self.data: Any = None
        self.request: Any = None
        if self.plan is not None and self.plan.scheme != self.scheme:
            raise ValueError(f"droidspeak {self.name!r}: plan is for scheme {self.plan.scheme!r}, not {self.scheme!r}")

    def start(self) -> None:
        from emu.transport.stream import open_stream

        cfg: DroidSpeakConfig = self.config
        if self.plan is None:
            from emu.apps.droidspeak.prepare import build_plan

            self.plan = build_plan(cfg, self.scheme, rng=self.sim.rng(f"{self.name}.context"))
        offset = 0
        for item in self.plan.items:
            offset += item.nbytes
            self._ends.append(offset)
        self.data, _ = open_stream(self.sim, self.ctx.src, self.ctx.dst, cc=cfg.cc, on_data=self._on_data,
                                   flow=f"{self.name}.data")
        self.request, _ = open_stream(self.sim, self.ctx.dst, self.ctx.src, cc=cfg.cc, on_data=self._on_request,
                                      flow=f"{self.name}.req", start_s=self.start_s)
        self.request.write(REQUEST_BYTES)

    def _on_request(self, total: int, now_s: float) -> None:
        if total >= REQUEST_BYTES and not self._sent:
            self._sent = True
            self.data.write(self._ends[-1])

    def _on_data(self, total: int, now_s: float) -> None:
        while len(self.arrived_s) < len(self._ends) and total >= self._ends[len(self.arrived_s)]:
            self.arrived_s.append(now_s - self.start_s)
        if len(self.arrived_s) == len(self._ends) and not self._done:
            self.ttft_s, _ = simulate_receiver(self.plan, self.arrived_s)
            self.fetch_s = self.arrived_s[-1]
            self._done = True

    @property
    def done(self) -> bool:
        return self._done

    def result(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "ttft_s": finite_or_nan(self.ttft_s),
            "fetch_s": finite_or_nan(self.fetch_s),
            "sent_bytes": plan.total_bytes if plan is not None else 0,
            "receiver_gpu_s": plan.gpu_s if plan is not None else math.nan,
            "prefill_speedup": plan.prefill_speedup if plan is not None else math.nan,
        }


def install(ctx: InstallContext) -> DroidSpeakTransfer:
    return DroidSpeakTransfer(ctx)
