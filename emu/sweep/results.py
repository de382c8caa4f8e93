"""Reading a sweep's results folder: the task table, the manifest, summaries with t-intervals, and plots.

- ``summary.csv``: one row per grid point (× series: the rows' string columns, ``flow`` or ``scheme``) × metric:
  n, mean, std and the 95 % Student-t confidence interval of the mean across seeds. ``few_replicates`` flags
  intervals from fewer than ``MIN_REPLICATES`` seeds (a t-interval from 2 seeds is 12.7 standard errors wide);
  for metrics that cannot be negative (every value >= 0) the interval is clipped at 0 and ``ci95_clipped`` says
  so; ``seeds_identical`` flags points whose seeds all gave the same rows (the seed changes nothing there:
  add randomness, e.g. a scenario's ``randomize`` table).
- ``paired.csv`` (``paired_seeds = true`` only): per point, metric and series, the mean of the per-seed
  differences to the first grid point (the baseline) with its 95 % t-interval: common random numbers make these
  intervals much narrower than the difference of two independent intervals.
- ``sweep_bar_<metric>.png``: mean per grid point with the 95 % interval as error bars (``n<3`` marked).
- ``sweep_cdf_<metric>.png``: per grid point, the CDF of the metric across seeds (e.g. each seed's p99 delay).
- ``sweep_line_<metric>_vs_<param>.png``: for a numeric parameter (numbers, or "10Mbps"/"20ms"/"1MB" strings),
  the mean ± 95 % interval against it, one line per combination of the other parameters and series.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from emu.apps.artifacts import sha256_file
from emu.outputs import write_file_atomically
from emu.sweep.common import SweepError

log = logging.getLogger(__name__)
PARTS = "parts"
MIN_REPLICATES = 3   # fewer seeds than this: the interval is flagged (few_replicates)
BOOKKEEPING = ("task_id", "point_id", "replicate", "seed")
SCENARIO_METRICS = ["throughput_bps", "delay_p50_s", "delay_p99_s", "qdelay_p99_s", "loss_rate"]
# numeric columns of RunResult.flows() (tests/test_sweep.py keeps this list equal to the real one)
FLOW_METRICS = ["sent_pkts", "sent_bytes", "delivered_pkts", "delivered_bytes", "delay_mean_s", "delay_p50_s",
                "delay_p95_s", "delay_p99_s", "qdelay_mean_s", "qdelay_p50_s", "qdelay_p95_s", "qdelay_p99_s",
                "delay_max_s", "dropped_pkts", "loss_rate", "throughput_bps", "first_delivery_s"]


# -- statistics ---------------------------------------------------------------------------------------------------


def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (closed form: Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return (2 / math.pi) * (theta + s * total) if df > 1 else 2 * theta / math.pi
    total, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with integer ``df`` >= 1, by bisection on the exact CDF."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile: need 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    mass = 2 * p - 1
    lo, hi = 0.0, 1.0
    while _t_two_sided_mass(hi, df) < mass:
        hi *= 2
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _t_two_sided_mass(mid, df) < mass:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """n, mean, std (ddof=1) and the Student-t interval of the mean; NaN where n is too small."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else float("nan")
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "ci95_half": half}


# -- part files -----------------------------------------------------------------------------------------------------


class CorruptPart(SweepError):
    """A part file that cannot be trusted (unreadable, truncated, altered, or not a part); the message names it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: corrupt sweep part ({reason})")
        self.path = path
        self.reason = reason


def read_part(path: Path, sha256: Optional[str] = None) -> pd.DataFrame:
    """A part file parsed whole and checked: its sha256 against the one recorded when it was written (``sha256``,
    from the manifest; parts written by older versions have none), Parquet page checksums, the bookkeeping
    columns, and its ``task_id`` against its file name. Raises ``CorruptPart`` naming the file."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        if sha256 is not None and sha256_file(path) != sha256:
            raise CorruptPart(path, "its sha256 differs from the one recorded in manifest.jsonl when it was written")
        frame = pq.read_table(path, page_checksum_verification=True).to_pandas()
    except CorruptPart:
        raise
    except Exception as exc:  # pyarrow raises its own types (ArrowInvalid, OSError, ...) for damaged files
        raise CorruptPart(path, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    missing = [c for c in BOOKKEEPING if c not in frame.columns]
    if missing and (len(frame) or len(frame.columns)):
        raise CorruptPart(path, f"missing column(s) {missing}")
    if len(frame) and not (frame["task_id"].astype(str) == path.stem).all():
        raise CorruptPart(path, f"its task_id column does not say {path.stem!r}")
    return frame


def recorded_part_hashes(manifest: pd.DataFrame) -> dict[str, str]:
    """task_id -> the sha256 of its part file, from the latest ``done`` record that has one."""
    if not len(manifest) or "part_sha256" not in manifest or "status" not in manifest:
        return {}
    done = manifest[(manifest["status"] == "done") & manifest["part_sha256"].notna()]
    return dict(zip(done["task_id"], done["part_sha256"]))


# -- the folder ---------------------------------------------------------------------------------------------------


def is_sweep_dir(path: Union[str, Path]) -> bool:
    path = Path(path)
    return (path / "sweep.json").exists() or (path / "manifest.jsonl").exists()


class SweepResult:
    """A sweep's results folder (complete or not): tables, counts, summaries, plots."""

    def __init__(self, out_dir: Union[str, Path]) -> None:
        self.out_dir = Path(out_dir)
        if not is_sweep_dir(self.out_dir):
            raise FileNotFoundError(f"{self.out_dir}: not a sweep results folder (no sweep.json)")
        spec_path = self.out_dir / "sweep.json"
        try:
            self.spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SweepError(f"{spec_path}: not readable JSON ({' '.join(str(exc).split())[:200]})") from None
        if not isinstance(self.spec, dict):
            raise SweepError(f"{spec_path}: expected a JSON object, got {type(self.spec).__name__}")

    def __repr__(self) -> str:
        return (f"SweepResult({str(self.out_dir)!r}: {self.n_done} done, {self.n_failed} failed, "
                f"{self.n_tasks} tasks in the sweep)")

    # -- tables -------------------------------------------------------------------------------------------------

    def manifest(self, latest: bool = True) -> pd.DataFrame:
        """Manifest records; ``latest``: only the last record of each task."""
        path = self.out_dir / "manifest.jsonl"
        records = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a line torn by a kill
        frame = pd.DataFrame(records)
        if latest and len(frame):
            frame = frame.drop_duplicates("task_id", keep="last").reset_index(drop=True)
        return frame

    def finished_ids(self) -> set[str]:
        return {p.stem for p in (self.out_dir / PARTS).glob("*.parquet")}

    def check_parts(self) -> tuple[dict[str, pd.DataFrame], list[CorruptPart]]:
        """Every part file parsed and verified (``read_part``): ``({task_id: rows}, [problems])``."""
        hashes = recorded_part_hashes(self.manifest(latest=False))
        good, bad = {}, []
        for path in sorted((self.out_dir / PARTS).glob("*.parquet")):
            try:
                good[path.stem] = read_part(path, hashes.get(path.stem))
            except CorruptPart as exc:
                bad.append(exc)
        return good, bad

    def verified_parts(self) -> dict[str, pd.DataFrame]:
        """``{task_id: rows}`` of every part file; the first damaged one raises ``CorruptPart`` naming it."""
        good, bad = self.check_parts()
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise CorruptPart(bad[0].path, f"{bad[0].reason}{more}; rerun the sweep with the same --out to redo "
                                           "its task")
        return good

    @property
    def n_tasks(self) -> int:
        return int(self.spec.get("n_tasks", 0))

    @property
    def n_done(self) -> int:
        return len(self.finished_ids())

    def failed(self) -> pd.DataFrame:
        """Latest record of each task that failed and has not finished since (error, traceback, params)."""
        m = self.manifest()
        if not len(m):
            return m
        return m[(m["status"] != "done") & ~m["task_id"].isin(self.finished_ids())].reset_index(drop=True)

    @property
    def n_failed(self) -> int:
        return len(self.failed())

    @property
    def param_keys(self) -> list[str]:
        return list(self.spec.get("param_keys", []))

    def table(self) -> pd.DataFrame:
        """Every finished task's rows, one frame, in grid order then replicate. A corrupt part file raises
        ``CorruptPart`` naming it (rerunning the sweep redoes that task)."""
        frames = [f for f in self.verified_parts().values() if len(f.columns)]
        if not frames:
            return pd.DataFrame(columns=list(BOOKKEEPING))
        table = pd.concat(frames, ignore_index=True)
        order = {p["point_id"]: i for i, p in enumerate(self.spec.get("points", []))}
        table["_order"] = table["point_id"].map(order).fillna(len(order))
        sort = ["_order", "point_id", "replicate"]
        table = table.sort_values(sort, kind="stable").drop(columns="_order").reset_index(drop=True)
        return table

    def labels(self, table: Optional[pd.DataFrame] = None) -> dict[str, str]:
        """point_id -> a short label made of the parameters that vary (``queue=codel, bottleneck_rate=10Mbps``)."""
        table = self.table() if table is None else table
        keys = [k for k in self.param_keys if k in table]
        points = table.drop_duplicates("point_id")
        varying = [k for k in keys if points[k].astype(str).nunique(dropna=False) > 1]
        last = [k.split(".")[-1] for k in varying]
        short = {k: (s if last.count(s) == 1 else k) for k, s in zip(varying, last)}
        out = {}
        for _, row in points.iterrows():
            parts = [f"{short[k]}={_fmt(row[k])}" for k in varying if not _missing(row[k])]
            out[row["point_id"]] = ", ".join(parts) if parts else "all"
        return out

    def series(self, table: Optional[pd.DataFrame] = None) -> list[str]:
        """Result columns that name a series within a task (``flow``, ``scheme``): the string columns."""
        table = self.table() if table is None else table
        skip = set(BOOKKEEPING) | set(self.param_keys)
        return [c for c in table.columns if c not in skip and (pd.api.types.is_object_dtype(table[c])
                                                               or pd.api.types.is_string_dtype(table[c]))]

    def metrics(self, table: Optional[pd.DataFrame] = None) -> list[str]:
        """The metrics to summarise: the sweep's ``metrics``, else a standard set (scenarios) or every numeric
        result column (eval sweeps)."""
        table = self.table() if table is None else table
        chosen = self.spec.get("metrics")
        if not chosen:
            if self.spec.get("kind", "scenario") == "scenario":
                chosen = SCENARIO_METRICS
            else:
                skip = set(BOOKKEEPING) | set(self.param_keys)
                chosen = [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])
                          and not pd.api.types.is_bool_dtype(table[c])]
        elif len(table) and any(m not in table.columns for m in chosen):
            raise ValueError(f"metrics: unknown column(s) {[m for m in chosen if m not in table.columns]}; valid: "
                             f"{[c for c in table.columns if c not in BOOKKEEPING and c not in self.param_keys]}")
        return [m for m in chosen if m in table.columns]

    def summary(self, metrics: Optional[Sequence[str]] = None) -> pd.DataFrame:
        """Per grid point (× series: flow, scheme) × metric: n, mean, std, 95 % t-interval of the mean across
        seeds."""
        table = self.table()
        metrics = list(metrics) if metrics else self.metrics(table)
        missing = [m for m in metrics if m not in table.columns]
        if missing and len(table):
            raise ValueError(f"metrics: unknown column(s) {missing}; valid: "
                             f"{[c for c in table.columns if c not in BOOKKEEPING]}")
        keys = [k for k in self.param_keys if k in table]
        labels = self.labels(table) if len(table) else {}
        series = self.series(table) if len(table) else []
        identical = set(self.identical_seed_groups(table))
        rows = []
        for gkey, frame in table.groupby(["point_id", *series], sort=False, dropna=False):
            gkey = gkey if isinstance(gkey, tuple) else (gkey,)
            first = frame.iloc[0]
            head = {"point_id": gkey[0], "label": labels.get(gkey[0], ""), **{k: first[k] for k in keys},
                    **dict(zip(series, gkey[1:]))}
            for metric in metrics:
                if frame[metric].isna().all() and table[metric].notna().any():
                    continue  # a metric of other rows (an app's metric on a flow row, or the reverse)
                stats = mean_ci(frame[metric].tolist())
                values = pd.to_numeric(frame[metric], errors="coerce").dropna()
                clipped = bool(len(values) and (values >= 0).all() and stats["ci95_low"] < 0)
                if clipped:
                    stats["ci95_low"] = 0.0
                rows.append({**head, "metric": metric, **stats, "few_replicates": stats["n"] < MIN_REPLICATES,
                             "ci95_clipped": clipped, "seeds_identical": _group_key(gkey) in identical})
        columns = ["point_id", "label", *keys, *series, "metric", "n", "mean", "std", "ci95_low", "ci95_high",
                   "ci95_half", "few_replicates", "ci95_clipped", "seeds_identical"]
        return pd.DataFrame(rows, columns=columns)

    def identical_seed_groups(self, table: Optional[pd.DataFrame] = None) -> list[tuple]:
        """``(point_id, *series)`` of every group whose replicates (two or more) gave identical result rows."""
        table = self.table() if table is None else table
        if not len(table):
            return []
        series = self.series(table)
        skip = set(BOOKKEEPING) | set(self.param_keys) | set(series)
        values = [c for c in table.columns if c not in skip]
        out = []
        for gkey, frame in table.groupby(["point_id", *series], sort=False, dropna=False):
            if frame["replicate"].nunique() < 2:
                continue
            if all(frame[c].astype(str).nunique(dropna=False) == 1 for c in values):
                out.append(_group_key(gkey if isinstance(gkey, tuple) else (gkey,)))
        return out

    def identical_seed_warning(self, table: Optional[pd.DataFrame] = None) -> Optional[str]:
        """A warning naming the grid points where every seed gave the same results, or None."""
        table = self.table() if table is None else table
        groups = self.identical_seed_groups(table)
        if not groups:
            return None
        labels = self.labels(table)
        points = list(dict.fromkeys(labels.get(g[0], g[0]) for g in groups))
        shown = "; ".join(points[:5]) + (f"; ... ({len(points)} points)" if len(points) > 5 else "")
        return (f"different seeds gave identical results at {shown}: the scenario draws no random numbers there, "
                "so its intervals are 0 wide; add randomness (e.g. randomize = {trace_offset = true, "
                "start_jitter = \"100ms\"} in the scenario) or use one replicate")

    def paired_differences(self, metrics: Optional[Sequence[str]] = None,
                           baseline: Optional[str] = None) -> pd.DataFrame:
        """Per grid point (× series) and metric: the per-seed differences to ``baseline`` (a point_id or a label;
        default: the first grid point), paired by replicate, with their mean and 95 % t-interval. Only for
        ``paired_seeds = true`` sweeps, where replicate r has the same seed at every point."""
        if not self.spec.get("paired_seeds"):
            raise ValueError("paired differences need a sweep with paired_seeds = true (the same seed for replicate "
                             "r at every point)")
        table = self.table()
        metrics = list(metrics) if metrics else self.metrics(table)
        columns = ["point_id", "label", "baseline", *self.series(table), "metric", "n_pairs", "mean_diff",
                   "ci95_low", "ci95_high", "ci95_half", "few_replicates"]
        if not len(table):
            return pd.DataFrame(columns=columns)
        labels = self.labels(table)
        points = list(dict.fromkeys(table["point_id"]))
        if baseline is None:
            base = points[0]
        else:
            by_label = {v: k for k, v in labels.items()}
            base = baseline if baseline in points else by_label.get(baseline)
            if base is None:
                raise ValueError(f"baseline: unknown point {baseline!r}; points: {sorted(labels.values())}")
        series = self.series(table)
        key = ["replicate", *series]
        ref = table[table["point_id"] == base]
        rows = []
        for point in points:
            if point == base:
                continue
            mine = table[table["point_id"] == point]
            joined = mine.merge(ref, on=key, how="inner", suffixes=("", "__base"))
            groups = joined.groupby(series, sort=False, dropna=False) if series else [((), joined)]
            for gkey, frame in groups:
                gkey = gkey if isinstance(gkey, tuple) else (gkey,)
                for metric in metrics:
                    if frame[metric].isna().all() and table[metric].notna().any():
                        continue
                    diff = pd.to_numeric(frame[metric], errors="coerce") - \
                        pd.to_numeric(frame[f"{metric}__base"], errors="coerce")
                    stats = mean_ci(diff.tolist())
                    rows.append({"point_id": point, "label": labels.get(point, point),
                                 "baseline": labels.get(base, base), **dict(zip(series, gkey)), "metric": metric,
                                 "n_pairs": stats["n"], "mean_diff": stats["mean"], "ci95_low": stats["ci95_low"],
                                 "ci95_high": stats["ci95_high"], "ci95_half": stats["ci95_half"],
                                 "few_replicates": stats["n"] < MIN_REPLICATES})
        return pd.DataFrame(rows, columns=columns)

    def plot(self, metrics: Optional[Sequence[str]] = None) -> list[Path]:
        """Bar charts (mean ± 95 % CI) and CDFs across seeds per grid point, one pair per metric."""
        return plot_sweep(self, metrics)


def _group_key(gkey: tuple) -> tuple:
    return tuple("" if _missing(v) else str(v) for v in gkey)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and "/" in value:  # trace paths: the file name says enough
        return value.rstrip("/").rsplit("/", 1)[-1]
    return str(value)


# -- outputs ------------------------------------------------------------------------------------------------------


def write_outputs(out_dir: Union[str, Path], *, plots: bool = True,
                  metrics: Optional[Sequence[str]] = None) -> list[Path]:
    """(Re)write summary.csv (the sweep's metrics and ``metrics``) and, with ``plots``, the figures of ``metrics``
    (default: the sweep's); return the paths written."""
    result = SweepResult(out_dir)
    table = result.table()
    every = list(dict.fromkeys(result.metrics(table) + list(metrics or []))) if len(table) else None
    summary = result.summary(every)
    made = [write_file_atomically(result.out_dir / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))]
    if result.spec.get("paired_seeds") and len(table):
        paired = result.paired_differences(every)
        made.append(write_file_atomically(result.out_dir / "paired.csv", lambda tmp: paired.to_csv(tmp, index=False)))
    warning = result.identical_seed_warning(table) if len(table) else None
    if warning:
        log.warning("%s", warning)
    if plots and len(summary):
        made += result.plot(metrics)
    return made


def _scale(metric: str) -> tuple[float, str]:
    if metric.endswith("_bps"):
        return 1e-6, f"{metric[:-4]} (Mbit/s)"
    if metric.endswith("_s"):
        return 1e3, f"{metric[:-2]} (ms)"
    return 1.0, metric


def plot_sweep(result: SweepResult, metrics: Optional[Sequence[str]] = None) -> list[Path]:
    from emu.plots import _pyplot, _save

    plt = _pyplot()
    table = result.table()
    if not len(table):
        return []
    metrics = list(metrics) if metrics else result.metrics(table)
    summary = result.summary(metrics)
    labels = result.labels(table)
    points = list(dict.fromkeys(table["point_id"]))
    series = result.series(table)

    def series_name(frame: pd.DataFrame) -> pd.Series:
        if not series:
            return pd.Series("", index=frame.index)
        return frame[series].apply(lambda row: " / ".join(_fmt(v) for v in row if not _missing(v) and v != ""),
                                   axis=1).astype(str)

    table = table.assign(_series=series_name(table))
    summary = summary.assign(_series=series_name(summary))
    flows = list(dict.fromkeys(table["_series"])) if series else [None]
    made = []
    for metric in metrics:
        scale, ylabel = _scale(metric)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in metric)
        # bars: mean ± 95 % t-interval per point, one bar per flow
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(points) * max(1, len(flows)) + 2), 4))
        width = 0.8 / len(flows)
        x = np.arange(len(points))
        for j, flow in enumerate(flows):
            rows = summary[summary["metric"] == metric]
            if flow is not None:
                rows = rows[rows["_series"] == flow]
            rows = rows.set_index("point_id").reindex(points)
            mean = rows["mean"].to_numpy(dtype=float) * scale
            half = rows["ci95_half"].to_numpy(dtype=float) * scale
            xs = x + (j - (len(flows) - 1) / 2) * width
            ax.bar(xs, mean, width, yerr=np.nan_to_num(half), capsize=3,
                   label=str(flow) if flow is not None else None)
            few = rows["n"].to_numpy(dtype=float) < MIN_REPLICATES
            for xi, yi, ni in zip(xs[few], np.nan_to_num(mean[few]), rows["n"].to_numpy()[few]):
                ax.annotate(f"n={int(ni) if np.isfinite(ni) else 0}", (xi, yi), ha="center", va="bottom",
                            fontsize=6, color="crimson")
        ax.set_xticks(x, [labels.get(p, p) for p in points], rotation=30 if len(points) > 3 else 0, ha="right"
                      if len(points) > 3 else "center", fontsize=8)
        ax.set_ylabel(ylabel)
        n = int(summary[summary["metric"] == metric]["n"].max()) if len(summary) else 0
        ax.set_title(f"{metric}: mean ± 95 % t-interval over seeds (n ≤ {n})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if flows != [None]:
            ax.legend(fontsize=8, title=" / ".join(series), title_fontsize=8)
        made.append(_save(fig, result.out_dir / f"sweep_bar_{safe}.png"))
        # CDFs across seeds, one line per point, one panel per flow
        cols = min(3, len(flows))
        rows_n = math.ceil(len(flows) / cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(4.5 * cols, 3.5 * rows_n), squeeze=False)
        for k, flow in enumerate(flows):
            ax = axes[k // cols][k % cols]
            sub = table if flow is None else table[table["_series"] == flow]
            for point in points:
                values = np.sort(sub.loc[sub["point_id"] == point, metric].to_numpy(dtype=float)) * scale
                values = values[np.isfinite(values)]
                if len(values):
                    ax.step(np.r_[values[0], values], np.r_[0, np.arange(1, len(values) + 1) / len(values)],
                            where="post", label=labels.get(point, point))
            ax.set_xlabel(ylabel)
            ax.set_ylabel("CDF over seeds")
            if flow is not None:
                ax.set_title(f"{' / '.join(series)} {flow}", fontsize=9)
            ax.grid(alpha=0.3)
        for k in range(len(flows), rows_n * cols):
            axes[k // cols][k % cols].axis("off")
        handles, names = axes[0][0].get_legend_handles_labels()
        if handles:
            axes[0][0].legend(handles, names, fontsize=7)
        made.append(_save(fig, result.out_dir / f"sweep_cdf_{safe}.png"))
        made += _line_plots(result, summary, metric, safe, scale, ylabel)
    return made


def numeric_value(value) -> Optional[float]:
    """A grid value as a number: numbers as they are, "10Mbps" / "20ms" / "1MB" strings in SI units; else None."""
    from emu.units import parse_rate_bps, parse_size_bytes, parse_time_s

    if isinstance(value, bool) or _missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        for parse in (parse_rate_bps, parse_time_s, parse_size_bytes):
            try:
                return float(parse(value, "value"))
            except ValueError:
                continue
    return None


def numeric_params(result: SweepResult, summary: pd.DataFrame) -> list[str]:
    """Parameters whose values are all numeric (see ``numeric_value``) with at least two distinct values."""
    out = []
    for key in result.param_keys:
        if key not in summary:
            continue
        values = [numeric_value(v) for v in summary[key]]
        if all(v is not None for v in values) and len(set(values)) >= 2:
            out.append(key)
    return out


def _line_plots(result: SweepResult, summary: pd.DataFrame, metric: str, safe: str, scale: float,
                ylabel: str) -> list[Path]:
    from emu.plots import _pyplot, _save

    plt = _pyplot()
    rows = summary[summary["metric"] == metric]
    made = []
    for key in numeric_params(result, rows):
        others = [k for k in result.param_keys if k != key and k in rows]
        groups = others + (["_series"] if rows["_series"].astype(str).str.len().any() else [])
        fig, ax = plt.subplots(figsize=(6.5, 4))
        frame = rows.assign(_x=[numeric_value(v) for v in rows[key]])
        parts = frame.groupby(groups, sort=False, dropna=False) if groups else [((), frame)]
        for gkey, group in parts:
            gkey = gkey if isinstance(gkey, tuple) else (gkey,)
            group = group.sort_values("_x")
            label = ", ".join(f"{g.split('.')[-1] if g != '_series' else ''}{'=' if g != '_series' else ''}"
                              f"{_fmt(v)}" for g, v in zip(groups, gkey)) or None
            ax.errorbar(group["_x"], group["mean"] * scale, yerr=np.nan_to_num(group["ci95_half"] * scale),
                        marker="o", ms=3, capsize=3, lw=1, label=label)
        ax.set_xlabel(f"{key} (SI units)")
        ax.set_ylabel(ylabel)
        n = int(rows["n"].max()) if len(rows) else 0
        ax.set_title(f"{metric} vs {key}: mean ± 95 % t-interval (n ≤ {n})", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        key_safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
        made.append(_save(fig, result.out_dir / f"sweep_line_{safe}_vs_{key_safe}.png"))
    return made
