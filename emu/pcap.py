"""Packet capture to standard pcap files (tcpdump, Wireshark, scapy): ``net.capture(link, path)``.

A ``LinkCapture`` taps one link at one point and streams each packet it sees to a libpcap file (the classic
format of https://www.tcpdump.org/manpages/pcap-savefile.5.html, nanosecond timestamps, link type
``LINKTYPE_RAW`` = 101: every record starts with an IPv4 header). What a record holds:

- **IPv4 header** (RFC 791): synthetic addresses, one per host (``10.0.0.1`` for the network's first host, in the
  order hosts were added; ``capture.addresses`` maps names to addresses); total length = the packet's
  ``size_bytes`` (or its synthesised headers, if those are longer); identification = ``pkt_id mod 2^16``;
  DF set; TTL 64; the ECN field (RFC 3168 §5) = the packet's codepoint *at that point* (CE once a queue marked
  it); DSCP 0; a valid header checksum.
- **TCP** (RFC 9293) for the reliable stream (``emu.transport.stream``): ports; data segments carry
  ``seq = segment number x MSS`` (exact while writes are whole segments, as for bulk senders) and flags ACK;
  ACKs carry ``ack = next expected segment x MSS``, their SACK blocks (RFC 2018) in bytes, and both carry the
  timestamps option (RFC 7323: TSval = the send time in ms, TSecr on ACKs = the echoed data send time); window
  65535; a valid checksum. ECN feedback flags (ECE/CWR/AccECN) are not encoded.
- **UDP** (RFC 768) for everything else (open-loop traffic, datagrams, real-time media and feedback): ports,
  length, a valid checksum.
- **Payload**: zeros, up to the snap length (``snaplen``; the record's original length is the packet size).
- **Timestamp**: simulated time (the run starts at the epoch, 1970-01-01 00:00:00).

Points: ``"egress"`` records a packet when the link takes it from its queue to serialise it (after AQM marking;
packets the link's loss stage drops later are still recorded, as tcpdump on a sending interface would);
``"ingress"`` records it when it arrives at the link, before the queue (so packets the queue drops are included).

The tap wraps the link's ``receive`` (ingress) or its queue's ``dequeue`` (egress) on that one object: links without
a capture run exactly the code they run without this module. Records are written through a 64 KiB buffer, so
memory stays constant however long the run; ``close()`` (or leaving a ``with`` block, or the end of
``Scenario.run``) flushes and closes the file.
"""
from __future__ import annotations

import os
import struct
import weakref
from pathlib import Path
from typing import Any, Callable, Optional, Union

from emu.packet import Packet
from emu.transport.samples import KIND_ACK, KIND_DATA
from emu.validate import check_choice, check_int

LINKTYPE_RAW = 101            # tcpdump.org link-layer header types: raw IPv4/IPv6
PCAP_MAGIC_NS = 0xA1B23C4D    # pcap-savefile(5): nanosecond-resolution timestamps
PCAP_VERSION = (2, 4)
DEFAULT_SNAPLEN_BYTES = 128   # every synthesised header (IPv4 20 + TCP 20 + options <= 40) plus some zeros
MAX_SNAPLEN_BYTES = 262_144   # tcpdump's default and maximum
POINTS = ("egress", "ingress")
BUFFER_BYTES = 1 << 16

PROTO_TCP, PROTO_UDP = 6, 17
TCP_ACK = 0x10
TCP_WINDOW = 65535
_MOD32 = 1 << 32

_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_RECORD = struct.Struct("<IIII")


def _checksum(data: bytes, start: int = 0) -> int:
    """RFC 1071 Internet checksum of ``data`` (zero-padded to even length), plus ``start`` (a partial sum)."""
    if len(data) % 2:
        data += b"\0"
    total = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class PcapWriter:
    """A streaming libpcap file: a global header, then ``write(t_s, data, orig_len)`` per packet."""

    def __init__(self, path: Union[str, os.PathLike], snaplen_bytes: int = DEFAULT_SNAPLEN_BYTES,
                 linktype: int = LINKTYPE_RAW) -> None:
        check_snaplen(snaplen_bytes)
        self.path = Path(path)
        if self.path.parent and not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path}: capture folder {self.path.parent} does not exist")
        self.snaplen_bytes = snaplen_bytes
        self._file = open(self.path, "wb", buffering=BUFFER_BYTES)
        major, minor = PCAP_VERSION
        self._file.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, major, minor, 0, 0, snaplen_bytes, linktype))
        self.packets = 0

    def write(self, t_s: float, data: bytes, orig_len: int) -> None:
        """One record at simulated time ``t_s``: ``data`` cut (or zero-filled) to ``min(orig_len, snaplen)``."""
        sec = int(t_s)
        nsec = int(round((t_s - sec) * 1e9))
        if nsec >= 1_000_000_000:
            sec, nsec = sec + 1, nsec - 1_000_000_000
        incl = min(orig_len, self.snaplen_bytes)
        data = data[:incl] if len(data) >= incl else data + bytes(incl - len(data))
        self._file.write(_RECORD.pack(sec, nsec, len(data), orig_len))
        self._file.write(data)
        self.packets += 1

    @property
    def closed(self) -> bool:
        return self._file.closed

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def check_snaplen(snaplen_bytes: Any) -> int:
    return check_int("snaplen", snaplen_bytes, lo=1, hi=MAX_SNAPLEN_BYTES)


def check_point(point: Any) -> str:
    return check_choice("point", point, POINTS)


class PacketEncoder:
    """Synthesises the IPv4 + TCP/UDP bytes of an emulated packet (see the module docstring)."""

    def __init__(self, network: Any) -> None:
        self.network = network
        self.addresses: dict[str, str] = {}
        self._packed: dict[str, bytes] = {}
        self._mss: dict[tuple[str, int], int] = {}

    def address(self, host: str) -> bytes:
        packed = self._packed.get(host)
        if packed is None:
            names = [n for n, node in self.network.nodes.items() if hasattr(node, "ports")]
            names += [n for n in self.addresses if n not in names]
            if host not in names:
                names.append(host)
            for i, name in enumerate(names):
                if name not in self._packed:
                    index = i + 1
                    if index >= 1 << 24:
                        raise ValueError("capture: more than 2^24 - 2 hosts do not fit in 10.0.0.0/8")
                    self._packed[name] = bytes((10, index >> 16 & 255, index >> 8 & 255, index & 255))
                    self.addresses[name] = ".".join(map(str, self._packed[name]))
            packed = self._packed[host]
        return packed

    def _mss_of(self, host: str, port: int, fallback: int) -> int:
        """The MSS of the stream sender bound at ``host:port`` (its ACK port), else ``fallback``."""
        key = (host, port)
        mss = self._mss.get(key)
        if mss is None:
            node = self.network.nodes.get(host)
            bound = getattr(node, "ports", {}).get(port)
            config = getattr(bound, "config", None)
            mss = getattr(config, "mss_bytes", None)
            if not isinstance(mss, int):
                return fallback
            self._mss[key] = mss
        return mss

    def encode(self, pkt: Packet, t_s: float) -> tuple[bytes, int]:
        """``(bytes, wire length)``: headers then zeros up to the packet size (the writer cuts at the snap length)."""
        src, dst = self.address(pkt.src), self.address(pkt.dst)
        kind = pkt.kind
        if kind == KIND_DATA or kind == KIND_ACK:
            proto = PROTO_TCP
            header = self._tcp(pkt, t_s)
        else:
            proto = PROTO_UDP
            header = None
        l4_len_min = len(header) if header is not None else _UDP.size
        total = max(int(pkt.size_bytes), _IP.size + l4_len_min)
        l4_len = total - _IP.size
        pseudo = sum(struct.unpack("!4H", src + dst)) + proto + l4_len
        if header is None:
            udp = _UDP.pack(pkt.sport & 0xFFFF, pkt.dport & 0xFFFF, l4_len & 0xFFFF, 0)
            csum = _checksum(udp, pseudo) or 0xFFFF  # RFC 768: a computed 0 is sent as all ones
            header = udp[:6] + struct.pack("!H", csum)
        else:
            csum = _checksum(header, pseudo)
            header = header[:16] + struct.pack("!H", csum) + header[18:]
        ip = _IP.pack(0x45, pkt.ecn & 3, total & 0xFFFF, pkt.pkt_id & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return ip + header, total

    def _tcp(self, pkt: Packet, t_s: float) -> bytes:
        """TCP header with timestamps (and SACK on ACKs), checksum field zero."""
        if pkt.kind == KIND_DATA:
            payload = pkt.payload if isinstance(pkt.payload, int) else 0
            mss = self._mss_of(pkt.src, pkt.sport, payload or 1)
            seq, ack = pkt.seq * mss % _MOD32, 0
            options = struct.pack("!BBBBII", 1, 1, 8, 10, int(pkt.created_s * 1000) % _MOD32, 0)
        else:
            info = pkt.payload
            mss = self._mss_of(pkt.dst, pkt.dport, 1)
            cum = getattr(info, "cum", pkt.seq)
            seq, ack = 0, cum * mss % _MOD32
            ts_echo = getattr(info, "ts_echo", 0.0)
            options = struct.pack("!BBBBII", 1, 1, 8, 10, int(t_s * 1000) % _MOD32, int(ts_echo * 1000) % _MOD32)
            sacks = tuple(getattr(info, "sacks", ()))[:3]  # 3 blocks fit beside the timestamps (RFC 2018 §3)
            if sacks:
                options += struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(sacks))
                for start, end in sacks:
                    options += struct.pack("!II", start * mss % _MOD32, end * mss % _MOD32)
        offset_words = (20 + len(options)) // 4
        return _TCP.pack(pkt.sport & 0xFFFF, pkt.dport & 0xFFFF, seq, ack, offset_words << 4, TCP_ACK, TCP_WINDOW,
                         0, 0) + options


class LinkCapture:
    """Writes every packet seen at ``point`` of ``link`` to a pcap file at ``path``; see the module docstring.

    Usually made by ``Network.capture``. ``packets`` counts records written; ``addresses`` maps host names to
    their synthetic IPv4 addresses. Use as a context manager, or call ``close()`` after the run.
    """

    def __init__(self, network: Any, link: Any, path: Union[str, os.PathLike], *, point: str = "egress",
                 snaplen: int = DEFAULT_SNAPLEN_BYTES) -> None:
        check_point(point)
        check_snaplen(snaplen)
        if point == "ingress" and network.sim.now_s > 0:
            raise ValueError(f"capture {link.name!r}: an ingress capture must be set up before the run starts "
                             "(senders keep a direct reference to their first link once they have sent)")
        self.network = network
        self.link = link
        self.point = point
        self.path = Path(path)
        self.encoder = PacketEncoder(network)
        self.writer = PcapWriter(self.path, snaplen)
        self._env = network.sim.env
        self._active = True
        self._target, self._attr, self._hook = self._install()
        self._finalizer = weakref.finalize(self, PcapWriter.close, self.writer)

    @property
    def addresses(self) -> dict[str, str]:
        """Host name -> synthetic IPv4 address, for every host of the network."""
        for name, node in self.network.nodes.items():
            if hasattr(node, "ports"):
                self.encoder.address(name)
        return dict(self.encoder.addresses)

    @property
    def packets(self) -> int:
        return self.writer.packets

    def _record(self, pkt: Packet) -> None:
        t_s = self._env._now
        data, wire = self.encoder.encode(pkt, t_s)
        self.writer.write(t_s, data, wire)

    def _install(self) -> tuple[Any, str, Callable]:
        record = self._record
        me = self
        if self.point == "egress":
            target, attr = self.link.queue, "dequeue"
            inner = target.dequeue

            def hook(now_s: float) -> Optional[Packet]:
                pkt = inner(now_s)
                if pkt is not None and me._active:
                    record(pkt)
                return pkt
        else:
            target, attr = self.link, "receive"
            inner = target.receive

            def hook(pkt: Packet) -> None:
                if me._active:
                    record(pkt)
                inner(pkt)
        hook.emu_capture_inner = inner  # type: ignore[attr-defined]
        setattr(target, attr, hook)
        return target, attr, hook

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Stop recording, flush and close the file; the link is unhooked when this is its latest capture."""
        if not self._active:
            return
        self._active = False
        if self._target.__dict__.get(self._attr) is self._hook:
            inner = self._hook.emu_capture_inner
            if getattr(inner, "__self__", None) is self._target and not hasattr(inner, "emu_capture_inner"):
                del self._target.__dict__[self._attr]  # back to the class's own method
            else:
                setattr(self._target, self._attr, inner)
        self.writer.close()

    def __enter__(self) -> "LinkCapture":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LinkCapture({self.link.name!r}, {str(self.path)!r}, point={self.point!r}, packets={self.packets})"


def default_file_name(link_name: str, point: str) -> str:
    """``left->right`` at egress -> ``left-right.egress.pcap``."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", link_name.replace("->", "-")) + f".{point}.pcap"
