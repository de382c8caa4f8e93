"""Hypothesis-generated trace files and scenario tables: whatever the content, reading either succeeds or fails
with a ValueError (``TraceFormatError``, ``ScenarioError``) whose one-line message names the file; never another
exception, never a hang."""
from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emu.links.tracefile import TraceFormatError, load_trace
from emu.scenario import Scenario, ScenarioError
from tests.fuzz.guard import no_hang
from tests.fuzz.test_scenario_table import BASE

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Trace lines: numbers of every size and sign, words, separators, comments, odd characters.
NUMBER = st.one_of(
    st.integers(min_value=-10**3, max_value=10**6).map(str),
    st.integers(min_value=10**15, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e308", "1e-320", "0", "0.0", "-0", "1_000", "0x10", "", "e5"]),
)
LINE = st.one_of(
    NUMBER,
    st.tuples(NUMBER, st.sampled_from([" ", "\t", ",", "  ", ", "]), NUMBER).map("".join),
    st.tuples(NUMBER, st.just(" "), NUMBER, st.just(" "), NUMBER).map("".join),
    st.sampled_from(["# header", "# :recommended_frequency=0", "# :recommended_frequency=1e9", "#", "   "]),
    st.text(max_size=12),
)
TRACE_TEXT = st.lists(LINE, min_size=0, max_size=25).map("\n".join)


def _check_trace_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gen.trace"
        path.write_bytes(data)
        try:
            with no_hang("generated trace"):
                sched = load_trace(path)
        except TraceFormatError as exc:
            message = str(exc)
            assert message.startswith(str(path)), message
            assert "\n" not in message
            return
        assert math.isfinite(sched.period_s) and sched.period_s > 0


@SETTINGS
@given(TRACE_TEXT)
def test_generated_trace_text_loads_or_names_the_file(text):
    _check_trace_bytes(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.binary(max_size=300))
def test_generated_bytes_load_or_name_the_file(data):
    _check_trace_bytes(data)


# Scenario values of every TOML type (and Python-API extras: NaN, huge integers), in any field.
VALUE = st.one_of(
    st.booleans(),
    st.integers(min_value=-10**25, max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "0s", "1ms", "1e12s", "inf", "10Mbps", "1e400Gbps", "1500B", "-1", "codel", "a", "b",
                     "r", "zz", "no", "true", "stream", "cubic", "prague", "dualpi2"]),
    st.lists(st.integers(min_value=0, max_value=3), max_size=2),
    st.dictionaries(st.sampled_from(["limit_pkts", "p", "mean", "reorder", "x"]),
                    st.one_of(st.booleans(), st.integers(-5, 10**12), st.floats(), st.text(max_size=3)),
                    max_size=2),
)
PLACES = [
    ("duration",), ("seed",), ("name",), ("record",), ("timeseries",), ("randomize",),
    ("host", 0, "name"), ("router", 0, "name"),
    ("link", 0, "from"), ("link", 0, "to"), ("link", 0, "rate"), ("link", 0, "delay"), ("link", 0, "queue"),
    ("link", 0, "queue_params"), ("link", 0, "loss"), ("link", 0, "jitter"), ("link", 0, "mtu"),
    ("link", 0, "duplex"), ("link", 1, "reverse_rate"), ("link", 1, "trace_offset"),
    ("flow", 0, "type"), ("flow", 0, "src"), ("flow", 0, "dst"), ("flow", 0, "rate"), ("flow", 0, "size"),
    ("flow", 0, "start"), ("flow", 0, "stop"), ("flow", 0, "ecn"), ("flow", 0, "name"),
    ("flow", 1, "cc"), ("flow", 1, "cc_params"), ("flow", 1, "size"), ("flow", 1, "ecn"),
]
EDITS = st.lists(st.tuples(st.sampled_from(PLACES), VALUE), min_size=1, max_size=3)


@SETTINGS
@given(EDITS)
@example([(("flow", 0, "type"), [])])          # found by a longer run: an unhashable type name
@example([(("flow", 0, "ecn"), [1])])
@example([(("link", 0, "loss"), {"model": [1]})])
def test_generated_scenario_tables_build_or_name_the_file(edits):
    raw = copy.deepcopy(BASE)
    for place, value in edits:
        cur = raw
        for key in place[:-1]:
            cur = cur[key]
        cur[place[-1]] = value
    try:
        with no_hang("generated scenario"):
            scenario = Scenario.from_dict(raw, source="gen.toml")
    except ScenarioError as exc:
        message = str(exc)
        assert message.startswith("gen.toml: "), message
        assert "\n" not in message
        return
    assert 0 < scenario.duration_s <= 1e7


@SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=40).map(sorted)
       .filter(lambda ms: ms[-1] > 0))
def test_mahimahi_fast_and_line_by_line_readers_agree(ms):
    """The numpy reader (clean files) and the line-by-line one (any file; here forced by a trailing blank line)
    return the same timestamps."""
    import numpy as np

    from emu.links.tracefile import read_mahimahi_ms

    with tempfile.TemporaryDirectory() as folder:
        clean, blank = Path(folder) / "clean.trace", Path(folder) / "blank.trace"
        clean.write_text("".join(f"{m}\n" for m in ms))
        blank.write_text("".join(f"{m}\n" for m in ms) + "\n")
        assert np.array_equal(read_mahimahi_ms(clean), np.asarray(ms))
        assert np.array_equal(read_mahimahi_ms(blank), np.asarray(ms))
