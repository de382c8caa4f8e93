"""RunResult: what a run produced, as pandas DataFrames, a JSON summary, files and plots.

Built from a finished ``Sim``; works for both record modes (``full`` per-packet rows, ``summary`` streaming
histograms). A results directory is written whole or not at all (a temporary sibling renamed into place).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from emu.metrics import hist_quantile_s

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _finite(x: float) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


class RunResult:
    """Results of one run.

    Args:
        sim: the finished run.
        duration_s: the measured window [0, duration_s); default: the time the run reached.
        meta: provenance (scenario, seed, versions) stored at the head of summary.json.
    """

    def __init__(self, sim: Any, duration_s: Optional[float] = None, meta: Optional[dict] = None) -> None:
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
        self._packets: Optional[pd.DataFrame] = None

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

    def _drop_counts_by_flow(self) -> dict[int, int]:
        rec = self.records
        if self.full:
            flow_ids = np.frombuffer(rec.x_flow, dtype=np.int32)
            counts = np.bincount(flow_ids, minlength=len(rec.flow_names)) if len(flow_ids) else []
            return {i: int(c) for i, c in enumerate(counts)}
        out: dict[int, int] = {}
        for (f, _, _), n in rec.folded_drop_counts().items():
            out[f] = out.get(f, 0) + n
        return out

    def flows(self) -> pd.DataFrame:
        """Per-flow summary: sent, delivered, dropped, loss rate, throughput, delay and queueing-delay stats."""
        rec = self.records
        drops = self._drop_counts_by_flow()
        rows = []
        if self.full:
            a = rec.delivered_arrays()
            order = np.argsort(a["flow_id"], kind="stable")
            flow_sorted = a["flow_id"][order]
            bounds = np.searchsorted(flow_sorted, np.arange(len(rec.flow_names) + 1))
        for fid, name in enumerate(rec.flow_names):
            sent = rec.flows[fid]
            row: dict[str, Any] = {"flow": name, "sent_pkts": sent.sent_pkts, "sent_bytes": sent.sent_bytes}
            if self.full:
                idx = order[bounds[fid]:bounds[fid + 1]]
                delay = a["delivered_s"][idx] - a["created_s"][idx]
                qdelay = a["qdelay_s"][idx]
                size = a["size_bytes"][idx].astype(np.int64)
                n = len(idx)
                row["delivered_pkts"] = n
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
                row["delivered_pkts"] = n
                row["delivered_bytes"] = h.delivered_bytes
                row["delay_mean_s"] = h.delay_sum_s / n if n else float("nan")
                for qname, q in QUANTILES.items():
                    row[f"delay_{qname}_s"] = hist_quantile_s(h.delay_counts, q)
                row["qdelay_mean_s"] = h.qdelay_sum_s / n if n else float("nan")
                for qname, q in QUANTILES.items():
                    row[f"qdelay_{qname}_s"] = hist_quantile_s(h.qdelay_counts, q)
                row["delay_max_s"] = h.delay_max_s if n else float("nan")
                first = h.first_s
            row["dropped_pkts"] = drops.get(fid, 0)
            row["loss_rate"] = row["dropped_pkts"] / sent.sent_pkts if sent.sent_pkts else float("nan")
            row["throughput_bps"] = row["delivered_bytes"] * 8.0 / self.duration_s
            row["first_delivery_s"] = first
            rows.append(row)
        return pd.DataFrame(rows)

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

    def links(self) -> pd.DataFrame:
        """Per-link counters: packets and bytes sent, losses, queue drops and marks by reason."""
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
                rows.append(row)
        return pd.DataFrame(rows)

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
        flows = self.flows()
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
            "flows": clean(flows.to_dict(orient="records")),
            "links": clean(self.links().to_dict(orient="records")),
            "apps": clean([ep.row() for ep in self.sim.apps]),
        }

    def write(self, out_dir: Union[str, Path], *, formats: tuple[str, ...] = ("csv",), plots: bool = True,
              overwrite: bool = False) -> Path:
        """Write summary.json, flows/links/throughput tables (CSV and/or Parquet), packet and drop tables (full
        mode) and PNG plots into ``out_dir``; the directory appears whole or not at all."""
        out = Path(out_dir)
        for fmt in formats:
            if fmt not in ("csv", "parquet"):
                raise ValueError(f"formats: unknown {fmt!r}; valid: csv, parquet")
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise FileExistsError(f"{out}: already exists and is not empty (use overwrite / --force)")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            (tmp / "summary.json").write_text(json.dumps(self.summary(), indent=2, default=str))
            tables = {"flows": self.flows(), "links": self.links(), "throughput": self.throughput()}
            if self.sim.apps:
                tables["apps"] = self.apps()
            if self.full:
                tables["packets"] = self.packets()
            else:
                tables["delay_hist"] = self.delay_hist()
            tables["drops"] = self.drops()
            for name, frame in tables.items():
                for fmt in formats:
                    if fmt == "csv":
                        frame.to_csv(tmp / f"{name}.csv", index=False)
                    else:
                        frame.to_parquet(tmp / f"{name}.parquet", index=False)
            if plots:
                from emu.plots import plot_tables

                plot_tables(tmp, tables)
            if out.exists():
                backup = out.with_name(f".{out.name}.old-{os.getpid()}")
                out.rename(backup)
                tmp.rename(out)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out
