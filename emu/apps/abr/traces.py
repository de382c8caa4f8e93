"""Throughput traces for the chunk-level simulator, and the train / validation / test split.

A trace is ``(times_s, mbps)`` as the released simulator reads its cooked files: the value on line i is the
throughput over ``(t[i-1], t[i]]`` (Pensieve/NetLLM ``env.py`` uses ``cooked_bw[ptr]`` for the interval that ends
at ``cooked_time[ptr]``). Throughput logs in every format ``emu.links.tracefile`` reads are accepted; a Mahimahi
opportunity trace is binned into 1-s throughput samples first (1504 bytes per opportunity).

Split (never ``fcc-hsdpa/valid``: it holds byte-identical copies of 150 files of ``fcc-hsdpa/train``):

- training: the FCC files of ``fcc-hsdpa/train`` (the 150 windows and 45 sessions) minus the validation files;
- validation: the FCC files whose measurement id's ``sha256`` starts with 8, 9, a or b (33 of 195 files; the windows
  cut from one measurement stay together);
- test: sources never trained on: ``pensieve-hsdpa`` (Norway 3G HSDPA) and ``oboe`` (video-session
  throughput). The Norway HSDPA logs inside ``fcc-hsdpa/train`` (``bus.*``, ``car.*`` ...) are left out of
  training so that ``pensieve-hsdpa`` is an unseen source.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.links.tracefile import detect_format, read_mahimahi_ms, read_rate_log, require_shared_traces

__all__ = ["Trace", "load_trace", "load_folder", "trace_files", "split_files", "HSDPA_PREFIXES"]

HSDPA_PREFIXES = ("bus.", "car.", "ferry.", "metro.", "train.", "tram.")
_MAHIMAHI_BYTES = 1504


@dataclass(frozen=True)
class Trace:
    """A throughput log: ``times_s`` (non-decreasing) and ``mbps`` (Mbit/s), at least 2 samples."""

    name: str
    times_s: np.ndarray
    mbps: np.ndarray

    def __post_init__(self) -> None:
        if self.times_s.shape != self.mbps.shape or self.times_s.size < 2:
            raise ValueError(f"{self.name}: a trace needs >= 2 (time, Mbit/s) samples")
        if (np.diff(self.times_s) < 0).any():
            raise ValueError(f"{self.name}: times must be non-decreasing")
        if not (self.mbps > 0).any():
            raise ValueError(f"{self.name}: throughput is zero everywhere; no chunk could ever be delivered")


def load_trace(path: Union[str, os.PathLike]) -> Trace:
    """One trace file (any format ``emu.links.tracefile`` detects); errors name the file and line."""
    from emu.links.tracefile import resolve_trace_path

    p = resolve_trace_path(path)
    if detect_format(p) == "mahimahi":
        ms = read_mahimahi_ms(p)
        n_s = int(np.ceil((ms[-1] + 1) / 1000.0))
        counts = np.bincount((ms // 1000).astype(np.int64), minlength=n_s)[:n_s]
        mbps = counts * _MAHIMAHI_BYTES * 8 / 1e6
        times = np.arange(1, n_s + 1, dtype=float)
        return Trace(p.name, np.concatenate([[0.0], times]), np.concatenate([[mbps[0]], mbps]))
    times_s, rates_bps = read_rate_log(p)
    return Trace(p.name, np.asarray(times_s, float), np.asarray(rates_bps, float) / 1e6)


def trace_files(folder: Union[str, os.PathLike]) -> list[Path]:
    """The trace files under ``folder`` (recursively, sorted, hidden files skipped); a relative folder not found
    from here is looked up in the shared traces folder. FileNotFoundError names it when absent or empty."""
    p = Path(folder).expanduser()
    if not p.is_dir() and not p.is_absolute():
        q = require_shared_traces() / p
        if q.is_dir():
            p = q
    if not p.is_dir():
        raise FileNotFoundError(f"{folder}: trace folder not found")
    files = sorted(f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".") for part in f.parts)
                   and f.suffix != ".pkl")
    if not files:
        raise FileNotFoundError(f"{p}: no trace files in this folder")
    return files


def load_folder(folder: Union[str, os.PathLike], limit: Optional[int] = None) -> list[Trace]:
    """Every trace in ``folder`` (sorted by path; the first ``limit`` when given)."""
    files = trace_files(folder)
    return [load_trace(f) for f in (files if limit is None else files[:limit])]


def _group(name: str) -> str:
    """FCC windows ``test_fcc_trace_<id>_...`` and sessions ``trace_<id>_...`` grouped by measurement id, so a
    window never lands in another split than its siblings."""
    parts = name.split("_")
    if name.startswith("test_fcc_trace_") and len(parts) > 3:
        return parts[3]
    if name.startswith("trace_") and len(parts) > 1:
        return parts[1]
    return name


def _is_validation(name: str) -> bool:
    return hashlib.sha256(_group(name).encode()).hexdigest()[0] in "89ab"


def split_files(train_folder: Union[str, os.PathLike] = "fcc-hsdpa/train") -> dict[str, list[Path]]:
    """``{"train": [...], "valid": [...]}``: the FCC files of the training folder, split by a hash of the name."""
    fcc = [f for f in trace_files(train_folder) if not f.name.startswith(HSDPA_PREFIXES)]
    return {"train": [f for f in fcc if not _is_validation(f.name)],
            "valid": [f for f in fcc if _is_validation(f.name)]}
