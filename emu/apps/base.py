"""The App contract: how an application plugs into the emulator as an endpoint pair (DESIGN.md, "App").

An app is described once, by an ``AppSpec``: its name, a frozen config dataclass for one endpoint pair, its
schemes (or policies), how to install one pair between two hosts of any network, its evaluation against its
baselines (``emu eval APP``) and its trainers (``emu train NAME``). Every reference to code is a
``"module:attribute"`` string, imported on first use, so listing the apps never imports torch.

An installed pair is an ``Endpoint``: it starts itself at ``start_s``, says when it is ``done`` and returns its
metrics from ``result()`` (SI suffixes in the names: ``_s``, ``_bytes``, ``_bps``). ``emu.apps.install`` is the one
way to put an app on a network; ``RunResult(sim).apps()`` reads every installed endpoint back as a table.

    from emu import Sim
    from emu.apps import install
    from emu.topologies import access_bottleneck

    sim = Sim(seed=1)
    topo = access_bottleneck(sim, pairs=2, rate="10Mbps", rtt_s=0.05)
    chat = install(topo.net, "chatterbox", src=topo.senders[0], dst=topo.receivers[0], n_responses=2)
    bulk = install(topo.net, "bulk", src=topo.senders[1], dst=topo.receivers[1], scheme="cubic")
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from emu.plugins import import_ref

Ref = Union[str, Callable[..., Any], type]


def resolve_ref(ref: Ref, what: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now); objects pass through unchanged."""
    return import_ref(ref, what) if isinstance(ref, str) else ref


@dataclass(frozen=True)
class AppSpec:
    """Everything the emulator needs to know about one application.

    Args:
        name: registry name (``emu eval NAME``, ``[[app]] type = "NAME"``); lower case, no spaces.
        summary: one line for ``--help`` and ``emu apps``.
        config: the frozen dataclass of one endpoint pair's parameters (``install(..., **params)``).
        schemes: the schemes or policies one endpoint can run; the first is the default.
        install: ``fn(ctx: InstallContext) -> Endpoint``.
        eval_config: the frozen dataclass of ``emu eval NAME`` (its fields become ``--flags``); None: no eval.
        evaluate: ``fn(config, *, schemes: tuple[str, ...], seed: int) -> {scheme: {metric: value}}``.
        trainers: ``{name: "module:function"}``; each ``fn(*, seed: int, out_dir: str | None) -> dict``.
        metrics: headline metrics, the columns of the printed eval table (all metrics go to ``--json``).
        eval_schemes: the schemes ``emu eval`` runs by default (default: ``schemes``); some evaluations
            compare more variants than one endpoint runs (an oracle, per-level baselines).
        cli: optional ``"module:attribute"`` of an object with ``add_arguments(parser)`` and
            ``run(args, config) -> int | None`` for app-specific modes of ``emu eval`` (None: the normal eval).
    """

    name: str
    summary: str
    config: Ref
    schemes: tuple[str, ...]
    install: Ref
    eval_config: Optional[Ref] = None
    evaluate: Optional[Ref] = None
    trainers: Mapping[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    eval_schemes: Optional[tuple[str, ...]] = None
    cli: Optional[Ref] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.replace("_", "").replace("-", "").isalnum() \
                or self.name != self.name.lower():
            raise ValueError(f"AppSpec.name: lower-case letters, digits, '-' and '_' only, got {self.name!r}")
        if not isinstance(self.schemes, tuple) or not self.schemes or not all(isinstance(s, str) for s in self.schemes):
            raise ValueError(f"AppSpec {self.name!r}: schemes must be a non-empty tuple of names")
        if (self.evaluate is None) != (self.eval_config is None):
            raise ValueError(f"AppSpec {self.name!r}: give both eval_config and evaluate, or neither")

    # -- lazy parts ---------------------------------------------------------------------------------------------

    def config_class(self) -> type:
        return resolve_ref(self.config, f"app {self.name!r}: config")

    def eval_config_class(self) -> type:
        if self.eval_config is None:
            raise ValueError(f"app {self.name!r} has no evaluation")
        return resolve_ref(self.eval_config, f"app {self.name!r}: eval_config")

    def default_eval_schemes(self) -> tuple[str, ...]:
        return tuple(self.eval_schemes or self.schemes)

    def check_scheme(self, scheme: Optional[str], *, evaluation: bool = False) -> str:
        valid = self.default_eval_schemes() if evaluation else self.schemes
        if evaluation:
            valid = tuple(dict.fromkeys(valid + self.schemes))
        if scheme is None:
            return self.schemes[0]
        if scheme not in valid:
            raise ValueError(f"app {self.name!r}: unknown scheme {scheme!r}; valid: {', '.join(valid)}")
        return scheme

    def make_config(self, params: Mapping[str, Any], *, evaluation: bool = False) -> Any:
        """The config (or eval config) dataclass built from ``params``; unknown names list the valid fields."""
        cls = self.eval_config_class() if evaluation else self.config_class()
        return build_config(cls, params, f"app {self.name!r}")

    def run_evaluation(self, config: Any = None, *, schemes: Optional[tuple[str, ...]] = None, seed: int = 0,
                       **overrides: Any) -> dict[str, dict]:
        """``{scheme: metrics}``: the app against its baselines (what ``emu eval NAME`` prints)."""
        if self.evaluate is None:
            raise ValueError(f"app {self.name!r} has no evaluation")
        if config is None:
            config = self.make_config(overrides, evaluation=True)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        schemes = tuple(schemes) if schemes else self.default_eval_schemes()
        for s in schemes:
            self.check_scheme(s, evaluation=True)
        fn = resolve_ref(self.evaluate, f"app {self.name!r}: evaluate")
        return fn(config, schemes=schemes, seed=int(seed))


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def build_config(cls: type, params: Mapping[str, Any], where: str) -> Any:
    """``cls(**params)`` with unknown names reported against the valid ones (and ``__post_init__`` checks)."""
    valid = config_fields(cls)
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(valid) or '(none)'}")
    try:
        return cls(**params)
    except TypeError as exc:  # a wrong type the dataclass itself refuses
        raise ValueError(f"{where}: {exc}") from None


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of a dataclass field (``Optional[X]`` -> ``X``), for CLI and TOML parsing."""
    hints = typing.get_type_hints(cls)
    tp = hints[name]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is Union or type(tp).__name__ == "UnionType":
        return args[0] if len(args) == 1 else tp
    return tp


@dataclass(frozen=True)
class InstallContext:
    """What an app's ``install`` function gets: where to put the pair and with which parameters.

    ``src`` is the sender/server side, ``dst`` the receiver/client side. Every flow the endpoint opens is named
    from ``name`` (``f"{name}.data"``), so two instances of one app coexist on one network.
    """

    sim: Any
    net: Any
    src: Any
    dst: Any
    name: str
    scheme: str
    start_s: float
    config: Any


class Endpoint:
    """One installed endpoint pair of an app. Subclasses set up their sockets in ``__init__`` and implement
    ``start``, ``done`` and ``result``."""

    app: str = ""

    def __init__(self, ctx: InstallContext) -> None:
        self.ctx = ctx
        self.sim = ctx.sim
        self.name = ctx.name
        self.scheme = ctx.scheme
        self.start_s = float(ctx.start_s)
        self.config = ctx.config

    def start(self) -> None:
        """Schedule the first event at ``start_s`` (called once by ``install``)."""
        raise NotImplementedError

    @property
    def done(self) -> bool:
        """True once the endpoint has finished its work (a session, a fetch, a transfer)."""
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        """The app's metrics so far, SI suffixes in names; numbers (NaN where undefined) or short strings."""
        raise NotImplementedError

    def row(self) -> dict[str, Any]:
        """One row of ``RunResult.apps()``."""
        out: dict[str, Any] = {"name": self.name, "app": self.app, "scheme": self.scheme,
                               "start_s": self.start_s, "done": bool(self.done)}
        for key, value in self.result().items():
            if key in out:
                raise ValueError(f"app {self.app!r}: result() key {key!r} clashes with a reserved column")
            out[key] = value
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, app={self.app!r}, scheme={self.scheme!r})"


def finite_or_nan(x: Optional[float]) -> float:
    return float(x) if x is not None and math.isfinite(float(x)) else float("nan")
