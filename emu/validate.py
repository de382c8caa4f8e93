"""One set of validators for configs, scenario files, CLI flags and the Python API (L0: stdlib only).

Each raises ``ValueError`` naming the field and the allowed range, and returns the value normalised. Booleans are
never numbers, numbers are finite unless a bound says otherwise, and integers are integers::

    check_number("rtt_s", rtt_s, lo=0, hi=10, lo_open=True)
    check_int("n_responses", n, lo=1, hi=10_000)
    check_bool("reorder", reorder)
    check_choice("queue", name, ("droptail", "codel"))
    parse_time_field("duration", "10s", lo=0, lo_open=True, hi=MAX_DURATION_S)   # strings with units, bounded

The bounds below are the documented limits of every time, rate and size a user can give (``docs/errors.md``,
"Limits"): far beyond any run that can finish, small enough that an absurd value (``1e12s``, ``inf``, a
20-digit number) is refused before any work instead of hanging or overflowing.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional

from emu.units import parse_rate_bps, parse_size_bytes, parse_time_s

MAX_DURATION_S = 1e7          # simulated seconds of one run (116 days); also any start, stop or offset
MAX_DELAY_S = 3600.0          # one-way propagation delay, jitter mean, timers given by users
MAX_RATE_BPS = 1e12           # 1 Tbit/s: link, flow and app rates
MAX_PACKET_BYTES = 65_535     # one packet (IPv4 total length, RFC 791 §3.1)
MAX_TRANSFER_BYTES = 1e12     # one transfer (a bulk flow's total, a stream's size): 1 TB
MAX_COUNT = 10_000_000        # counts given by users (packets in a queue limit, responses, frames)


def _range_text(lo: Optional[float], hi: Optional[float], lo_open: bool, hi_open: bool) -> str:
    lo_s = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    hi_s = "" if hi is None else (f"< {hi:g}" if hi_open else f"<= {hi:g}")
    return " and ".join(s for s in (lo_s, hi_s) if s) or "finite"


def check_number(field: str, value: Any, *, lo: Optional[float] = None, hi: Optional[float] = None,
                 lo_open: bool = False, hi_open: bool = False, unit: str = "") -> float:
    """A finite real number within the bounds, as float (``unit`` is shown after the range in errors)."""
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:   # an integer too large for a float
        finite = False
    if not finite:
        rng = _range_text(lo, hi, lo_open, hi_open) + (f" {unit}" if unit else "")
        raise ValueError(f"{field}: must be a finite number ({rng}), got {_shown(value)}")
    ok = (lo is None or (value > lo if lo_open else value >= lo)) and \
        (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        rng = _range_text(lo, hi, lo_open, hi_open) + (f" {unit}" if unit else "")
        raise ValueError(f"{field}: must be {rng}, got {_shown(value)}")
    return float(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_time_field(field: str, value: Any, *, lo: float = 0.0, hi: float = MAX_DURATION_S,
                     lo_open: bool = False) -> float:
    """Seconds from ``"20ms"`` or a number, within ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    return check_number(field, parse_time_s(value, field), lo=lo, hi=hi, lo_open=lo_open, unit="s")


def parse_rate_field(field: str, value: Any, *, hi: float = MAX_RATE_BPS) -> float:
    """Bits per second from ``"10Mbps"`` or a number, in ``(0, hi]``."""
    return check_number(field, parse_rate_bps(value, field), lo=0, lo_open=True, hi=hi, unit="bit/s")


def parse_size_field(field: str, value: Any, *, lo: int = 1, hi: float = MAX_PACKET_BYTES) -> int:
    """Whole bytes from ``"1500B"``, ``"10MB"`` or an integer, in ``[lo, hi]``."""
    if isinstance(value, float) and not value.is_integer() and math.isfinite(value):
        raise ValueError(f"{field}: must be a whole number of bytes, got {value!r}")
    size = parse_size_bytes(value, field)   # finite (emu.units refuses inf and NaN), rounded to whole bytes
    check_number(field, size, lo=lo, hi=hi, unit="bytes")
    return size


def check_int(field: str, value: Any, *, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """An integer (not a bool, not a float) within the bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: must be an integer ({_range_text(lo, hi, False, False)}), got {_shown(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{field}: must be an integer {_range_text(lo, hi, False, False)}, got {_shown(value)}")
    return int(value)


def check_optional_number(field: str, value: Any, **bounds: Any) -> Optional[float]:
    return None if value is None else check_number(field, value, **bounds)


def check_bool(field: str, value: Any) -> bool:
    """``True`` or ``False`` exactly (a string such as "no" is refused, not read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{field}: must be true or false, got {value!r}")
    return value


def check_str(field: str, value: Any, *, what: str = "a non-empty string") -> str:
    """A non-empty string (names, paths): ``name = 7`` or ``from = 5`` is refused, not converted."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: must be {what}, got {_shown(value)}")
    return value


def check_table(field: str, value: Any) -> dict:
    """A table (dict) of parameters: ``queue_params = "fast"`` is refused with the field's name."""
    if not isinstance(value, dict):
        raise ValueError(f"{field}: must be a table of parameters (e.g. {{limit_pkts = 100}}), got {_shown(value)}")
    return value


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{field}: unknown {value!r}; valid: {', '.join(options)}")
    return value
