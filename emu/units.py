"""Units: SI inside (seconds, bytes, bits per second); strings are parsed only at the boundaries.

Write ``15 * MS`` or ``100 * MBPS`` in code; parse ``"20ms"`` or ``"10Mbps"`` once, where a user typed it.
"""
from __future__ import annotations

import math
import re

S = 1.0
MS = 1e-3
US = 1e-6
NS = 1e-9

BPS = 1.0
KBPS = 1e3
MBPS = 1e6
GBPS = 1e9

BYTE = 1
KB = 1000
MB = 1000 * 1000
KIB = 1024
MIB = 1024 * 1024

_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"

_TIME_UNITS = {"": S, "s": S, "sec": S, "ms": MS, "us": US, "µs": US, "ns": NS, "min": 60.0}
_RATE_UNITS = {
    "": BPS, "bps": BPS, "kbps": KBPS, "mbps": MBPS, "gbps": GBPS,
    "bit/s": BPS, "kbit/s": KBPS, "mbit/s": MBPS, "gbit/s": GBPS,
}
_SIZE_UNITS = {"": BYTE, "b": BYTE, "kb": KB, "mb": MB, "kib": KIB, "mib": MIB}


def _parse(value: object, units: dict[str, float], field: str, kind: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a {kind}, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:   # an integer beyond any float
            raise ValueError(f"{field}: expected a finite {kind}, got a {len(str(value))}-digit number") from None
    elif not isinstance(value, str):
        raise ValueError(f"{field}: expected a {kind} (number or string), got {type(value).__name__}")
    else:
        match = re.fullmatch(_NUMBER + r"([a-zA-Zµ/]*)\s*", value)
        if match is None or match.group(2).lower() not in units:
            raise ValueError(
                f"{field}: cannot parse {value[:60]!r} as a {kind}; units allowed: "
                + ", ".join(sorted(u for u in units if u))
            )
        number = float(match.group(1)) * units[match.group(2).lower()]
    if not math.isfinite(number):
        raise ValueError(f"{field}: expected a finite {kind}, got {value!r}")
    return number


def parse_time_s(value: object, field: str = "time") -> float:
    """Parse ``"20ms"``, ``"1.5s"``, ``"250us"`` or a bare number of seconds."""
    return _parse(value, _TIME_UNITS, field, "duration")


def parse_rate_bps(value: object, field: str = "rate") -> float:
    """Parse ``"10Mbps"``, ``"1.5Gbps"``, ``"800kbit/s"`` or a bare number of bits per second."""
    return _parse(value, _RATE_UNITS, field, "rate")


def parse_size_bytes(value: object, field: str = "size") -> int:
    """Parse ``"1500B"``, ``"64KB"``, ``"1MiB"`` or a bare number of bytes."""
    return int(round(_parse(value, _SIZE_UNITS, field, "size")))
