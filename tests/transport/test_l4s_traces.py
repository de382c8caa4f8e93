"""Prague over real cellular traces with the recommended low-rate DualPI2 (``DualPI2Config.low_rate``).

What is pinned (20 s runs, 40 ms RTT, measured over [3 s, 20 s); docs/l4s.md has the full table of
``benchmarks/bench_l4s_traces.py``):

- one Prague flow alone gets at least 70 % of what one Cubic flow gets through a DropTail of 100 ms;
- with Prague and Cubic together, the Prague packets' (L queue) p99 queueing delay is below half of the Cubic
  packets' (C queue);
- the Linux default (1-ms time step) is the contrast: on the same LTE trace Prague gets a small fraction.
"""
from __future__ import annotations

import os

import pytest

from emu.transport.validation import trace_run

TRACES = ["mahimahi/Verizon-LTE-short.down", "nyc-cellular-2019/trace-2925703-home1"]
RUN = dict(duration_s=20.0, warmup_s=3.0)


def _trace(shared_traces, rel):
    path = os.path.join(str(shared_traces), rel)
    if not os.path.exists(path):
        pytest.skip(f"trace {path} not found")
    return path


@pytest.mark.parametrize("rel", TRACES)
def test_prague_low_rate_dualpi2_on_cellular_trace(shared_traces, rel):
    trace = _trace(shared_traces, rel)
    cubic_dt = trace_run(trace, "droptail", None, ("cubic",), **RUN)["cubic_bps"]
    alone = trace_run(trace, "dualpi2", {"preset": "low_rate"}, ("prague",), **RUN)
    assert alone["prague_bps"] >= 0.70 * cubic_dt, (alone["prague_bps"], cubic_dt)
    both = trace_run(trace, "dualpi2", {"preset": "low_rate"}, ("prague", "cubic"), **RUN)
    assert both["prague_qdelay_p99_s"] < 0.5 * both["cubic_qdelay_p99_s"], both
    assert both["prague_bps"] > 0.25 * (both["prague_bps"] + both["cubic_bps"])   # neither flow starves
    assert both["cubic_bps"] > 0.25 * (both["prague_bps"] + both["cubic_bps"])


def test_linux_time_step_starves_prague_on_bursty_lte(shared_traces):
    trace = _trace(shared_traces, TRACES[0])
    linux = trace_run(trace, "dualpi2", {"preset": "linux"}, ("prague",), **RUN)
    low = trace_run(trace, "dualpi2", {"preset": "low_rate"}, ("prague",), **RUN)
    assert linux["utilisation"] < 0.25 < 0.6 < low["utilisation"], (linux["utilisation"], low["utilisation"])
