"""KV server and client as an app endpoint: one context fetch, chunk by chunk, in order (no torch unless the
endpoint builds its own chunk menu).

::

    client (dst) ──request (stream ``<name>.req``, 200 B)──► server (src)
    server: on request → controller.choose(chunk 0) → write(bytes of chunk 0 at that option) on ``<name>.data``
            on every ACK: when the socket has taken everything written (nothing unsent), choose and write the
            next chunk; the throughput estimate is the delivery rate over the last ``rate_window_s`` of ACKs
    client: on in-order data → each completed chunk joins the receiver's compute queue (one processor, FIFO,
            in chunk order): decode of a KV chunk, or recompute of a text chunk (which needs the chunks before it);
            a chunk sent as text and KV is decoded if its KV is there when the processor gets to it, else
            recomputed (``_process``)
            TTFT = (last chunk processed) + query prefill − request time

The connection's memory (``memory``, a ``BandwidthMemory``; one per endpoint unless given, so give the same object
to the fetches of one connection): the adaptive controller starts each request on its recent measurement, or, with
none, the request hedges: the text of every chunk, then the smallest level's KV of the later chunks, all at once
(``_start_hedge``). Each fetch that sent KV teaches the memory its delivery rate (``_remember``).

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
from emu.apps.kvfetch.controller import (FORGET_S, HALF_LIFE_S, HEDGE, PRIOR_BPS, BandwidthMemory,
                                         BudgetController, ChunkMenu, Controller, FixedController, Observation,
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
    prior_bps: float = PRIOR_BPS          # throughput assumed before the first measurement [DESIGN]
    half_life_s: float = HALF_LIFE_S      # the connection's memory (``BandwidthMemory``) when none is given
    forget_s: float = FORGET_S
    query_tokens: int = 32
    delta: bool = False                   # CacheGen levels with the paper's delta-to-anchor encoding
    prefill_tok_s: float = PREFILL_TOKENS_PER_S
    decode_el_s: float = AC_DECODE_ELEMENTS_PER_S
    dequant_el_s: float = DEQUANT_ELEMENTS_PER_S
    rate_window_s: float = 0.25           # throughput estimate: delivery rate over this window of ACKs
    cc: str = "cubic"
    models_dir: Optional[str] = None      # where the committed model is (when the endpoint builds its menu)
    menu: Optional[ChunkMenu] = field(default=None, compare=False)  # precomputed options (else built at start)
    # The connection's throughput memory: give the same object to the fetches of one connection (else a fresh one).
    memory: Optional[BandwidthMemory] = field(default=None, compare=False)

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
        if self.memory is not None and not isinstance(self.memory, BandwidthMemory):
            raise ValueError(f"memory: must be a BandwidthMemory or None, got {type(self.memory).__name__}")
        self.new_memory()  # validates half_life_s and forget_s
        self.compute()  # validates the three rates

    def new_memory(self) -> BandwidthMemory:
        """A connection's memory with this config's prior and decay."""
        return BandwidthMemory(self.prior_bps, self.half_life_s, self.forget_s)

    def compute(self) -> ComputeModel:
        return ComputeModel(prefill_tok_s=self.prefill_tok_s, decode_el_s=self.decode_el_s,
                            dequant_el_s=self.dequant_el_s)


def make_controller(scheme: str, config: KVFetchConfig, memory: Optional[BandwidthMemory] = None) -> Controller:
    """The scheme's controller; the adaptive one chooses each request's start on ``memory`` (the connection's)."""
    if scheme == "cachegen":
        return BudgetController(config.slo_s, config.prior_bps, memory=memory)
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
        self.memory = self.config.memory if self.config.memory is not None else self.config.new_memory()
        self.controller = make_controller(self.scheme, self.config, self.memory)
        self.menu: Optional[ChunkMenu] = self.config.menu
        self.choices: list[str] = []
        self.chunk_bytes: list[int] = []
        self.arrived_s: list[float] = []          # since the request
        self.processed_s: list[float] = []
        self.throughput_est_bps: list[Optional[float]] = []
        self.fetch_s = math.nan                   # last byte delivered, since the request
        self.ttft_s = math.nan
        self._done = False
        self.sent: list[str] = []                 # what the server sent per chunk (``HEDGE`` + level: text and KV)
        self._plan: list[tuple[bool, Optional[str]]] = []   # per chunk: text sent?, KV option sent (or None)
        self._parts: deque = deque()              # (stream offset where a part ends, chunk, "text" | "kv")
        self._written = 0
        self._text_at: dict[int, float] = {}      # arrival time of a chunk's text
        self._kv_at: dict[int, float] = {}        # arrival time of a chunk's KV
        self._next_chunk = 0
        self._samples: deque = deque()            # (time, delivered bytes) of recent ACKs
        self._first_sample: Optional[tuple[float, int]] = None
        self.measured_bps = math.nan              # what this fetch taught the connection's memory
        self._gpu_free_s = 0.0                    # absolute time
        self._gpu_est_s = 0.0                     # the sender's estimate of the same
        self._arrived = 0
        self._kv_written = 0                      # bytes of KV written (a measurement needs some)
        self.hedged = False                       # this request hedged (``_start_hedge``)
        self._wake_at = math.nan                  # when the receiver looks again at a chunk sent as text and KV
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
        if total >= REQUEST_BYTES and self._next_chunk == 0 and not self._plan:
            self.controller.begin(now_s)
            menu = self.menu
            if self.controller.hedge and "text" in menu.nbytes and menu.levels and menu.n_chunks > 1:
                self._start_hedge()
            else:
                self._send_next(now_s)

    def _write(self, chunk: int, has_text: bool, kv: Optional[str]) -> int:
        """Plan chunk ``chunk`` (its text, its KV at option ``kv``, or both: see ``_process``); returns the bytes
        to write."""
        nbytes = 0
        if has_text:
            nbytes += int(self.menu.nbytes["text"][chunk])
            self._parts.append((self._written + nbytes, chunk, "text"))
        if kv is not None:
            n_kv = int(self.menu.nbytes[kv][chunk])
            nbytes += n_kv
            self._kv_written += n_kv
            self._parts.append((self._written + nbytes, chunk, "kv"))
        self._plan.append((has_text, kv))
        self._written += nbytes
        self.chunk_bytes.append(nbytes)
        return nbytes

    def _start_hedge(self) -> None:
        """A request on a connection that has measured nothing (recently): the text of every chunk, then the
        smallest level's KV of every chunk but the first, all written at once. The receiver recomputes each chunk
        from its text unless that chunk's KV has arrived by the time it gets to it, so the request is about as fast
        as text recompute or faster, and the KV it streams measures the path for the next request [DESIGN]."""
        menu = self.menu
        self.hedged = True
        level = menu.levels[-1]
        parts = []
        for i in range(menu.n_chunks):   # every text first, then the KV, in chunk order
            self._plan.append((True, level if i > 0 else None))
            self._written += int(menu.nbytes["text"][i])
            parts.append((self._written, i, "text"))
            self.sent.append(HEDGE + level if i > 0 else "text")
        for i in range(1, menu.n_chunks):
            self._written += int(menu.nbytes[level][i])
            self._kv_written += int(menu.nbytes[level][i])
            parts.append((self._written, i, "kv"))
        self._parts.extend(parts)
        self._next_chunk = menu.n_chunks
        self.throughput_est_bps.extend([None] * menu.n_chunks)
        self.data.write(self._written)

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
        hedged = option.startswith(HEDGE)
        kv = option[len(HEDGE):] if hedged else (None if option == "text" else option)
        if (kv is not None and kv not in menu.nbytes) or ((hedged or kv is None) and "text" not in menu.nbytes):
            raise ValueError(f"controller {self.scheme!r} chose {option!r}; options: {menu.options}")
        self.sent.append(option)
        self.throughput_est_bps.append(thr)
        nbytes = self._write(i, hedged or kv is None, kv)
        # The sender's estimate of the receiver's compute queue (for the text decision).
        est_thr = thr or getattr(self.controller, "prior_bps", None) or 1e7
        arrive_est = now_s + (queued + nbytes) * 8.0 / est_thr
        self._gpu_est_s = max(self._gpu_est_s, arrive_est) + menu.gpu_s[kv or "text"][i]
        self._next_chunk += 1
        self.data.write(nbytes)

    def _on_ack(self, sample: Any) -> None:
        if not sample.app_limited:   # an app-limited sender measures its own pauses, not the path
            self._samples.append((sample.now_s, sample.delivered_bytes))
            if self._first_sample is None:
                self._first_sample = (sample.now_s, sample.delivered_bytes)
        if self._next_chunk < self.menu.n_chunks and self.data.unsent_bytes == 0:
            self._send_next(sample.now_s)

    # -- client -------------------------------------------------------------------------------------------------

    def _on_data(self, total: int, now_s: float) -> None:
        parts = self._parts
        while parts and total >= parts[0][0]:
            _, chunk, kind = parts.popleft()
            (self._text_at if kind == "text" else self._kv_at)[chunk] = now_s
        self._process(now_s)
        self._finish(now_s)

    def _finish(self, now_s: float) -> None:
        if self._arrived == self.menu.n_chunks and not self._done:
            self.fetch_s = max(self.arrived_s)
            self.ttft_s = self.processed_s[-1] + self.menu.query_prefill_s
            self._done = True
            self._remember(now_s)

    def _wake(self, _: Any = None) -> None:
        self._process(self.sim.now_s)
        self._finish(self.sim.now_s)

    def _process(self, now_s: float) -> None:
        """The receiver's compute queue: one processor, chunks in order. A chunk sent as KV alone waits for its KV,
        one sent as text is recomputed; one sent as both is decoded if its KV is there when the processor gets to
        it, else recomputed from its text (no waiting: never later than recompute)."""
        menu = self.menu
        while self._arrived < len(self._plan):
            i = self._arrived
            has_text, kv = self._plan[i]
            text_at, kv_at = self._text_at.get(i), self._kv_at.get(i)
            if not has_text:
                if kv_at is None:
                    break
                option, got, begin = kv, kv_at, max(self._gpu_free_s, kv_at)
            else:
                if text_at is None:
                    break
                begin = max(self._gpu_free_s, text_at)
                if kv is not None and kv_at is not None and kv_at <= begin:
                    option, got = kv, kv_at
                elif kv is None or now_s >= begin:   # the KV, if any, arrives after the processor is free
                    option, got = "text", text_at
                else:                               # the KV may still arrive before the processor is free:
                    if self._wake_at != begin:      # look again then, even if no data comes (an outage)
                        self._wake_at = begin
                        self.sim.call_at(max(begin, self.sim.now_s), self._wake)
                    break
            self.choices.append(option)
            self.arrived_s.append(got - self.start_s)
            self._gpu_free_s = begin + menu.gpu_s[option][i]
            self.processed_s.append(self._gpu_free_s - self.start_s)
            self._arrived += 1

    def _remember(self, now_s: float) -> None:
        """Teach the connection's memory this fetch's delivery rate (first to last ACK not limited by the sender),
        if any KV was sent: a fetch of text alone is a few kB, whose rate says nothing about the path."""
        if self._kv_written == 0 or self._first_sample is None:
            return
        (t0, b0), (t1, b1) = self._first_sample, self._samples[-1]
        if t1 - t0 > 1e-4 and b1 > b0:
            self.measured_bps = (b1 - b0) * 8.0 / (t1 - t0)
            self.memory.update(self.measured_bps, now_s)

    # -- contract -----------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    @property
    def sent_bytes(self) -> int:
        """Bytes written to the data stream (a hedged request counts the KV it did not use)."""
        return int(self.data.written_bytes) if self.data is not None else 0

    def result(self) -> dict[str, Any]:
        return {
            "ttft_s": finite_or_nan(self.ttft_s),
            "fetch_s": finite_or_nan(self.fetch_s),
            "sent_bytes": self.sent_bytes,
            "chunks": len(self.choices),
            "slo_met": float(self.ttft_s <= self.config.slo_s) if self._done else math.nan,
            "choices": ",".join(self.choices),
            "measured_bps": finite_or_nan(self.measured_bps),
        }


def install(ctx: InstallContext) -> KVFetch:
    return KVFetch(ctx)
