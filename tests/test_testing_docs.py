"""docs/testing.md's worked example runs as written: on the real trace, and on a small synthetic one."""
from __future__ import annotations

import re

import numpy as np
import pytest

from emu.links.tracefile import write_mahimahi
from tests.conftest import REPO

DOC = REPO / "docs" / "testing.md"


def example_blocks() -> dict[str, str]:
    """The ```python blocks marked ``<!-- example:NAME -->`` in docs/testing.md."""
    found = dict(re.findall(r"<!-- example:(\w+) -->\s*```python\n(.*?)```", DOC.read_text(), re.S))
    assert set(found) == {"trace", "test"}, sorted(found)
    return found


def run_example(namespace: dict) -> object:
    exec(compile(example_blocks()["test"], str(DOC), "exec"), namespace)
    return namespace["dualpi2_vs_droptail"]()


def test_worked_example_on_the_real_trace(shared_traces, capsys):
    namespace: dict = {}
    exec(compile(example_blocks()["trace"], str(DOC), "exec"), namespace)
    assert namespace["TRACE"].is_file()
    exec(compile(example_blocks()["test"], str(DOC), "exec"), namespace)
    namespace["test_dualpi2_cuts_prague_p99"]()  # the example's own test, as pytest would run it
    printed = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + printed)
    assert "geometric mean over 8 paired seeds" in printed
    # The output docs/testing.md quotes (ratio, interval, p-value and every seed's values) is this run's, exactly.
    quoted = re.search(r"-k real_trace` prints:\s*```\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert " ".join(quoted.split()) in " ".join(printed.split()), (quoted, printed)


def synthetic_trace(path, seconds: int = 30, seed: int = 7):
    """A Mahimahi trace whose capacity changes every 0.5 s (uniform 2-12 Mbit/s), 1504-byte opportunities."""
    rng = np.random.default_rng(seed)
    rates_bps = np.repeat(rng.uniform(2e6, 12e6, size=seconds * 2), 500)
    opportunities = np.floor(np.cumsum(rates_bps / 8 / 1000) / 1504).astype(np.int64)
    per_ms = np.diff(np.concatenate(([0], opportunities)))
    return write_mahimahi(path, np.repeat(np.arange(1, len(per_ms) + 1), per_ms))


def test_worked_example_on_a_synthetic_trace(tmp_path):
    result = run_example({"TRACE": synthetic_trace(tmp_path / "steps.down")})
    assert result.n == 8 and result.ratio < 0.5
    assert len(set(result.baseline)) == 8  # the trace offset makes every seed a different run


def test_the_example_without_offsets_hits_the_seed_trap(tmp_path):
    namespace = {"TRACE": synthetic_trace(tmp_path / "steps.down")}
    text = example_blocks()["test"]
    assert "trace_offset=offset_s" in text
    exec(compile(text.replace("trace_offset=offset_s", "trace_offset=0.0"), str(DOC), "exec"), namespace)
    with pytest.raises(AssertionError, match="the seed has no effect"):
        namespace["dualpi2_vs_droptail"]()
