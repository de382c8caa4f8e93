"""``emu eval APP``, ``emu train NAME`` and ``emu models``, generated from the registry: the same flags for every app.

    emu eval APP [--schemes a,b] [--trace PATH] [--seed S] [--json] [--models-dir DIR] [--FIELD VALUE ...]

Every field of the app's eval config is a ``--field-name`` flag (its default shown in ``--help``); ``--trace`` is
resolved the same way for every app (a path, or a path inside the shared traces folder, ``$EMU_TRACES_DIR``);
``--models-dir`` defaults to ``$EMU_MODELS_DIR/APP`` or the packaged models. ``--json`` prints one object keyed
by scheme; without it, a table of the app's headline metrics.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from typing import Any

from emu.apps.base import AppSpec, config_fields, field_type, resolve_ref
from emu.apps.registry import get, names

COMMON = ("schemes", "seed", "json")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _parser_type(tp: Any) -> Any:
    """An argparse ``type`` for a config field's annotation, or None when the field is not a plain value."""
    if tp is bool:
        return _bool
    if tp is int:
        return int
    if tp is float:
        return _finite_float
    if tp is str:
        return str
    return None


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return "(computed)"
    return "(required)"


def add_eval_parser(sub: Any, spec: AppSpec) -> None:
    cls = spec.eval_config_class()
    p = sub.add_parser(spec.name, help=spec.summary, description=f"{spec.summary}. Schemes: "
                       f"{', '.join(spec.default_eval_schemes())}.")
    p.add_argument("--schemes", default=None,
                   help=f"comma-separated schemes (default: {','.join(spec.default_eval_schemes())})")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by scheme")
    fields = config_fields(cls)
    for name, f in fields.items():
        if name in COMMON:
            continue
        tp = field_type(cls, name)
        conv = _parser_type(tp)
        if conv is None:
            continue  # nested configs are set from Python or scenario files, not flags
        meta_help = f.metadata.get("help", "") if f.metadata else ""
        if name == "models_dir":
            text = f"{meta_help} folder of the app's model cards (default: $EMU_MODELS_DIR/{spec.name}, else the " \
                   "packaged models)"
        else:
            extra = " (a path, or one inside the shared traces folder)" if name == "trace" else ""
            text = f"{meta_help}{extra} (default: {_default_text(f)})"
        p.add_argument(_flag(name), dest=f"cfg_{name}", type=conv, default=None, metavar=name.upper(),
                       help=text.strip())
    if spec.cli is not None:
        resolve_ref(spec.cli, f"app {spec.name!r}: cli").add_arguments(p)
    p.set_defaults(func=run_eval_command, app=spec.name)


def add_eval_parsers(sub: Any) -> None:
    """One ``emu eval APP`` sub-command per registered app with an evaluation."""
    for name in names():
        try:
            spec = get(name)
            if spec.evaluate is None:
                continue
            add_eval_parser(sub, spec)
        except (ImportError, ValueError) as exc:  # a broken plugin must not take the whole command line down
            broken = sub.add_parser(name, help=f"(unavailable: {exc})")
            broken.set_defaults(func=_unavailable(name, exc))


def _unavailable(name: str, exc: Exception):
    def run(args: argparse.Namespace) -> int:
        raise ValueError(f"app {name!r} cannot be evaluated: {exc}")
    return run


def config_from_args(spec: AppSpec, args: argparse.Namespace) -> Any:
    """The eval config from the flags given (unset flags keep the dataclass defaults); traces resolved."""
    from emu.links.tracefile import resolve_trace_path

    cls = spec.eval_config_class()
    params: dict[str, Any] = {}
    for name in config_fields(cls):
        value = getattr(args, f"cfg_{name}", None)
        if value is None:
            continue
        if name == "trace":
            value = str(resolve_trace_path(value))
        params[name] = value
    try:
        return spec.make_config(params, evaluation=True)
    except ValueError as exc:   # "burst: must be ..., got 0.5" + " (flag --burst)": the flag as typed
        text = str(exc)
        for name in params:
            if text.startswith(f"{name}:") or text.startswith(f"{name} ("):
                raise ValueError(f"{text} (flag {_flag(name)})") from None
        raise


def parse_schemes(spec: AppSpec, text: Any) -> tuple[str, ...]:
    if text is None:
        return spec.default_eval_schemes()
    schemes = tuple(s.strip() for s in str(text).split(",") if s.strip())
    if not schemes:
        raise ValueError("--schemes: give at least one scheme")
    for s in schemes:
        try:
            spec.check_scheme(s, evaluation=True)
        except ValueError as exc:
            raise ValueError(f"--schemes: {exc}") from None
    return schemes


def format_table(results: dict[str, dict], metrics: tuple[str, ...]) -> str:
    import pandas as pd

    frame = pd.DataFrame.from_dict(results, orient="index")
    cols = [m for m in metrics if m in frame.columns] or \
        [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, (int, float))).all()]
    frame = frame[cols]
    frame.index.name = "scheme"
    return frame.to_string(float_format=lambda x: f"{x:.4g}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def run_eval_command(args: argparse.Namespace) -> int:
    spec = get(args.app)
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    config = config_from_args(spec, args)
    schemes = parse_schemes(spec, args.schemes)
    if spec.cli is not None:
        code = resolve_ref(spec.cli, f"app {spec.name!r}: cli").run(args, config)
        if code is not None:
            return int(code)
    results = spec.run_evaluation(config, schemes=schemes, seed=args.seed)
    if args.json:
        print(json.dumps(_json_safe(results), indent=2))
    else:
        print(format_table(results, spec.metrics))
    return 0


def add_train_parsers(sub: Any) -> None:
    found: dict[str, tuple[str, str]] = {}
    for app in names():
        try:
            spec = get(app)
        except (ImportError, ValueError):
            continue  # ``emu eval APP`` reports why the app is unavailable
        for name, target in spec.trainers.items():
            if name in found:
                raise ValueError(f"trainer {name!r} is defined by both {found[name][0]!r} and {app!r}")
            found[name] = (app, target)
    for name, (app, target) in sorted(found.items()):
        one = sub.add_parser(name, help=f"rebuild the committed {app} model files '{name}' (model card included)")
        one.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
        one.add_argument("--out", default=None, help="write here instead of the packaged models folder")
        one.set_defaults(func=run_train_command, trainer=target, app=app)


def run_train_command(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    fn = resolve_ref(args.trainer, f"trainer {args.model!r}")
    summary = fn(seed=args.seed, out_dir=args.out)
    if summary is not None:
        print(json.dumps(_json_safe(summary), indent=2, default=str))
    return 0


def run_models_command(args: argparse.Namespace) -> int:
    """``emu models``: every model card, its files and headline metrics (``--json`` for the cards themselves)."""
    from emu.apps.artifacts import list_cards, models_root

    cards = list_cards(args.models_dir)
    if args.json:
        print(json.dumps([c.data for c in cards], indent=2, default=str))
        return 0
    print(f"models in {models_root(args.models_dir)}")
    for card in cards:
        size = sum(e["bytes"] for e in card.data["files"].values())
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in list(card.metrics.items())[:4] if isinstance(v, (int, float, str)))
        print(f"  {card.data['app']}/{card.name}: {len(card.data['files'])} file(s), {size / 1e6:.2f} MB, "
              f"seed {card.data['seed']}, steps {card.data['steps']}; {metrics}; rebuild: {card.data['command']}")
    return 0

