"""Packet and ECN codepoints.

ECN codepoints are the two-bit IP field of RFC 3168 §5: Not-ECT 00, ECT(1) 01, ECT(0) 10, CE 11.
RFC 9331 assigns ECT(1) as the L4S identifier.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any


class ECN(IntEnum):
    """IP ECN field values (RFC 3168 §5)."""

    NOT_ECT = 0b00
    ECT1 = 0b01
    ECT0 = 0b10
    CE = 0b11

    @property
    def capable(self) -> bool:
        """True for ECT(0), ECT(1) and CE: an AQM may mark instead of drop."""
        return self is not ECN.NOT_ECT


NOT_ECT, ECT1, ECT0, CE = ECN.NOT_ECT, ECN.ECT1, ECN.ECT0, ECN.CE


class Packet:
    """One IP packet as the emulator sees it.

    Fields a transport or app uses are explicit; anything app-specific goes in ``payload``.
    ``qdelay_s`` accumulates queueing delay over every hop; ``enq_s`` is set by the queue holding it.

    A packet doubles as its own event on SimPy's heap while a link serialises or propagates it
    (``callbacks`` and ``_ok`` are what ``simpy.Environment.step`` reads), so the datapath allocates no event
    objects. A packet is in at most one such event at a time.
    """

    __slots__ = (
        "pkt_id", "flow_id", "src", "dst", "sport", "dport", "size_bytes", "created_s",
        "ecn", "seq", "kind", "payload", "enq_s", "qdelay_s", "sent_s", "callbacks",
    )
    _ok = True  # read by simpy.Environment.step when the packet is used as an event

    def __init__(
        self,
        pkt_id: int,
        flow_id: int,
        src: str,
        dst: str,
        size_bytes: int,
        created_s: float,
        sport: int = 0,
        dport: int = 0,
        ecn: int = NOT_ECT,
        seq: int = 0,
        kind: int = 0,
        payload: Any = None,
    ) -> None:
        self.pkt_id = pkt_id
        self.flow_id = flow_id
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.size_bytes = size_bytes
        self.created_s = created_s
        self.ecn = ecn
        self.seq = seq
        self.kind = kind
        self.payload = payload
        self.enq_s = 0.0
        self.qdelay_s = 0.0
        self.sent_s = created_s
        self.callbacks = None

    def __repr__(self) -> str:
        return (
            f"Packet(id={self.pkt_id}, flow={self.flow_id}, {self.src}:{self.sport}->{self.dst}:{self.dport}, "
            f"{self.size_bytes}B, ecn={ECN(self.ecn).name}, seq={self.seq})"
        )
