"""Names every sweep module shares: the error type, a parameter point's identity, timestamps."""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any


class SweepError(ValueError):
    """A sweep that cannot run; the message names the file, the key or the grid point."""


def canonical(value: Any) -> str:
    """Stable JSON of a parameter dict (sorted keys, no spaces): the identity of a grid point."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
