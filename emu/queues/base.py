"""The one queue interface every link uses.

A queue is plain logic: ``enqueue(pkt, now_s)`` and ``dequeue(now_s)`` take the current time as an argument, so
AQMs are tested with literal times and cost no simulator events while idle. Periodic work (PIE's and DualPI2's
probability updates) is caught up exactly inside these two calls.

Counters follow ns-3's QueueDisc: every drop and mark carries a reason, and the base keeps the conservation
identity ``arrived = enqueued + dropped_at_enqueue`` and ``enqueued = dequeued + dropped_in_queue + len_pkts``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from emu.packet import CE, NOT_ECT, Packet

DropListener = Callable[[Packet, str, float], None]

# Reasons used by more than one queue.
OVERFLOW = "overflow"


@dataclass
class QueueStats:
    """Counters of one queue. Drops and marks are keyed by reason; ``ecn_arrived`` by codepoint (0..3)."""

    arrived_pkts: int = 0
    enqueued_pkts: int = 0
    enqueued_bytes: int = 0
    dequeued_pkts: int = 0
    dequeued_bytes: int = 0
    dropped_at_enqueue_pkts: int = 0
    dropped_in_queue_pkts: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    ecn_arrived: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    @property
    def dropped_pkts(self) -> int:
        return self.dropped_at_enqueue_pkts + self.dropped_in_queue_pkts

    @property
    def marked_pkts(self) -> int:
        return sum(self.marks.values())

    def as_dict(self) -> dict:
        return {
            "arrived_pkts": self.arrived_pkts,
            "enqueued_pkts": self.enqueued_pkts,
            "dequeued_pkts": self.dequeued_pkts,
            "dequeued_bytes": self.dequeued_bytes,
            "dropped_pkts": self.dropped_pkts,
            "drops": dict(self.drops),
            "marks": dict(self.marks),
            "ecn_arrived": {"not_ect": self.ecn_arrived[0], "ect1": self.ecn_arrived[1],
                            "ect0": self.ecn_arrived[2], "ce": self.ecn_arrived[3]},
        }


class Queue(ABC):
    """Abstract queue: subclasses implement ``enqueue`` and ``dequeue`` using the helpers below.

    ``on_drop`` (set by the owning link) is told of every packet the queue discards, with the reason.
    """

    kind: str = "queue"

    def __init__(self) -> None:
        self.len_pkts = 0
        self.len_bytes = 0
        self.stats = QueueStats()
        self.on_drop: Optional[DropListener] = None

    @abstractmethod
    def enqueue(self, pkt: Packet, now_s: float) -> bool:
        """Offer ``pkt`` at ``now_s``; return False if it was dropped instead of queued."""

    @abstractmethod
    def dequeue(self, now_s: float) -> Optional[Packet]:
        """Return the next packet to send at ``now_s`` (it may drop or mark on the way), or None if empty."""

    def head_size_bytes(self) -> int:
        """Size of the packet ``dequeue`` would most likely return next (0 if empty); used by trace links."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.len_pkts

    # -- helpers for subclasses -------------------------------------------------------------------------------

    def _arrive(self, pkt: Packet) -> None:
        st = self.stats
        st.arrived_pkts += 1
        st.ecn_arrived[pkt.ecn] += 1

    def _drop_at_enqueue(self, pkt: Packet, reason: str, now_s: float) -> bool:
        st = self.stats
        st.dropped_at_enqueue_pkts += 1
        st.drops[reason] = st.drops.get(reason, 0) + 1
        if self.on_drop is not None:
            self.on_drop(pkt, reason, now_s)
        return False

    def _drop_in_queue(self, pkt: Packet, reason: str, now_s: float) -> None:
        """Count a packet that had been enqueued and is now discarded (already removed from storage)."""
        st = self.stats
        st.dropped_in_queue_pkts += 1
        st.drops[reason] = st.drops.get(reason, 0) + 1
        if self.on_drop is not None:
            self.on_drop(pkt, reason, now_s)

    def _mark(self, pkt: Packet, reason: str) -> bool:
        """Set CE on an ECN-capable packet and count it; return False (nothing done) for Not-ECT."""
        if pkt.ecn == NOT_ECT:
            return False
        pkt.ecn = CE
        self.stats.marks[reason] = self.stats.marks.get(reason, 0) + 1
        return True


class FifoQueue(Queue):
    """A queue with one FIFO of packets; subclasses add admission and AQM policy."""

    def __init__(self) -> None:
        super().__init__()
        self._fifo: deque[Packet] = deque()

    def head_size_bytes(self) -> int:
        return self._fifo[0].size_bytes if self._fifo else 0

    def _push(self, pkt: Packet, now_s: float) -> bool:
        pkt.enq_s = now_s
        self._fifo.append(pkt)
        size = pkt.size_bytes
        self.len_pkts += 1
        self.len_bytes += size
        st = self.stats
        st.enqueued_pkts += 1
        st.enqueued_bytes += size
        return True

    def _pop(self) -> Optional[Packet]:
        """Remove the head from storage (no counters besides lengths); None if empty."""
        if not self._fifo:
            return None
        pkt = self._fifo.popleft()
        self.len_pkts -= 1
        self.len_bytes -= pkt.size_bytes
        return pkt

    def _depart(self, pkt: Packet, now_s: float) -> Packet:
        """Count ``pkt`` as leaving towards the link and add its sojourn to its queueing delay."""
        pkt.qdelay_s += now_s - pkt.enq_s
        st = self.stats
        st.dequeued_pkts += 1
        st.dequeued_bytes += pkt.size_bytes
        return pkt
