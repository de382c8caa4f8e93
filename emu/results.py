"""RunResult: what a run produced, as pandas DataFrames, a JSON summary, files and plots.

Built from a finished ``Sim``; works for both record modes (``full`` per-packet rows, ``summary`` streaming
histograms). A results directory is written whole or not at all (a temporary sibling renamed into place).
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from emu.metrics import hist_quantile_s
from emu.plots import plot_title

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
# Records keep float64 seconds; summary tables and written files show them to the nanosecond, so 0.020000000001
# prints as 0.02 (``packets()`` and ``drops()`` keep the records' exact values).
TIME_RESOLUTION_S = 1e-9
_TIME_DECIMALS = 9
ACK_SUFFIX = ".ack"


TABLE_FORMATS = ("csv", "parquet")


def check_formats(formats: Any, field: str = "formats") -> tuple[str, ...]:
    """Table formats (a tuple, or a comma-separated string as ``--format`` takes), each one of ``TABLE_FORMATS``."""
    names = formats.split(",") if isinstance(formats, str) else formats
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise ValueError(f"{field}: expected a list of table formats ({', '.join(TABLE_FORMATS)}), got {formats!r}")
    out = tuple(str(name).strip() for name in names if str(name).strip())
    for fmt in out:
        if fmt not in TABLE_FORMATS:
            raise ValueError(f"{field}: unknown format {fmt!r}; valid: {', '.join(TABLE_FORMATS)}")
    if not out:
        raise ValueError(f"{field}: no table format given; valid: {', '.join(TABLE_FORMATS)}")
    return out


def is_ack_flow(name: str) -> bool:
    """Streams record their ACKs as a flow of their own, ``<flow>.ack``."""
    return str(name).endswith(ACK_SUFFIX)


def round_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Round every ``*_s`` float column to ``TIME_RESOLUTION_S`` (in place; returns ``frame``)."""
    for col in frame.columns:
        if str(col).endswith("_s") and frame[col].dtype.kind == "f":
            frame[col] = frame[col].round(_TIME_DECIMALS)
    return frame


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _queue_kinds(sim: Any) -> dict[str, str]:
    """Queue kind per link, for plot titles: the links whose queue is not the default DropTail, else all."""
    kinds = {e.name: getattr(e.queue, "kind", type(e.queue).__name__) for e in sim.elements
             if hasattr(e, "queue") and hasattr(e, "name")}
    special = {k: v for k, v in kinds.items() if v != "droptail"}
    return special or kinds


def link_capacity_bps(link: Any, duration_s: float) -> float:
    """Mean capacity of ``link`` over ``[0, duration_s)``: its rate, or what its trace offers in that window."""
    schedule = getattr(link, "schedule", None)
    if schedule is not None:
        return float(schedule.bytes_between(0.0, duration_s)) * 8.0 / duration_s
    return float(getattr(link.config, "rate_bps", 0.0) or 0.0)


def int_counters(frame: pd.DataFrame) -> pd.DataFrame:
    """Counter columns (``*_pkts``, ``*_bytes``, ``drops_*``, ``marks_*``, ``arrived_*``) as integers; a counter
    missing in a row (a drop reason one link never saw) is 0."""
    for col in frame.columns:
        name = str(col)
        if name.endswith(("_pkts", "_bytes")) or name.startswith(("drops_", "marks_", "arrived_")):
            if frame[col].dtype.kind in "fiub":
                frame[col] = frame[col].fillna(0).astype(np.int64)
    return frame


def _finite(x: float) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


class RunResult:
    """Results of one run.

    Args:
        sim: the finished run.
        duration_s: the measured window [0, duration_s); default: the time the run reached.
        meta: provenance (scenario, seed, versions) stored at the head of summary.json.
        timeseries: optional recorded time series (``emu.timeseries``), name -> DataFrame (``time_s``, ``key``,
            values); written as ``timeseries_<name>`` tables and plotted.
    """

    def __init__(self, sim: Any, duration_s: Optional[float] = None, meta: Optional[dict] = None,
                 timeseries: Optional[dict[str, pd.DataFrame]] = None) -> None:
        self.sim = sim
        self.records = sim.records
        self.records.finish()
        self.duration_s = float(duration_s if duration_s is not None else sim.now_s)
        if not self.duration_s > 0:
            raise ValueError("duration_s: the run has not advanced; call sim.run(until_s=...) first")
        self.meta = dict(meta or {})
        self.meta.setdefault("seed", sim.seed)
        self.meta.setdefault("duration_s", self.duration_s)
        self.meta.setdefault("record", self.records.mode)
        self.meta.setdefault("queues", _queue_kinds(sim))
        self._packets: Optional[pd.DataFrame] = None
        self.timeseries = dict(timeseries or {})

    @property
    def full(self) -> bool:
        return self.records.mode == "full"

    def _require_full(self, what: str) -> None:
        if not self.full:
            raise ValueError(f"{what}: this run used record='summary', which keeps no per-packet rows; "
                             "rerun with record='full'")

    # -- tables -------------------------------------------------------------------------------------------------

    def packets(self) -> pd.DataFrame:
        """One row per delivered packet: flow, pkt_id, size_bytes, created_s, delivered_s, delay_s, qdelay_s."""
        self._require_full("packets()")
        if self._packets is None:
            a = self.records.delivered_arrays()
            names = np.array(self.records.flow_names, dtype=object)
            self._packets = pd.DataFrame({
                "flow": pd.Categorical.from_codes(a["flow_id"], categories=list(names)) if len(names) else [],
                "pkt_id": a["pkt_id"].copy(),
                "size_bytes": a["size_bytes"].copy(),
                "created_s": a["created_s"].copy(),
                "delivered_s": a["delivered_s"].copy(),
                "delay_s": a["delivered_s"] - a["created_s"],
                "qdelay_s": a["qdelay_s"].copy(),
            })
        return self._packets

    def drops(self) -> pd.DataFrame:
        """One row per dropped packet: flow, pkt_id, size_bytes, t_s, where (link or node), reason."""
        rec = self.records
        if self.full:
            a = rec.dropped_arrays()
            return pd.DataFrame({
                "flow": [rec.flow_names[i] for i in a["flow_id"]],
                "pkt_id": a["pkt_id"].copy(),
                "size_bytes": a["size_bytes"].copy(),
                "t_s": a["t_s"].copy(),
                "where": [rec.where_names[i] for i in a["where_id"]],
                "reason": [rec.reason_names[i] for i in a["reason_id"]],
            })
        rows = [{"flow": rec.flow_names[f], "where": rec.where_names[w], "reason": rec.reason_names[r], "count": n}
                for (f, w, r), n in sorted(rec.folded_drop_counts().items())]
        return pd.DataFrame(rows, columns=["flow", "where", "reason", "count"])

    def _drop_counts_by_flow(self, start_s: float = 0.0) -> dict[int, int]:
        rec = self.records
        if self.full:
            flow_ids = np.frombuffer(rec.x_flow, dtype=np.int32)
            if start_s > 0:
                flow_ids = flow_ids[np.frombuffer(rec.x_time, dtype=np.float64) >= start_s]
            counts = np.bincount(flow_ids, minlength=len(rec.flow_names)) if len(flow_ids) else []
            return {i: int(c) for i, c in enumerate(counts)}
        out: dict[int, int] = {}
        for (f, _, _), n in rec.folded_drop_counts().items():
            out[f] = out.get(f, 0) + n
        return out

    def _check_window(self, start_s: float) -> float:
        if isinstance(start_s, bool) or not isinstance(start_s, (int, float)) or not 0 <= start_s < self.duration_s:
            raise ValueError(f"start_s: the warm-up must be in [0, {self.duration_s:g}) s (the run's duration), "
                             f"got {start_s!r}")
        if start_s > 0 and not self.full:
            raise ValueError("start_s: this run used record='summary', whose delay histograms cover the whole run; "
                             "rerun with record='full' to measure after a warm-up")
        return float(start_s)

    def flows(self, start_s: float = 0.0, *, include_acks: bool = False) -> pd.DataFrame:
        """Per-flow summary: sent, delivered, dropped, loss rate, throughput, delay and queueing-delay stats.

        ``start_s``: a warm-up to leave out: only packets delivered (or dropped) in ``[start_s, duration_s)``
        count, and throughput is over that window. The send counters have no timestamps, so with a warm-up
        ``sent_pkts``/``sent_bytes`` are dropped and ``loss_rate`` is dropped / (delivered + dropped) in the window.
        ``include_acks``: also list the ACK flows of streams (``<flow>.ack``); hidden by default, always in the
        per-packet data. Counters are integers; times are rounded to ``TIME_RESOLUTION_S``.
        """
        start_s = self._check_window(start_s)
        rec = self.records
        drops = self._drop_counts_by_flow(start_s)
        window_s = self.duration_s - start_s
        rows = []
        if self.full:
            a = rec.delivered_arrays()
            if start_s > 0:
                keep = a["delivered_s"] >= start_s
                a = {k: v[keep] for k, v in a.items()}
            order = np.argsort(a["flow_id"], kind="stable")
            flow_sorted = a["flow_id"][order]
            bounds = np.searchsorted(flow_sorted, np.arange(len(rec.flow_names) + 1))
        for fid, name in enumerate(rec.flow_names):
            if not include_acks and is_ack_flow(name):
                continue
            sent = rec.flows[fid]
            row: dict[str, Any] = {"flow": name}
            if start_s == 0:
                row.update(sent_pkts=int(sent.sent_pkts), sent_bytes=int(sent.sent_bytes))
            if self.full:
                idx = order[bounds[fid]:bounds[fid + 1]]
                delay = a["delivered_s"][idx] - a["created_s"][idx]
                qdelay = a["qdelay_s"][idx]
                size = a["size_bytes"][idx].astype(np.int64)
                n = len(idx)
                row["delivered_pkts"] = int(n)
                row["delivered_bytes"] = int(size.sum())
                stats = {"delay": delay, "qdelay": qdelay}
                for key, values in stats.items():
                    row[f"{key}_mean_s"] = float(values.mean()) if n else float("nan")
                    for qname, q in QUANTILES.items():
                        row[f"{key}_{qname}_s"] = float(np.quantile(values, q)) if n else float("nan")
                row["delay_max_s"] = float(delay.max()) if n else float("nan")
                first = float(a["delivered_s"][idx].min()) if n else float("nan")
            else:
                h = rec.flow_hist(fid)
                n = h.delivered_pkts
                row["delivered_pkts"] = int(n)
                row["delivered_bytes"] = int(h.delivered_bytes)
                row["delay_mean_s"] = h.delay_sum_s / n if n else float("nan")
                for qname, q in QUANTILES.items():
                    row[f"delay_{qname}_s"] = hist_quantile_s(h.delay_counts, q)
                row["qdelay_mean_s"] = h.qdelay_sum_s / n if n else float("nan")
                for qname, q in QUANTILES.items():
                    row[f"qdelay_{qname}_s"] = hist_quantile_s(h.qdelay_counts, q)
                row["delay_max_s"] = h.delay_max_s if n else float("nan")
                first = h.first_s
            row["dropped_pkts"] = int(drops.get(fid, 0))
            if start_s == 0:
                row["loss_rate"] = row["dropped_pkts"] / sent.sent_pkts if sent.sent_pkts else float("nan")
            else:
                seen = row["dropped_pkts"] + row["delivered_pkts"]
                row["loss_rate"] = row["dropped_pkts"] / seen if seen else float("nan")
            row["throughput_bps"] = row["delivered_bytes"] * 8.0 / window_s
            row["first_delivery_s"] = first
            rows.append(row)
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        return round_times(frame)

    def throughput(self, bin_s: float = 0.1) -> pd.DataFrame:
        """Delivered throughput per flow in bins of ``bin_s``: columns time_s (bin start), flow, throughput_bps."""
        if not bin_s > 0:
            raise ValueError(f"bin_s: must be > 0, got {bin_s!r}")
        rec = self.records
        n_bins = max(1, int(math.ceil(self.duration_s / bin_s - 1e-9)))
        frames = []
        if self.full:
            a = rec.delivered_arrays()
            bins = np.minimum((a["delivered_s"] / bin_s).astype(np.int64), n_bins - 1)
            for fid, name in enumerate(rec.flow_names):
                sel = a["flow_id"] == fid
                per_bin = np.bincount(bins[sel], weights=a["size_bytes"][sel], minlength=n_bins)[:n_bins]
                frames.append(pd.DataFrame({"time_s": np.arange(n_bins) * bin_s, "flow": name,
                                            "throughput_bps": per_bin * 8.0 / bin_s}))
        else:
            ratio = bin_s / rec.bin_s
            if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
                raise ValueError(f"bin_s: summary runs keep {rec.bin_s} s bins; use a multiple of it")
            k = int(round(ratio))
            for fid, name in enumerate(rec.flow_names):
                raw = rec.flow_hist(fid).bytes_per_bin
                padded = np.zeros(n_bins * k, dtype=np.int64)
                padded[: min(len(raw), n_bins * k)] = raw[: n_bins * k]
                per_bin = padded.reshape(n_bins, k).sum(axis=1)
                frames.append(pd.DataFrame({"time_s": np.arange(n_bins) * bin_s, "flow": name,
                                            "throughput_bps": per_bin * 8.0 / bin_s}))
        if not frames:
            return pd.DataFrame(columns=["time_s", "flow", "throughput_bps"])
        return pd.concat(frames, ignore_index=True)

    def delay_hist(self) -> pd.DataFrame:
        """Summary mode: per-flow one-way delay histogram (non-empty bins): flow, upper_edge_s, count."""
        from emu.metrics import _HIST_EDGES_S

        frames = []
        for fid, name in enumerate(self.records.flow_names):
            counts = self.records.flow_hist(fid).delay_counts
            nz = np.nonzero(counts)[0]
            upper = _HIST_EDGES_S[np.minimum(nz + 1, len(_HIST_EDGES_S) - 1)]
            frames.append(pd.DataFrame({"flow": name, "upper_edge_s": upper, "count": counts[nz]}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["flow", "upper_edge_s", "count"])

    def links(self, *, include_idle: bool = True) -> pd.DataFrame:
        """Per-link counters: packets and bytes sent, losses, queue drops and marks by reason, and utilisation.

        ``capacity_bps`` is the link's mean capacity over the run (its rate, or what its trace offered in
        ``[0, duration_s)``); ``utilisation`` = bits sent / capacity bits. ``include_idle=False`` leaves out links
        that sent nothing (access links of unused hosts, idle reverse paths).
        """
        rows = []
        for element in self.sim.elements:
            stats = getattr(element, "stats", None)
            if callable(stats) and hasattr(element, "queue"):
                row = stats()
                drops = row.pop("drops", {})
                marks = row.pop("marks", {})
                ecn = row.pop("ecn_arrived", {})
                for reason, n in drops.items():
                    row[f"drops_{reason}"] = n
                for reason, n in marks.items():
                    row[f"marks_{reason}"] = n
                for cp, n in ecn.items():
                    row[f"arrived_{cp}"] = n
                capacity_bps = link_capacity_bps(element, self.duration_s)
                row["capacity_bps"] = capacity_bps
                row["utilisation"] = (row.get("tx_bytes", 0) * 8.0 / (capacity_bps * self.duration_s)
                                      if capacity_bps > 0 else float("nan"))
                if include_idle or row.get("tx_pkts", 0) or any(drops.values()):
                    rows.append(row)
        return int_counters(pd.DataFrame(rows))

    def apps(self) -> pd.DataFrame:
        """One row per installed app endpoint (``emu.apps.install``): ``name``, ``app``, ``scheme``, ``start_s``,
        ``done`` and the app's own metrics (columns differ between apps; missing ones are NaN)."""
        rows = [ep.row() for ep in self.sim.apps]
        if not rows:
            return pd.DataFrame(columns=["name", "app", "scheme", "start_s", "done"])
        return pd.DataFrame(rows)

    # -- summary and files ----------------------------------------------------------------------------------------

    def summary(self) -> dict:
        """A JSON-able dict: provenance, totals, per-flow rows and per-link counters."""
        flows = self.flows(include_acks=True)
        net = self.sim.packets_in_network()
        totals = {
            "sent_pkts": int(sum(f.sent_pkts for f in self.records.flows)),
            "delivered_pkts": int(self.records.delivered_total_pkts),
            "dropped_pkts": int(self.records.dropped_total_pkts),
            **net,
        }
        clean = lambda rows: [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
        return {
            "meta": self.meta,
            "totals": totals,
            "flows": clean(flows.to_dict(orient="records")),  # ACK flows included: this is the data
            "links": clean(self.links().to_dict(orient="records")),
            "apps": clean([ep.row() for ep in self.sim.apps]),
        }

    def capacity(self, bin_s: float = 0.1) -> pd.DataFrame:
        """Capacity of every trace-driven link over the run in bins of ``bin_s``: time_s, link, capacity_bps
        (what the trace offered, used or not); empty without trace-driven links."""
        from emu.links.tracefile import schedule_capacity

        frames = []
        for element in self.sim.elements:
            schedule = getattr(element, "schedule", None)
            if schedule is not None and hasattr(element, "queue"):
                t, cap = schedule_capacity(schedule, bin_s=bin_s, duration_s=self.duration_s)
                frames.append(pd.DataFrame({"time_s": t, "link": element.name, "capacity_bps": cap}))
        if not frames:
            return pd.DataFrame(columns=["time_s", "link", "capacity_bps"])
        return round_times(pd.concat(frames, ignore_index=True))

    def table(self, start_s: float = 0.0, max_links: int = 6) -> str:
        """The printed summary: flows (ACK flows left out), apps (each with its own metrics), and the busiest
        ``max_links`` links that carried traffic (idle links left out; all of them are in ``links()``)."""
        flows = self.flows(start_s)
        parts = []
        fmt = lambda x: f"{x:.3f}"  # noqa: E731
        if not flows.empty:
            cols = [c for c in ("flow", "sent_pkts", "delivered_pkts", "dropped_pkts") if c in flows]
            shown = flows[cols].copy()
            shown["throughput_Mbps"] = flows["throughput_bps"] / 1e6
            for key in ("delay_p50", "delay_p99", "qdelay_p50", "qdelay_p99"):
                shown[f"{key}_ms"] = flows[f"{key}_s"] * 1e3
            head = f"flows (from {start_s:g} s)" if start_s else "flows"
            parts.append(head + "\n" + shown.to_string(index=False, float_format=fmt))
        if self.sim.apps:
            lines = ["apps"]
            for ep in self.sim.apps:
                metrics = ", ".join(f"{k}={_short(v)}" for k, v in ep.result().items() if not _is_nan(v))
                lines.append(f"  {ep.name} ({ep.app}, scheme {ep.scheme}, {'done' if ep.done else 'not done'}): "
                             f"{metrics}")
            parts.append("\n".join(lines))
        links = self.links(include_idle=False)
        if not links.empty:
            links = links.sort_values("utilisation", ascending=False, kind="stable")
            shown = pd.DataFrame({"link": links["link"], "queue": links["queue"], "tx_pkts": links["tx_pkts"]})
            for prefix in ("drops_", "marks_"):
                cols = [c for c in links.columns if str(c).startswith(prefix)]
                shown[prefix.rstrip("_")] = links[cols].sum(axis=1).astype(np.int64) if cols else 0
            shown["capacity_Mbps"] = links["capacity_bps"] / 1e6
            shown["utilisation"] = links["utilisation"]
            more = len(shown) - max_links
            parts.append("links (busiest first; idle ones left out)\n"
                         + shown.head(max_links).to_string(index=False, float_format=fmt)
                         + (f"\n({more} more in links.csv)" if more > 0 else ""))
        return "\n\n".join(parts)

    def write(self, out_dir: Union[str, Path], *, formats: tuple[str, ...] = ("csv",), plots: bool = True,
              overwrite: bool = False, warmup_s: float = 0.0) -> Path:
        """Write summary.json, flows/links/throughput tables (CSV and/or Parquet), packet and drop tables (full
        mode) and PNG plots into ``out_dir``; the directory appears whole or not at all. ``warmup_s``: the
        per-flow table covers ``[warmup_s, duration_s)`` (the per-packet tables keep everything). An existing
        non-empty ``out_dir`` is replaced only with ``overwrite`` and only if emu wrote it (``emu.outputs``)."""
        from emu.outputs import check_output_dir, replace_dir, staging_dir

        formats = check_formats(formats)
        out = check_output_dir(out_dir, replace=overwrite, flag="out_dir", force_flag="overwrite=True (--force)")
        tmp = staging_dir(out, "partial", kind="run")
        try:
            (tmp / "summary.json").write_text(json.dumps(self.summary(), indent=2, default=str))
            tables = {"flows": self.flows(warmup_s, include_acks=True), "links": self.links(),
                      "throughput": self.throughput()}
            capacity = self.capacity()
            if not capacity.empty:
                tables["capacity"] = capacity
            for name, frame in self.timeseries.items():
                tables[f"timeseries_{name}"] = frame
            if self.sim.apps:
                tables["apps"] = self.apps()
            if self.full:
                tables["packets"] = self.packets()  # rounded below, in the files only
            else:
                tables["delay_hist"] = self.delay_hist()
            tables["drops"] = self.drops()
            for name, frame in tables.items():
                if name in ("packets", "drops"):  # the in-memory tables keep every bit of the records
                    frame = round_times(frame.copy())
                for fmt in formats:
                    if fmt == "csv":
                        frame.to_csv(tmp / f"{name}.csv", index=False)
                    else:
                        frame.to_parquet(tmp / f"{name}.parquet", index=False)
            if plots:
                from emu.plots import plot_tables

                plot_tables(tmp, tables, title=plot_title(self.meta))
            replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out
