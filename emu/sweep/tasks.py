"""What one sweep task does, in whichever process runs it: a scenario run or an app evaluation.

This module is what local worker processes and Ray workers import; a task's own modules (the scenario code, an
app's evaluation) are imported when the first such task runs. ``execute_task(payload)`` never raises for a task's
own failure: it returns an outcome dict, ``{"status": "done", "rows": [...], "wall_s": ..., "cpu_s": ...}`` or
``{"status": "failed", "error": ..., "traceback": ...}``, which the driver writes down.

Evaluation functions named by import path (``eval = "package.module:function"``) and the registered ``dummy`` have
the signature ``fn(params: dict, *, seed: int)`` and return a dict of metrics (one row), a list of such dicts, a dict
of such dicts (one row per key, in a column ``key``) or a pandas DataFrame. Every registered app
(``emu.apps.names()``) is an evaluation too: params are fields of its eval config (``schemes`` a list), run
through ``AppSpec.run_evaluation``, one row per scheme. String
columns of the rows (``flow``, ``scheme``) name series: summaries and plots keep them apart. Every random number
comes from ``SeedTree(seed).rng(name)``, as in the emulator's components.
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Any, Callable, Optional, Sequence

# Evaluations a sweep file can name (``eval = "NAME"``) besides the registered apps (``emu.apps.names()``, called
# as ``spec.run_evaluation``): name -> "module:function" called as ``fn(params: dict, *, seed: int)``.
EVAL_REGISTRY: dict[str, str] = {
    "dummy": "emu.sweep.tasks:dummy_eval",  # tiny, for tests and to show the mechanism
}


class EvalNotFound(ValueError):
    """An ``eval`` target that does not resolve to a callable; the message lists the registered names."""


class CodeNotAllowed(EvalNotFound):
    """A ``module:function`` eval target in a sweep that did not opt in to running code (``allow_code``)."""


def is_code_ref(target: Any) -> bool:
    """Whether an ``eval`` target names Python code to import (``"package.module:function"``), not a registered
    evaluation."""
    return isinstance(target, str) and ":" in (target[len("eval:"):] if target.startswith("eval:") else target)


def resolve_eval(target: str, search_dir: Optional[str] = None, *, code_path: Sequence[str] = (),
                 allow_code: bool = False) -> tuple[Callable[..., Any], str]:
    """``"chatterbox"`` or ``"eval:chatterbox"`` (registered names) or ``"package.module:function"`` (called as
    ``fn(params, seed=seed)``) -> ``(function, convention)``.

    A ``module:function`` target is imported only with ``allow_code``; it is looked up in each ``code_path``
    folder, then on the import path without the current folder, then in ``search_dir`` (the sweep file's folder)
    (``emu.plugins.import_ref``)."""
    if not isinstance(target, str) or not target:
        raise EvalNotFound(f"eval: expected a registered name or 'module:function', got {target!r}")
    from emu.apps.registry import get as get_app, names as app_names

    name = target[len("eval:"):] if target.startswith("eval:") else target
    if ":" in name:
        if not allow_code:
            raise CodeNotAllowed(f"eval: {target!r} is Python code, imported and run by the sweep; allow it with "
                                 "allow_code = true in the sweep file or --allow-code (Sweep(..., allow_code=True))")
        path, style = name, "params"
    elif name in EVAL_REGISTRY:
        path, style = EVAL_REGISTRY[name], "params"
    elif name in app_names():
        try:
            spec = get_app(name)
        except (ImportError, ValueError) as exc:
            raise EvalNotFound(f"eval: app {name!r} cannot be loaded: {exc}") from None
        if spec.evaluate is None:
            raise EvalNotFound(f"eval: app {name!r} has no evaluation")
        return spec.run_evaluation, "app"
    else:
        raise EvalNotFound(f"eval: unknown {target!r}; registered: {sorted(EVAL_REGISTRY) + app_names()} "
                           "(or give 'package.module:function')")
    module_name, _, attr = path.partition(":")
    from emu.plugins import import_ref

    try:
        fn = import_ref(path, f"eval {target!r}", code_path=code_path, beside=[search_dir] if search_dir else [],
                        trust_cwd=False)
    except ImportError as exc:
        raise EvalNotFound(f"eval: {target!r} -> {path}: cannot import {module_name}: {exc}") from None
    except ValueError as exc:  # no such attribute (or the module raised ValueError on import)
        raise EvalNotFound(f"eval: {target!r} -> {path}: {exc}") from None
    if not callable(fn):
        raise EvalNotFound(f"eval: {target!r} -> {path}: {module_name} has no function {attr!r}")
    return fn, style


def dummy_eval(params: dict, *, seed: int) -> dict:
    """A registered evaluation for tests: deterministic in ``(params, seed)``; can burn CPU, fail or crash.

    params: ``x`` (float, default 0), ``work`` (loop iterations of numpy work, default 0), ``fail`` (raise a
    ValueError), ``crash_if_exists`` (a path: if that file exists, kill this worker process with ``os._exit``),
    ``sleep_s`` (sleep first).
    Returns ``{"value": x + noise, "noise": N(0, 1) draw, "checksum": float}``.
    """
    from emu.rng import SeedTree

    if params.get("sleep_s"):
        time.sleep(float(params["sleep_s"]))
    crash = params.get("crash_if_exists")
    if crash and os.path.exists(crash):
        os._exit(13)  # what a segfault or an OOM kill looks like to the driver
    if params.get("fail"):
        raise ValueError(f"dummy_eval: asked to fail (x={params.get('x')!r})")
    rng = SeedTree(seed).rng("dummy")
    noise = float(rng.normal())
    checksum = 0.0
    for _ in range(int(params.get("work", 0))):
        checksum += float(rng.random(1000).sum())
    return {"value": float(params.get("x", 0.0)) + noise, "noise": noise, "checksum": checksum}


def rows_from(value: Any, where: str, key: str = "key") -> list[dict]:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [{key: k, **v} for k, v in value.items()]  # {group: {metric: value}} -> one row per group
    if isinstance(value, dict):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise TypeError(f"{where}: must return a dict of metrics, a list of dicts or a DataFrame, "
                    f"got {type(value).__name__}")


def run_scenario_task(payload: dict) -> list[dict]:
    """One row per flow (``RunResult.flows(start_s=warmup_s)``, ACK flows left out) and one per app endpoint
    (``RunResult.apps()``: ``name``, ``app``, ``scheme``, ``done`` as 0/1 and the app's metrics; no ``flow``)."""
    from emu.scenario import Scenario

    scenario = Scenario.from_dict(payload["raw"], source=payload["source"])
    result = scenario.run(seed=payload["seed"])
    rows = result.flows(payload.get("warmup_s", 0.0)).to_dict(orient="records")
    for app in result.apps().to_dict(orient="records"):
        app["done"] = float(bool(app["done"]))
        rows.append(app)
    return rows


def run_eval_task(payload: dict) -> list[dict]:
    fn, style = resolve_eval(payload["eval"], payload.get("search_dir"), code_path=payload.get("code_path", ()),
                             allow_code=payload.get("allow_code", False))
    params, where = payload["eval_params"], f"eval {payload['eval']!r}"
    if style == "app":
        kwargs = dict(params)
        schemes = kwargs.pop("schemes", None)
        schemes = tuple(schemes) if schemes is not None else None
        return rows_from(fn(schemes=schemes, seed=payload["seed"], **kwargs), where, key="scheme")
    return rows_from(fn(params, seed=payload["seed"]), where)


def execute_task(payload: dict) -> dict:
    """Run one task; return its outcome (never raises for the task's own errors)."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        if payload["kind"] == "scenario":
            rows = run_scenario_task(payload)
        else:
            rows = run_eval_task(payload)
        outcome = {"status": "done", "rows": rows}
    except (Exception, SystemExit) as exc:  # a task's failure is data, not the end of the sweep
        outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    # cpu_s well below wall_s means the task waited for a core (other load) or for I/O
    outcome.update(wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu, pid=os.getpid())
    return outcome
