"""Three ways to stream an LLM's responses from a server host to a client host (one transport per endpoint).

All three share the token framing (1 length byte + the token's UTF-8 bytes) and the client's rendering rule:
the screen shows the longest contiguous prefix of tokens received so far (``Renderer``). A transport streams one
response at a time: ``begin(index, timeline, renderer)`` schedules the tokens of response ``index`` (absolute
generation times) and the client side calls ``renderer.got`` as tokens arrive. Flows are named from the endpoint
(``flow`` for data, ``flow + ".ack"`` for ACKs), so two endpoints coexist on one network.

- ``stream``: tokens are written into the reliable, in-order byte stream (``emu.transport.stream``, Cubic),
  as chat services stream over TCP/HTTP; one connection carries every response of the endpoint. A token renders
  once every byte up to its end has arrived in order.
- ``duplicate``: each token goes in its own UDP packet, sent twice, the copy ``dup_spacing_s`` after the
  original (10 ms by default, so one short loss burst does not take both). Fallback: the client ACKs the
  highest contiguous token index; the third ACK without progress resends the first missing token (fast
  retransmit, RFC 5681 §3.2 style), and tokens still unacknowledged when the RTO (RFC 6298, min 200 ms,
  restarted only when new tokens are acknowledged) expires are sent again; every resend is duplicated too.
- ``chatterbox``: over UDP each packet carries the new token plus every token not yet acknowledged, oldest
  first; when they exceed one MTU the oldest ones fill the packet (so the renderable prefix always advances) and
  the newest wait for the next packet. The client renders on every packet and ACKs its highest contiguous index
  (cumulative ACK: our choice, the paper does not give the ACK format). After the last token, a timer (the same
  RTO) resends what is unacknowledged, so a tail loss is recovered.

UDP packets carry the response index; packets and ACKs of an earlier response (a late copy) are ignored.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from emu.apps.chatterbox.tokens import TokenTimeline
from emu.transport.rtt import RtoEstimator
from emu.transport.timer import LazyTimer
from emu.transport.udp import UdpSocket

UDP_IP_HEADER_BYTES = 28
APP_HEADER_BYTES = 8        # first token index (4 B), token count (2 B), flags (2 B)
ACK_BYTES = UDP_IP_HEADER_BYTES + APP_HEADER_BYTES
MTU_BYTES = 1500
SCHEMES = ("stream", "duplicate", "chatterbox")


def token_bytes(token: str) -> int:
    """Bytes a token takes in any scheme's payload: one length byte plus its UTF-8 encoding."""
    return 1 + len(token.encode("utf-8"))


class Renderer:
    """Client side: records when each token first becomes part of the contiguous rendered prefix.

    ``on_complete(now_s)`` (optional) is called once, when the last token joins the prefix."""

    def __init__(self, timeline: TokenTimeline, on_complete: Optional[Callable[[float], None]] = None) -> None:
        self.tokens = timeline.tokens
        self.have = np.zeros(len(timeline), dtype=bool)
        self.rendered_s = np.full(len(timeline), np.nan)
        self.prefix = 0  # tokens [0, prefix) are on screen
        self.on_complete = on_complete

    def got(self, index: int, now_s: float) -> None:
        if self.have[index]:
            return
        self.have[index] = True
        n = len(self.have)
        if index != self.prefix:
            return
        while self.prefix < n and self.have[self.prefix]:
            self.rendered_s[self.prefix] = now_s
            self.prefix += 1
        if self.prefix == n and self.on_complete is not None:
            self.on_complete(now_s)

    @property
    def complete(self) -> bool:
        return self.prefix == len(self.have)

    @property
    def text(self) -> str:
        return "".join(self.tokens[: self.prefix])


class _UdpTokenScheme:
    """Shared parts of the two UDP schemes: sockets, generation schedule, ACK handling, retransmission timer."""

    def __init__(self, sim: Any, server: Any, client: Any, *, flow: str, min_rto_s: float = 0.2) -> None:
        self.sim = sim
        self.rto = RtoEstimator(min_rto_s=min_rto_s)
        self.response = -1        # the response the server streams now
        self.timeline: Optional[TokenTimeline] = None
        self.renderers: dict[int, Renderer] = {}   # client side, by response index
        self.generated = 0        # tokens [0, generated) of the current response exist at the server
        self.acked = 0            # tokens [0, acked) are acknowledged
        self.dup_acks = 0
        self.client_sock = UdpSocket(sim, client, None, flow=f"{flow}.ack", on_receive=self._client_rx)
        self.server_sock = UdpSocket(sim, server, None, flow=flow, on_receive=self._server_rx)
        self.client_name = client.name
        self.server_name = server.name
        self.timer = LazyTimer(sim, self._on_timeout)

    def begin(self, index: int, timeline: TokenTimeline, renderer: Renderer) -> None:
        """Stream response ``index``: its tokens are generated at ``timeline.times_s`` (absolute)."""
        self.response, self.timeline = index, timeline
        self.renderers[index] = renderer
        self.generated = self.acked = self.dup_acks = 0
        self.timer.cancel()
        for i, t in enumerate(timeline.times_s):
            self.sim.call_at(float(t), self._on_generated, i)

    # server -------------------------------------------------------------------------------------------------
    def _send(self, tokens: list[int]) -> None:
        size = UDP_IP_HEADER_BYTES + APP_HEADER_BYTES + sum(token_bytes(self.timeline.tokens[i]) for i in tokens)
        now = self.sim.now_s
        self.server_sock.sendto(size, self.client_name, self.client_sock.port,
                                payload=(self.response, now, tuple(tokens)))
        if not self.timer.armed:
            self.timer.set(now + self.rto.timeout_s)

    def _server_rx(self, pkt: Any, owd_s: float) -> None:
        response, cum, echo_s = pkt.payload
        if response != self.response:
            return
        now = self.sim.now_s
        self.rto.sample(now - echo_s)
        if cum > self.acked:
            self.acked = cum
            self.dup_acks = 0
            # RFC 6298 §5.3: restart the timer when new data is acknowledged (only then).
            if self.acked >= self.generated:
                self.timer.cancel()
            else:
                self.timer.set(now + self.rto.timeout_s)
        elif cum < self.generated:
            self.dup_acks += 1
            if self.dup_acks == 3:
                self._fast_retransmit(cum)

    def _on_timeout(self, now_s: float) -> None:
        if self.acked >= self.generated:
            return
        self.rto.backoff *= 2
        self._retransmit()
        self.timer.set(now_s + self.rto.timeout_s)

    # client -------------------------------------------------------------------------------------------------
    def _client_rx(self, pkt: Any, owd_s: float) -> None:
        response, sent_s, tokens = pkt.payload
        renderer = self.renderers.get(response)
        if renderer is None:
            return
        now = self.sim.now_s
        for i in tokens:
            renderer.got(i, now)
        self.client_sock.sendto(ACK_BYTES, self.server_name, self.server_sock.port,
                                payload=(response, renderer.prefix, sent_s))

    def _on_generated(self, index: int) -> None:
        raise NotImplementedError

    def _retransmit(self) -> None:
        raise NotImplementedError

    def _fast_retransmit(self, index: int) -> None:
        """Three ACKs without progress (RFC 5681 §3.2 style): resend the first missing token."""

    @property
    def wire_bytes(self) -> int:
        return self.server_sock.sent_bytes + self.client_sock.sent_bytes


class DuplicateScheme(_UdpTokenScheme):
    name = "duplicate"

    def __init__(self, *args: Any, dup_spacing_s: float = 0.010, **kwargs: Any) -> None:
        if not dup_spacing_s >= 0:
            raise ValueError(f"dup_spacing_s: must be >= 0, got {dup_spacing_s!r}")
        self.dup_spacing_s = dup_spacing_s
        super().__init__(*args, **kwargs)

    def _send_twice(self, index: int) -> None:
        self._send([index])
        self.sim.call_in(self.dup_spacing_s, self._copy, (self.response, index))

    def _copy(self, which: tuple[int, int]) -> None:
        response, index = which
        if response == self.response and index >= self.acked:
            self._send([index])

    def _on_generated(self, index: int) -> None:
        self.generated = index + 1
        self._send_twice(index)

    def _retransmit(self) -> None:
        for i in range(self.acked, self.generated):
            self._send_twice(i)

    def _fast_retransmit(self, index: int) -> None:
        self._send_twice(index)


class ChatterboxScheme(_UdpTokenScheme):
    name = "chatterbox"

    def _packets(self) -> list[list[int]]:
        """Unacknowledged tokens, oldest first, cut into MTU-sized packets."""
        budget = MTU_BYTES - UDP_IP_HEADER_BYTES - APP_HEADER_BYTES
        packets, current, used = [], [], 0
        for i in range(self.acked, self.generated):
            size = token_bytes(self.timeline.tokens[i])
            if current and used + size > budget:
                packets.append(current)
                current, used = [], 0
            current.append(i)
            used += size
        if current:
            packets.append(current)
        return packets

    def _on_generated(self, index: int) -> None:
        self.generated = index + 1
        packets = self._packets()
        if packets:
            self._send(packets[0])  # oldest first: the prefix always advances

    def _retransmit(self) -> None:
        for tokens in self._packets():
            self._send(tokens)


class StreamScheme:
    """Tokens over the reliable in-order byte stream (Cubic, SACK, RACK, RTO min 200 ms); one connection for every
    response, each written after the previous one."""

    name = "stream"

    def __init__(self, sim: Any, server: Any, client: Any, *, flow: str, min_rto_s: float = 0.2,
                 cc: str = "cubic") -> None:
        from emu.transport.stream import open_stream

        self.sim = sim
        self.renderer: Optional[Renderer] = None
        self.timeline: Optional[TokenTimeline] = None
        self.frame_end = np.zeros(0, dtype=np.int64)   # stream offset where each token of the response ends
        self.sender, self.receiver = open_stream(sim, server, client, cc=cc, on_data=self._on_data, flow=flow,
                                                 min_rto_s=min_rto_s)

    def begin(self, index: int, timeline: TokenTimeline, renderer: Renderer) -> None:
        self.timeline, self.renderer = timeline, renderer
        base = self.sender.written_bytes
        self.frame_end = base + np.cumsum([token_bytes(t) for t in timeline.tokens])
        for i, t in enumerate(timeline.times_s):
            self.sim.call_at(float(t), self._on_generated, i)

    def _on_generated(self, index: int) -> None:
        self.sender.write(token_bytes(self.timeline.tokens[index]))

    def _on_data(self, in_order_bytes: int, now_s: float) -> None:
        renderer = self.renderer
        if renderer is None:
            return
        ready = int(np.searchsorted(self.frame_end, in_order_bytes, side="right"))
        for i in range(renderer.prefix, ready):
            renderer.got(i, now_s)

    @property
    def wire_bytes(self) -> int:
        flows = self.sim.records.flows
        return flows[self.sender.flow_id].sent_bytes + flows[self.sender.ack_flow_id].sent_bytes


SCHEME_CLASSES = {"stream": StreamScheme, "duplicate": DuplicateScheme, "chatterbox": ChatterboxScheme}


def make_transport(scheme: str, sim: Any, server: Any, client: Any, *, flow: str, min_rto_s: float,
                   dup_spacing_s: float) -> Any:
    """The transport of ``scheme`` between ``server`` and ``client`` (flows ``flow`` and ``flow + ".ack"``)."""
    if scheme not in SCHEME_CLASSES:
        raise ValueError(f"scheme: unknown {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "duplicate":
        return DuplicateScheme(sim, server, client, flow=flow, min_rto_s=min_rto_s, dup_spacing_s=dup_spacing_s)
    return SCHEME_CLASSES[scheme](sim, server, client, flow=flow, min_rto_s=min_rto_s)
