"""TCP fidelity side by side: the validation scenarios in emu and in ns-3 (pip ``ns3``), matched settings.

    python -m venv /tmp/ns3 && /tmp/ns3/bin/pip install ns3          # once; kept apart from emu's environment
    python benchmarks/bench_ns3_validation.py --ns3-python /tmp/ns3/bin/python            # the table
    python benchmarks/bench_ns3_validation.py --ns3-python /tmp/ns3/bin/python --markdown # as in docs/l4s.md
    python benchmarks/bench_ns3_validation.py --json                                      # one object per row
    python benchmarks/bench_ns3_validation.py --ns3-python /tmp/ns3/bin/python --json \
        --only "reno, 10 Mb/s, 1 BDP, pacing off" --duration-s 12 --cwnd-log-s 11.1 11.5
                                          # ns-3's every cwnd change around one reduction

Without ``--ns3-python`` (or ``EMU_NS3_PYTHON``), or when that interpreter cannot import ns-3, the ns-3 rows
are skipped with a message and only emu's rows are printed; nothing in emu or its tests needs ns-3.

Scenarios (the ones of ``emu.transport.validation``; 1500-B packets, ACK per segment, SACK, RTO min 200 ms,
IW 10, HyStart off, classic recovery without PRR): one Reno flow (10 Mbit/s, 40 ms) and one Cubic flow
(20 Mbit/s, 40 ms) through DropTail of 1 and 0.25 BDP, pacing off and on; two Cubic flows with 20 and 80 ms RTTs
through 1 BDP (of 80 ms) of DropTail, pacing on; Prague (emu) and DCTCP (ns-3, which has no Prague) through a
queue that CE-marks every packet above a step of ``STEP_PKTS`` packets (emu: DualPI2's L queue with Linux's
``step_thresh`` in packets; ns-3: RED with ``MinTh = MaxTh``, ``QW = 1``), 50 Mbit/s, 20 ms, pacing on.
The ns-3 side is ``benchmarks/ns3_tcp_scenarios.py`` (run in ns-3's interpreter, all scenarios in one process,
concurrently with emu's runs). Columns: goodput, utilisation (whole packets), mean cwnd and mean bottleneck
queue (sampled every 10 ms), drops per window reduction, mean time between reductions (sawtooth period).
Cubic rows run in emu twice: ``emu`` with RFC 9438's continuous curve (the default) and ``emu-L`` with
``CubicConfig(target_arithmetic="linux")``, the whole-segment arithmetic of Linux and ns-3.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # this checkout's emu, not another install

from emu.transport import validation as v  # noqa: E402

STEP_PKTS = 5           # ~1.2 ms of queue at 50 Mbit/s
RTT_S = 0.040


def scenarios(duration_s: float, warmup_s: float) -> list[dict]:
    out = []
    for cc, rate in (("reno", 10e6), ("cubic", 20e6)):
        for buf in (1.0, 0.25):
            for pacing in (False, True):
                out.append({"name": f"{cc}, {rate / 1e6:g} Mb/s, {buf:g} BDP, pacing {'on' if pacing else 'off'}",
                            "kind": "single", "cc": cc, "buffer_bdp": buf,
                            "flows": [{"cc": cc, "rtt_s": RTT_S}], "rate_bps": rate, "queue": "droptail",
                            "limit_pkts": max(2, int(round(buf * v.bdp_pkts(rate, RTT_S)))), "pacing": pacing})
    out.append({"name": "2 Cubic, 20 Mb/s, RTT 20 and 80 ms, 1 BDP(80 ms), pacing on", "kind": "two",
                "flows": [{"cc": "cubic", "rtt_s": 0.020}, {"cc": "cubic", "rtt_s": 0.080}], "rate_bps": 20e6,
                "queue": "droptail", "limit_pkts": int(round(v.bdp_pkts(20e6, 0.080))), "pacing": True})
    out.append({"name": f"Prague (emu) / DCTCP (ns-3), 50 Mb/s, 20 ms, step {STEP_PKTS} pkts, pacing on",
                "kind": "step", "flows": [{"cc": "dctcp", "rtt_s": 0.020}], "rate_bps": 50e6, "queue": "step",
                "step_pkts": STEP_PKTS, "limit_pkts": 10_000, "pacing": True})
    for sc in out:
        sc.update({"duration_s": duration_s, "warmup_s": warmup_s, "seed": 1})
    return out


def run_emu(sc: dict, cubic_params: dict | None = None) -> dict:
    """One scenario in emu; ``cubic_params`` go to every Cubic flow (``{"target_arithmetic": "linux"}``)."""
    start = time.perf_counter()
    kw = {"duration_s": sc["duration_s"], "warmup_s": sc["warmup_s"], "pacing": sc["pacing"]}
    if sc["kind"] == "single":
        r = v.single_flow(sc["cc"], rate_bps=sc["rate_bps"], rtt_s=RTT_S, buffer_bdp=sc["buffer_bdp"],
                          cc_params=cubic_params if sc["cc"] == "cubic" else None, **kw)
    elif sc["kind"] == "two":
        r = v.two_flows_rtt(rate_bps=sc["rate_bps"], rtt_a_s=0.020, rtt_b_s=0.080, cubic_params=cubic_params,
                            **kw)
    else:
        r = v.prague_step(rate_bps=sc["rate_bps"], rtt_s=0.020, step_thresh_pkts=sc["step_pkts"], **kw)
    flows = [{"cc": f.cc, "goodput_bps": f.goodput_bps, "reductions": f.reductions,
              "reduction_times_s": f.reduction_times_s, "drops": f.drops, "mean_cwnd_pkts": f.mean_cwnd_pkts}
             for f in r.flows]
    return {"name": sc["name"], "flows": flows, "utilisation": r.utilisation, "mean_queue_pkts": r.mean_queue_pkts,
            "wall_s": time.perf_counter() - start}


def start_ns3(python: str, scs: list[dict]) -> subprocess.Popen:
    proc = subprocess.Popen([python, str(HERE / "ns3_tcp_scenarios.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(scs))
    proc.stdin.close()
    return proc


def finish_ns3(proc: subprocess.Popen) -> tuple[list[dict], str]:
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        tail = [line for line in err.splitlines() if line.strip() and "materialize" not in line][-5:]
        return rows, f"exit {proc.returncode}: " + " | ".join(tail)
    return rows, ""


def summarise(sim: str, sc: dict, got: dict) -> dict:
    """One table row from one simulator's raw result."""
    flows = got["flows"]
    reductions = sum(f["reductions"] for f in flows)
    drops = sum(f["drops"] for f in flows)
    periods = []
    for f in flows:
        t = f["reduction_times_s"]
        if len(t) >= 2:
            periods.append((t[-1] - t[0]) / (len(t) - 1))
    row = {"scenario": sc["name"], "sim": sim,
           **({"cwnd_log": [f.get("cwnd_log") for f in flows]} if any("cwnd_log" in f for f in flows) else {}),
           "goodput_mbps": sum(f["goodput_bps"] for f in flows) / 1e6, "utilisation": got["utilisation"],
           "mean_cwnd_pkts": sum(f["mean_cwnd_pkts"] for f in flows), "mean_queue_pkts": got["mean_queue_pkts"],
           "reductions": reductions, "drops": drops,
           "drops_per_reduction": drops / reductions if reductions else math.nan,
           "period_s": periods[0] if len(flows) == 1 and periods else math.nan}
    if len(flows) == 2:
        row["rate_ratio_short_over_long"] = flows[0]["goodput_bps"] / flows[1]["goodput_bps"]
        row["period_s_per_flow"] = periods
    return row


def fmt(x: float, spec: str) -> str:
    return "—" if x != x else format(x, spec)


def print_table(rows: list[dict], markdown: bool) -> None:
    head = ["scenario", "sim", "goodput Mb/s", "util", "mean cwnd pkts", "mean queue pkts", "reductions",
            "drops/red.", "period s"]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        print(f"{'scenario':62} {'sim':5} {'Mb/s':>7} {'util':>7} {'cwnd':>7} {'queue':>7} {'red.':>5} "
              f"{'drp/red':>7} {'period':>7}")
    for r in rows:
        cells = [r["scenario"], r["sim"], fmt(r["goodput_mbps"], ".2f"), fmt(r["utilisation"] * 100, ".1f") + "%",
                 fmt(r["mean_cwnd_pkts"], ".1f"), fmt(r["mean_queue_pkts"], ".1f"), str(r["reductions"]),
                 fmt(r["drops_per_reduction"], ".2f"), fmt(r["period_s"], ".3f")]
        if "rate_ratio_short_over_long" in r:
            cells[-1] = "rate ratio " + fmt(r["rate_ratio_short_over_long"], ".2f")
        if markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:62} {cells[1]:5} {cells[2]:>7} {cells[3]:>7} {cells[4]:>7} {cells[5]:>7} "
                  f"{cells[6]:>5} {cells[7]:>7} {cells[8]:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns3-python", default=os.environ.get("EMU_NS3_PYTHON"),
                        help="interpreter with the pip ns3 package (default: $EMU_NS3_PYTHON)")
    parser.add_argument("--duration-s", type=float, default=48.0)
    parser.add_argument("--warmup-s", type=float, default=8.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("--only", default=None, help="run only the scenarios whose name contains this text")
    parser.add_argument("--cwnd-log-s", type=float, nargs=2, default=None, metavar=("T0", "T1"),
                        help="with --json: ns-3 rows also list every cwnd change in [T0, T1) (cwnd_log)")
    args = parser.parse_args()
    scs = scenarios(args.duration_s, args.warmup_s)
    if args.only:
        scs = [sc for sc in scs if args.only in sc["name"]]
    if args.cwnd_log_s:
        for sc in scs:
            sc["cwnd_log_s"] = list(args.cwnd_log_s)
    proc = None
    note = ""
    if not args.ns3_python:
        note = "ns-3 skipped: no --ns3-python given (and EMU_NS3_PYTHON unset)"
    elif not Path(args.ns3_python).exists():
        note = f"ns-3 skipped: {args.ns3_python} not found"
    else:
        proc = start_ns3(args.ns3_python, scs)
    emu_rows = []
    for sc in scs:
        emu_rows.append(summarise("emu", sc, run_emu(sc)))
        if "cubic" in sc["name"].lower():   # also with Linux's whole-segment Cubic arithmetic
            emu_rows.append(summarise("emu-L", sc, run_emu(sc, {"target_arithmetic": "linux"})))
    ns3_rows: dict[str, dict] = {}
    if proc is not None:
        got, err = finish_ns3(proc)
        by_name = {sc["name"]: sc for sc in scs}
        ns3_rows = {g["name"]: summarise("ns-3", by_name[g["name"]], g) for g in got}
        if err:
            note = f"ns-3 failed ({args.ns3_python}): {err}"
    if note:
        print(note, file=sys.stderr)
    rows = []
    for i, r in enumerate(emu_rows):
        rows.append(r)
        last = i + 1 == len(emu_rows) or emu_rows[i + 1]["scenario"] != r["scenario"]
        if last and r["scenario"] in ns3_rows:
            rows.append(ns3_rows[r["scenario"]])
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{args.duration_s:g} s simulated, measured over [{args.warmup_s:g} s, {args.duration_s:g} s); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print_table(rows, args.markdown)


if __name__ == "__main__":
    main()
