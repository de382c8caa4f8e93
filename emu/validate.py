"""One set of validators for configs, scenario files, CLI flags and the Python API (L0: stdlib only).

Each raises ``ValueError`` naming the field and the allowed range, and returns the value normalised. Booleans are
never numbers, numbers are finite unless a bound says otherwise, and integers are integers::

    check_number("rtt_s", rtt_s, lo=0, hi=10, lo_open=True)
    check_int("n_responses", n, lo=1, hi=10_000)
    check_bool("reorder", reorder)
    check_choice("queue", name, ("droptail", "codel"))
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional


def _range_text(lo: Optional[float], hi: Optional[float], lo_open: bool, hi_open: bool) -> str:
    lo_s = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    hi_s = "" if hi is None else (f"< {hi:g}" if hi_open else f"<= {hi:g}")
    return " and ".join(s for s in (lo_s, hi_s) if s) or "finite"


def check_number(field: str, value: Any, *, lo: Optional[float] = None, hi: Optional[float] = None,
                 lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number within the bounds, as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field}: must be a finite number ({_range_text(lo, hi, lo_open, hi_open)}), "
                         f"got {value!r}")
    ok = (lo is None or (value > lo if lo_open else value >= lo)) and \
        (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        raise ValueError(f"{field}: must be {_range_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return float(value)


def check_int(field: str, value: Any, *, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """An integer (not a bool, not a float) within the bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: must be an integer ({_range_text(lo, hi, False, False)}), got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{field}: must be an integer {_range_text(lo, hi, False, False)}, got {value!r}")
    return int(value)


def check_optional_number(field: str, value: Any, **bounds: Any) -> Optional[float]:
    return None if value is None else check_number(field, value, **bounds)


def check_bool(field: str, value: Any) -> bool:
    """``True`` or ``False`` exactly (a string such as "no" is refused, not read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{field}: must be true or false, got {value!r}")
    return value


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{field}: unknown {value!r}; valid: {', '.join(options)}")
    return value
