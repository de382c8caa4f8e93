"""DropTail: a FIFO that drops arrivals once a packet or byte limit is reached."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emu.packet import Packet
from emu.queues.base import OVERFLOW, FifoQueue
from emu.validate import MAX_COUNT, MAX_TRANSFER_BYTES, check_int


@dataclass(frozen=True, kw_only=True)
class DropTailConfig:
    """Limits of a DropTail queue; exactly the packets (or bytes) the limit names fit, never one fewer.

    ``limit_pkts`` and ``limit_bytes`` may both be set; a packet is admitted only if it fits both. None means no
    limit on that dimension (both None: an infinite queue).
    """

    limit_pkts: Optional[int] = 1000  # Linux pfifo default txqueuelen
    limit_bytes: Optional[int] = None

    def __post_init__(self) -> None:
        if self.limit_pkts is not None:
            check_int("limit_pkts (or None: no limit)", self.limit_pkts, lo=1, hi=MAX_COUNT)
        if self.limit_bytes is not None:
            check_int("limit_bytes (or None: no limit)", self.limit_bytes, lo=1, hi=int(MAX_TRANSFER_BYTES))


class DropTailQueue(FifoQueue):
    """Tail-drop FIFO. ``DropTailQueue(limit_pkts=100)`` or ``DropTailQueue(DropTailConfig(...))``."""

    kind = "droptail"
    config_class = DropTailConfig

    def __init__(self, config: Optional[DropTailConfig] = None, **kwargs) -> None:
        super().__init__()
        self.config = config if config is not None else DropTailConfig(**kwargs)
        big = 1 << 62
        self._limit_pkts = self.config.limit_pkts if self.config.limit_pkts is not None else big
        self._limit_bytes = self.config.limit_bytes if self.config.limit_bytes is not None else big

    # enqueue/dequeue inline the FifoQueue helpers: they are the hot path of every plain link.
    def enqueue(self, pkt: Packet, now_s: float) -> bool:
        st = self.stats
        st.arrived_pkts += 1
        st.ecn_arrived[pkt.ecn] += 1
        size = pkt.size_bytes
        if self.len_pkts >= self._limit_pkts or self.len_bytes + size > self._limit_bytes:
            return self._drop_at_enqueue(pkt, OVERFLOW, now_s)
        pkt.enq_s = now_s
        self._fifo.append(pkt)
        self.len_pkts += 1
        self.len_bytes += size
        st.enqueued_pkts += 1
        st.enqueued_bytes += size
        return True

    def dequeue(self, now_s: float) -> Optional[Packet]:
        if not self._fifo:
            return None
        pkt = self._fifo.popleft()
        size = pkt.size_bytes
        self.len_pkts -= 1
        self.len_bytes -= size
        pkt.qdelay_s += now_s - pkt.enq_s
        st = self.stats
        st.dequeued_pkts += 1
        st.dequeued_bytes += size
        return pkt
