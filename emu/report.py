"""``emu report DIR``: one self-contained HTML file for a run directory or a sweep folder.

The file holds everything inline (CSS in a ``<style>`` element, every PNG of the folder as a base64 ``data:`` URI,
tables as HTML), loads nothing from anywhere and runs no script, so it opens offline in any browser and can be
mailed or archived alone.

- A **run directory** (``emu run``, ``RunResult.write``): provenance from ``summary.json`` (scenario, source, seed,
  duration, record mode, captures), the scenario file when it can be found, totals, per-flow and per-link tables,
  drops by place and reason, the pcap captures with their host addresses, and the figures.
- A **sweep folder** (``emu sweep``): the sweep's spec from ``sweep.json`` (grid, root seed, replicates, metrics),
  ``summary.csv`` (mean and 95 % interval per grid point and metric), every task's seed and status from
  ``manifest.jsonl``, failures with their error, and the figures.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; }
th { background: #f3f3f3; } td.k, th.k { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1em 0; } figcaption { font-size: .85em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
.scroll { max-height: 30em; overflow: auto; }
"""

# Columns of the run tables shown, with a display scale and unit (the CSVs keep SI units).
FLOW_COLUMNS = [("flow", None, ""), ("sent_pkts", 1, ""), ("delivered_pkts", 1, ""), ("dropped_pkts", 1, ""),
                ("loss_rate", 100, "%"), ("throughput_bps", 1e-6, "Mbit/s"), ("delay_p50_s", 1e3, "ms"),
                ("delay_p99_s", 1e3, "ms"), ("qdelay_p99_s", 1e3, "ms"), ("delay_max_s", 1e3, "ms")]


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, *, scroll: bool = False) -> str:
    if frame is None or not len(frame):
        return "<p>(none)</p>"
    text = frame.to_html(index=False, escape=True, border=0, na_rep="", float_format=lambda x: f"{x:.6g}")
    return f'<div class="scroll">{text}</div>' if scroll else text


def _kv(items: dict) -> str:
    rows = "".join(f'<tr><th class="k">{_esc(k)}</th><td class="k">{_esc(_plain(v))}</td></tr>'
                   for k, v in items.items())
    return f"<table>{rows}</table>"


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _figures(folder: Path) -> str:
    parts = []
    for path in sorted(folder.glob("*.png")):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{_esc(path.name)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{_esc(path.name)}</figcaption></figure>")
    return "\n".join(parts) if parts else "<p>(no figures in this folder; <code>emu plot DIR</code> draws them)</p>"


def _source_text(source: Optional[str], base: Path) -> Optional[tuple[Path, str]]:
    """The text of a scenario/sweep file named in the provenance, if it can still be found."""
    if not source or source.startswith("<"):
        return None
    path = Path(source)
    for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, base / path, base.parent / path]):
        try:
            if candidate.is_file():
                return candidate, candidate.read_text(errors="replace")
        except OSError:
            continue
    return None


def _csv(folder: Path, name: str, labels: tuple[str, ...] = ()) -> Optional[pd.DataFrame]:
    from emu.plots import read_table_file

    for path in (folder / f"{name}.csv", folder / f"{name}.parquet"):
        if path.exists():
            return read_table_file(path, labels)  # a damaged table is named, not drawn
    return None


def _display_flows(flows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(flows)
    out = pd.DataFrame()
    for column, scale, unit in FLOW_COLUMNS:
        if column not in frame:
            continue
        label = column.replace("_bps", "").replace("_s", "") + (f" ({unit})" if unit else "")
        out[label] = frame[column] if scale is None else pd.to_numeric(frame[column], errors="coerce") * scale
    return out


def _run_sections(folder: Path) -> tuple[str, list[str]]:
    from emu.plots import read_summary

    summary = read_summary(folder)
    meta = dict(summary.get("meta", {}))
    captures = meta.pop("captures", [])
    raw = meta.pop("scenario_raw", None)
    title = f"run {meta.get('scenario', folder.name)} (seed {meta.get('seed', '?')})"
    sections = [f"<h2>Provenance</h2>{_kv(meta)}"]
    found = _source_text(meta.get("source"), folder)
    if raw:  # what ran (the seed and duration above override it where they differ)
        sections.append(f"<h2>Scenario</h2><p>as run, parsed from <code>{_esc(meta.get('source', '?'))}</code> "
                        f"(seed and duration: see the provenance)</p><pre>{_esc(json.dumps(raw, indent=2, default=str))}"
                        "</pre>")
    elif found:
        sections.append(f"<h2>Scenario</h2><p><code>{_esc(found[0])}</code> as it is now</p>"
                        f"<pre>{_esc(found[1])}</pre>")
    else:
        sections.append("<h2>Scenario</h2><p>(the scenario file named in the provenance was not found)</p>")
    sections.append(f"<h2>Totals</h2>{_kv(summary.get('totals', {}))}")
    sections.append("<h2>Flows</h2>" + _table(_display_flows(summary.get("flows", []))))
    full = pd.DataFrame(summary.get("flows", []))
    sections.append("<details><summary>every per-flow column (SI units)</summary>" + _table(full) + "</details>")
    sections.append("<h2>Links</h2>" + _table(pd.DataFrame(summary.get("links", []))))
    drops = _csv(folder, "drops", ("where", "reason", "flow"))
    if drops is not None and len(drops):
        if "count" in drops:
            by = drops.groupby(["where", "reason"], as_index=False)["count"].sum()
        else:
            by = drops.groupby(["where", "reason", "flow"], as_index=False).size().rename(columns={"size": "count"})
        sections.append("<h2>Drops by place and reason</h2>" + _table(by))
    if captures:
        rows = [{"file": c.get("file"), "link": c.get("link"), "point": c.get("point"), "snaplen": c.get("snaplen"),
                 "packets": c.get("packets"), "present": (folder / str(c.get("file"))).exists()} for c in captures]
        addresses = captures[0].get("addresses", {})
        sections.append("<h2>Packet captures (pcap)</h2>" + _table(pd.DataFrame(rows))
                        + "<p>Synthetic host addresses:</p>" + _kv(addresses))
    sections.append("<h2>Figures</h2>" + _figures(folder))
    return title, sections


def _sweep_sections(folder: Path) -> tuple[str, list[str]]:
    from emu.sweep.results import SweepResult

    result = SweepResult(folder)
    result.verified_parts()  # a damaged part is named, not reported on
    spec = dict(result.spec)
    points = spec.pop("points", [])
    title = f"sweep {spec.get('name', folder.name)}"
    counts = {"tasks": result.n_tasks, "done": result.n_done, "failed": result.n_failed}
    sections = [f"<h2>Provenance</h2>{_kv({**spec, **counts})}"]
    for key in ("source", "scenario"):
        found = _source_text(spec.get(key), folder)
        if found:
            sections.append(f"<h2>{'Sweep file' if key == 'source' else 'Scenario'}</h2>"
                            f"<p><code>{_esc(found[0])}</code></p><pre>{_esc(found[1])}</pre>")
    if points:
        sections.append("<h2>Grid points</h2>" + _table(pd.DataFrame(
            [{"point_id": p.get("point_id"), **{k: _plain(v) for k, v in p.get("params", {}).items()}}
             for p in points])))
    summary = _csv(folder, "summary")
    if summary is None:
        summary = result.summary()
    sections.append("<h2>Summary (mean and 95 % t-interval across seeds)</h2>" + _table(summary, scroll=True))
    manifest = result.manifest()
    if len(manifest):
        keep = [c for c in ("task_id", "point_id", "replicate", "seed", "status", "wall_s", "backend",
                            "finished_at") if c in manifest]
        seeds = manifest[keep].copy()
        if "seed" in seeds:
            seeds["seed"] = seeds["seed"].astype("Int64").astype(str)
        sections.append("<h2>Tasks and seeds</h2>" + _table(seeds, scroll=True))
    failed = result.failed()
    if len(failed):
        sections.append("<h2>Failed tasks</h2>" + _table(failed[[c for c in ("task_id", "seed", "error")
                                                                  if c in failed]]))
    sections.append("<h2>Figures</h2>" + _figures(folder))
    return title, sections


def build_report(folder: Union[str, Path]) -> str:
    """The HTML text of the report of a run directory or a sweep folder."""
    from emu import __version__
    from emu.sweep.results import is_sweep_dir

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such results folder")
    if is_sweep_dir(folder):
        kind, (title, sections) = "sweep", _sweep_sections(folder)
    elif (folder / "summary.json").exists():
        kind, (title, sections) = "run", _run_sections(folder)
    else:
        raise FileNotFoundError(f"{folder}: neither a run directory (summary.json, written by emu run) nor a sweep "
                                "folder (sweep.json, written by emu sweep)")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>emu report: {_esc(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>emu report: {_esc(title)}</h1>\n<p>{kind} folder <code>{_esc(folder.resolve())}</code>; report "
            f"written {stamp} by emu {_esc(__version__)}.</p>\n{body}\n</body></html>\n")


def write_report(folder: Union[str, Path], out: Optional[Union[str, Path]] = None) -> Path:
    """Write the report (default ``DIR/report.html``) atomically; return its path."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder}: no such results folder")
    path = Path(out) if out is not None else Path(folder) / "report.html"
    if path.is_dir():
        raise IsADirectoryError(f"--out {path}: is a folder; give the HTML file to write, e.g. {path / 'report.html'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist")
    from emu.outputs import write_file_atomically

    text = build_report(folder)
    return write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
