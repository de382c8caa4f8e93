"""Command line: ``emu run | eval | sweep | train | models | trace stats | plot | report``.

    emu run examples/dumbbell_codel.toml --out runs/codel      # progress bar; writes results whole or not at all
    emu trace stats mahimahi/ATT-LTE-driving.down --json    # a path, or one inside the shared traces folder
    emu trace plot mahimahi/ATT-LTE-driving.down --out att.png
    emu plot runs/codel                                        # redraw the figures from the written tables
    emu sweep examples/sweep_codel_vs_droptail.toml --out runs/aqm-sweep   # grid x seeds; resumes when rerun
    emu plot runs/aqm-sweep                                    # sweep: summary.csv, bars with 95 % CIs, CDFs
    emu report runs/aqm-sweep                                  # one self-contained HTML file: runs/aqm-sweep/report.html
    emu run examples/dumbbell_codel.toml --out runs/c --pcap 'left->right'   # + runs/c/left-right.egress.pcap
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence


def _cmd_run(args: argparse.Namespace) -> int:
    import shutil

    from emu.outputs import MARKER, check_output_dir, staging_dir
    from emu.results import check_formats
    from emu.scenario import Scenario
    from emu.units import parse_time_s
    from emu.validate import MAX_DURATION_S, parse_time_field

    scenario = Scenario.load(args.scenario)
    if args.pcap:  # one more [[capture]] table per --pcap LINK
        links = sorted(link.name for link in scenario.build()[1].links.values())
        for link in args.pcap:
            if link not in links:
                raise ValueError(f"--pcap {link!r}: unknown link; links: {', '.join(links)}")
        raw = dict(scenario.raw)
        raw["capture"] = list(raw.get("capture", [])) + [{"link": link} for link in args.pcap]
        scenario = Scenario.from_dict(raw, source=scenario.source)
    if args.duration is not None:
        scenario.duration_s = parse_time_field("--duration", args.duration, lo=0, lo_open=True, hi=MAX_DURATION_S)
    if args.timeseries is not None:
        from emu.scenario import check_timeseries

        scenario.timeseries = check_timeseries(args.timeseries, "--timeseries")
    warmup_s = parse_time_s(args.warmup, "--warmup") if args.warmup is not None else 0.0
    if not 0 <= warmup_s < scenario.duration_s:
        raise ValueError(f"--warmup: must be in [0, {scenario.duration_s:g}) s (the run's duration), got "
                         f"{args.warmup!r}")
    # everything about the output that can fail does so now, not after the simulation
    formats = check_formats(args.format, "--format")
    out = check_output_dir(args.out, replace=args.force)
    captures = None
    if scenario.raw.get("capture"):  # pcaps are written beside the results folder, then moved into it
        captures = staging_dir(out, "pcap")
    try:
        result = scenario.run(seed=args.seed, progress=not args.no_progress and sys.stderr.isatty() or args.progress,
                              capture_dir=captures)
        if warmup_s:
            result.meta["warmup_s"] = warmup_s
        result.write(out, formats=formats, plots=not args.no_plots, overwrite=args.force, warmup_s=warmup_s)
        if captures is not None:
            for path in sorted(captures.iterdir()):
                if path.name != MARKER:
                    shutil.move(str(path), str(out / path.name))
    finally:
        if captures is not None:
            shutil.rmtree(captures, ignore_errors=True)
    print(result.table(start_s=warmup_s))
    print(f"wrote {out}/ (summary.json, tables, plots)")
    for capture in result.meta.get("captures", []):
        hosts = ", ".join(f"{name}={ip}" for name, ip in capture["addresses"].items())
        print(f"capture {capture['link']} ({capture['point']}): {out / capture['file']}, {capture['packets']} packets; "
              f"hosts {hosts}")
    return 0


def _cmd_trace_stats(args: argparse.Namespace) -> int:
    from emu.links.tracefile import trace_stats

    stats = trace_stats(args.path, opportunity_bytes=args.opportunity_bytes)
    if args.json:
        print(json.dumps(stats))
    else:
        width = max(map(len, stats))
        for key, value in stats.items():
            print(f"{key:>{width}}: {value:.6g}" if isinstance(value, float) else f"{key:>{width}}: {value}")
    return 0


def _cmd_trace_plot(args: argparse.Namespace) -> int:
    from emu.links.tracefile import plot_trace
    from emu.units import parse_time_s

    out = Path(args.out) if args.out else Path(Path(args.path).name + ".png")
    print(plot_trace(args.path, out, bin_s=parse_time_s(args.bin, "--bin"), opportunity_bytes=args.opportunity_bytes))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from emu.sweep import Sweep

    sweep = Sweep.load(args.sweep, allow_code=args.allow_code, code_path=args.code_path,
                       import_code=not args.dry_run)
    if args.dry_run:  # lists the tasks; imports none of the sweep's code
        for task in sweep.tasks:
            print(task.task_id, task.seed, json.dumps(task.params))
        print(f"{len(sweep.tasks)} tasks ({len(sweep.tasks) // sweep.replicates} points x {sweep.replicates} seeds)")
        if sweep.runs_code:
            print(f"eval = {sweep.eval!r} is Python code (not imported by --dry-run); running it needs "
                  f"{'nothing more: allowed' if sweep.allow_code else 'allow_code = true in the file or --allow-code'}")
        return 0
    progress = not args.no_progress and sys.stderr.isatty() or args.progress
    try:
        result = sweep.run(args.out, backend=args.backend, workers=args.workers, address=args.address,
                           retries=args.retries, progress=progress, plots=not args.no_plots)
    except KeyboardInterrupt:
        print(f"emu: interrupted; finished tasks are kept in {args.out}/ - rerun the same command to resume",
              file=sys.stderr)
        return 130
    failed = result.failed()
    print(f"{result.n_done} of {len(sweep.tasks)} tasks done, {len(failed)} failed; wrote {args.out}/ "
          "(parts/, manifest.jsonl, summary.csv, figures)")
    for _, row in failed.head(5).iterrows():
        print(f"  failed {row['task_id']} {json.dumps(row['params'])}: {row['error']}", file=sys.stderr)
    if len(failed):
        print(f"emu: {len(failed)} task(s) failed (tracebacks in {args.out}/manifest.jsonl); rerun the same command "
              "to retry them", file=sys.stderr)
        return 1
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from emu.plots import plot_tables, read_tables, read_title
    from emu.sweep.results import is_sweep_dir, write_outputs

    if is_sweep_dir(args.dir):  # a sweep folder: summary.csv, bars with 95 % intervals and CDFs across seeds
        for path in write_outputs(args.dir, metrics=args.metric or None):
            print(path)
        return 0
    made = plot_tables(Path(args.dir), read_tables(Path(args.dir)), title=read_title(Path(args.dir)))
    for path in made:
        print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from emu.report import write_report

    print(write_report(args.dir, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emu", description="Packet-level network emulator with L4S queues.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario file and write its results directory")
    run.add_argument("scenario", help="scenario TOML file")
    run.add_argument("--out", required=True, help="results directory (written whole or not at all)")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument("--duration", default=None, help="override the scenario's duration, e.g. 5s")
    run.add_argument("--warmup", default=None,
                     help="leave the first part of the run out of the printed and written per-flow summary, "
                          "e.g. 5s (the packet tables keep everything)")
    run.add_argument("--timeseries", default=None,
                     help="record time series through trace hooks: cwnd (per stream), queue (length, DualPI2 "
                          "p', p_C, p_L), e.g. cwnd,queue (default: the scenario's timeseries key)")
    run.add_argument("--format", default="csv", help="table formats: csv, parquet or csv,parquet")
    run.add_argument("--force", action="store_true",
                     help="replace an existing results directory (only one emu wrote: it holds a .emu-results marker)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    run.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--pcap", action="append", default=[], metavar="LINK",
                     help="write a pcap of LINK (e.g. left->right, at egress) into the results folder; repeatable")
    run.set_defaults(func=_cmd_run)

    trace = sub.add_parser("trace", help="inspect trace files")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    stats = trace_sub.add_parser("stats", help="duration, mean, p5 and p95 throughput over 1-second windows, "
                                               "zero and near-zero seconds, the longest outage")
    stats.add_argument("path", help="Mahimahi trace or throughput log (a path, or one inside the shared traces "
                                    "folder)")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument("--opportunity-bytes", type=int, default=1504,
                       help="bytes per Mahimahi delivery opportunity (default 1504, as Mahimahi's link queue)")
    stats.set_defaults(func=_cmd_trace_stats)
    tplot = trace_sub.add_parser("plot", help="draw a trace's capacity over one period (PNG), outages shaded")
    tplot.add_argument("path", help="Mahimahi trace or throughput log (a path, or one inside the shared traces "
                                    "folder)")
    tplot.add_argument("--out", default=None, help="PNG file to write (default: <trace name>.png here)")
    tplot.add_argument("--bin", default="1s", help="bin width of the capacity curve (default 1s)")
    tplot.add_argument("--opportunity-bytes", type=int, default=1504,
                       help="bytes per Mahimahi delivery opportunity (default 1504, as Mahimahi's link queue)")
    tplot.set_defaults(func=_cmd_trace_plot)

    from emu.apps.eval_cli import add_eval_parsers, add_train_parsers, run_models_command

    evaluate = sub.add_parser("eval", help="evaluate an application's schemes on identical conditions")
    eval_sub = evaluate.add_subparsers(dest="app", required=True)
    add_eval_parsers(eval_sub)
    train = sub.add_parser("train", help="reproduce a committed model or data file (with its model card)")
    train_sub = train.add_subparsers(dest="model", required=True)
    add_train_parsers(train_sub)
    models = sub.add_parser("models", help="list the committed models with their cards")
    models.add_argument("--models-dir", default=None, help="a folder of <app>/ model folders (default: packaged)")
    models.add_argument("--json", action="store_true", help="print the cards as JSON")
    models.set_defaults(func=run_models_command)

    sweep = sub.add_parser("sweep", help="run a sweep file (grid x seeds) into a results folder that resumes")
    sweep.add_argument("sweep", help="sweep TOML file")
    sweep.add_argument("--out", required=True, help="results folder; rerunning with the same one resumes")
    sweep.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local worker processes (default) or Ray")
    sweep.add_argument("--address", default=None, help="Ray cluster to join, e.g. HOST:6379 (default: start one)")
    sweep.add_argument("--workers", type=int, default=None,
                       help="parallel tasks (default: CPU count; with Ray: the cluster's CPUs)")
    sweep.add_argument("--retries", type=int, default=1, help="retries of a task whose worker died (default 1)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="list the tasks and their seeds; run nothing and import none of the sweep's code")
    sweep.add_argument("--allow-code", action="store_true",
                       help="let eval = \"module:function\" import and run that Python code (as allow_code = true "
                            "in the file)")
    sweep.add_argument("--code-path", action="append", default=[], metavar="DIR",
                       help="a folder searched first for an eval module (repeatable); the current folder is searched "
                            "only when given here, e.g. --code-path .")
    sweep.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    sweep.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(func=_cmd_sweep)

    plot = sub.add_parser("plot", help="redraw the figures of a results directory or a sweep folder")
    plot.add_argument("dir", help="results directory written by emu run, or a sweep folder written by emu sweep")
    plot.add_argument("--metric", action="append", default=None,
                      help="sweep folders: a metric column to plot (repeatable; default: the sweep's metrics)")
    plot.set_defaults(func=_cmd_plot)

    report = sub.add_parser("report", help="one self-contained HTML file (tables, figures, scenario, seeds, "
                                           "provenance) for a results directory or a sweep folder")
    report.add_argument("dir", help="results directory written by emu run, or a sweep folder written by emu sweep")
    report.add_argument("--out", default=None, help="the HTML file to write (default: DIR/report.html)")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        # expected failures: bad input, unreadable or unwritable files, absurd sizes
        print(f"emu: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error: a short message, the full traceback in a file
        path = _write_traceback()
        print(f"emu: internal error: {type(exc).__name__}: {_one_line(exc)} (traceback written to {path})",
              file=sys.stderr)
        return 3


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return " ".join(text.split())


def _write_traceback() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="emu-traceback-", suffix=".txt")
    with open(fd, "w") as f:
        f.write(traceback.format_exc())
    return path


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
