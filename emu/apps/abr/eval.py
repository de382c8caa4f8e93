"""``emu eval abr``: every scheme over a set of traces, on the chunk-level simulator or the packet-level emulator.

    emu eval abr                                         # pensieve-hsdpa test traces, chunk level, all schemes
    emu eval abr --traces oboe --limit 100 --json
    emu eval abr --trace pensieve-hsdpa/norway_bus_1 --level packet --schemes bba,mpc

Per scheme: ``qoe`` (mean QoE_lin per chunk over chunks 2..48 of every trace), ``bitrate_mbps``,
``rebuffer_s`` (mean per chunk), ``smooth_mbps`` (mean |bitrate change| per chunk), ``n_traces``.
Each trace's starting sample comes from the seed (the same for every scheme and for both levels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from emu.apps.abr.schemes import SCHEMES
from emu.apps.abr.traces import Trace, load_trace, trace_files
from emu.validate import check_int, check_number

__all__ = ["AbrEvalConfig", "evaluate", "evaluate_detailed", "DEFAULT_TRACES"]

DEFAULT_TRACES = "pensieve-hsdpa"   # a test source: never trained on (emu.apps.abr.traces)


@dataclass(frozen=True, kw_only=True)
class AbrEvalConfig:
    trace: Optional[str] = field(default=None, metadata={"help": "one trace file"})
    traces: Optional[str] = field(default=None, metadata={
        "help": "a folder of traces (pensieve-hsdpa when neither --trace nor --traces is given)"})
    limit: int = field(default=0, metadata={"help": "use the first N files of the folder (0: all)"})
    level: str = field(default="chunk", metadata={
        "help": "chunk (the released simulator) or packet (the emulator, TCP-like transport)"})
    video: str = field(default="video1", metadata={"help": "video1, video2 or a chunk-size folder"})
    models_dir: Optional[str] = field(default=None, metadata={"help": "folder of the app's model cards"})
    noise: bool = field(default=False, metadata={"help": "chunk level: the released U(0.9, 1.1) delay noise"})
    sample: bool = field(default=False, metadata={
        "help": "learned policies sample their softmax (as released) instead of taking the argmax"})
    rtt_s: float = field(default=0.08, metadata={"help": "packet level: bottleneck round trip in s"})
    cross_traffic: bool = field(default=False, metadata={
        "help": "packet level: one backlogged Cubic flow shares the bottleneck"})
    queue_pkts: int = field(default=0, metadata={
        "help": "packet level: DropTail limit at the bottleneck in packets (0: unlimited, as Mahimahi)"})

    def __post_init__(self) -> None:
        if self.trace is not None and self.traces is not None:
            raise ValueError("trace/traces: give one trace file or one folder, not both")
        check_int("limit", self.limit, lo=0, hi=10**6)
        check_int("queue_pkts", self.queue_pkts, lo=0, hi=10**7)
        if self.level not in ("chunk", "packet"):
            raise ValueError(f"level: must be 'chunk' or 'packet', got {self.level!r}")
        check_number("rtt_s", self.rtt_s, lo=0, hi=10, unit="s")
        if self.noise and self.level == "packet":
            raise ValueError("noise: applies to the chunk level only (the emulator has its own dynamics)")

    def trace_paths(self) -> list[Path]:
        """The trace files this config names (FileNotFoundError names a missing path)."""
        if self.trace is not None:
            from emu.links.tracefile import resolve_trace_path

            return [resolve_trace_path(self.trace)]
        files = trace_files(self.traces or DEFAULT_TRACES)
        return files[:self.limit] if self.limit else files


def _load(config: AbrEvalConfig) -> tuple[list[Path], list[Trace]]:
    paths = config.trace_paths()
    return paths, [load_trace(p) for p in paths]


def evaluate_detailed(config: AbrEvalConfig, *, schemes: tuple[str, ...], seed: int) -> dict[str, list]:
    """``{scheme: [SessionLog per trace]}`` (what ``evaluate`` summarises; the example plots it)."""
    from emu.apps.abr.schemes import make_policy
    from emu.apps.abr.sessions import simulate, trace_start
    from emu.apps.abr.video import load_video

    for s in schemes:
        if s not in SCHEMES:
            raise ValueError(f"schemes: unknown {s!r}; valid: {', '.join(SCHEMES)}")
    video = load_video(config.video)
    paths, traces = _load(config)
    policies = {s: make_policy(s, video, models_dir=config.models_dir, seed=seed, sample=config.sample)
                for s in schemes}
    out = {}
    for scheme, policy in policies.items():
        if config.level == "chunk":
            out[scheme] = simulate(policy, traces, video, seed=seed, noise=config.noise)
        else:
            from emu.apps.abr.packet_session import run_packet_session

            out[scheme] = [run_packet_session(policy, t, p, trace_start(t, seed), video, rtt_s=config.rtt_s,
                                              seed=seed, cross_traffic=config.cross_traffic,
                                              queue_pkts=config.queue_pkts or None)
                           for p, t in zip(paths, traces)]
    return out


def evaluate(config: AbrEvalConfig, *, schemes: tuple[str, ...], seed: int) -> dict[str, dict[str, float]]:
    from emu.apps.abr.sessions import summarise

    return {s: summarise(logs) for s, logs in evaluate_detailed(config, schemes=schemes, seed=seed).items()}
