"""KV server and client over the emulator: one context fetch, chunk by chunk, in order (no torch).

::

    client ──request (stream, 200 B)──► server
    server: on request → controller.choose(chunk 0) → write(bytes of chunk 0 at that option)
            on every ACK: when the socket has taken everything written (nothing unsent), choose and write the
            next chunk; the throughput estimate is the delivery rate over the last ``rate_window_s`` of ACKs
    client: on in-order data → each completed chunk joins the receiver's compute queue (one processor, FIFO,
            in chunk order): decode of a KV chunk, or recompute of a text chunk (which needs the chunks before it)
            TTFT = (last chunk processed) + query prefill − request time

The compute model (what the receiving GPU would spend) comes from the ``ChunkMenu``: per chunk and option,
decode or recompute seconds, and the query's prefill. Bytes on the wire are real: chunk sizes are the sizes of
the encoded chunks (headers, tables and scales included), carried by the emulator's reliable stream (Cubic).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from emu.apps.kvfetch.controller import ChunkMenu, Controller, Observation
from emu.transport.stream import open_stream

REQUEST_BYTES = 200


@dataclass
class FetchResult:
    """One fetch: what was chosen for each chunk, when it arrived and was processed, and the TTFT."""

    scheme: str
    choices: list[str] = field(default_factory=list)
    chunk_bytes: list[int] = field(default_factory=list)
    arrived_s: list[float] = field(default_factory=list)     # since the request
    processed_s: list[float] = field(default_factory=list)
    throughput_est_bps: list[Optional[float]] = field(default_factory=list)
    fetch_s: float = float("nan")          # last byte delivered
    ttft_s: float = float("nan")
    done: bool = False

    @property
    def total_bytes(self) -> int:
        return int(sum(self.chunk_bytes))


class KVFetch:
    """Server + client of one fetch on hosts ``server`` and ``client`` (request sent at ``start_s``)."""

    def __init__(self, sim: Any, server: Any, client: Any, menu: ChunkMenu, controller: Controller, *,
                 start_s: float = 0.0, rate_window_s: float = 0.25, cc: str = "cubic") -> None:
        self.sim = sim
        self.menu = menu
        self.controller = controller
        self.start_s = float(start_s)
        self.rate_window_s = rate_window_s
        self.result = FetchResult(controller.name)
        self._ends: list[int] = []           # stream offset where each chosen chunk ends
        self._next_chunk = 0
        self._samples: deque = deque()        # (time, delivered bytes) of recent ACKs
        self._gpu_free_s = 0.0                # absolute time
        self._gpu_est_s = 0.0                 # the sender's estimate of the same
        self._arrived = 0
        self.data, self._rx = open_stream(sim, server, client, cc=cc, on_data=self._on_data,
                                          on_ack_sample=self._on_ack, flow=f"kv.{controller.name}")
        self.request, _ = open_stream(sim, client, server, cc=cc, on_data=self._on_request,
                                      flow=f"kv.{controller.name}.req", start_s=self.start_s)
        self.request.write(REQUEST_BYTES)

    # -- server -------------------------------------------------------------------------------------------------

    def _on_request(self, total: int, now_s: float) -> None:
        if total >= REQUEST_BYTES and self._next_chunk == 0 and not self._ends:
            self._send_next(now_s)

    def _throughput(self, now_s: float) -> Optional[float]:
        s = self._samples
        while len(s) > 2 and s[1][0] <= now_s - self.rate_window_s:
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
            raise ValueError(f"controller {self.controller.name!r} chose {option!r}; options: {menu.options}")
        nbytes = int(menu.nbytes[option][i])
        self.result.choices.append(option)
        self.result.chunk_bytes.append(nbytes)
        self.result.throughput_est_bps.append(thr)
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
        res = self.result
        while self._arrived < len(self._ends) and total >= self._ends[self._arrived]:
            i = self._arrived
            option = res.choices[i]
            res.arrived_s.append(now_s - self.start_s)
            start = max(now_s, self._gpu_free_s)
            self._gpu_free_s = start + self.menu.gpu_s[option][i]
            res.processed_s.append(self._gpu_free_s - self.start_s)
            self._arrived += 1
        if self._arrived == self.menu.n_chunks and not res.done:
            res.fetch_s = res.arrived_s[-1]
            res.ttft_s = res.processed_s[-1] + self.menu.query_prefill_s
            res.done = True


def run_fetch(menu: ChunkMenu, controller: Controller, *, trace: Optional[str] = None, rate_bps: float = 20e6,
              rtt_s: float = 0.04, start_s: float = 0.0, seed: int = 0, horizon_s: float = 120.0,
              queue_pkts: int = 1000) -> FetchResult:
    """One fetch across server -- router -- client; the router->client link follows ``trace`` (or ``rate_bps``)."""
    from emu.net import Network
    from emu.sim import Sim

    sim = Sim(seed=seed)
    net = Network(sim)
    server, router, client = net.host("server"), net.router("router"), net.host("client")
    one_way_s = rtt_s / 2
    net.link(server, router, rate="1Gbps", delay=one_way_s / 2, queue_params={"limit_pkts": 100_000})
    qp = {"limit_pkts": queue_pkts}
    if trace is not None:
        net.link(router, client, trace=trace, reverse_rate="1Gbps", delay=one_way_s / 2, queue_params=qp)
    else:
        net.link(router, client, rate=rate_bps, delay=one_way_s / 2, queue_params=qp)
    fetch = KVFetch(sim, server, client, menu, controller, start_s=start_s)
    t = start_s + 1.0
    end = start_s + horizon_s
    while not fetch.result.done and t <= end:
        sim.run(until_s=t)
        t += 1.0
    if not fetch.result.done:
        raise RuntimeError(f"kv fetch ({controller.name}) did not finish within {horizon_s} s of simulated time")
    return fetch.result
