"""Judge a scheme against a baseline over seeds: ``compare`` and ``assert_improves``.

    from emu.testing import assert_improves
    assert_improves(run_droptail, run_dualpi2, metric="delay_p99_s", flow="prague", seeds=range(8), by=0.3)

``baseline`` and ``candidate`` are callables ``seed -> result``; a result is a ``RunResult`` (``flow=``/``app=``
pick a row of ``.flows()``/``.apps()``), a mapping of metric names to numbers, or a DataFrame row (a pandas
Series, or a DataFrame with one row, or one row picked by ``flow=``/``app=``). ``metric`` is a column/key name or a
callable ``result -> float``. Both callables run once per seed; seed ``s`` of one is paired with seed ``s`` of the
other, so whatever a seed randomises (a trace offset, start times, loss draws) is the same on both sides.

Statistics, all on the per-seed log ratios ``d_s = log(candidate_s / baseline_s)`` (metrics must be > 0):

- ``ratio``: ``exp(mean d)``, the geometric mean of the per-seed ratios candidate/baseline.
- ``ci``: a paired bootstrap interval of that ratio: seeds resampled with replacement (``BOOTSTRAP_RESAMPLES``
  times, a ``numpy`` Generator seeded with ``BOOTSTRAP_SEED``, so the interval is reproducible), percentile interval
  of ``exp(mean d*)``, expanded for small samples as in Hesterberg, "What teachers should know about the bootstrap",
  The American Statistician 69(4), 2015 (tail ``Phi(-sqrt(n/(n-1)) t_{n-1})`` instead of ``alpha/2``): the
  plain percentile interval is too narrow with the 5-10 seeds tests can afford.
- ``p_value``: a one-sided paired sign-flip permutation test of ``mean d`` (Fisher's randomisation test; exact,
  enumerating all ``2^n`` sign patterns, for ``n <= 16`` seeds, else ``PERMUTATIONS`` random patterns from a seeded
  Generator), in the improving direction: H0 says each ``d_s`` is symmetric about 0 (no effect).

``assert_improves`` passes only when the whole ``confidence`` interval shows an improvement of at least ``by``
(``lower_is_better``: the interval's upper end <= ``1 - by``; otherwise its lower end >= ``1 + by``). Since the
interval is two-sided, a scheme that is no better passes nominally ``(1 - confidence) / 2`` of the time (measured
at 95 % with 8 seeds over 1000 synthetic A-vs-A comparisons: 3.1 %, ``tests/test_testing_stats.py``). When every seed gives the same value on both sides it fails with
advice instead: the seed then has no effect and ``n`` seeds are one experiment repeated.

With ``workers=N`` (N > 1) the runs go to ``N`` local worker processes of the sweep backend
(``emu.sweep.backends.run_local``); ``baseline``, ``candidate`` and a callable ``metric`` must then be picklable:
module-level functions, or ``functools.partial`` / instances of module-level classes (no lambdas, no closures).
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from emu.validate import check_bool, check_int, check_number

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_150_401  # fixed: the same values always give the same interval
PERMUTATIONS = 100_000       # random sign patterns when n > EXACT_MAX_SEEDS
EXACT_MAX_SEEDS = 16
TEST_NAME = "one-sided paired sign-flip permutation test on log ratios"

Metric = Union[str, Callable[[Any], float]]


# -- statistics ---------------------------------------------------------------------------------------------------


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def bootstrap_ci(log_ratios: Sequence[float], confidence: float = 0.95, *,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Expanded-percentile paired bootstrap interval of ``exp(mean(log_ratios))`` (see the module docstring)."""
    d = np.asarray(log_ratios, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError(f"log_ratios: need at least 2 paired seeds, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence!r}")
    from emu.sweep.results import t_quantile  # the project's one Student-t quantile

    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    alpha = 1.0 - confidence
    tail = _normal_cdf(-math.sqrt(n / (n - 1)) * t_quantile(1.0 - alpha / 2, n - 1))
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(math.exp(lo)), float(math.exp(hi))


def sign_flip_p_value(log_ratios: Sequence[float], *, lower_is_better: bool = True,
                      permutations: int = PERMUTATIONS, seed: int = BOOTSTRAP_SEED) -> float:
    """One-sided p-value of ``mean(log_ratios)`` being this far in the improving direction by chance."""
    d = np.asarray(log_ratios, dtype=float)
    n = len(d)
    if n < 1:
        raise ValueError("log_ratios: empty")
    if not lower_is_better:
        d = -d
    observed = d.mean()
    if n <= EXACT_MAX_SEEDS:
        signs = 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
        flipped = (signs * d).mean(axis=1)
        return float(np.mean(flipped <= observed + 1e-12 * (1.0 + abs(observed))))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(permutations, n))
    flipped = (signs * d).mean(axis=1)
    return float((np.sum(flipped <= observed + 1e-12 * (1.0 + abs(observed))) + 1) / (permutations + 1))


# -- reading a metric from a result ---------------------------------------------------------------------------------


def _metric_name(metric: Metric) -> str:
    if isinstance(metric, str):
        return metric
    return getattr(metric, "name", None) or getattr(metric, "__name__", None) or type(metric).__name__


def _pick_row(table: Any, key: str, value: str, what: str, columns: Sequence[str]) -> Any:
    for column in columns:
        if column in table.columns:
            rows = table[table[column] == value]
            if len(rows) == 1:
                return rows.iloc[0]
            if len(rows) > 1:
                raise ValueError(f"{key}={value!r}: {len(rows)} rows of {what} match in column {column!r}")
    names = sorted({str(v) for c in columns if c in table.columns for v in table[c]})
    raise ValueError(f"{key}={value!r}: no such row in {what}; there are: {', '.join(names) or '(none)'}")


def metric_value(result: Any, metric: Metric, *, flow: Optional[str] = None, app: Optional[str] = None) -> float:
    """The number ``metric`` names in ``result`` (a RunResult, a mapping or a DataFrame row; see the module doc)."""
    if flow is not None and app is not None:
        raise ValueError("give flow= or app=, not both")
    if callable(metric):
        if flow is not None or app is not None:
            raise ValueError("flow=/app= pick a row for a metric given by name; a callable metric receives the "
                             "whole result (pick the row inside it)")
        value = metric(result)
    elif not isinstance(metric, str):
        raise ValueError(f"metric: expected a column/key name or a callable result -> float, got {metric!r}")
    else:
        row = _row_of(result, flow, app)
        try:
            value = row[metric]
        except (KeyError, IndexError):
            keys = list(row.keys()) if hasattr(row, "keys") else []
            raise ValueError(f"metric {metric!r}: not in the result; available: {', '.join(map(str, keys))}") \
                from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {_metric_name(metric)!r}: expected a number, got {value!r}") from None


def _row_of(result: Any, flow: Optional[str], app: Optional[str]) -> Any:
    import pandas as pd

    if callable(getattr(result, "flows", None)) and hasattr(result, "sim"):  # a RunResult
        if app is not None:
            if not callable(getattr(result, "apps", None)):
                raise ValueError("app=: this RunResult has no apps() table (this emu version records no per-app "
                                 "rows); give flow= and a flow metric, or a callable metric")
            return _pick_row(result.apps(), "app", app, "RunResult.apps()", ("name", "app"))
        flows = result.flows()
        if flow is None:
            if len(flows) == 1:
                return flows.iloc[0]
            raise ValueError(f"flow=: the run has {len(flows)} flows; pick one of: {', '.join(flows['flow'])}")
        return _pick_row(flows, "flow", flow, "RunResult.flows()", ("flow",))
    if isinstance(result, pd.DataFrame):
        if flow is not None:
            return _pick_row(result, "flow", flow, "the DataFrame", ("flow",))
        if app is not None:
            return _pick_row(result, "app", app, "the DataFrame", ("name", "app", "scheme"))
        if len(result) != 1:
            raise ValueError(f"a DataFrame result needs exactly one row, or flow=/app= to pick one; got {len(result)}")
        return result.iloc[0]
    if isinstance(result, pd.Series):
        if flow is not None or app is not None:
            raise ValueError("flow=/app= pick a row of a RunResult or a DataFrame; this result is already one row")
        return result
    if isinstance(result, Mapping):
        key = flow if flow is not None else app
        if key is None:
            return result
        inner = result.get(key)
        if not isinstance(inner, Mapping):
            raise ValueError(f"{'flow' if flow is not None else 'app'}={key!r}: the mapping has no such table of "
                             f"metrics; keys: {', '.join(map(str, result))}")
        return inner
    raise ValueError(f"result: expected a RunResult, a mapping of metrics or a DataFrame row, got "
                     f"{type(result).__name__}")


@dataclass(frozen=True)
class DelayQuantile:
    """A picklable metric: the ``q`` quantile of ``flow``'s one-way delay (``qdelay=True``: queueing delay only)
    over packets sent at or after ``warmup_s``, from ``RunResult.packets()`` (full record mode)."""

    flow: str
    q: float = 0.99
    warmup_s: float = 0.0
    qdelay: bool = False

    def __post_init__(self) -> None:
        check_number("q", self.q, lo=0.0, hi=1.0)
        check_number("warmup_s", self.warmup_s, lo=0.0)

    @property
    def name(self) -> str:
        return f"{'qdelay' if self.qdelay else 'delay'}_q{self.q:g}_s[{self.flow}, after {self.warmup_s:g} s]"

    def __call__(self, result: Any) -> float:
        packets = result.packets()
        sel = packets[(packets["flow"] == self.flow) & (packets["created_s"] >= self.warmup_s)]
        if not len(sel):
            flows = ", ".join(sorted(map(str, packets["flow"].unique())))
            raise ValueError(f"{self.name}: no packets of flow {self.flow!r} after {self.warmup_s} s; flows: {flows}")
        return float(np.quantile(sel["qdelay_s" if self.qdelay else "delay_s"].to_numpy(), self.q))


def delay_quantile(flow: str, q: float = 0.99, *, warmup_s: float = 0.0, qdelay: bool = False) -> DelayQuantile:
    """A metric for ``compare``: a delay quantile of one flow after a warm-up window (picklable, for ``workers``)."""
    return DelayQuantile(flow=flow, q=q, warmup_s=warmup_s, qdelay=qdelay)


# -- running the pairs ----------------------------------------------------------------------------------------------


def _seed_list(seeds: Union[int, Iterable[int]]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds: expected a count or an iterable of integers, got {seeds!r}")
    if isinstance(seeds, int):
        out = list(range(seeds))
    else:
        out = list(seeds)
    for s in out:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds: every seed must be a non-negative integer, got {s!r}")
    out = [int(s) for s in out]
    if len(set(out)) != len(out):
        raise ValueError(f"seeds: each seed may appear once (runs are paired by seed), got {out}")
    if len(out) < 2:
        raise ValueError(f"seeds: need at least 2 seeds to say anything about noise, got {len(out)} (use 5 or more)")
    return out


def _measure_task(params: dict, *, seed: int) -> dict:
    """What a sweep worker runs for one side of one seed (``eval = "emu.testing:_measure_task"``)."""
    result = params["fn"](seed)
    return {"value": metric_value(result, params["metric"], flow=params["flow"], app=params["app"])}


def _check_picklable(name: str, obj: Any) -> None:
    try:
        data = pickle.dumps(obj)
    except Exception as exc:
        raise ValueError(f"{name}: workers= runs it in other processes, so it must be picklable (a module-level "
                         f"function, or functools.partial / an instance of a module-level class); {obj!r} is not "
                         f"({type(exc).__name__}: {exc})") from None
    if b"__main__" in data:
        raise ValueError(f"{name}: {obj!r} is defined in the __main__ script, which worker processes cannot import; "
                         "move it to an importable module (or run without workers=)")


def _run_values(sides: dict[str, Callable[[int], Any]], metric: Metric, seeds: list[int], flow: Optional[str],
                app: Optional[str], workers: Optional[int]) -> dict[str, list[float]]:
    values = {side: [math.nan] * len(seeds) for side in sides}
    if workers is None or workers <= 1:
        for i, seed in enumerate(seeds):
            for side, fn in sides.items():
                values[side][i] = metric_value(fn(seed), metric, flow=flow, app=app)
        return values
    from emu.sweep.backends import run_local

    for side, fn in sides.items():
        _check_picklable(side, fn)
    if callable(metric):
        _check_picklable("metric", metric)
    jobs = []
    for i, seed in enumerate(seeds):
        for side, fn in sides.items():
            params = {"fn": fn, "metric": metric, "flow": flow, "app": app}
            # emu's own function running the caller's: code the caller chose to run (allow_code)
            jobs.append((f"{side}:{i}", {"kind": "eval", "eval": "emu.testing:_measure_task", "eval_params": params,
                                         "seed": seed, "allow_code": True}))
    failures: list[str] = []

    def on_outcome(task_id: str, outcome: dict) -> None:
        side, i = task_id.split(":")
        if outcome.get("status") != "done":
            failures.append(f"{side} at seed {seeds[int(i)]}: {outcome.get('error')}\n{outcome.get('traceback', '')}")
            return
        values[side][int(i)] = float(outcome["rows"][0]["value"])

    run_local(jobs, on_outcome, workers=int(workers), retries=0)
    if failures:
        raise RuntimeError("compare: runs failed in the worker processes:\n" + "\n".join(failures))
    return values


# -- the comparison ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` found: per-seed values and the paired statistics of candidate/baseline."""

    metric: str
    seeds: tuple[int, ...]
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    ratio: float
    ci: tuple[float, float]
    p_value: float
    confidence: float
    lower_is_better: bool
    test: str = TEST_NAME
    flow: Optional[str] = None
    app: Optional[str] = None

    @property
    def n(self) -> int:
        """Paired seeds."""
        return len(self.seeds)

    @property
    def seed_has_no_effect(self) -> bool:
        """Every seed gave the same value on each side: the seeds did not randomise anything that matters."""
        return _constant(self.baseline) and _constant(self.candidate)

    def table(self):
        """Per-seed values: seed, baseline, candidate, ratio (candidate / baseline)."""
        import pandas as pd

        b, c = np.asarray(self.baseline), np.asarray(self.candidate)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = c / b
        return pd.DataFrame({"seed": list(self.seeds), "baseline": b, "candidate": c, "ratio": ratio})

    def describe(self) -> str:
        where = f", flow {self.flow!r}" if self.flow else (f", app {self.app!r}" if self.app else "")
        direction = "lower is better" if self.lower_is_better else "higher is better"
        pct = f"{self.confidence * 100:g} %"
        return (f"{self.metric}{where} ({direction}): candidate/baseline = {self.ratio:.4g} (geometric mean over "
                f"{self.n} paired seeds), {pct} paired bootstrap CI [{self.ci[0]:.4g}, {self.ci[1]:.4g}], "
                f"p = {self.p_value:.3g} ({self.test})")

    def format_table(self) -> str:
        """``table()`` as aligned text (what failure messages show)."""
        rows = [("seed", "baseline", "candidate", "ratio")]
        for s, b, c in zip(self.seeds, self.baseline, self.candidate):
            rows.append((str(s), f"{b:.6g}", f"{c:.6g}", f"{c / b:.4g}" if b else "nan"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows)

    def __str__(self) -> str:
        return self.describe() + "\n" + self.format_table()


def _constant(values: Sequence[float]) -> bool:
    v = np.asarray(values, dtype=float)
    return bool(np.all(np.abs(v - v[0]) <= 1e-12 * max(1.0, abs(v[0]))))


def compare(baseline: Callable[[int], Any], candidate: Callable[[int], Any], *, metric: Metric,
            seeds: Union[int, Iterable[int]], flow: Optional[str] = None, app: Optional[str] = None,
            lower_is_better: bool = True, workers: Optional[int] = None, confidence: float = 0.95) -> Comparison:
    """Run ``baseline(seed)`` and ``candidate(seed)`` for every seed and compare ``metric`` pairwise.

    ``seeds``: an iterable of distinct non-negative integers, or a count ``N`` (seeds ``0..N-1``); at least 2.
    ``workers``: run the ``2 N`` runs on that many local processes (callables must be picklable).
    Returns a ``Comparison`` (``ratio``, ``ci``, ``p_value``, ``n``, ``table()``); raises ValueError when a
    metric is not a positive number (ratios need it), naming the side and the seed.
    """
    if not callable(baseline) or not callable(candidate):
        raise ValueError("baseline and candidate: expected callables seed -> result")
    check_bool("lower_is_better", lower_is_better)
    if workers is not None:
        check_int("workers", workers, lo=1)
    check_number("confidence", confidence, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    seed_list = _seed_list(seeds)
    values = _run_values({"baseline": baseline, "candidate": candidate}, metric, seed_list, flow, app, workers)
    b, c = np.asarray(values["baseline"]), np.asarray(values["candidate"])
    name = _metric_name(metric)
    for side, v in (("baseline", b), ("candidate", c)):
        bad = [(s, x) for s, x in zip(seed_list, v) if not (math.isfinite(x) and x > 0)]
        if bad:
            s, x = bad[0]
            raise ValueError(f"metric {name!r}: the {side} gave {float(x)!r} at seed {s}; ratios need finite values > 0 "
                             f"(for a metric that can be 0, compare 1 + metric or a rate instead)")
    d = np.log(c / b)
    return Comparison(metric=name, seeds=tuple(seed_list), baseline=tuple(map(float, b)),
                      candidate=tuple(map(float, c)), ratio=float(math.exp(d.mean())),
                      ci=bootstrap_ci(d, confidence), p_value=sign_flip_p_value(d, lower_is_better=lower_is_better),
                      confidence=confidence, lower_is_better=lower_is_better, flow=flow, app=app)


NO_SEED_EFFECT_ADVICE = (
    "the seed has no effect: every seed gave the same value on both sides, so these {n} seeds are one experiment "
    "repeated and no interval can be drawn from them. Randomise what a seed should change, from the seed:\n"
    "  - a trace's starting point: net.link(a, b, trace=..., trace_offset=SeedTree(seed).rng('trace_offset')"
    ".uniform(0, period_s)) (period_s: emu.links.tracefile.load_trace(path).period_s);\n"
    "  - flow start times: open_stream(sim, src, dst, ..., start_s=sim.rng('start').uniform(0, 0.1));\n"
    "  - random loss or jitter on a link (loss=BernoulliLossConfig(...), jitter=JitterConfig(...)), or Poisson/on-off "
    "cross traffic, which draw from the run's seed."
)


def assert_improves(baseline: Callable[[int], Any], candidate: Callable[[int], Any], *, metric: Metric,
                    seeds: Union[int, Iterable[int]], by: float = 0.0, confidence: float = 0.95,
                    flow: Optional[str] = None, app: Optional[str] = None, lower_is_better: bool = True,
                    workers: Optional[int] = None) -> Comparison:
    """Pass only when the whole ``confidence`` interval of candidate/baseline shows an improvement of at least
    ``by`` (``by=0.3``, lower is better: candidate <= 0.7 x baseline at the interval's upper end; higher is better:
    candidate >= 1.3 x baseline at its lower end; ``by=0``: strictly better). Otherwise raise AssertionError with
    the per-seed table, the ratio, the interval and what was required. Returns the ``Comparison`` when it passes.
    """
    # the share of improvement required: below 1 when lower is better (candidate <= (1 - by) x baseline)
    check_number("by", by, lo=0.0, hi=1.0 if lower_is_better else None, hi_open=True)
    result = compare(baseline, candidate, metric=metric, seeds=seeds, flow=flow, app=app,
                     lower_is_better=lower_is_better, workers=workers, confidence=confidence)
    table = result.format_table
    if result.seed_has_no_effect:
        raise AssertionError(f"assert_improves: {result.metric}: " + NO_SEED_EFFECT_ADVICE.format(n=result.n)
                             + f"\n{table()}")
    lo, hi = result.ci
    if lower_is_better:
        bound = 1.0 - by
        ok = hi <= bound if by > 0 else hi < 1.0
        need = f"the whole interval {'<=' if by > 0 else '<'} {bound:.4g} (candidate at least {by:.0%} lower)"
    else:
        bound = 1.0 + by
        ok = lo >= bound if by > 0 else lo > 1.0
        need = f"the whole interval {'>=' if by > 0 else '>'} {bound:.4g} (candidate at least {by:.0%} higher)"
    if not ok:
        raise AssertionError(f"assert_improves: no improvement shown at {confidence:.0%} confidence.\n"
                             f"  {result.describe()}\n  required: {need}\n{table()}")
    return result


__all__ = ["compare", "assert_improves", "Comparison", "delay_quantile", "DelayQuantile", "metric_value",
           "bootstrap_ci", "sign_flip_p_value", "NO_SEED_EFFECT_ADVICE"]
