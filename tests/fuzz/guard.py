"""Shared pieces of the fuzz suite: a wall-clock guard against hangs and a snapshot of a folder tree."""
from __future__ import annotations

import contextlib
import signal
from pathlib import Path

HANG_LIMIT_S = 20  # an input that takes longer than this to be refused counts as a hang


class Hang(AssertionError):
    pass


@contextlib.contextmanager
def no_hang(what: str, limit_s: int = HANG_LIMIT_S):
    """Fail (not wait forever) when the body runs past ``limit_s``: a bound on hangs, not a timing assertion."""
    def expired(*_):
        raise Hang(f"{what}: still running after {limit_s} s (a hang)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit_s)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (what a command wrote or deleted shows as a difference)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
