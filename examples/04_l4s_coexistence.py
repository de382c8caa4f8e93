"""Covers: DualPI2 (RFC 9332), Prague and Cubic over the reliable stream, queue-delay plot.

Scenario: one Prague and one Cubic bulk flow share a 100 Mbit/s DualPI2 bottleneck with a 20 ms base RTT.
Prints the L-queue p99 sojourn, the C-queue mean sojourn and the throughput ratio, and plots both queues'
delay over time.

    python examples/04_l4s_coexistence.py         # figure in runs/l4s/queue_delay.png
"""
from __future__ import annotations

from pathlib import Path

from emu.experiments import l4s_coexistence, plot_queue_delays


def main(seed: int = 1, duration_s: float = 10.0, preset: str = "rfc9332", out_dir: str | None = "runs/l4s") -> dict:
    result = l4s_coexistence(duration_s=duration_s, warmup_s=min(3.0, duration_s / 2), preset=preset, seed=seed)
    print(f"L queue (Prague) sojourn p99 : {result['l_sojourn_p99_s'] * 1e3:7.3f} ms")
    print(f"C queue (Cubic) sojourn mean : {result['c_sojourn_mean_s'] * 1e3:7.3f} ms")
    print(f"throughput Prague / Cubic    : {result['throughput_ratio']:7.2f} "
          f"({result['l_bps'] / 1e6:.1f} / {result['c_bps'] / 1e6:.1f} Mbit/s)")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        plot_queue_delays(result["sim"], Path(out_dir) / "queue_delay.png")
        print(f"figure in {out_dir}/queue_delay.png")
    return result


if __name__ == "__main__":
    main()
