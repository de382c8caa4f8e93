"""Shared test helpers: capture sinks, a one-link network builder and the real-traces folder."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


class CaptureSink:
    """Keeps (time, packet) for every packet it receives."""

    def __init__(self, sim):
        self.sim = sim
        self.got = []

    def receive(self, pkt):
        self.got.append((self.sim.now_s, pkt))


def records_hash(sim) -> str:
    """sha256 over every per-packet record (delivered and dropped) of a run."""
    rec = sim.records
    h = hashlib.sha256()
    for column in (rec.d_flow, rec.d_pkt, rec.d_size, rec.d_created, rec.d_arrived, rec.d_qdelay,
                   rec.x_flow, rec.x_pkt, rec.x_time, rec.x_where, rec.x_reason):
        h.update(np.frombuffer(column, dtype=np.uint8).tobytes())
    return h.hexdigest()


@pytest.fixture
def shared_traces():
    """The real traces folder (../shared/traces beside the checkout); skips when it is absent."""
    from emu.links.tracefile import shared_traces_dir

    path = shared_traces_dir()
    if path is None:
        pytest.skip("real traces folder ../shared/traces not found beside the checkout (set EMU_TRACES_DIR)")
    return path
