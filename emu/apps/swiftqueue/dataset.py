"""Datasets: samples cut from collected runs, split by trace, stored as npz.

A sample is one packet of a collected run (media or probe) that was delivered and sent after ``warmup_s``, with at
least ``MIN_HISTORY`` ACK records before it. It holds what the sender knew at its send instant (a pointer into
the run's ACK history, the query features, the base delay, the per-queue last value and EWMA) and what happened
(``y``: its one-way latency; ``queue``: the queue it took; ``sharp``: whether this was a sharp change).

**Sharp change** (apps.md §1.1, [3P]: thresholds from a paper review and a student reimplementation, not from the
paper itself): ``|y - y_prev| >= 20 ms`` and ``>= 20 %`` of ``y_prev``, where ``y_prev`` is the latency of the
previous packet sent into the same queue.

Window tokens are not stored (they would be 32 x larger): ``SwiftQueueDataset.batch(idx)`` cuts them from the
concatenated histories on demand (``emu.apps.swiftqueue.features.window_tokens``).

Split: ``build_split(train_traces, val_traces)`` — no trace appears in both, so validation measures how the
predictors do on a network they were not fitted to.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.apps.swiftqueue.features import (
    ACK_S, CE, QUEUE, SEQ, WINDOW, l_ack_stats, own_load, query_features, row_features, running_base,
    unacked_features, window_tokens,
)
from emu.apps.swiftqueue.predictors import Batch, baseline_rows

SHARP_ABS_S = 0.020   # [3P] themoonlight-ja review; student reimplementation (Δ = 20 ms)
SHARP_REL = 0.20      # [3P] same sources (Δ% = 20 %)
MIN_HISTORY = 4

_ARRAYS = ("hist", "rows", "start", "end", "now", "base", "query", "last", "ewma", "y", "queue", "sharp", "media",
           "run", "size")


def sharp_flags(send_s: np.ndarray, queue: np.ndarray, lat_s: np.ndarray) -> np.ndarray:
    """Per packet: a sharp change against the previous delivered packet sent into the same queue."""
    n = lat_s.shape[0]
    out = np.zeros(n, dtype=bool)
    order = np.argsort(send_s, kind="stable")
    for k in (0, 1):
        idx = order[(queue[order] == k) & np.isfinite(lat_s[order])]
        if idx.size < 2:
            continue
        y = lat_s[idx]
        d = np.abs(np.diff(y))
        prev = y[:-1]
        out[idx[1:]] = (d >= SHARP_ABS_S) & (d >= SHARP_REL * prev)
    return out


@dataclass
class SwiftQueueDataset:
    hist: np.ndarray      # (H, 7) concatenated ACK histories
    rows: np.ndarray      # (H, 6) row_features per run
    start: np.ndarray     # (N,) first history row of the sample's run
    end: np.ndarray       # (N,) exclusive end row (ACKs received before the send instant)
    now: np.ndarray       # (N,) send instant
    base: np.ndarray      # (N,) base delay known then
    query: np.ndarray     # (N, F_QUERY) float32
    last: np.ndarray      # (N, 2) last L / C latency known then
    ewma: np.ndarray      # (N, 2) EWMA L / C then
    y: np.ndarray         # (N,) latency the packet saw
    queue: np.ndarray     # (N,) 1 = L
    sharp: np.ndarray     # (N,) bool
    media: np.ndarray     # (N,) bool (False: probe)
    run: np.ndarray       # (N,) run index
    size: np.ndarray      # (N,) bytes
    runs: list            # per-run meta dicts

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def traces(self) -> list[str]:
        return sorted({m["trace"] for m in self.runs})

    def batch(self, idx: np.ndarray, window: int = WINDOW) -> Batch:
        idx = np.asarray(idx)
        tok, pad = window_tokens(self.hist, self.rows, self.start[idx], self.end[idx], self.now[idx],
                                 self.base[idx], window)
        return Batch(tok, pad, self.query[idx], self.base[idx], self.last[idx], self.ewma[idx])

    def subset(self, mask: np.ndarray) -> "SwiftQueueDataset":
        """The samples where ``mask`` holds (histories kept whole)."""
        kw = {name: getattr(self, name)[mask] for name in _ARRAYS if name not in ("hist", "rows")}
        return SwiftQueueDataset(hist=self.hist, rows=self.rows, runs=self.runs, **kw)

    def trace_mask(self, trace: str) -> np.ndarray:
        ids = np.array([i for i, m in enumerate(self.runs) if m["trace"] == trace], dtype=np.int64)
        return np.isin(self.run, ids)

    # -- files --------------------------------------------------------------------------------------------------

    def save(self, path: Union[str, Path]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        np.savez_compressed(tmp, runs=np.array(json.dumps(self.runs)), **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "SwiftQueueDataset":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"dataset file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                kw = {name: z[name] for name in _ARRAYS}
                runs = json.loads(str(z["runs"]))
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a SwiftQueue dataset ({exc})") from None
        return cls(runs=runs, **kw)


def fresh_features(hist: np.ndarray, send_s: np.ndarray, size: np.ndarray, queue: np.ndarray, idx: np.ndarray,
                   end: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """(len(idx), 6) query features 14-19 of packets ``idx`` of one run (``end``: their history end rows), from the
    run's ACK history and the sender's log, as the policy computes them online (``features.unacked_features``,
    ``features.l_ack_stats``)."""
    ack_at = np.full(send_s.shape[0], np.inf)
    if hist.shape[0]:
        ack_at[hist[:, SEQ].astype(np.int64)] = hist[:, ACK_S]
    out = np.zeros((idx.size, 6))
    first = np.searchsorted(send_s, send_s[idx], side="left")     # first packet of each sample's frame
    cache: dict = {}
    for i, (j, hi) in enumerate(zip(idx.tolist(), first.tolist())):
        v = cache.get(hi)
        if v is None:
            v = cache[hi] = unacked_features(send_s, size, queue, ack_at, float(send_s[j]), hi)
        out[i, :4] = v
    rows = end[:, None] + np.arange(-window, 0)[None, :]
    pad = rows < 0
    h = hist[np.where(pad, 0, rows)]
    out[:, 4:6] = l_ack_stats(h[..., QUEUE], h[..., CE], h[..., ACK_S], pad)
    return out


def from_runs(runs: list[dict], warmup_s: float = 3.0) -> SwiftQueueDataset:
    """Cut samples from collected runs (``emu.apps.swiftqueue.collector``)."""
    hists, rowss, parts = [], [], []
    offset = 0
    metas = []
    for r_i, r in enumerate(runs):
        hist = np.asarray(r["hist"], dtype=np.float64)
        n_h = hist.shape[0]
        rows = row_features(hist)
        base_rows = running_base(hist)
        bl = baseline_rows(hist)
        send = r["send_s"]
        lat = r["lat_s"]
        sharp = sharp_flags(send, r["queue"], lat)
        end = np.searchsorted(hist[:, ACK_S], send, side="right") if n_h else np.zeros(send.shape, np.int64)
        keep = np.isfinite(lat) & (send >= warmup_s) & (end >= MIN_HISTORY)
        idx = np.nonzero(keep)[0]
        e = end[idx]
        base = base_rows[e - 1]
        ahead, recent = own_load(send, r["size"], r["queue"], r["pos"])
        fresh = fresh_features(hist, send, r["size"], r["queue"], idx, e)
        query = query_features(r["size"][idx], r["pos"][idx], r["count"][idx], r["kind"][idx] == 1, send[idx],
                               hist[e - 1, ACK_S], base, bl[e - 1, :2], bl[e - 1, 2:], ahead[idx], recent[idx],
                               fresh)
        parts.append({
            "start": np.full(idx.size, offset, np.int64), "end": e + offset, "now": send[idx], "base": base,
            "query": query, "last": bl[e - 1, :2], "ewma": bl[e - 1, 2:], "y": lat[idx],
            "queue": r["queue"][idx].astype(np.int8), "sharp": sharp[idx], "media": r["kind"][idx] == 0,
            "run": np.full(idx.size, r_i, np.int32), "size": r["size"][idx].astype(np.int32),
        })
        hists.append(hist)
        rowss.append(rows)
        offset += n_h
        metas.append(r["meta"])
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SwiftQueueDataset(hist=np.concatenate(hists), rows=np.concatenate(rowss), runs=metas, **cat)


def merge(parts: list[SwiftQueueDataset]) -> SwiftQueueDataset:
    """One dataset from several (row pointers and run indices are shifted)."""
    h_off = 0
    r_off = 0
    hists, rowss, runs, cols = [], [], [], {k: [] for k in _ARRAYS if k not in ("hist", "rows")}
    for d in parts:
        for k in cols:
            v = getattr(d, k)
            if k in ("start", "end"):
                v = v + h_off
            elif k == "run":
                v = v + r_off
            cols[k].append(v)
        hists.append(d.hist)
        rowss.append(d.rows)
        runs.extend(d.runs)
        h_off += d.hist.shape[0]
        r_off += len(d.runs)
    return SwiftQueueDataset(hist=np.concatenate(hists), rows=np.concatenate(rowss), runs=runs,
                             **{k: np.concatenate(v) for k, v in cols.items()})


def collect_jobs(traces: list[str], runs_per_trace: int, duration_s: float, seed: int,
                 scenario_overrides: Optional[dict] = None) -> list:
    """(ScenarioConfig, seed) jobs: ``runs_per_trace`` runs per trace, at offsets spread over the trace
    (``scenario_overrides``: ScenarioConfig fields, e.g. ``{"scenario": "household"}``)."""
    from emu.apps.swiftqueue.scenario import ScenarioConfig
    from emu.links.tracefile import load_trace

    jobs = []
    for t_i, trace in enumerate(traces):
        period = load_trace(trace).period_s
        for k in range(runs_per_trace):
            offset = (period * k / runs_per_trace) if runs_per_trace > 1 else 0.0
            cfg = ScenarioConfig(trace=trace, duration_s=duration_s, trace_offset_s=round(offset, 3),
                                 **dict(scenario_overrides or {}))
            jobs.append((cfg, seed * 100_003 + t_i * 101 + k))
    return jobs


def build_split(train_traces: list[str], val_traces: list[str], out_dir: Union[str, Path], *, runs_per_trace: int = 2,
                duration_s: float = 60.0, seed: int = 0, workers: int = 1,
                scenario_overrides: Optional[dict] = None) -> tuple[Path, Path]:
    """Collect exploratory runs and write ``train.npz`` and ``val.npz`` (split by trace) into ``out_dir``."""
    from emu.apps.swiftqueue.collector import collect_many

    overlap = sorted(set(train_traces) & set(val_traces))
    if overlap:
        raise ValueError(f"val_traces: traces also in train_traces: {', '.join(overlap)}")
    out_dir = Path(out_dir)
    paths = []
    for name, traces in (("train", train_traces), ("val", val_traces)):
        jobs = collect_jobs(traces, runs_per_trace, duration_s, seed + (0 if name == "train" else 7),
                            scenario_overrides)
        runs = collect_many(jobs, workers=workers)
        paths.append(from_runs(runs).save(out_dir / f"{name}.npz"))
    return paths[0], paths[1]


def build_plan(plan: dict, out_dir: Union[str, Path], *, seed: int = 0, workers: int = 1) -> tuple[Path, Path]:
    """Collect exploratory runs by ``plan`` (``{"train": [(scenario, traces, runs_per_trace, duration_s), ...],
    "val": [...]}``, e.g. ``emu.apps.swiftqueue.train.DATA_PLAN``) and write ``train.npz`` and ``val.npz`` into
    ``out_dir``. Split by trace: a trace in both splits is refused."""
    from emu.apps.swiftqueue.collector import collect_many

    traces_of = {name: {t for _, traces, _, _ in plan[name] for t in traces} for name in ("train", "val")}
    overlap = sorted(traces_of["train"] & traces_of["val"])
    if overlap:
        raise ValueError(f"val traces: also in the training traces: {', '.join(overlap)}")
    out_dir = Path(out_dir)
    paths = []
    for name in ("train", "val"):
        jobs = []
        for s_i, (scenario, traces, runs_per_trace, duration_s) in enumerate(plan[name]):
            jobs += collect_jobs(traces, runs_per_trace, duration_s,
                                 seed + (0 if name == "train" else 7) + 1009 * s_i, {"scenario": scenario})
        runs = collect_many(jobs, workers=workers)
        for (config, _), r in zip(jobs, runs):
            r["meta"]["scenario"] = config.scenario
        paths.append(from_runs(runs).save(out_dir / f"{name}.npz"))
    return paths[0], paths[1]
