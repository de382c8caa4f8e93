"""Scenario files: a TOML description of a topology, flows, apps and run settings, parsed as data (never executed).

Example (``examples/l4s_trace.toml``, shortened; ``docs/scenarios.md`` is the full reference)::

    name = "l4s-trace"
    seed = 1
    duration = "20s"
    randomize = {trace_offset = true, start_jitter = "100ms"}   # optional: per-seed variation

    [topology]            # a helper: "dumbbell", "access_bottleneck" or "chain"; or [[host]], [[router]], [[link]]
    kind = "access_bottleneck"
    pairs = 3
    trace = "mahimahi/Verizon-LTE-short.down"   # relative to this file, or to the shared traces folder
    rtt = "40ms"
    queue = "dualpi2"

    [[flow]]
    name = "prague0"
    type = "stream"       # the reliable TCP-like transport; or cbr | poisson | onoff | bulk (open-loop UDP)
    cc = "prague"         # any registered CC (emu.transport.cc.cc_names(), plugins included)
    src = "s0"
    dst = "d0"

    [[app]]
    name = "chat"
    type = "chatterbox"   # any registered app (emu.apps.names()), installed with emu.apps.install
    src = "s2"
    dst = "d2"
    [app.params]
    n_responses = 3

    [[capture]]           # optional: a pcap of one link (emu.pcap); written by `emu run` into the results folder
    link = "left->right"
    point = "egress"      # egress (leaving the queue, after marking) | ingress (arriving at the link)
    snaplen = 128         # bytes kept per packet (headers, then zeros)

Build order (what the Python API must repeat to get the same records): the network, then every ``[[flow]]`` in
file order, then every ``[[app]]`` in file order. Every error names the place in the file (``flow[2].rate``,
``app[1].params.n_responses``) and, for names, lists the valid ones.
"""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from emu.units import parse_rate_bps, parse_size_bytes, parse_time_s
from emu.validate import (
    MAX_DELAY_S, MAX_DURATION_S, MAX_TRANSFER_BYTES, check_bool, check_str, parse_rate_field, parse_size_field,
    parse_time_field,
)

TOP_KEYS = {"name", "seed", "duration", "record", "description", "topology", "host", "router", "link", "flow", "app",
            "randomize", "timeseries", "capture"}
CAPTURE_KEYS = {"link", "point", "snaplen", "file"}
TOPOLOGY_KEYS = {
    "dumbbell": {"kind", "pairs", "bottleneck_rate", "bottleneck_delay", "access_rate", "access_delay", "queue",
                 "queue_params", "trace", "trace_offset", "reverse_rate", "loss"},
    "access_bottleneck": {"kind", "pairs", "rate", "trace", "trace_offset", "rtt", "loss", "queue", "queue_params",
                          "reverse_rate"},
    "chain": {"kind", "routers", "rate", "delay", "queue", "queue_params"},
}
LINK_KEYS = {"from", "to", "rate", "delay", "mtu", "queue", "queue_params", "trace", "trace_offset", "loss", "jitter",
             "duplex", "reverse_rate", "reverse_trace"}
_OPEN_LOOP_KEYS = {"name", "type", "src", "dst", "rate", "size", "start", "stop", "ecn"}
FLOW_KEYS = {
    "cbr": _OPEN_LOOP_KEYS,
    "poisson": _OPEN_LOOP_KEYS,
    "onoff": _OPEN_LOOP_KEYS | {"on_mean", "off_mean"},
    "bulk": _OPEN_LOOP_KEYS | {"total"},
    "stream": {"name", "type", "src", "dst", "cc", "cc_params", "size", "start", "stop", "ecn"},
}
APP_KEYS = {"name", "type", "scheme", "src", "dst", "start", "params"}
RANDOMIZE_KEYS = {"trace_offset", "start_jitter"}
ECN_NAMES = {"not-ect": 0, "ect1": 1, "ect0": 2}
MAX_SCENARIO_BYTES = 16 << 20   # a scenario file is a description, not data


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and the field."""


@dataclass(frozen=True)
class Randomize:
    """Opt-in per-seed variation (``randomize = {trace_offset = true, start_jitter = "100ms"}``).

    ``trace_offset``: every trace-driven link starts at an offset drawn uniformly from its trace period;
    ``start_jitter_s``: every flow's and app's start is delayed by a uniform draw from ``[0, start_jitter_s)``.
    Draws come from ``sim.rng("scenario.randomize/...")`` streams named after the link, flow or app, so the seed
    decides them and adding a flow leaves the others' draws alone.
    """

    trace_offset: bool = False
    start_jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.trace_offset, bool):
            raise ValueError(f"randomize.trace_offset: must be true or false, got {self.trace_offset!r}")
        if not 0.0 <= self.start_jitter_s < 3600.0:
            raise ValueError(f"randomize.start_jitter: must be in [0, 1h), got {self.start_jitter_s!r} s")

    @property
    def active(self) -> bool:
        return self.trace_offset or self.start_jitter_s > 0

    def jitter_s(self, sim: Any, kind: str, name: str) -> float:
        if not self.start_jitter_s > 0:
            return 0.0
        return float(sim.rng(f"scenario.randomize/start/{kind}/{name}").uniform(0.0, self.start_jitter_s))

    def offset_s(self, sim: Any, link: str, trace: Any, given: Any, where: str) -> Any:
        """The trace offset of one link: ``given`` unless randomised (then giving one is an error)."""
        if not self.trace_offset or trace is None:
            return given if given is not None else 0.0
        if given is not None:
            raise ScenarioError(f"{where}.trace_offset: set explicitly while randomize.trace_offset = true; "
                                "use one or the other")
        from emu.links.tracefile import load_trace

        period_s = load_trace(trace).period_s
        return float(sim.rng(f"scenario.randomize/trace_offset/{link}").uniform(0.0, period_s))


@dataclass
class Scenario:
    """A parsed scenario. ``build()`` makes a fresh ``Sim`` with the network, flows and apps, ready to run."""

    name: str
    seed: int
    duration_s: float
    record: str
    raw: dict[str, Any]
    source: str = "<dict>"
    description: str = ""
    randomize: Randomize = field(default_factory=Randomize)
    timeseries: tuple[str, ...] = ()                      # "cwnd", "queue": see emu.timeseries
    sinks: list[Any] = field(default_factory=list)        # open-loop flows' sinks (last build)
    streams: dict[str, Any] = field(default_factory=dict)  # stream flow name -> StreamSender (last build)
    apps: list[Any] = field(default_factory=list)         # installed app endpoints (last build)
    network: Any = None                                   # the Network of the last build
    _series: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- loading --------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Scenario":
        path = Path(path)
        if not path.exists():
            raise ScenarioError(f"{path}: scenario file not found")
        if not path.is_file():
            raise ScenarioError(f"{path}: not a file")
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"{path}: {path.stat().st_size} bytes, larger than the limit of {MAX_SCENARIO_BYTES} "
                                "bytes for a scenario file")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"{path}: not a text file (undecodable byte at offset {exc.start})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> "Scenario":
        def fail(msg: str) -> ScenarioError:
            return ScenarioError(f"{source}: {msg}")

        unknown = set(raw) - TOP_KEYS
        if unknown:
            raise fail(f"unknown key(s) {sorted(unknown)}; valid: {sorted(TOP_KEYS)}")
        if "duration" not in raw:
            raise fail("duration: missing (e.g. duration = \"10s\")")
        try:
            duration_s = parse_time_field("duration", raw["duration"], lo=0, lo_open=True, hi=MAX_DURATION_S)
        except ValueError as exc:
            raise fail(str(exc)) from None
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise fail(f"seed: must be a non-negative integer, got {seed!r}")
        record = raw.get("record", "full")
        if record not in ("full", "summary"):
            raise fail(f"record: must be 'full' or 'summary', got {record!r}")
        for key in ("name", "description"):
            if key in raw and not isinstance(raw[key], str):
                raise fail(f"{key}: must be a string, got {raw[key]!r}")
        if "topology" in raw and any(k in raw for k in ("host", "router", "link")):
            raise fail("give either [topology] or [[host]]/[[router]]/[[link]] tables, not both")
        if "topology" not in raw and "link" not in raw:
            raise fail("no network: add a [topology] table or [[link]] tables")
        for key in ("flow", "app", "host", "router", "link", "capture"):
            if key in raw and not isinstance(raw[key], list):
                raise fail(f"{key}: expected an array of tables ([[{key}]]), got {type(raw[key]).__name__}")
        randomize = _randomize(raw.get("randomize"), source)
        timeseries = check_timeseries(raw.get("timeseries", []), f"{source}: timeseries")
        scenario = cls(name=str(raw.get("name", Path(source).stem)), seed=seed, duration_s=duration_s,
                       record=record, raw=raw, source=source, description=str(raw.get("description", "")),
                       randomize=randomize, timeseries=timeseries)
        scenario.build()  # validate everything now, before anything runs or is written
        return scenario

    # -- building -------------------------------------------------------------------------------------------------

    def build(self, seed: Optional[int] = None):
        """Return ``(sim, network)`` for this scenario; ``seed`` overrides the file's.

        Order: the network, every ``[[flow]]`` (file order), every ``[[app]]`` (file order).
        """
        from emu.sim import Sim
        from emu.timeseries import TraceHub

        hub = TraceHub() if self.timeseries else None
        sim = Sim(self.seed if seed is None else seed, record=self.record, tracer=hub)
        try:
            net = self._network(sim)
            self.network = net
            self.sinks, self.streams = self._flows(sim, net)
            self.apps = self._apps(sim, net)
            self._series = _timeseries_recorders(hub, net, self.timeseries) if hub is not None else {}
            self._capture_specs(net)
            sim.check_wiring()   # routes: a flow or app to an unreachable host fails here, naming it
        except ScenarioError:
            raise
        except (ValueError, FileNotFoundError) as exc:
            raise ScenarioError(f"{self.source}: {exc}") from None
        if not self.sinks and not self.streams and not self.apps:
            raise ScenarioError(f"{self.source}: no [[flow]] or [[app]] tables: nothing would be sent")
        return sim, net

    def _network(self, sim):
        raw, src = self.raw, self.source
        if "topology" in raw:
            topo = dict(raw["topology"])
            kind = topo.get("kind")
            if not isinstance(kind, str) or kind not in TOPOLOGY_KEYS:
                raise ScenarioError(f"{src}: topology.kind: unknown {kind!r}; valid: {sorted(TOPOLOGY_KEYS)}")
            where = f"{src}: topology"
            _check_keys(topo, TOPOLOGY_KEYS[kind], where)
            try:
                return self._topology(sim, kind, topo, where)
            except ScenarioError:
                raise
            except (ValueError, FileNotFoundError) as exc:
                head, sep, rest = str(exc).partition(":")
                if sep and head in topo:
                    raise ScenarioError(f"{where}.{head}:{rest}") from None
                raise ScenarioError(f"{where}: {exc}") from None
        return self._links(sim)

    def _topology(self, sim, kind: str, topo: dict, where: str):
        from emu.net import chain, dumbbell

        trace = _trace_path(topo.get("trace"), self.source)
        offset = self.randomize.offset_s(sim, "left->right", trace, topo.get("trace_offset"), where) \
            if kind != "chain" else 0.0
        if kind == "dumbbell":
            return dumbbell(
                sim, topo.get("pairs", 1),
                bottleneck_rate=topo.get("bottleneck_rate", "10Mbps"),
                bottleneck_delay=topo.get("bottleneck_delay", "10ms"),
                access_rate=topo.get("access_rate", "1Gbps"), access_delay=topo.get("access_delay", 0.0),
                queue=topo.get("queue", "droptail"), queue_params=topo.get("queue_params"),
                trace=trace, trace_offset=offset, reverse_rate=topo.get("reverse_rate"),
                loss=_loss(topo.get("loss"), f"{where}.loss"))
        if kind == "access_bottleneck":
            from emu.topologies import ACCESS_RATE, access_bottleneck

            rate = topo.get("rate")
            if (rate is None) == (trace is None):
                raise ScenarioError(f"{where}: give exactly one of rate or trace")
            return access_bottleneck(
                sim, pairs=topo.get("pairs", 1), rate=rate, trace=trace, trace_offset=offset,
                rtt_s=parse_time_field(f"{where}.rtt", topo.get("rtt", "100ms"), hi=10.0),
                loss=_loss(topo.get("loss"), f"{where}.loss"), queue=topo.get("queue", "droptail"),
                queue_params=topo.get("queue_params"),
                reverse_rate=topo.get("reverse_rate", ACCESS_RATE)).net
        return chain(sim, topo.get("routers", 2), rate=topo.get("rate", "10Mbps"),
                     delay=topo.get("delay", "5ms"), queue=topo.get("queue", "droptail"),
                     queue_params=topo.get("queue_params"))

    def _links(self, sim):
        from emu.net import Network

        raw, src, rnd = self.raw, self.source, self.randomize
        net = Network(sim)
        for kind in ("host", "router"):
            for i, node in enumerate(raw.get(kind, [])):
                _check_keys(node, {"name"}, f"{src}: {kind}[{i}]")
                if "name" not in node:
                    raise ScenarioError(f"{src}: {kind}[{i}].name: missing")
                try:
                    getattr(net, kind)(check_str(f"{src}: {kind}[{i}].name", node["name"]))
                except ValueError as exc:
                    raise ScenarioError(_within(f"{src}: {kind}[{i}]", exc)) from None
        for i, spec in enumerate(raw.get("link", [])):
            where = f"{src}: link[{i}]"
            _check_keys(spec, LINK_KEYS, where)
            for key in ("from", "to"):
                if key not in spec:
                    raise ScenarioError(f"{where}.{key}: missing")
                if not isinstance(spec[key], str):
                    raise ScenarioError(f"{where}.{key}: must be a node name (a string), got {spec[key]!r}")
            try:
                trace = _trace_path(spec.get("trace"), src)
                offset = rnd.offset_s(sim, f"{spec['from']}->{spec['to']}", trace, spec.get("trace_offset"), where)
                net.link(spec["from"], spec["to"], rate=spec.get("rate"), delay=spec.get("delay", 0.0),
                         queue=spec.get("queue"), queue_params=spec.get("queue_params"),
                         trace=trace, trace_offset=offset, loss=_loss(spec.get("loss"), where + ".loss"),
                         jitter=_jitter(spec.get("jitter"), where + ".jitter"),
                         mtu_bytes=spec.get("mtu"),
                         duplex=spec.get("duplex", True), reverse_rate=spec.get("reverse_rate"),
                         reverse_trace=_trace_path(spec.get("reverse_trace"), src))
            except ScenarioError:
                raise
            except (ValueError, FileNotFoundError) as exc:
                raise ScenarioError(f"{where}: {exc}") from None
        net.build_routes()
        return net

    def _flows(self, sim, net) -> tuple[list[Any], dict[str, Any]]:
        from emu.apps.traffic import SOURCES, Sink

        src_name = self.source
        sinks: list[Any] = []
        streams: dict[str, Any] = {}
        next_port: dict[str, int] = {}
        hosts = net.hosts
        seen = set()
        for i, spec in enumerate(self.raw.get("flow", [])):
            where = f"{src_name}: flow[{i}]"
            if not isinstance(spec, dict):
                raise ScenarioError(f"{where}: expected a table")
            kind = spec.get("type")
            if not isinstance(kind, str) or kind not in FLOW_KEYS:
                raise ScenarioError(f"{where}.type: unknown {kind!r}; valid: {sorted(FLOW_KEYS)}")
            _check_keys(spec, FLOW_KEYS[kind], where)
            name = spec.get("name", f"flow{i}")
            if not isinstance(name, str) or not name:
                raise ScenarioError(f"{where}.name: expected a non-empty string, got {name!r}")
            if name in seen:
                raise ScenarioError(f"{where}.name: {name!r} is used twice")
            seen.add(name)
            for key in ("src", "dst"):
                if not isinstance(spec.get(key), str) or spec[key] not in hosts:
                    raise ScenarioError(f"{where}.{key}: unknown host {spec.get(key)!r}; hosts: {_some(hosts)}")
            if spec["src"] == spec["dst"]:
                raise ScenarioError(f"{where}.dst: same host as src ({spec['src']!r})")
            try:
                start_s = self._start_s(spec, where)
                start_s += self.randomize.jitter_s(sim, "flow", name)
                stop_s = parse_time_field(f"{where}.stop", spec["stop"]) if "stop" in spec else None
                if kind == "stream":
                    streams[name] = _stream(sim, hosts, spec, name, start_s, stop_s, where)
                    continue
                port = next_port.get(spec["dst"], 5000)
                next_port[spec["dst"]] = port + 1
                kwargs: dict[str, Any] = {
                    "flow": name,
                    "size_bytes": parse_size_field(f"{where}.size", spec.get("size", 1500)),
                    "dport": port,
                    "start_s": start_s,
                    "stop_s": stop_s,
                }
                ecn = spec.get("ecn", "not-ect")
                if not isinstance(ecn, str) or ecn not in ECN_NAMES:
                    raise ScenarioError(f"{where}.ecn: unknown {ecn!r}; valid: {sorted(ECN_NAMES)}")
                kwargs["ecn"] = ECN_NAMES[ecn]
                if "rate" not in spec:
                    raise ScenarioError(f"{where}.rate: missing (e.g. rate = \"10Mbps\")")
                kwargs["rate_bps"] = parse_rate_field(f"{where}.rate", spec["rate"])
                if kind == "onoff":
                    for key in ("on_mean", "off_mean"):
                        kwargs[f"{key}_s"] = parse_time_field(f"{where}.{key}", spec.get(key, 1.0), lo_open=True)
                if kind == "bulk":
                    if "total" not in spec:
                        raise ScenarioError(f"{where}.total: missing (bytes to send, e.g. total = \"10MB\")")
                    kwargs["total_bytes"] = parse_size_field(f"{where}.total", spec["total"], hi=MAX_TRANSFER_BYTES)
                sinks.append(Sink(sim, hosts[spec["dst"]], port))
                SOURCES[kind](sim, hosts[spec["src"]], spec["dst"], **kwargs)
            except ScenarioError:
                raise
            except ValueError as exc:
                raise ScenarioError(_within(where, exc)) from None
        return sinks, streams

    def _start_s(self, spec: dict, where: str) -> float:
        """A flow's or app's ``start``: in ``[0, duration)`` (one starting at or after the end would send nothing)."""
        start_s = parse_time_field(f"{where}.start", spec.get("start", 0.0))
        if start_s >= self.duration_s:
            raise ScenarioError(f"{where}.start: must be before the end of the run (duration {self.duration_s:g} s), "
                                f"got {spec.get('start')!r}: it would send nothing")
        return start_s

    def _apps(self, sim, net) -> list[Any]:
        """Every ``[[app]]`` through ``emu.apps.install`` (the one way to put an app on a network)."""
        import emu.apps

        endpoints = []
        hosts = net.hosts
        for i, spec in enumerate(self.raw.get("app", [])):
            where = f"{self.source}: app[{i}]"
            if not isinstance(spec, dict):
                raise ScenarioError(f"{where}: expected a table")
            _check_keys(spec, APP_KEYS, where)
            kind = spec.get("type")
            if kind not in emu.apps.names():
                raise ScenarioError(f"{where}.type: unknown app {kind!r}; registered: {', '.join(emu.apps.names())}")
            try:
                app = emu.apps.get(kind)
            except ValueError as exc:
                raise ScenarioError(f"{where}.type: {exc}") from None
            scheme = spec.get("scheme")
            if scheme is not None and scheme not in app.schemes:
                raise ScenarioError(f"{where}.scheme: unknown {scheme!r} for app {kind!r}; "
                                    f"valid: {', '.join(app.schemes)}")
            for key in ("src", "dst"):
                if not isinstance(spec.get(key), str) or spec[key] not in hosts:
                    raise ScenarioError(f"{where}.{key}: unknown host {spec.get(key)!r}; hosts: {_some(hosts)}")
            name = spec.get("name")
            taken = {ep.name for ep in sim.apps} | set(sim.records.flow_names)
            if name is not None and name in taken:
                raise ScenarioError(f"{where}.name: {name!r} is used already (by a flow or an app)")
            params = _app_params(app, spec.get("params", {}), f"{where}.params")
            try:
                start_s = self._start_s(spec, where)
            except ScenarioError:
                raise
            except ValueError as exc:
                raise ScenarioError(_within(where, exc)) from None
            start_s += self.randomize.jitter_s(sim, "app", name if name is not None else f"#{i}")
            try:
                endpoints.append(emu.apps.install(net, kind, src=spec["src"], dst=spec["dst"], name=name,
                                                  scheme=scheme, start_s=start_s, **params))
            except (ValueError, FileNotFoundError) as exc:
                raise ScenarioError(_name_field(str(exc), where, params)) from None
        return endpoints

    def _capture_specs(self, net) -> list[dict[str, Any]]:
        """The ``[[capture]]`` tables, checked against the built network: link, point, snaplen, file."""
        from emu.pcap import DEFAULT_SNAPLEN_BYTES, check_point, check_snaplen, default_file_name

        specs, files = [], set()
        links = sorted(link.name for link in net.links.values())
        for i, spec in enumerate(self.raw.get("capture", [])):
            where = f"{self.source}: capture[{i}]"
            _check_keys(spec, CAPTURE_KEYS, where)
            link = spec.get("link")
            if link not in links:
                raise ScenarioError(f"{where}.link: unknown link {link!r}; links: {', '.join(links)}")
            try:
                point = check_point(spec.get("point", "egress"))
            except ValueError as exc:
                raise ScenarioError(f"{where}.{exc}") from None
            try:
                snaplen = check_snaplen(spec.get("snaplen", DEFAULT_SNAPLEN_BYTES))
            except ValueError as exc:
                raise ScenarioError(f"{where}.{exc}") from None
            file = spec.get("file", default_file_name(link, point))
            if not isinstance(file, str) or Path(file).name != file or not file.endswith(".pcap") or file == ".pcap":
                raise ScenarioError(f"{where}.file: expected a plain file name ending in .pcap (no folders), "
                                    f"got {file!r}")
            if file in files:
                raise ScenarioError(f"{where}.file: {file!r} is used by two captures")
            files.add(file)
            specs.append({"link": link, "point": point, "snaplen": snaplen, "file": file})
        return specs

    def run(self, *, seed: Optional[int] = None, progress: bool = False,
            capture_dir: Optional[Union[str, Path]] = None):
        """Build, run for ``duration_s`` and return a ``RunResult``.

        ``capture_dir``: write the ``[[capture]]`` pcap files there (an existing folder); without it the captures
        are not made (sweeps run many seeds of one scenario; ``emu run`` puts them in the results folder).
        """
        from emu.results import RunResult

        sim, net = self.build(seed)
        captures = []
        if capture_dir is not None:
            folder = Path(capture_dir)
            if not folder.is_dir():
                raise FileNotFoundError(f"capture_dir: {folder} is not a folder")
            for spec in self._capture_specs(net):
                captures.append((spec, net.capture(spec["link"], folder / spec["file"], point=spec["point"],
                                                   snaplen=spec["snaplen"])))
        try:
            sim.run(self.duration_s, progress=progress, desc=self.name)
        finally:
            for _, capture in captures:
                capture.close()
        meta = {"scenario": self.name, "source": self.source, "seed": sim.seed, "duration_s": self.duration_s,
                "scenario_raw": self.raw}
        if self.randomize.active:
            meta["randomize"] = dataclasses.asdict(self.randomize)
        if captures:
            meta["captures"] = [{**spec, "packets": capture.packets, "addresses": capture.addresses}
                                for spec, capture in captures]
        series = {name: rec.frame() for name, rec in self._series.items()}
        return RunResult(sim, self.duration_s, meta=meta, timeseries=series)


def check_timeseries(value: Any, where: str) -> tuple[str, ...]:
    """``timeseries = ["cwnd", "queue"]`` -> a tuple of known kinds (``emu.timeseries.TIMESERIES_KINDS``)."""
    from emu.timeseries import TIMESERIES_KINDS

    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(f"{where}: expected a list such as [\"cwnd\", \"queue\"], got {value!r}")
    for kind in value:
        if kind not in TIMESERIES_KINDS:
            raise ScenarioError(f"{where}: unknown {kind!r}; valid: {', '.join(TIMESERIES_KINDS)}")
    return tuple(dict.fromkeys(value))


def _timeseries_recorders(hub: Any, net: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    from emu.timeseries import CwndSeries, QueueSeries, default_queue_links

    out: dict[str, Any] = {}
    if "cwnd" in kinds:
        out["cwnd"] = CwndSeries(hub)
    if "queue" in kinds:
        out["queue"] = QueueSeries(hub, default_queue_links(net))
    return out


def _stream(sim: Any, hosts: dict, spec: dict, name: str, start_s: float, stop_s: Optional[float],
            where: str) -> Any:
    """One ``type = "stream"`` flow: ``emu.transport.stream.open_stream`` with ``cc`` by registered name."""
    from emu.transport.cc import cc_class, cc_names
    from emu.transport.stream import open_stream

    cc = spec.get("cc", "cubic")
    try:
        cc_class(cc)
    except ValueError:
        raise ScenarioError(f"{where}.cc: unknown congestion control {cc!r}; valid: {', '.join(cc_names())}") \
            from None
    cc_params = spec.get("cc_params", {})
    if not isinstance(cc_params, dict):
        raise ScenarioError(f"{where}.cc_params: expected a table, got {type(cc_params).__name__}")
    ecn = spec.get("ecn")
    if ecn is not None and not isinstance(ecn, bool):
        raise ScenarioError(f"{where}.ecn: for streams true (classic ECN, ECT(0)) or false, got {ecn!r}")
    size = parse_size_field(f"{where}.size", spec["size"], hi=MAX_TRANSFER_BYTES) if "size" in spec else None
    if size is not None and stop_s is not None:
        raise ScenarioError(f"{where}.stop: only for unlimited streams (size is set)")
    try:
        sender, _ = open_stream(sim, hosts[spec["src"]], hosts[spec["dst"]], cc=cc, cc_params=cc_params, ecn=ecn,
                                flow=name, bulk=size is None, start_s=start_s, stop_s=stop_s)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if size is not None:
        sender.write(size)
    return sender


def _app_params(app: Any, params: Any, where: str) -> dict[str, Any]:
    """``[app.params]`` checked against the app's config fields; strings for ``_s``/``_bytes``/``_bps`` fields
    are parsed as units ("100ms", "2MB", "5Mbps")."""
    from emu.apps.base import config_fields

    if not isinstance(params, dict):
        raise ScenarioError(f"{where}: expected a table, got {type(params).__name__}")
    valid = config_fields(app.config_class())
    out = {}
    for key, value in params.items():
        if key not in valid:
            raise ScenarioError(f"{where}.{key}: unknown parameter of app {app.name!r}; "
                                f"valid: {', '.join(valid) or '(none)'}")
        if isinstance(value, str):
            parse = {"_s": parse_time_s, "_bytes": parse_size_bytes, "_bps": parse_rate_bps}
            for suffix, fn in parse.items():
                if key.endswith(suffix):
                    try:
                        value = fn(value, f"{where}.{key}")
                    except ValueError as exc:
                        raise ScenarioError(str(exc)) from None
                    break
        out[key] = value
    return out


def _name_field(message: str, where: str, params: dict) -> str:
    """``"n_responses: must be ..."`` from a config's ``__post_init__`` -> ``"<file>: app[1].params.n_responses:
    must be ..."``; other messages are put after ``where``."""
    head, sep, rest = message.partition(":")
    if sep and head in params:
        return f"{where}.params.{head}:{rest}"
    return f"{where}: {message}"


def _randomize(spec: Any, source: str) -> Randomize:
    if spec is None:
        return Randomize()
    where = f"{source}: randomize"
    _check_keys(spec, RANDOMIZE_KEYS, where)
    try:
        jitter = parse_time_s(spec.get("start_jitter", 0.0), "randomize.start_jitter")
        return Randomize(trace_offset=spec.get("trace_offset", False), start_jitter_s=jitter)
    except ValueError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def _check_keys(table: Any, valid: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table, got {type(table).__name__}")
    unknown = set(table) - valid
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(valid)}")


def _trace_path(value: Any, source: str) -> Any:
    """A relative trace path is looked up next to the scenario file, then as ``resolve_trace_path`` does (the
    current directory, then the shared traces folder: ``"mahimahi/Verizon-LTE-short.down"``); a ``shared:`` prefix
    means the shared traces folder only."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScenarioError(f"{source}: trace: expected a path string, got {value!r}")
    from emu.links.tracefile import require_shared_traces, resolve_trace_path

    if value.startswith("shared:"):
        return require_shared_traces() / value[len("shared:"):]
    path = Path(value).expanduser()
    if not path.is_absolute() and source != "<dict>":
        beside = Path(source).parent / path
        if beside.is_file():
            return beside
    return resolve_trace_path(path)


def _loss(spec: Any, where: str):
    if spec is None:
        return None
    from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig

    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a table")
    spec = dict(spec)
    model = spec.pop("model", "bernoulli")
    import dataclasses as _dc

    configs = {"bernoulli": BernoulliLossConfig, "gilbert-elliott": GilbertElliottLossConfig}
    if not isinstance(model, str):
        raise ScenarioError(f"{where}.model: must be bernoulli or gilbert-elliott, got {model!r}")
    if model in configs:
        _check_keys(spec, {f.name for f in _dc.fields(configs[model])}, where)
    try:
        if model == "bernoulli":
            return BernoulliLossConfig(**spec)
        if model == "gilbert-elliott":
            return GilbertElliottLossConfig(**spec)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    raise ScenarioError(f"{where}.model: unknown {model!r}; valid: bernoulli, gilbert-elliott")


def _jitter(spec: Any, where: str):
    if spec is None:
        return None
    from emu.links.impairments import JitterConfig

    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a table")
    _check_keys(spec, {"mean", "distribution", "reorder"}, where)
    try:
        return JitterConfig(mean_s=parse_time_field(f"{where}.mean", spec.get("mean", 0.0), hi=MAX_DELAY_S),
                            distribution=spec.get("distribution", "uniform"), reorder=spec.get("reorder", False))
    except ValueError as exc:
        raise ScenarioError(_within(where, exc)) from None


def _within(where: str, exc: Exception) -> str:
    """An error message placed in the file: ``where`` is put in front unless the message names the place already."""
    text = str(exc)
    return text if text.startswith(where.split(":")[0] + ":") else f"{where}: {text}"


def _some(names: Any, limit: int = 20) -> str:
    """A sorted list of names for an error message, cut after ``limit`` (a 10 000-host network stays one line)."""
    ordered = sorted(names)
    more = f" ... ({len(ordered) - limit} more)" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more
