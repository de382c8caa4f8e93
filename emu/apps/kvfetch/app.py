"""KV server and client as an app endpoint: one context fetch, chunk by chunk, in order (no torch unless the
endpoint builds its own chunk menu).

::

    client (dst) ──request (stream ``<name>.req``, 200 B)──► server (src)
    server: on request → controller.choose(chunk 0) → write(bytes of chunk 0 at that option) on ``<name>.data``
            on every ACK: when the socket has taken everything written (nothing unsent), choose and write the
            next chunk; the throughput estimate is the delivery rate over the last ``rate_window_s`` of ACKs
    client: on in-order data → each completed chunk joins the receiver's compute queue (one processor, FIFO,
            in chunk order): decode of a KV chunk, or recompute of a text chunk (which needs the chunks before it)
            TTFT = (last chunk processed) + query prefill − request time

The scheme names the controller (``controller.py``): ``cachegen`` (adaptive), ``code_rule`` (the released rule),
or one fixed option (``quant8``, ``quant4``, ``text``, ``level0`` … ``level3``). The compute model (what the
receiving GPU would spend) and the bytes on the wire come from the ``ChunkMenu``: the real sizes of the encoded
chunks (headers, tables and scales included), carried by the emulator's reliable stream. Give ``menu`` to reuse
one (``emu eval kvfetch`` builds one per context); without it the endpoint builds its own from the committed
model and a held-out context drawn from ``sim.rng("<name>.context")``.

    install(net, "kvfetch", src="s0", dst="d0", scheme="cachegen", slo_s=1.0)
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from emu.apps.base import Endpoint, InstallContext, finite_or_nan
from emu.apps.kvfetch.controller import (BudgetController, ChunkMenu, Controller, FixedController, Observation,
                                         SloSplitController)
from emu.apps.kvfetch.menu import (AC_DECODE_ELEMENTS_PER_S, DEQUANT_ELEMENTS_PER_S, MAX_CONTEXT, MIN_CONTEXT,
                                   PREFILL_TOKENS_PER_S, ComputeModel)
from emu.validate import check_bool, check_int, check_number

REQUEST_BYTES = 200
ADAPTIVE = ("cachegen", "code_rule")
FIXED = ("quant8", "quant4", "text", "level0", "level1", "level2", "level3")
SCHEMES = ADAPTIVE + FIXED


@dataclass(frozen=True, kw_only=True)
class KVFetchConfig:
    """One fetch: the context, the SLO the adaptive controllers aim at, the receiver's compute model."""

    context_tokens: int = 2048
    chunk_tokens: int = 512               # apps.md §4.4: the released 1500-token chunks scaled to the small model
    slo_s: float = 1.0
    prior_bps: float = 20e6               # throughput assumed before the first measurement [DESIGN]
    query_tokens: int = 32
    delta: bool = False                   # CacheGen levels with the paper's delta-to-anchor encoding
    prefill_tok_s: float = PREFILL_TOKENS_PER_S
    decode_el_s: float = AC_DECODE_ELEMENTS_PER_S
    dequant_el_s: float = DEQUANT_ELEMENTS_PER_S
    rate_window_s: float = 0.25           # throughput estimate: delivery rate over this window of ACKs
    cc: str = "cubic"
    models_dir: Optional[str] = None      # where the committed model is (when the endpoint builds its menu)
    menu: Optional[ChunkMenu] = field(default=None, compare=False)  # precomputed options (else built at start)

    def __post_init__(self) -> None:
        check_int("context_tokens", self.context_tokens, lo=MIN_CONTEXT, hi=MAX_CONTEXT)
        check_int("chunk_tokens", self.chunk_tokens, lo=16, hi=MAX_CONTEXT)
        check_number("slo_s", self.slo_s, lo=1e-3, hi=600.0)
        check_number("prior_bps", self.prior_bps, lo=1e3, hi=1e12)
        check_int("query_tokens", self.query_tokens, lo=1, hi=4096)
        check_number("rate_window_s", self.rate_window_s, lo=1e-3, hi=60.0)
        check_bool("delta", self.delta)
        if not isinstance(self.cc, str) or not self.cc:
            raise ValueError(f"cc: must be a congestion-control name, got {self.cc!r}")
        if self.menu is not None and not isinstance(self.menu, ChunkMenu):
            raise ValueError(f"menu: must be a ChunkMenu or None, got {type(self.menu).__name__}")
        self.compute()  # validates the three rates

    def compute(self) -> ComputeModel:
        return ComputeModel(prefill_tok_s=self.prefill_tok_s, decode_el_s=self.decode_el_s,
                            dequant_el_s=self.dequant_el_s)


def make_controller(scheme: str, config: KVFetchConfig) -> Controller:
    if scheme == "cachegen":
        return BudgetController(config.slo_s, config.prior_bps)
    if scheme == "code_rule":
        return SloSplitController(config.slo_s, config.prior_bps)
    if scheme in FIXED:
        return FixedController(scheme)
    raise ValueError(f"kvfetch: unknown scheme {scheme!r}; valid: {', '.join(SCHEMES)}")


class KVFetch(Endpoint):
    """Server (``ctx.src``) and client (``ctx.dst``) of one fetch; the request leaves at ``start_s``."""

    app = "kvfetch"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        self.controller = make_controller(self.scheme, self.config)
        self.menu: Optional[ChunkMenu] = self.config.menu
        self.choices: list[str] = []
        self.chunk_bytes: list[int] = []
        self.arrived_s: list[float] = []          # since the request
        self.processed_s: list[float] = []
        self.throughput_est_bps: list[Optional[float]] = []
        self.fetch_s = math.nan                   # last byte delivered, since the request
        self.ttft_s = math.nan
        self._done = False
        self._ends: list[int] = []                # stream offset where each chosen chunk ends
        self._next_chunk = 0
        self._samples: deque = deque()            # (time, delivered bytes) of recent ACKs
        self._gpu_free_s = 0.0                    # absolute time
        self._gpu_est_s = 0.0                     # the sender's estimate of the same
        self._arrived = 0
        self.data: Any = None
        self.request: Any = None
        if self.menu is not None:
            self._check_menu()

    def _check_menu(self) -> None:
        if self.scheme in FIXED and self.scheme not in self.menu.nbytes:
            raise ValueError(f"kvfetch {self.name!r}: scheme {self.scheme!r} is not an option of the menu "
                             f"({', '.join(self.menu.options)})")

    def start(self) -> None:
        from emu.transport.stream import open_stream

        cfg: KVFetchConfig = self.config
        if self.menu is None:
            from emu.apps.kvfetch.menu import build_menu

            self.menu = build_menu(context_tokens=cfg.context_tokens, chunk_tokens=cfg.chunk_tokens, delta=cfg.delta,
                                   query_tokens=cfg.query_tokens, compute=cfg.compute(),
                                   rng=self.sim.rng(f"{self.name}.context"), models_dir=cfg.models_dir)
            self._check_menu()
        self._gpu_free_s = self._gpu_est_s = self.start_s
        self.data, _ = open_stream(self.sim, self.ctx.src, self.ctx.dst, cc=cfg.cc, on_data=self._on_data,
                                   on_ack_sample=self._on_ack, flow=f"{self.name}.data")
        self.request, _ = open_stream(self.sim, self.ctx.dst, self.ctx.src, cc=cfg.cc, on_data=self._on_request,
                                      flow=f"{self.name}.req", start_s=self.start_s)
        self.request.write(REQUEST_BYTES)

    # -- server -------------------------------------------------------------------------------------------------

    def _on_request(self, total: int, now_s: float) -> None:
        if total >= REQUEST_BYTES and self._next_chunk == 0 and not self._ends:
            self._send_next(now_s)

    def _throughput(self, now_s: float) -> Optional[float]:
        s = self._samples
        while len(s) > 2 and s[1][0] <= now_s - self.config.rate_window_s:
            s.popleft()
        if len(s) < 2 or s[-1][0] - s[0][0] <= 1e-4:
            return None
        return (s[-1][1] - s[0][1]) * 8.0 / (s[-1][0] - s[0][0])

    def _send_next(self, now_s: float) -> None:
        i = self._next_chunk
        menu = self.menu
        thr = self._throughput(now_s)
        queued = self.data.written_bytes - self.data.delivered_bytes
        obs = Observation(now_s - self.start_s, thr, queued, max(0.0, self._gpu_est_s - self.start_s))
        option = self.controller.choose(i, obs, menu)
        if option not in menu.nbytes:
            raise ValueError(f"controller {self.scheme!r} chose {option!r}; options: {menu.options}")
        nbytes = int(menu.nbytes[option][i])
        self.choices.append(option)
        self.chunk_bytes.append(nbytes)
        self.throughput_est_bps.append(thr)
        self._ends.append(self.data.written_bytes + nbytes)
        # The sender's estimate of the receiver's compute queue (for the text decision).
        est_thr = thr or getattr(self.controller, "prior_bps", None) or 1e7
        arrive_est = now_s + (queued + nbytes) * 8.0 / est_thr
        self._gpu_est_s = max(self._gpu_est_s, arrive_est) + menu.gpu_s[option][i]
        self._next_chunk += 1
        self.data.write(nbytes)

    def _on_ack(self, sample: Any) -> None:
        if not sample.app_limited:   # an app-limited sender measures its own pauses, not the path
            self._samples.append((sample.now_s, sample.delivered_bytes))
        if self._next_chunk < self.menu.n_chunks and self.data.unsent_bytes == 0:
            self._send_next(sample.now_s)

    # -- client -------------------------------------------------------------------------------------------------

    def _on_data(self, total: int, now_s: float) -> None:
        while self._arrived < len(self._ends) and total >= self._ends[self._arrived]:
            i = self._arrived
            option = self.choices[i]
            self.arrived_s.append(now_s - self.start_s)
            begin = max(now_s, self._gpu_free_s)
            self._gpu_free_s = begin + self.menu.gpu_s[option][i]
            self.processed_s.append(self._gpu_free_s - self.start_s)
            self._arrived += 1
        if self._arrived == self.menu.n_chunks and not self._done:
            self.fetch_s = self.arrived_s[-1]
            self.ttft_s = self.processed_s[-1] + self.menu.query_prefill_s
            self._done = True

    # -- contract -----------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    @property
    def sent_bytes(self) -> int:
        return int(sum(self.chunk_bytes))

    def result(self) -> dict[str, Any]:
        return {
            "ttft_s": finite_or_nan(self.ttft_s),
            "fetch_s": finite_or_nan(self.fetch_s),
            "sent_bytes": self.sent_bytes,
            "chunks": len(self.choices),
            "slo_met": float(self.ttft_s <= self.config.slo_s) if self._done else math.nan,
            "choices": ",".join(self.choices),
        }


def install(ctx: InstallContext) -> KVFetch:
    return KVFetch(ctx)
