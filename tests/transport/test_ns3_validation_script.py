"""``benchmarks/bench_ns3_validation.py`` without ns-3: it says ns-3 was skipped and still prints emu's rows; and
the packet step of its Prague row (``validation.prague_step(step_thresh_pkts=...)``) sets where marking starts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from emu.transport import validation as v

ROOT = Path(__file__).resolve().parents[2]


def test_script_skips_ns3_with_a_message_and_prints_emu_rows(tmp_path):
    missing = tmp_path / "no-such-python"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ns3_validation.py"), "--ns3-python",
                           str(missing), "--only", "Prague", "--duration-s", "3", "--warmup-s", "1", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ns-3 skipped" in done.stderr and str(missing) in done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and '"sim": "emu"' in rows[0]


def test_prague_step_in_packets_sets_the_queue():
    shallow = v.prague_step(rate_bps=20e6, step_thresh_pkts=3, duration_s=3.0, warmup_s=1.0)
    deep = v.prague_step(rate_bps=20e6, step_thresh_pkts=30, duration_s=3.0, warmup_s=1.0)
    assert shallow.mean_queue_pkts < 6 < 20 < deep.mean_queue_pkts, (shallow.mean_queue_pkts, deep.mean_queue_pkts)
    assert shallow.utilisation > 0.9 and deep.utilisation > 0.9
