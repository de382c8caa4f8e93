"""Trace files: format detection from content, readers, statistics, and the shared real-trace folder.

Formats (detected from the content, never the file name; ``format=`` overrides):

- ``"mahimahi"``: one non-negative integer millisecond timestamp per line, non-decreasing, the last > 0; each line
  is one delivery opportunity (see ``emu.links.schedule.OpportunitySchedule``). -> ``OpportunitySchedule``.
- ``"mbps"``: ``time_s value`` with the value in Mbit/s, two numeric columns separated by tabs or spaces
  (fcc-hsdpa, pensieve-hsdpa, oboe, lumos5g). -> ``RateSchedule``.
- ``"csv_bytes"``: ``seconds,bytes_per_second`` CSV without header (multipath-wifi-cellular). -> ``RateSchedule``.
- ``"jens_kbps"``: a ``#`` comment header, then one capacity sample in kbit/s per line at the header's
  ``:recommended_freqeuncy=`` [sic] rate (default 10 Hz) (telekom/aml-jens). -> ``RateSchedule``.

Detection: a ``#`` header followed by one-column lines is ``jens_kbps``; otherwise the first data line decides:
a comma -> ``csv_bytes``; two whitespace-separated columns -> ``mbps``; one column -> ``mahimahi``. Blank lines
are ignored; ``#`` lines are comments in every format but ``mahimahi`` (Mahimahi itself accepts none).
Every line is then checked against the detected format; a malformed line raises ``TraceFormatError`` naming the
file, the 1-based line number and the line. Every number is bounded (``docs/errors.md``, "Limits"): times at most
``MAX_DURATION_S`` (a Mahimahi timestamp at most that many milliseconds' worth), capacities at most
``MAX_RATE_BPS``, files at most ``MAX_TRACE_FILE_BYTES``; a binary or undecodable file is reported by name.
"""
from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.links.schedule import (
    MAHIMAHI_OPPORTUNITY_BYTES, CapacitySchedule, OpportunitySchedule, RateSchedule,
)
from emu.validate import MAX_DURATION_S, MAX_PACKET_BYTES, MAX_RATE_BPS, check_int, check_number

MAX_TRACE_FILE_BYTES = 256 << 20                      # 256 MiB of text (about 30 million Mahimahi lines)
MAX_TRACE_MS = int(MAX_DURATION_S * 1000)            # the largest Mahimahi timestamp
MAX_TRACE_HZ = 1e6                                   # the largest jens sample rate
MAX_BINS = 1e6                                       # bins of one capacity curve

__all__ = [
    "FORMATS", "TraceFormatError", "detect_format", "load_trace", "read_mahimahi_ms", "read_rate_log",
    "trace_stats", "shared_traces_dir", "require_shared_traces", "resolve_trace_path", "write_mahimahi",
]

FORMATS = ("mahimahi", "mbps", "csv_bytes", "jens_kbps")
TRACES_ENV = "EMU_TRACES_DIR"
_JENS_DEFAULT_HZ = 10.0  # telekom/aml-jens default_bundle: ":recommended_freqeuncy=10"
_JENS_FREQ = re.compile(r":recommended_freq\w*\s*=\s*([0-9.]+)", re.IGNORECASE)

PathLike = Union[str, os.PathLike]


class TraceFormatError(ValueError):
    """A malformed trace file; the message names the file and, where there is one, the 1-based line."""

    def __init__(self, path: PathLike, problem: str, line_no: Optional[int] = None,
                 line: Optional[str] = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.line_no = line_no
        self.line = line
        where = f"{self.path}:{line_no}" if line_no is not None else self.path
        shown = f": {line!r}" if line is not None else ""
        super().__init__(f"{where}: {problem}{shown}")


# -- locating traces ---------------------------------------------------------------------------------------------

def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shared_traces_dir() -> Optional[Path]:
    """The real-trace folder: ``$EMU_TRACES_DIR`` if set, else ``../shared/traces`` beside the repository root
    (or beside the current directory); None if none exists."""
    env = os.environ.get(TRACES_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    for base in (_repo_root(), Path.cwd()):
        candidate = base.parent / "shared" / "traces"
        if candidate.is_dir():
            return candidate
    return None


def require_shared_traces() -> Path:
    """``shared_traces_dir()``, or a FileNotFoundError that says how to point at the folder."""
    found = shared_traces_dir()
    if found is not None:
        return found
    env = os.environ.get(TRACES_ENV)
    if env:
        raise FileNotFoundError(f"{TRACES_ENV}={env!r} is set but is not a folder; point it at the real traces "
                                f"folder (the one holding mahimahi/, nyc-cellular-2019/, ...)")
    raise FileNotFoundError(
        f"the real traces folder ../shared/traces was not found beside the checkout "
        f"({_repo_root().parent / 'shared' / 'traces'}); set {TRACES_ENV} to its location, or pass trace "
        f"file paths directly")


def resolve_trace_path(path: PathLike) -> Path:
    """``path`` if it exists; else, for a relative path, the same path inside the shared traces folder
    (so ``"mahimahi/Verizon-LTE-short.down"`` works from anywhere); else FileNotFoundError naming what was tried."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    tried = [str(p)]
    if not p.is_absolute():
        shared = shared_traces_dir()
        if shared is not None:
            q = shared / p
            if q.is_file():
                return q
            tried.append(str(q))
    if p.exists():
        raise FileNotFoundError(f"trace path is not a file: {p}")
    raise FileNotFoundError(f"trace file not found: {' nor '.join(tried)}")


# -- reading -----------------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_TRACE_FILE_BYTES:
        raise TraceFormatError(path, f"trace file of {size} bytes is larger than the limit of "
                                     f"{MAX_TRACE_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(path, f"not a text trace (undecodable byte at offset {exc.start})") from None
    if "\x00" in text:
        raise TraceFormatError(path, f"not a text trace (NUL byte at offset {text.index(chr(0))})")
    return text


def _data_lines(path: Path, text: str, *, comments: bool) -> tuple[list[tuple[int, str]], list[str]]:
    """(line number, stripped line) of each data line, and the comment lines (``#``) before the data."""
    data: list[tuple[int, str]] = []
    header: list[str] = []
    for i, raw in enumerate(text.splitlines()):
        s = raw.strip()
        if not s:
            continue
        if s[0] == "#":
            if not comments:
                raise TraceFormatError(path, "comment lines are not allowed in a Mahimahi trace", i + 1, raw)
            if not data:
                header.append(s)
            continue
        data.append((i + 1, s))
    if not data:
        raise TraceFormatError(path, "empty trace (no data lines)")
    return data, header


def _detect(path: Path, text: str) -> str:
    header_seen = False
    for raw in io.StringIO(text):
        s = raw.strip()
        if not s:
            continue
        if s[0] == "#":
            header_seen = True
            continue
        if "," in s:
            return "csv_bytes"
        fields = s.split()
        if len(fields) == 1:
            return "jens_kbps" if header_seen else "mahimahi"
        return "mbps"
    raise TraceFormatError(path, "empty trace (no data lines)")


def detect_format(path: PathLike) -> str:
    """The format of the trace at ``path``, one of ``FORMATS`` (from the content)."""
    p = resolve_trace_path(path)
    return _detect(p, _read_text(p))


def _parse_mahimahi(path: Path, text: str) -> np.ndarray:
    # Fast path: one token on every non-empty line, all integers, non-negative, non-decreasing, last > 0.
    # Anything else goes through the line-by-line path below, which names the offending line.
    # numpy parses the text in place (no Python string per line): ten million lines in about a second.
    n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if text.strip() and "#" not in text and " " not in text and "\t" not in text:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # "could not be read to its end": a line that is not an integer
                ms = np.fromstring(text, dtype=np.int64, sep="\n")
        except (ValueError, OverflowError, DeprecationWarning):
            ms = None
        if ms is not None and ms.size == n_lines and ms[0] >= 0 and 0 < ms[-1] <= MAX_TRACE_MS \
                and not np.any(np.diff(ms) < 0):
            return ms
    data, _ = _data_lines(path, text, comments=False)
    values = []
    for line_no, s in data:
        try:
            value = int(s) if len(s) <= 4000 else None   # (Python refuses longer digit strings)
        except ValueError:
            value = None
        if value is None:
            raise TraceFormatError(path, "expected one integer millisecond timestamp", line_no, s[:60])
        if value > MAX_TRACE_MS:
            raise TraceFormatError(path, f"timestamp beyond the limit of {MAX_TRACE_MS} ms "
                                         f"({MAX_DURATION_S:g} s)", line_no, s)
        values.append(value)
    ms = np.asarray(values, dtype=np.int64)
    bad = np.flatnonzero(ms < 0)
    if bad.size:
        line_no, s = data[int(bad[0])]
        raise TraceFormatError(path, "negative timestamp", line_no, s)
    down = np.flatnonzero(np.diff(ms) < 0)
    if down.size:
        i = int(down[0]) + 1
        line_no, s = data[i]
        raise TraceFormatError(path, f"timestamps must be non-decreasing ({ms[i]} after {ms[i - 1]} on line "
                                     f"{data[i - 1][0]})", line_no, s)
    if ms[-1] == 0:
        line_no, s = data[-1]
        raise TraceFormatError(path, "the last timestamp (the loop period) must be > 0", line_no, s)
    return ms


def _parse_two_columns(path: Path, text: str, sep: Optional[str], what: str,
                       max_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric columns; ``max_scale`` converts a value to bit/s for the capacity bound."""
    data, _ = _data_lines(path, text, comments=True)
    times = np.empty(len(data))
    values = np.empty(len(data))
    prev = -math.inf
    for i, (line_no, s) in enumerate(data):
        fields = s.split(sep) if sep else s.split()
        if len(fields) != 2:
            raise TraceFormatError(path, f"expected 2 columns ({what}), got {len(fields)}", line_no, s)
        try:
            t = float(fields[0])
            v = float(fields[1])
        except ValueError:
            raise TraceFormatError(path, f"non-numeric field; expected {what}", line_no, s) from None
        if not (math.isfinite(t) and math.isfinite(v)):
            raise TraceFormatError(path, "non-finite number", line_no, s)
        if v < 0:
            raise TraceFormatError(path, "negative capacity", line_no, s)
        if not -MAX_DURATION_S <= t <= MAX_DURATION_S:
            raise TraceFormatError(path, f"time beyond the limit of {MAX_DURATION_S:g} s", line_no, s)
        if v * max_scale > MAX_RATE_BPS:
            raise TraceFormatError(path, f"capacity beyond the limit of {MAX_RATE_BPS:g} bit/s", line_no, s)
        if t < prev:
            raise TraceFormatError(path, f"times must be non-decreasing ({t:g} after {prev:g})", line_no, s)
        prev = t
        times[i] = t
        values[i] = v
    return times, values


def _parse_jens(path: Path, text: str) -> tuple[np.ndarray, np.ndarray, float]:
    data, header = _data_lines(path, text, comments=True)
    hz = _JENS_DEFAULT_HZ
    for h in header:
        m = _JENS_FREQ.search(h)
        if m:
            try:
                hz = float(m.group(1))
            except ValueError:
                raise TraceFormatError(path, f"sample frequency is not a number: {m.group(1)!r}") from None
            if not 0 < hz <= MAX_TRACE_HZ:
                raise TraceFormatError(path, f"sample frequency must be > 0 and <= {MAX_TRACE_HZ:g} Hz, got {hz:g}")
    values = np.empty(len(data))
    for i, (line_no, s) in enumerate(data):
        fields = s.split()
        if len(fields) != 1:
            raise TraceFormatError(path, f"expected 1 column (kbit/s), got {len(fields)}", line_no, s)
        try:
            v = float(fields[0])
        except ValueError:
            raise TraceFormatError(path, "non-numeric field; expected a capacity in kbit/s", line_no, s) from None
        if not math.isfinite(v) or v < 0 or v * 1e3 > MAX_RATE_BPS:
            raise TraceFormatError(path, f"capacity must be a finite number >= 0 and <= {MAX_RATE_BPS / 1e3:g} "
                                         "kbit/s", line_no, s)
        values[i] = v
    return np.arange(len(values)) / hz, values * 1e3, hz


@dataclass(frozen=True)
class _Parsed:
    path: Path
    format: str
    ms: Optional[np.ndarray] = None          # mahimahi
    times_s: Optional[np.ndarray] = None     # rate formats
    rates_bps: Optional[np.ndarray] = None
    period_s: Optional[float] = None         # rate formats with a fixed period (jens)


def _parse(path: PathLike, format: Optional[str]) -> _Parsed:
    if format is not None and format not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)} (or None to detect), got {format!r}")
    p = resolve_trace_path(path)
    text = _read_text(p)
    fmt = format or _detect(p, text)
    if fmt == "mahimahi":
        return _Parsed(p, fmt, ms=_parse_mahimahi(p, text))
    if fmt == "mbps":
        t, v = _parse_two_columns(p, text, None, "time_s Mbit/s", 1e6)
        return _Parsed(p, fmt, times_s=t, rates_bps=v * 1e6)
    if fmt == "csv_bytes":
        t, v = _parse_two_columns(p, text, ",", "seconds,bytes_per_second", 8.0)
        return _Parsed(p, fmt, times_s=t, rates_bps=v * 8.0)
    t, v, hz = _parse_jens(p, text)
    return _Parsed(p, fmt, times_s=t, rates_bps=v, period_s=len(v) / hz)


def read_mahimahi_ms(path: PathLike) -> np.ndarray:
    """The opportunity timestamps (int64 ms) of a Mahimahi trace, validated."""
    return _parse(path, "mahimahi").ms


def read_rate_log(path: PathLike, format: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, rates_bps) of a throughput log (any format but ``mahimahi``), as written (not shifted)."""
    parsed = _parse(path, format)
    if parsed.format == "mahimahi":
        raise TraceFormatError(parsed.path, "is a Mahimahi opportunity trace, not a throughput log")
    return parsed.times_s, parsed.rates_bps


def _schedule(parsed: _Parsed, opportunity_bytes: int) -> CapacitySchedule:
    if parsed.format == "mahimahi":
        return OpportunitySchedule(parsed.ms, opportunity_bytes, source=str(parsed.path))
    try:
        return RateSchedule(parsed.times_s, parsed.rates_bps, parsed.period_s, source=str(parsed.path))
    except ValueError as exc:
        raise TraceFormatError(parsed.path, str(exc)) from None


def load_trace(path: PathLike, *, opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES,
               format: Optional[str] = None) -> CapacitySchedule:
    """Read a trace file into a capacity schedule, detecting its format from the content.

    Args:
        path: the file; a relative path not found from here is also looked up in the shared traces folder.
        opportunity_bytes: bytes per Mahimahi delivery opportunity (default 1504, Mahimahi's ``PACKET_SIZE``);
            unused for throughput logs.
        format: one of ``FORMATS`` to skip detection.

    Raises:
        FileNotFoundError: naming the path(s) tried.
        TraceFormatError: (a ValueError) naming the file, the line number and the line.
    """
    check_int("opportunity_bytes", opportunity_bytes, lo=1, hi=MAX_PACKET_BYTES)
    return _schedule(_parse(path, format), opportunity_bytes)


# -- statistics --------------------------------------------------------------------------------------------------

def trace_stats(path: PathLike, *, opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES,
                format: Optional[str] = None) -> dict:
    """Duration and capacity statistics of one trace period, with the conventions of ../shared/traces/README.md.

    - Mahimahi: ``duration_s`` = last timestamp (the period); ``mean_bps`` = lines x ``opportunity_bytes`` x 8 /
      duration; ``p5_bps``/``p95_bps``/``max_bps`` over 1-second bins ``[i, i+1)`` covering the period (a last
      partial bin counts as a whole second; lines stamped exactly at the period fall in the last bin). The
      README uses 1500 B per line; pass ``opportunity_bytes=1500`` to reproduce its table.
    - ``mbps`` / ``csv_bytes`` logs: ``duration_s`` = the schedule's period (last time - first time + last step
      length); ``mean_bps`` = time-weighted mean of the step function; percentiles of the value sampled once per
      second from the first time.
    - ``jens_kbps``: ``duration_s`` = samples / frequency; mean of the samples; percentiles of 1-second averages
      (whole seconds only).
    """
    check_int("opportunity_bytes", opportunity_bytes, lo=1, hi=MAX_PACKET_BYTES)
    parsed = _parse(path, format)
    sched = _schedule(parsed, opportunity_bytes)
    out: dict = {"path": str(parsed.path), "format": parsed.format, "duration_s": sched.period_s,
                 "mean_bps": sched.mean_rate_bps}
    if parsed.format == "mahimahi":
        ms = parsed.ms
        nbins = int(math.ceil(ms[-1] / 1000.0))
        counts = np.bincount(np.minimum(ms // 1000, nbins - 1), minlength=nbins)
        per_s = counts * (opportunity_bytes * 8.0)
        out.update(opportunities=int(ms.size), opportunity_bytes=opportunity_bytes)
    elif parsed.format == "jens_kbps":
        v = parsed.rates_bps
        hz = len(v) / parsed.period_s
        per_bin = int(round(hz))
        whole = len(v) // per_bin if per_bin >= 1 else 0
        per_s = v[:whole * per_bin].reshape(whole, per_bin).mean(axis=1) if whole else np.array([v.mean()])
        out.update(samples=int(v.size), sample_hz=hz)
    else:
        t = parsed.times_s
        samples_at = t[0] + np.arange(0.0, sched.period_s, 1.0)
        idx = np.clip(np.searchsorted(t, samples_at, side="right") - 1, 0, len(t) - 1)
        per_s = parsed.rates_bps[idx]
        out.update(samples=int(t.size))
    out.update(p5_bps=float(np.percentile(per_s, 5)), p95_bps=float(np.percentile(per_s, 95)),
               max_bps=float(per_s.max()))
    threshold_bps = NEAR_ZERO_FRACTION * sched.mean_rate_bps
    outage_s, outage_at_s = _longest_outage(parsed, sched)
    out.update(zero_capacity_s=int(np.count_nonzero(per_s == 0)),
               near_zero_capacity_s=int(np.count_nonzero(per_s < threshold_bps)),
               near_zero_threshold_bps=threshold_bps,
               longest_outage_s=outage_s, longest_outage_at_s=outage_at_s)
    return out


# A second of a trace is "near zero" when it offers less than this fraction of the trace's mean capacity.
NEAR_ZERO_FRACTION = 0.05


def _longest_outage(parsed: _Parsed, sched: CapacitySchedule) -> tuple[float, float]:
    """(length, start) in seconds of the longest stretch with no capacity at all, the loop's wrap included.

    Mahimahi: the longest gap between consecutive delivery opportunities (the trace repeats shifted by its last
    timestamp, so the gap across the wrap is the first timestamp). Rate logs: the longest run of zero-rate steps.
    """
    if parsed.format == "mahimahi":
        ms = parsed.ms
        gaps = np.diff(ms)
        k = int(np.argmax(gaps)) if gaps.size else 0
        best_ms, at_ms = (int(gaps[k]), int(ms[k])) if gaps.size else (0, 0)
        if int(ms[0]) > best_ms:  # from the last opportunity to the first one of the next loop
            best_ms, at_ms = int(ms[0]), int(ms[-1])
        return best_ms / 1000.0, at_ms / 1000.0
    t0 = float(parsed.times_s[0])
    starts = parsed.times_s - t0
    lengths = np.diff(np.append(starts, sched.period_s))
    zero = parsed.rates_bps <= 0
    best = at = 0.0
    run_len, run_at = 0.0, 0.0
    # twice round the loop so a run that wraps from the end to the start is measured whole
    for i in range(2 * len(zero)):
        j = i % len(zero)
        if zero[j]:
            if run_len == 0.0:
                run_at = float(starts[j])
            run_len += float(lengths[j])
            if run_len > best:
                best, at = min(run_len, sched.period_s), run_at
        else:
            run_len = 0.0
    return best, at


def capacity_series(path: PathLike, *, bin_s: float = 1.0, opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES,
                    format: Optional[str] = None, offset_s: float = 0.0,
                    duration_s: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """``(time_s, capacity_bps)``: the capacity a link driven by this trace offers in bins of ``bin_s``, from
    ``offset_s`` into the trace, over ``duration_s`` (default: one period)."""
    from emu.links.schedule import rotate_schedule

    check_number("bin_s", bin_s, lo=0, lo_open=True, hi=MAX_DURATION_S, unit="s")
    sched = load_trace(path, opportunity_bytes=opportunity_bytes, format=format)
    span_s = duration_s if duration_s is not None else sched.period_s
    if span_s / bin_s > MAX_BINS:
        raise ValueError(f"bin_s: {bin_s:g} s makes {span_s / bin_s:.3g} bins over {span_s:g} s; at most "
                         f"{MAX_BINS:g} (use a wider bin)")
    if offset_s:
        sched = rotate_schedule(sched, offset_s)
    return schedule_capacity(sched, bin_s=bin_s, duration_s=duration_s if duration_s is not None else sched.period_s)


def schedule_capacity(sched: CapacitySchedule, *, bin_s: float, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(time_s, capacity_bps)`` of a schedule in bins ``[k bin_s, (k+1) bin_s)`` covering ``[0, duration_s)``."""
    n = max(1, int(math.ceil(duration_s / bin_s - 1e-9)))
    t = np.arange(n) * bin_s
    cap = np.array([sched.bytes_between(float(a), float(a) + bin_s) for a in t]) * 8.0 / bin_s
    return t, cap


def plot_trace(path: PathLike, out: PathLike, *, bin_s: float = 1.0,
               opportunity_bytes: int = MAHIMAHI_OPPORTUNITY_BYTES, format: Optional[str] = None) -> Path:
    """Draw one period of a trace's capacity over time (``bin_s`` bins) as a PNG, outages shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = trace_stats(path, opportunity_bytes=opportunity_bytes, format=format)
    t, cap = capacity_series(path, bin_s=bin_s, opportunity_bytes=opportunity_bytes, format=format)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.step(t, cap / 1e6, where="post", lw=1, label=f"capacity ({bin_s:g} s bins)")
    ax.axhline(stats["mean_bps"] / 1e6, color="k", ls="--", lw=0.8, label=f"mean {stats['mean_bps'] / 1e6:.2f}")
    zero = cap <= 0
    for k in np.flatnonzero(zero):
        ax.axvspan(t[k], t[k] + bin_s, color="red", alpha=0.15, lw=0)
    ax.set_xlabel("trace time (s)")
    ax.set_ylabel("capacity (Mbit/s)")
    ax.set_title(f"{Path(stats['path']).name}: longest outage {stats['longest_outage_s']:.2f} s at "
                 f"{stats['longest_outage_at_s']:.1f} s, {stats['zero_capacity_s']} zero s", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# -- writing -----------------------------------------------------------------------------------------------------

def write_mahimahi(path: PathLike, timestamps_ms: np.ndarray) -> Path:
    """Write opportunity timestamps as a Mahimahi trace (validated first; the file is written whole)."""
    OpportunitySchedule(timestamps_ms)  # validates
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(f"{int(m)}\n" for m in np.asarray(timestamps_ms)))
    os.replace(tmp, p)
    return p
