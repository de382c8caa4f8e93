"""Sweeps: many runs of one scenario (or one app evaluation) over a grid of parameters × seeds.

A sweep file is TOML, parsed as data (``examples/sweep_codel_vs_droptail.toml``)::

    name = "codel-vs-droptail"
    scenario = "dumbbell_codel.toml"   # relative to this file; or an inline [scenario] table; or eval = "NAME"
    replicates = 5                     # seeds per grid point
    root_seed = 1                      # every task's seed derives from it (see below)
    metrics = ["delay_p99_s", "throughput_bps"]   # for summary.csv and plots (default: a standard set)

    [fixed]                            # overrides applied to every task (not swept)
    duration = "5s"

    [grid]                             # dotted keys into the scenario; the cartesian product is swept
    "topology.bottleneck_rate" = ["10Mbps", "20Mbps"]
    "flow[0].rate" = ["4Mbps", "8Mbps"]          # list index ...
    # "flow[video].rate" = [...]                 # ... or the name of a [[flow]]

    [[points]]                         # optional explicit points; each is combined with the [grid] product
    "topology.queue" = "droptail"
    [[points]]
    "topology.queue" = "dualpi2"
    "topology.queue_params.target_s" = 0.015

A key is fixed, or swept in [grid], or set in [[points]]: one place only. An app evaluation is swept the same way:
``eval = "chatterbox"`` (a registered app: the evaluation behind ``emu eval chatterbox``) or
``eval = "package.module:function"`` (called as ``fn(params, seed=seed)``, returning a dict of metrics), with base
parameters in ``[params]`` and the grid over their keys (see ``emu.sweep.tasks``). Such a function is code, not data:
it runs only with ``allow_code = true`` in the file (or ``--allow-code``), ``--dry-run`` never imports it, and the
current folder is searched for it only when named with ``--code-path`` (the sweep file's folder is searched after
the import path). Grid, point, fixed and param values must be finite: NaN and infinity are refused before any task.

Seeds: a task's seed is ``SeedTree(root_seed).seed_for("task/<params as canonical JSON>/<replicate>")``, so it
depends on the root seed, the task's parameters and its replicate index only: reordering or extending the grid
leaves every other task's seed alone. ``paired_seeds = true`` gives replicate r the same seed at every grid point
(common random numbers: compare schemes on the same random traffic).

Results (``OUT/``) survive crashes: each finished task is written at once as ``parts/<task_id>.parquet`` (its
per-flow rows plus the task's parameters, replicate and seed; temp file + ``os.replace``) and one line appended to
``manifest.jsonl`` (status, error and traceback, wall time). A rerun with the same ``OUT`` skips finished tasks and
runs the rest, failed ones included. At the end: ``summary.csv`` (mean, std, 95 % t-interval, n per grid point and
metric) and the plots of ``emu.sweep_results``.
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import itertools
import json
import math
import re
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from emu.rng import SeedTree
from emu.sweep.common import SweepError, canonical, now_iso  # noqa: F401  (re-exported)
from emu.sweep.results import SweepResult

SWEEP_KEYS = {"name", "description", "scenario", "eval", "params", "fixed", "grid", "points", "replicates",
              "root_seed", "paired_seeds", "metrics", "warmup", "allow_code"}
BACKENDS = ("local", "ray")
SEED_BITS = 53  # seeds stay exact in JSON readers that use doubles








def check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinity anywhere in a sweep value (lists and tables included), naming where."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SweepError(f"{where}: must be a finite number, got {value!r} (NaN and infinity are not allowed in a "
                         "sweep: they would fail, or run forever, in the middle of it)")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_finite(item, f"{where}[{i}]")


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def task_seed(root_seed: int, params: dict, replicate: int, *, paired: bool = False) -> int:
    """The seed of one task: a function of the root seed, the task's parameters and its replicate index only."""
    name = f"replicate/{replicate}" if paired else f"task/{canonical(params)}/{replicate}"
    return SeedTree(root_seed).seed_for(name) >> (63 - SEED_BITS)


@dataclass(frozen=True)
class Task:
    """One run: a grid point (``params``) and a replicate, with its derived seed."""

    task_id: str
    point_id: str
    params: dict
    replicate: int
    seed: int


# -- dotted keys --------------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[[^\]]+\])*)")


def parse_key(key: str) -> list[Union[str, int, tuple]]:
    """``"flow[0].rate"`` -> ``["flow", 0, "rate"]``; ``"flow[video].rate"`` -> ``["flow", ("name", "video"),
    "rate"]``."""
    if not isinstance(key, str) or not key:
        raise SweepError(f"key {key!r}: expected a dotted key such as 'topology.queue'")
    out: list[Union[str, int, tuple]] = []
    for part in key.split("."):
        m = _SEGMENT.fullmatch(part)
        if not m:
            raise SweepError(f"key {key!r}: cannot parse {part!r} (use 'table.key', 'list[0].key' or "
                             "'list[name].key')")
        out.append(m.group(1))
        for index in re.findall(r"\[([^\]]+)\]", m.group(2)):
            out.append(int(index) if index.lstrip("-").isdigit() else ("name", index))
    return out


def set_key(raw: dict, key: str, value: Any) -> None:
    """Set dotted ``key`` in the nested dict ``raw`` (tables are created as needed; list items must exist)."""
    path = parse_key(key)
    node: Any = raw
    for i, step in enumerate(path):
        last = i == len(path) - 1
        where = key if last else f"{key} (at {step!r})"
        if isinstance(step, str):
            if not isinstance(node, dict):
                raise SweepError(f"key {key!r}: {step!r} is inside a {type(node).__name__}, not a table")
            if last:
                node[step] = copy.deepcopy(value)
                return
            nxt = path[i + 1]
            if step not in node:
                if not isinstance(nxt, str):
                    raise SweepError(f"key {key!r}: there is no list {step!r} to index")
                node[step] = {}
            node = node[step]
        else:
            if not isinstance(node, list):
                raise SweepError(f"key {where}: not a list")
            if isinstance(step, int):
                if not -len(node) <= step < len(node):
                    raise SweepError(f"key {key!r}: index {step} out of range (the list has {len(node)} items)")
                index = step
            else:
                names = [item.get("name") if isinstance(item, dict) else None for item in node]
                if step[1] not in names:
                    raise SweepError(f"key {key!r}: no item named {step[1]!r}; names: {[n for n in names if n]}")
                index = names.index(step[1])
            if last:
                node[index] = copy.deepcopy(value)
                return
            node = node[index]


def _is_path_key(key: str) -> bool:
    """Keys whose values are file paths: ``trace``, ``reverse_trace``, ``*_trace``, ``*_file``."""
    last = parse_key(key)[-1]
    return isinstance(last, str) and (last == "trace" or last.endswith("_trace") or last.endswith("_file"))


def flatten(table: dict, prefix: str = "") -> dict:
    """Nested TOML tables to dotted keys: ``{"topology": {"queue": [..]}}`` -> ``{"topology.queue": [..]}``."""
    out = {}
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out


# -- the sweep ------------------------------------------------------------------------------------------------------


class Sweep:
    """A grid (and/or list) of parameter points × ``replicates`` seeds over one scenario or one eval function.

    Args:
        scenario: a ``Scenario``, a scenario dict (the TOML as a dict) or a path to a scenario file.
        eval: instead of a scenario, an evaluation function: a registered name (``"chatterbox"``) or
            ``"package.module:function"``; ``params`` are its base parameters.
        grid: dotted key -> list of values; the cartesian product is swept.
        points: explicit points (dicts of dotted key -> value); each is combined with the grid product.
        fixed: dotted key -> value applied to every task (e.g. ``{"duration": "2s"}``).
        replicates: seeds per grid point (>= 1).
        root_seed: the one seed every task's seed derives from.
        paired_seeds: the same seed for replicate r at every point (common random numbers).
        metrics: result columns that ``summary.csv`` and the plots use (default: a standard set).
        base_dir: where relative trace paths in the grid are found (the sweep file's folder; default: cwd); an
            ``eval = "module:function"`` not found on the import path is looked up there too.
        allow_code: let ``eval = "module:function"`` import and run that code (off by default: a sweep file is
            data; the file's ``allow_code = true`` or ``--allow-code`` turns it on).
        code_path: folders searched first for such a module (``--code-path``); the current folder is searched
            only when named here.
        import_code: import the eval function now to check it exists (``--dry-run`` passes False: nothing of
            the sweep's code is imported).
    """

    def __init__(self, scenario: Any = None, *, eval: Optional[str] = None, params: Optional[dict] = None,
                 grid: Optional[dict] = None, points: Optional[list] = None, fixed: Optional[dict] = None,
                 replicates: int = 1, root_seed: int = 0, paired_seeds: bool = False,
                 metrics: Optional[list] = None, name: Optional[str] = None, description: str = "",
                 source: str = "<sweep>", base_dir: Union[str, Path, None] = None, validate: bool = True,
                 warmup: Any = 0.0, allow_code: bool = False, code_path: Sequence[Union[str, Path]] = (),
                 import_code: bool = True) -> None:
        from emu.scenario import Scenario, ScenarioError

        self.source = source
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.description = description
        fail = self._fail
        if (scenario is None) == (eval is None):
            raise fail("give exactly one of scenario (a scenario file or table) or eval (an evaluation function)")
        if not isinstance(allow_code, bool):
            raise fail(f"allow_code: must be true or false, got {allow_code!r}")
        self.allow_code = allow_code
        if isinstance(code_path, (str, Path)):
            code_path = [code_path]
        for folder in code_path:
            if not Path(folder).is_dir():
                raise fail(f"--code-path {folder}: no such folder")
        self.code_path = tuple(str(Path(folder).resolve()) for folder in code_path)
        if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 1:
            raise fail(f"replicates: must be an integer >= 1, got {replicates!r}")
        if not isinstance(root_seed, int) or isinstance(root_seed, bool) or root_seed < 0:
            raise fail(f"root_seed: must be a non-negative integer, got {root_seed!r}")
        if metrics is not None and (not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)):
            raise fail(f"metrics: must be a list of column names, got {metrics!r}")
        self.replicates = replicates
        self.root_seed = root_seed
        self.paired_seeds = bool(paired_seeds)
        self.metrics = list(metrics) if metrics else None
        self.fixed = flatten(dict(fixed or {}))
        from emu.units import parse_time_s

        try:
            self.warmup_s = parse_time_s(warmup, "warmup")
        except ValueError as exc:
            raise fail(str(exc)) from None
        if self.warmup_s < 0:
            raise fail(f"warmup: must be >= 0, got {warmup!r}")
        if self.warmup_s and scenario is None:
            raise fail("warmup: only for scenario sweeps (an eval function measures what it measures)")

        if eval is not None:
            from emu.sweep.tasks import EvalNotFound, resolve_eval

            self.kind = "eval"
            self.eval = eval
            if params is not None and not isinstance(params, dict):
                raise fail(f"params: expected a table, got {type(params).__name__}")
            self.base_raw = copy.deepcopy(params or {})
            self.scenario_source = source
            if validate and import_code:
                self.check_code_allowed()
                try:
                    resolve_eval(eval, str(self.base_dir), code_path=self.code_path, allow_code=self.allow_code)
                except EvalNotFound as exc:
                    raise fail(str(exc)) from None
            self.name = name or f"eval-{eval.split(':')[-1]}"
        else:
            self.kind = "scenario"
            self.eval = None
            if params is not None:
                raise fail("params: only for eval sweeps; a scenario sweep sets scenario keys with [fixed]/[grid]")
            if isinstance(scenario, Scenario):
                raw, scenario_source = scenario.raw, scenario.source
            elif isinstance(scenario, dict):
                raw, scenario_source = scenario, source
            else:
                path = Path(scenario)
                if not path.is_absolute():
                    path = self.base_dir / path
                try:
                    loaded = Scenario.load(path)
                except ScenarioError as exc:
                    raise fail(f"scenario: {exc}") from None
                raw, scenario_source = loaded.raw, loaded.source
            self.base_raw = copy.deepcopy(raw)
            self.scenario_source = scenario_source
            self.name = name or str(raw.get("name", Path(source).stem))
            if metrics and not raw.get("app"):
                from emu.sweep.results import FLOW_METRICS

                unknown = [m for m in metrics if m not in FLOW_METRICS]
                if unknown:
                    raise fail(f"metrics: unknown column(s) {unknown}; valid: {FLOW_METRICS} (and, with [[app]] "
                               "tables, the apps' metrics)")
        for key, value in self.fixed.items():
            self._check_key(key, "fixed")
            self._check_finite(value, f"fixed.{key}")
        if self.kind == "eval":
            self._check_finite(self.base_raw, "params")

        self.grid = {}
        for key, values in flatten(dict(grid or {})).items():
            self._check_key(key, "grid")
            if key in self.fixed:
                raise fail(f"grid.{key}: also in [fixed]; a key is either fixed or swept")
            if not isinstance(values, list) or not values:
                raise fail(f"grid.{key}: expected a non-empty list of values, got {values!r}")
            self._check_finite(values, f"grid.{key}")
            self.grid[key] = values
        self.points = []
        for i, point in enumerate(points or []):
            if not isinstance(point, dict):
                raise fail(f"points[{i}]: expected a table, got {type(point).__name__}")
            flat = flatten(point)
            for key in flat:
                self._check_key(key, f"points[{i}]")
                self._check_finite(flat[key], f"points[{i}].{key}")
                if key in self.grid or key in self.fixed:
                    raise fail(f"points[{i}].{key}: also in [{'grid' if key in self.grid else 'fixed'}]; "
                               "a key is fixed, or swept in one place")
            self.points.append(flat)
        self.tasks = self._expand()
        if validate:
            self.validate()

    # -- loading ------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path], *, allow_code: bool = False, code_path: Sequence[Union[str, Path]] = (),
             import_code: bool = True) -> "Sweep":
        """Read a sweep TOML file (paths inside it are relative to it). ``allow_code`` (``--allow-code``) or the
        file's own ``allow_code = true`` lets an ``eval = "module:function"`` run; see ``Sweep``."""
        path = Path(path)
        if not path.exists():
            raise SweepError(f"{path}: sweep file not found")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(raw, source=str(path), base_dir=path.parent, allow_code=allow_code, code_path=code_path,
                             import_code=import_code)

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "<sweep>", base_dir: Union[str, Path, None] = None,
                  allow_code: bool = False, code_path: Sequence[Union[str, Path]] = (),
                  import_code: bool = True) -> "Sweep":
        unknown = set(raw) - SWEEP_KEYS
        if unknown:
            raise SweepError(f"{source}: unknown key(s) {sorted(unknown)}; valid: {sorted(SWEEP_KEYS)}")
        for key in ("grid", "fixed", "params", "scenario"):
            if key in raw and not isinstance(raw[key], (dict, str) if key == "scenario" else dict):
                raise SweepError(f"{source}: {key}: expected a table, got {type(raw[key]).__name__}")
        if "points" in raw and not isinstance(raw["points"], list):
            raise SweepError(f"{source}: points: expected an array of tables ([[points]])")
        if not isinstance(raw.get("allow_code", False), bool):
            raise SweepError(f"{source}: allow_code: must be true or false, got {raw['allow_code']!r}")
        return cls(raw.get("scenario"), eval=raw.get("eval"), params=raw.get("params"), grid=raw.get("grid"),
                   points=raw.get("points"), fixed=raw.get("fixed"), replicates=raw.get("replicates", 1),
                   root_seed=raw.get("root_seed", 0), paired_seeds=raw.get("paired_seeds", False),
                   metrics=raw.get("metrics"), name=raw.get("name"), description=str(raw.get("description", "")),
                   source=source, base_dir=base_dir, warmup=raw.get("warmup", 0.0),
                   allow_code=allow_code or raw.get("allow_code", False), code_path=code_path, import_code=import_code)

    def _fail(self, msg: str) -> SweepError:
        return SweepError(f"{self.source}: {msg}")

    def _check_finite(self, value: Any, where: str) -> None:
        try:
            check_finite(value, where)
        except SweepError as exc:
            raise self._fail(str(exc)) from None

    @property
    def runs_code(self) -> bool:
        """Whether the tasks import and run Python code named in the sweep (``eval = "module:function"``)."""
        from emu.sweep.tasks import is_code_ref

        return self.kind == "eval" and is_code_ref(self.eval)

    def check_code_allowed(self) -> None:
        """Refuse to go on when the sweep runs code it was not allowed to (see ``allow_code``)."""
        if self.runs_code and not self.allow_code:
            raise self._fail(f"eval = {self.eval!r} imports and runs Python code; a sweep file is data, so this "
                             "needs an explicit opt-in: allow_code = true in the file, or --allow-code on the "
                             "command line (Sweep(..., allow_code=True) in Python)")

    def _check_key(self, key: str, where: str) -> None:
        try:
            path = parse_key(key)
        except SweepError as exc:
            raise self._fail(f"{where}: {exc}") from None
        if self.kind == "scenario" and path == ["seed"]:
            raise self._fail(f"{where}.seed: seeds are derived per task from root_seed; set root_seed instead")

    # -- tasks ----------------------------------------------------------------------------------------------------

    def _expand(self) -> list[Task]:
        keys = list(self.grid)
        combos = [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]
        seen: dict[str, int] = {}
        tasks = []
        for base in self.points or [{}]:
            for combo in combos:
                params = {**base, **combo}
                point_id = _digest(canonical(params), 10)
                if point_id in seen:
                    raise self._fail(f"the grid point {params} appears twice")
                seen[point_id] = len(seen)
                for r in range(self.replicates):
                    seed = task_seed(self.root_seed, params, r, paired=self.paired_seeds)
                    tasks.append(Task(f"{point_id}-r{r}", point_id, params, r, seed))
        return tasks

    @property
    def param_keys(self) -> list[str]:
        keys: dict[str, None] = {}
        for point in self.points:
            keys.update(dict.fromkeys(point))
        keys.update(dict.fromkeys(self.grid))
        return list(keys)

    def point_params(self) -> list[tuple[str, dict]]:
        """``(point_id, params)`` for every grid point, in grid order."""
        out: dict[str, dict] = {}
        for t in self.tasks:
            out.setdefault(t.point_id, t.params)
        return list(out.items())

    def _with_overrides(self, params: dict) -> dict:
        raw = copy.deepcopy(self.base_raw)
        for key, value in {**self.fixed, **params}.items():
            if _is_path_key(key) and isinstance(value, str) and not value.startswith("shared:") \
                    and not Path(value).is_absolute() and (self.base_dir / value).exists():
                # paths in a sweep are relative to its file; one not found there is looked up as a scenario
                # looks up traces: the current directory, then the shared traces folder ("mahimahi/...")
                value = str((self.base_dir / value).resolve())
            set_key(raw, key, value)
        return raw

    def payload(self, task: Task) -> dict:
        """What a worker needs to run ``task`` (plain data: picklable, JSON-able)."""
        raw = self._with_overrides(task.params)
        if self.kind == "scenario":
            return {"kind": "scenario", "raw": raw, "source": self.scenario_source, "seed": task.seed,
                    "warmup_s": self.warmup_s}
        return {"kind": "eval", "eval": self.eval, "eval_params": raw, "seed": task.seed,
                "search_dir": str(self.base_dir), "allow_code": self.allow_code, "code_path": list(self.code_path)}

    def validate(self) -> None:
        """Build every grid point's scenario now, so a bad value fails before anything runs or is written."""
        from emu.scenario import Scenario, ScenarioError

        for _, params in self.point_params():
            try:
                raw = self._with_overrides(params)
                if self.kind == "scenario":
                    Scenario.from_dict(raw, source=self.scenario_source)
            except (SweepError, ScenarioError) as exc:
                raise self._fail(f"grid point {params or '(base)'}: {exc}") from None

    @property
    def fingerprint(self) -> str:
        """Identity of what the tasks run (base config, root seed, seeding): a results folder holds one sweep."""
        cosmetic = ("name", "description") if self.kind == "scenario" else ()
        base = {k: v for k, v in self.base_raw.items() if k not in cosmetic}
        ident = {"kind": self.kind, "base": base, "eval": self.eval, "fixed": self.fixed,
                 "root_seed": self.root_seed, "paired_seeds": self.paired_seeds}
        if self.warmup_s:
            ident["warmup_s"] = self.warmup_s
        return _digest(canonical(ident), 16)

    def spec(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind, "source": self.source,
                "scenario": self.scenario_source if self.kind == "scenario" else None, "eval": self.eval,
                "fingerprint": self.fingerprint, "root_seed": self.root_seed, "replicates": self.replicates,
                "paired_seeds": self.paired_seeds, "metrics": self.metrics, "param_keys": self.param_keys,
                "warmup_s": self.warmup_s,
                "points": [{"point_id": pid, "params": p} for pid, p in self.point_params()],
                "n_tasks": len(self.tasks)}

    # -- running --------------------------------------------------------------------------------------------------

    def run(self, out_dir: Union[str, Path], *, backend: str = "local", workers: Optional[int] = None,
            address: Optional[str] = None, retries: int = 1, progress: bool = False, plots: bool = True) -> SweepResult:
        """Run every task not yet finished in ``out_dir`` and return the results folder.

        Args:
            backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (a local Ray instance, or the
                cluster at ``address``).
            workers: parallel tasks (local default: the CPU count; Ray default: the cluster's CPUs).
            retries: how often a task whose worker died is retried on a fresh worker before it counts as failed.
                A task that raises is not retried within the run (a rerun retries it).
            progress: show a tqdm bar with the ETA.
        """
        from emu.sweep.run import run_sweep

        self.check_code_allowed()
        if backend not in BACKENDS:
            raise SweepError(f"backend: unknown {backend!r}; valid: {', '.join(BACKENDS)}")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise SweepError(f"workers: must be an integer >= 1, got {workers!r}")
        if address and backend != "ray":
            raise SweepError("--address: only with --backend ray")
        if not isinstance(retries, int) or retries < 0:
            raise SweepError(f"retries: must be an integer >= 0, got {retries!r}")
        return run_sweep(self, Path(out_dir), backend=backend, workers=workers, address=address, retries=retries,
                         progress=progress, plots=plots)



__all__ = ["Sweep", "SweepError", "SweepResult", "Task", "task_seed", "canonical", "parse_key", "set_key"]
