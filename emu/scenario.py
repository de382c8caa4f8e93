"""Scenario files: a TOML description of a topology, flows and run settings, parsed as data (never executed).

Example (``examples/dumbbell_codel.toml``)::

    name = "dumbbell-codel"
    seed = 1
    duration = "10s"

    [topology]            # a helper: "dumbbell" or "chain"; or list [[host]], [[router]], [[link]] yourself
    kind = "dumbbell"
    pairs = 2
    bottleneck_rate = "20Mbps"
    bottleneck_delay = "10ms"
    queue = "codel"

    [[flow]]
    name = "video"
    type = "cbr"          # cbr | poisson | onoff | bulk
    src = "s0"
    dst = "d0"
    rate = "8Mbps"

    [[capture]]           # optional: a pcap of one link (emu.pcap); written by `emu run` into the results folder
    link = "left->right"
    point = "egress"      # egress (leaving the queue, after marking) | ingress (arriving at the link)
    snaplen = 128         # bytes kept per packet (headers, then zeros)

Every error names the place in the file (``flow[2].rate``) and, for names, lists the valid ones.
"""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from emu.units import parse_rate_bps, parse_size_bytes, parse_time_s

TOP_KEYS = {"name", "seed", "duration", "record", "description", "topology", "host", "router", "link", "flow",
            "capture"}
CAPTURE_KEYS = {"link", "point", "snaplen", "file"}
TOPOLOGY_KEYS = {
    "dumbbell": {"kind", "pairs", "bottleneck_rate", "bottleneck_delay", "access_rate", "access_delay", "queue",
                 "queue_params", "trace", "reverse_rate", "loss"},
    "chain": {"kind", "routers", "rate", "delay", "queue", "queue_params"},
}
LINK_KEYS = {"from", "to", "rate", "delay", "mtu", "queue", "queue_params", "trace", "loss", "jitter", "duplex",
             "reverse_rate", "reverse_trace"}
FLOW_KEYS = {
    "cbr": {"name", "type", "src", "dst", "rate", "size", "start", "stop", "ecn"},
    "poisson": {"name", "type", "src", "dst", "rate", "size", "start", "stop", "ecn"},
    "onoff": {"name", "type", "src", "dst", "rate", "size", "start", "stop", "ecn", "on_mean", "off_mean"},
    "bulk": {"name", "type", "src", "dst", "rate", "size", "start", "stop", "ecn", "total"},
}
ECN_NAMES = {"not-ect": 0, "ect1": 1, "ect0": 2}


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and the field."""


@dataclass
class Scenario:
    """A parsed scenario. ``build()`` makes a fresh ``Sim`` with the network and flows, ready to run."""

    name: str
    seed: int
    duration_s: float
    record: str
    raw: dict[str, Any]
    source: str = "<dict>"
    description: str = ""
    sinks: list[Any] = field(default_factory=list)

    # -- loading --------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Scenario":
        path = Path(path)
        if not path.exists():
            raise ScenarioError(f"{path}: scenario file not found")
        try:
            raw = tomllib.loads(path.read_text())
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
            duration_s = parse_time_s(raw["duration"], "duration")
        except ValueError as exc:
            raise fail(str(exc)) from None
        if not duration_s > 0:
            raise fail(f"duration: must be > 0, got {raw['duration']!r}")
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise fail(f"seed: must be a non-negative integer, got {seed!r}")
        record = raw.get("record", "full")
        if record not in ("full", "summary"):
            raise fail(f"record: must be 'full' or 'summary', got {record!r}")
        if "topology" in raw and any(k in raw for k in ("host", "router", "link")):
            raise fail("give either [topology] or [[host]]/[[router]]/[[link]] tables, not both")
        if "topology" not in raw and "link" not in raw:
            raise fail("no network: add a [topology] table or [[link]] tables")
        scenario = cls(name=str(raw.get("name", Path(source).stem)), seed=seed, duration_s=duration_s,
                       record=record, raw=raw, source=source, description=str(raw.get("description", "")))
        scenario.build()  # validate everything now, before anything runs or is written
        return scenario

    # -- building -------------------------------------------------------------------------------------------------

    def build(self, seed: Optional[int] = None):
        """Return ``(sim, network)`` for this scenario; ``seed`` overrides the file's."""
        from emu.net import Network, chain, dumbbell
        from emu.sim import Sim

        raw = self.raw
        src = self.source
        sim = Sim(self.seed if seed is None else seed, record=self.record)
        try:
            if "topology" in raw:
                topo = dict(raw["topology"])
                kind = topo.get("kind")
                if kind not in TOPOLOGY_KEYS:
                    raise ScenarioError(f"{src}: topology.kind: unknown {kind!r}; valid: {sorted(TOPOLOGY_KEYS)}")
                _check_keys(topo, TOPOLOGY_KEYS[kind], f"{src}: topology")
                if kind == "dumbbell":
                    net = dumbbell(
                        sim, topo.get("pairs", 1),
                        bottleneck_rate=topo.get("bottleneck_rate", "10Mbps"),
                        bottleneck_delay=topo.get("bottleneck_delay", "10ms"),
                        access_rate=topo.get("access_rate", "1Gbps"), access_delay=topo.get("access_delay", 0.0),
                        queue=topo.get("queue", "droptail"), queue_params=topo.get("queue_params"),
                        trace=_trace_path(topo.get("trace"), src), reverse_rate=topo.get("reverse_rate"),
                        loss=_loss(topo.get("loss"), f"{src}: topology.loss"))
                else:
                    net = chain(sim, topo.get("routers", 2), rate=topo.get("rate", "10Mbps"),
                                delay=topo.get("delay", "5ms"), queue=topo.get("queue", "droptail"),
                                queue_params=topo.get("queue_params"))
            else:
                net = Network(sim)
                for kind in ("host", "router"):
                    for i, node in enumerate(raw.get(kind, [])):
                        _check_keys(node, {"name"}, f"{src}: {kind}[{i}]")
                        if "name" not in node:
                            raise ScenarioError(f"{src}: {kind}[{i}].name: missing")
                        getattr(net, kind)(node["name"])
                for i, spec in enumerate(raw.get("link", [])):
                    where = f"{src}: link[{i}]"
                    _check_keys(spec, LINK_KEYS, where)
                    for key in ("from", "to"):
                        if key not in spec:
                            raise ScenarioError(f"{where}.{key}: missing")
                    try:
                        net.link(spec["from"], spec["to"], rate=spec.get("rate"), delay=spec.get("delay", 0.0),
                                 queue=spec.get("queue"), queue_params=spec.get("queue_params"),
                                 trace=_trace_path(spec.get("trace"), src), loss=_loss(spec.get("loss"), where + ".loss"),
                                 jitter=_jitter(spec.get("jitter"), where + ".jitter"),
                                 mtu_bytes=spec.get("mtu"),
                                 duplex=spec.get("duplex", True), reverse_rate=spec.get("reverse_rate"),
                                 reverse_trace=_trace_path(spec.get("reverse_trace"), src))
                    except ScenarioError:
                        raise
                    except (ValueError, FileNotFoundError) as exc:
                        raise ScenarioError(f"{where}: {exc}") from None
                net.build_routes()
            self.sinks = self._flows(sim, net)
            self._capture_specs(net)
        except ScenarioError:
            raise
        except (ValueError, FileNotFoundError) as exc:
            raise ScenarioError(f"{src}: {exc}") from None
        return sim, net

    def _flows(self, sim, net) -> list[Any]:
        from emu.apps.traffic import SOURCES, Sink

        src_name = self.source
        sinks = []
        next_port: dict[str, int] = {}
        hosts = net.hosts
        seen = set()
        for i, spec in enumerate(self.raw.get("flow", [])):
            where = f"{src_name}: flow[{i}]"
            kind = spec.get("type")
            if kind not in FLOW_KEYS:
                raise ScenarioError(f"{where}.type: unknown {kind!r}; valid: {sorted(FLOW_KEYS)}")
            _check_keys(spec, FLOW_KEYS[kind], where)
            name = spec.get("name", f"flow{i}")
            if name in seen:
                raise ScenarioError(f"{where}.name: {name!r} is used twice")
            seen.add(name)
            for key in ("src", "dst"):
                if spec.get(key) not in hosts:
                    raise ScenarioError(f"{where}.{key}: unknown host {spec.get(key)!r}; hosts: {sorted(hosts)}")
            port = next_port.get(spec["dst"], 5000)
            next_port[spec["dst"]] = port + 1
            try:
                kwargs: dict[str, Any] = {
                    "flow": name,
                    "size_bytes": parse_size_bytes(spec.get("size", 1500), f"{where}.size"),
                    "dport": port,
                    "start_s": parse_time_s(spec.get("start", 0.0), f"{where}.start"),
                    "stop_s": parse_time_s(spec["stop"], f"{where}.stop") if "stop" in spec else None,
                }
                ecn = spec.get("ecn", "not-ect")
                if ecn not in ECN_NAMES:
                    raise ScenarioError(f"{where}.ecn: unknown {ecn!r}; valid: {sorted(ECN_NAMES)}")
                kwargs["ecn"] = ECN_NAMES[ecn]
                if "rate" not in spec:
                    raise ScenarioError(f"{where}.rate: missing (e.g. rate = \"10Mbps\")")
                kwargs["rate_bps"] = parse_rate_bps(spec["rate"], f"{where}.rate")
                if kind == "onoff":
                    kwargs["on_mean_s"] = parse_time_s(spec.get("on_mean", 1.0), f"{where}.on_mean")
                    kwargs["off_mean_s"] = parse_time_s(spec.get("off_mean", 1.0), f"{where}.off_mean")
                if kind == "bulk":
                    if "total" not in spec:
                        raise ScenarioError(f"{where}.total: missing (bytes to send, e.g. total = \"10MB\")")
                    kwargs["total_bytes"] = parse_size_bytes(spec["total"], f"{where}.total")
                sinks.append(Sink(sim, hosts[spec["dst"]], port))
                SOURCES[kind](sim, hosts[spec["src"]], spec["dst"], **kwargs)
            except ScenarioError:
                raise
            except ValueError as exc:
                raise ScenarioError(f"{where}: {exc}") from None
        if not sinks:
            raise ScenarioError(f"{src_name}: no [[flow]] tables: nothing would be sent")
        return sinks

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
        if captures:
            meta["captures"] = [{**spec, "packets": capture.packets, "addresses": capture.addresses}
                                for spec, capture in captures]
        return RunResult(sim, self.duration_s, meta=meta)


def _check_keys(table: Any, valid: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table, got {type(table).__name__}")
    unknown = set(table) - valid
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(valid)}")


def _trace_path(value: Any, source: str) -> Any:
    """Trace paths are relative to the scenario file; ``shared:`` prefixes mean the shared traces folder."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScenarioError(f"{source}: trace: expected a path string, got {value!r}")
    if value.startswith("shared:"):
        from emu.links.tracefile import require_shared_traces

        return require_shared_traces() / value[len("shared:"):]
    path = Path(value)
    if not path.is_absolute() and source != "<dict>":
        path = Path(source).parent / path
    return path


def _loss(spec: Any, where: str):
    if spec is None:
        return None
    from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig

    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a table")
    spec = dict(spec)
    model = spec.pop("model", "bernoulli")
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
    return JitterConfig(mean_s=parse_time_s(spec.get("mean", 0.0), f"{where}.mean"),
                        distribution=spec.get("distribution", "uniform"), reorder=bool(spec.get("reorder", False)))
