"""Helpers shared by the queue tests: packets with literal fields and the counter-conservation check."""
from __future__ import annotations

from emu.packet import NOT_ECT, Packet


def pkt(i: int, size: int = 1500, ecn: int = NOT_ECT, flow: int = 0) -> Packet:
    return Packet(i, flow, "a", "b", size, 0.0, ecn=ecn)


def assert_conserved(q) -> None:
    """arrived = enqueued + dropped at enqueue; enqueued = dequeued + dropped in queue + still queued."""
    st = q.stats
    assert st.arrived_pkts == st.enqueued_pkts + st.dropped_at_enqueue_pkts
    assert st.enqueued_pkts == st.dequeued_pkts + st.dropped_in_queue_pkts + q.len_pkts
