"""Trace files: content-based format detection, readers, errors naming file and line, statistics vs the
shared traces README, and locating ../shared/traces."""
from __future__ import annotations

import numpy as np
import pytest

from emu.links import tracefile
from emu.links.schedule import OpportunitySchedule, RateSchedule
from emu.links.tracefile import (
    TraceFormatError, detect_format, load_trace, read_rate_log, require_shared_traces, shared_traces_dir,
    trace_stats, write_mahimahi,
)

TRACES = shared_traces_dir()
needs_traces = pytest.mark.skipif(
    TRACES is None, reason="real traces folder ../shared/traces not found beside the checkout (set EMU_TRACES_DIR)")


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, newline="")
    return p


# -- detection and reading (synthetic files: always run) ------------------------------------------------------

def test_detects_each_format_from_content_not_name(tmp_path):
    cases = {
        "a.csv": ("0\n0\n3\n7\n", "mahimahi", OpportunitySchedule),
        "b.down": ("0.0\t4.5\n1.0\t2.0\n", "mbps", RateSchedule),
        "c.txt": ("0 45.0\n1 44.0\n", "mbps", RateSchedule),
        "d.log": ("1,5471526\r\n2,6000000\r\n3,100", "csv_bytes", RateSchedule),
        "e.up": ("# header\n# :recommended_freqeuncy=10\n#\n23074\n23100\n", "jens_kbps", RateSchedule),
    }
    for name, (text, fmt, kind) in cases.items():
        p = write(tmp_path, name, text)
        assert detect_format(p) == fmt, name
        assert isinstance(load_trace(p), kind), name


def test_units_of_each_rate_format(tmp_path):
    mbps = load_trace(write(tmp_path, "m", "0\t8\n1\t16\n"))          # 1 MB/s then 2 MB/s
    assert mbps.service(0.0, 1_000_000) == pytest.approx(1.0)
    assert mbps.period_s == 2.0 and mbps.mean_rate_bps == pytest.approx(12e6)
    csv = load_trace(write(tmp_path, "c", "1,1000000\r\n2,2000000\r\n"))  # bytes/s
    assert csv.service(0.0, 1_500_000) == pytest.approx(1.25)
    jens = load_trace(write(tmp_path, "j", "# x\n8000\n16000\n"))      # kbit/s at 10 Hz
    assert jens.period_s == pytest.approx(0.2)
    assert jens.service(0.0, 150_000) == pytest.approx(0.125)         # 100 kB in 0.1 s, then 2 MB/s
    jens20 = load_trace(write(tmp_path, "j20", "# :recommended_freqeuncy=20\n8000\n16000\n"))
    assert jens20.period_s == pytest.approx(0.1)


def test_mahimahi_opportunity_bytes_parameter(tmp_path):
    p = write(tmp_path, "t", "1\n2\n")
    assert load_trace(p).opportunity_bytes == 1504
    assert load_trace(p, opportunity_bytes=1500).mean_rate_bps == pytest.approx(2 * 1500 * 8 / 0.002)
    with pytest.raises(ValueError, match="opportunity_bytes"):
        load_trace(p, opportunity_bytes=0)


def test_format_override(tmp_path):
    p = write(tmp_path, "t", "100\n200\n")
    assert isinstance(load_trace(p, format="jens_kbps"), RateSchedule)
    with pytest.raises(TraceFormatError, match="expected 2 columns"):
        load_trace(p, format="mbps")
    with pytest.raises(ValueError, match="format: must be one of"):
        load_trace(p, format="pcap")
    with pytest.raises(TraceFormatError, match="not a throughput log"):
        read_rate_log(p)


def test_blank_lines_are_ignored_and_crlf_is_accepted(tmp_path):
    s = load_trace(write(tmp_path, "t", "0\r\n\r\n5\r\n10\r\n\n"))
    assert s.n_opportunities == 3 and s.period_s == 0.010


# -- malformed traces --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line_no, shown, problem", [
    ("0\n12\nabc\n20\n", 3, "abc", "integer"),
    ("0\n5\n3\n", 3, "3", "non-decreasing"),
    ("0\n5.5\n", 2, "5.5", "integer"),
    ("-1\n5\n", 1, "-1", "negative"),
    ("0\n0\n", 2, "0", "must be > 0"),
    ("0\t1.0\n1\t2.0\t7\n", 2, "1\t2.0\t7", "2 columns"),
    ("0\t1.0\n1\tfast\n", 2, "1\tfast", "non-numeric"),
    ("0 1.0\n2 2.0\n1 2.0\n", 3, "1 2.0", "non-decreasing"),
    ("0 1.0\n1 -2.0\n", 2, "1 -2.0", "negative"),
    ("0 nan\n", 1, "0 nan", "non-finite"),
    ("1,100\r\n2,abc\r\n", 2, "2,abc", "non-numeric"),
    ("1,100\r\n2\r\n", 2, "2", "2 columns"),
    ("# h\n100\n1 2\n", 3, "1 2", "1 column"),
    ("0\n# comment\n5\n", 2, "# comment", "comment"),
])
def test_malformed_trace_names_file_line_and_content(tmp_path, text, line_no, shown, problem):
    p = write(tmp_path, "bad.trace", text)
    with pytest.raises(TraceFormatError) as info:
        load_trace(p)
    msg = str(info.value)
    assert str(p) in msg and f":{line_no}:" in msg and repr(shown) in msg and problem in msg
    assert info.value.line_no == line_no and isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only a header\n"])
def test_empty_trace(tmp_path, text):
    p = write(tmp_path, "empty.down", text)
    with pytest.raises(TraceFormatError, match="empty trace") as info:
        load_trace(p)
    assert str(p) in str(info.value)


def test_all_zero_rate_log_and_binary_file(tmp_path):
    with pytest.raises(TraceFormatError, match="zero capacity"):
        load_trace(write(tmp_path, "z", "0 0\n1 0\n"))
    with pytest.raises(TraceFormatError, match="not a text trace"):
        load_trace(write(tmp_path, "bin", b"\x00\xff\xfe", mode="wb"))


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.down"
    with pytest.raises(FileNotFoundError, match="nope.down"):
        load_trace(missing)
    with pytest.raises(FileNotFoundError, match="not a file"):
        load_trace(tmp_path)


def test_write_mahimahi_round_trip(tmp_path):
    p = write_mahimahi(tmp_path / "out.down", np.array([0, 0, 3, 9]))
    assert p.read_text() == "0\n0\n3\n9\n"
    assert load_trace(p).n_opportunities == 4
    with pytest.raises(ValueError):
        write_mahimahi(tmp_path / "bad.down", np.array([5, 3]))
    assert not (tmp_path / "bad.down").exists()


# -- locating the shared traces ----------------------------------------------------------------------------------

def test_env_var_overrides_the_traces_folder(tmp_path, monkeypatch):
    (tmp_path / "mahimahi").mkdir()
    (tmp_path / "mahimahi" / "x.down").write_text("1\n2\n")
    monkeypatch.setenv("EMU_TRACES_DIR", str(tmp_path))
    assert shared_traces_dir() == tmp_path
    assert load_trace("mahimahi/x.down").n_opportunities == 2   # relative names resolve in the folder
    monkeypatch.setenv("EMU_TRACES_DIR", str(tmp_path / "missing"))
    assert shared_traces_dir() is None
    with pytest.raises(FileNotFoundError, match="EMU_TRACES_DIR"):
        require_shared_traces()


def test_clear_message_without_the_traces_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("EMU_TRACES_DIR", raising=False)
    monkeypatch.setattr(tracefile, "_repo_root", lambda: tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    assert shared_traces_dir() is None
    with pytest.raises(FileNotFoundError, match=r"\.\./shared/traces was not found beside the checkout.*EMU_TRACES_DIR"):
        require_shared_traces()
    with pytest.raises(FileNotFoundError, match="mahimahi/x.down"):
        load_trace("mahimahi/x.down")


# -- real traces ------------------------------------------------------------------------------------------------

SAMPLES = {
    "mahimahi/TMobile-UMTS-driving.down": "mahimahi",
    "nyc-cellular-2019/trace-2768760-taxi3": "mahimahi",
    "fcc-hsdpa/train/bus.ljansbakken-oslo-report.2010-09-28_1407CEST.log": "mbps",
    "pensieve-hsdpa/norway_bus_1": "mbps",
    "oboe/oboe_trace_0.txt": "mbps",
    "lumos5g/4G/4g_trace_driving_50015_dr": "mbps",
    "lumos5g/5G/5g_trace_100_walking": "mbps",
    "multipath-wifi-cellular/11_1_wifi.csv": "csv_bytes",
    "jens-l4s/drp_munich_village.csv": "jens_kbps",
}


@needs_traces
@pytest.mark.parametrize("rel, fmt", SAMPLES.items())
def test_detects_the_format_of_each_real_folder(rel, fmt):
    path = TRACES / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in {TRACES}")
    assert detect_format(path) == fmt
    sched = load_trace(path)
    assert sched.mean_rate_bps > 0 and sched.period_s > 0


# ../shared/traces/README.md: Mahimahi at 1500 B per line (duration s, mean, p5, p95 in Mbit/s, two decimals).
README_MAHIMAHI = {
    "mahimahi/ATT-LTE-driving.down": (786, 5.17, 0.66, 9.53),
    "mahimahi/ATT-LTE-driving.up": (1012, 0.83, 0.00, 1.19),
    "mahimahi/TMobile-UMTS-driving.down": (928, 2.02, 0.02, 5.35),
    "mahimahi/TMobile-UMTS-driving.up": (931, 0.94, 0.07, 1.44),
    "mahimahi/Verizon-EVDO-driving.down": (1062, 0.52, 0.01, 1.45),
    "mahimahi/Verizon-EVDO-driving.up": (1065, 0.84, 0.07, 1.26),
    "mahimahi/Verizon-LTE-short.down": (140, 5.03, 1.07, 10.83),
    "mahimahi/Verizon-LTE-short.up": (140, 5.95, 1.17, 11.38),
    "nyc-cellular-2019/trace-2768760-taxi3": (105, 9.57, 1.15, 18.98),
    "nyc-cellular-2019/trace-3114405-bus": (315, 8.11, 0.79, 19.51),
    "nyc-cellular-2019/trace-2925703-home1": (300, 7.59, 4.09, 10.28),
    "nyc-cellular-2019/trace-3201711-timessquare": (128, 3.97, 1.64, 7.38),
    "nyc-cellular-2019/trace-3204803-timessquare": (188, 7.19, 1.97, 12.37),
    "nyc-cellular-2019/trace-3208852-timessquare": (277, 11.65, 4.55, 19.04),
}
# Throughput logs and patterns (README examples; one decimal).
README_LOGS = {
    "pensieve-hsdpa/norway_bus_1": (155, 2.95, 0.62, 4.34),
    "lumos5g/5G/5g_trace_100_walking": (800, 498.6, 9.0, 1450.0),
    "multipath-wifi-cellular/11_1_wifi.csv": (100, 44.1, 17.6, 61.1),
    "jens-l4s/drp_munich_autobahn.csv": (298, 34.8, 11.6, 73.2),
    "jens-l4s/drp_munich_outskirt.csv": (610, 25.0, 4.0, 72.8),
    "jens-l4s/drp_munich_village.csv": (121, 72.4, 10.8, 149.7),
}


def _check_stats(rel, ref, digits, **kw):
    path = TRACES / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in {TRACES}")
    st = trace_stats(path, **kw)
    duration, mean, p5, p95 = ref
    unit = 10.0 ** -digits
    assert abs(st["duration_s"] - duration) <= 1.0
    assert st["mean_bps"] / 1e6 == pytest.approx(mean, rel=0.01)
    assert abs(st["mean_bps"] / 1e6 - mean) <= unit + 1e-9
    assert abs(st["p5_bps"] / 1e6 - p5) <= unit + 1e-9
    assert abs(st["p95_bps"] / 1e6 - p95) <= unit + 1e-9
    assert st["max_bps"] >= st["p95_bps"]
    return st


@needs_traces
@pytest.mark.parametrize("rel, ref", README_MAHIMAHI.items())
def test_mahimahi_stats_match_the_readme_at_1500_bytes_per_line(rel, ref):
    st = _check_stats(rel, ref, 2, opportunity_bytes=1500)
    assert st["format"] == "mahimahi" and st["opportunity_bytes"] == 1500
    emulated = trace_stats(TRACES / rel)  # default 1504 B per line: 1504/1500 more
    assert emulated["mean_bps"] == pytest.approx(st["mean_bps"] * 1504 / 1500)
    assert emulated["opportunities"] == st["opportunities"]


@needs_traces
@pytest.mark.parametrize("rel, ref", README_LOGS.items())
def test_log_stats_match_the_readme(rel, ref):
    _check_stats(rel, ref, 1)


@needs_traces
def test_outage_stats_quoted_in_docs_traces():
    # docs/traces.md quotes these for `emu trace stats mahimahi/TMobile-UMTS-driving.down`.
    path = TRACES / "mahimahi/TMobile-UMTS-driving.down"
    if not path.is_file():
        pytest.skip(f"{path} is not in {TRACES}")
    st = trace_stats(path)
    assert (st["zero_capacity_s"], st["near_zero_capacity_s"]) == (32, 77)
    assert st["longest_outage_s"] == pytest.approx(5.753) and st["longest_outage_at_s"] == pytest.approx(48.785)


# -- outages and capacity over time ------------------------------------------------------------------------------

def test_stats_count_zero_and_near_zero_seconds_and_the_longest_outage(tmp_path):
    # 3 s at 1 opportunity/ms, a 2.5 s gap, then 1 s at 1 per 40 ms (under 5 % of the mean), then 1 s full
    ms = np.concatenate([np.arange(1, 3000), np.arange(5500, 6500, 40), np.arange(6500, 7501)])
    stats = trace_stats(write_mahimahi(tmp_path / "t", ms))
    assert stats["longest_outage_s"] == pytest.approx(2.501)
    assert stats["longest_outage_at_s"] == pytest.approx(2.999)
    assert stats["zero_capacity_s"] == 2          # seconds [3, 4) and [4, 5)
    assert stats["near_zero_capacity_s"] == 3     # ... and [5, 6) with 13 opportunities
    assert stats["near_zero_threshold_bps"] == pytest.approx(0.05 * stats["mean_bps"])


def test_outage_across_the_loop_and_in_rate_logs(tmp_path):
    # Mahimahi: the first opportunity at 4000 ms means 4 s without capacity after every wrap
    stats = trace_stats(write_mahimahi(tmp_path / "t", np.arange(4000, 5001)))
    assert stats["longest_outage_s"] == pytest.approx(4.0) and stats["longest_outage_at_s"] == pytest.approx(5.0)
    # a throughput log whose zero run wraps from the end to the start: 1 s + 2 s
    log = write(tmp_path, "log.txt", "0 0\n1 5\n2 5\n3 0\n4 0\n")
    stats = trace_stats(log)
    assert stats["longest_outage_s"] == pytest.approx(3.0) and stats["longest_outage_at_s"] == pytest.approx(3.0)
    assert stats["zero_capacity_s"] == 3


def test_capacity_series_and_plot(tmp_path):
    from emu.links.tracefile import capacity_series, plot_trace

    path = write_mahimahi(tmp_path / "t", np.concatenate([np.arange(1, 1000), np.arange(2001, 3001, 2)]))
    t, cap = capacity_series(path, bin_s=0.5)  # bins are half-open: [0.5, 1.0) holds 500..999
    assert list(t) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert cap[1] == pytest.approx(500 * 1504 * 8 / 0.5) and cap[2] == 0 and cap[3] == 0
    assert cap[4] == pytest.approx(cap[1] / 2)
    _, shifted = capacity_series(path, bin_s=0.5, offset_s=1.0)
    assert shifted[0] == 0 and shifted[-1] > 0
    png = plot_trace(path, tmp_path / "t.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
