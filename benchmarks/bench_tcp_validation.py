"""TCP fidelity table: the validation scenarios of ``emu.transport.validation`` against their closed forms.

    python benchmarks/bench_tcp_validation.py            # the table (about a minute on an idle machine)
    python benchmarks/bench_tcp_validation.py --json     # one JSON object per row

Rows: lone Reno and Cubic flows through DropTail of 1 and 0.25 BDP (10 and 20 Mbit/s, 40 ms, pacing off and on),
Cubic with the RFC 9438 fractional fast-convergence test, Cubic with Linux's whole-segment arithmetic
(``target_arithmetic="linux"``), two Cubic flows with 20 and 80 ms RTTs, and Prague
through DualPI2 with a 1-ms step. Columns: utilisation, window reductions, drops per reduction, mean cycle
period and its closed form (Reno: AIMD rounds + detection + recovery round; Cubic: RFC 9438 K + the same two
rounds; see the module docstring of ``emu.transport.validation``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's emu, not another install

from emu.transport import validation as v  # noqa: E402


def rows(duration_s: float) -> list[dict]:
    out = []
    for cc, rate, buf, pacing, params in [
        ("reno", 10e6, 1.0, False, {}), ("reno", 10e6, 1.0, True, {}),
        ("reno", 10e6, 0.25, False, {}), ("reno", 10e6, 0.25, True, {}),
        ("cubic", 20e6, 1.0, False, {}), ("cubic", 20e6, 1.0, True, {}),
        ("cubic", 20e6, 0.25, False, {}),
        ("cubic", 20e6, 1.0, False, {"fast_convergence_compare": "rfc9438"}),
        ("cubic", 20e6, 1.0, False, {"target_arithmetic": "linux"}),
    ]:
        r = v.single_flow(cc, rate_bps=rate, rtt_s=0.040, buffer_bdp=buf, pacing=pacing, duration_s=duration_s,
                          warmup_s=8.0, cc_params=params)
        f = r.flows[0]
        b = round(buf * v.bdp_pkts(rate, 0.040))
        closed = (v.reno_sawtooth_period_s(rate, 0.040, b) if cc == "reno" else
                  v.cubic_period_s(rate, 0.040, b, arithmetic=params.get("target_arithmetic", "rfc9438")))
        label = cc + (" (RFC 9438 FC)" if "fast_convergence_compare" in params else
                      " (Linux arithmetic)" if "target_arithmetic" in params else "")
        out.append({"scenario": f"{label}, {rate / 1e6:g} Mb/s, {buf:g} BDP, pacing {'on' if pacing else 'off'}",
                    "utilisation": r.utilisation, "reductions": f.reductions,
                    "drops_per_reduction": f.drops_per_reduction, "period_s": f.mean_period_s,
                    "closed_form_period_s": closed, "mean_cwnd_pkts": f.mean_cwnd_pkts,
                    "mean_queue_pkts": r.mean_queue_pkts, "rto": f.rto_count})
    r = v.two_flows_rtt(duration_s=duration_s, warmup_s=8.0)
    a, b = r.flows
    out.append({"scenario": "2 Cubic, 20 Mb/s, RTT 20 and 80 ms, 1 BDP(80 ms), pacing on",
                "utilisation": r.utilisation, "reductions": a.reductions + b.reductions,
                "drops_per_reduction": (a.drops + b.drops) / max(1, a.reductions + b.reductions),
                "period_s": math.nan, "closed_form_period_s": math.nan,
                "rate_ratio_short_over_long": a.goodput_bps / b.goodput_bps,
                "mean_cwnd_pkts": a.mean_cwnd_pkts + b.mean_cwnd_pkts, "mean_queue_pkts": r.mean_queue_pkts,
                "rto": a.rto_count + b.rto_count})
    r = v.prague_step(duration_s=duration_s, warmup_s=8.0)
    f = r.flows[0]
    out.append({"scenario": "Prague, 50 Mb/s, 20 ms, DualPI2 step 1 ms, pacing on", "utilisation": r.utilisation,
                "reductions": f.reductions, "drops_per_reduction": f.drops_per_reduction, "period_s": math.nan,
                "closed_form_period_s": math.nan, "mean_cwnd_pkts": f.mean_cwnd_pkts,
                "mean_queue_pkts": r.mean_queue_pkts, "rto": f.rto_count})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration-s", type=float, default=48.0)
    args = parser.parse_args()
    table = rows(args.duration_s)
    if args.json:
        for row in table:
            print(json.dumps(row))
        return
    print(f"{'scenario':58} {'util':>6} {'red.':>5} {'drops/red':>9} {'period s':>9} {'closed s':>9} {'err':>6} "
          f"{'cwnd':>6} {'queue':>6}")
    for row in table:
        err = row["period_s"] / row["closed_form_period_s"] - 1 if row["closed_form_period_s"] == \
            row["closed_form_period_s"] else math.nan
        print(f"{row['scenario']:58} {row['utilisation'] * 100:5.1f}% {row['reductions']:5d} "
              f"{row['drops_per_reduction']:9.2f} {row['period_s']:9.3f} {row['closed_form_period_s']:9.3f} "
              f"{err * 100:5.1f}% {row['mean_cwnd_pkts']:6.1f} {row['mean_queue_pkts']:6.1f}")
        if "rate_ratio_short_over_long" in row:
            print(f"{'':58} rate ratio 20 ms / 80 ms flow: {row['rate_ratio_short_over_long']:.2f}")


if __name__ == "__main__":
    main()
