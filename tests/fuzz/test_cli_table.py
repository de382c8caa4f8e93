"""Bad inputs at the command line, in process (``emu.cli.main``): every one exits 2 with a one-line error that
names the input (file, field or flag), prints no traceback, does not hang, and writes or deletes nothing outside
the output folder. A few run as real subprocesses to prove the same at the process boundary."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emu.cli import main
from tests.fuzz.guard import no_hang, tree

REPO = Path(__file__).resolve().parents[2]

GOOD_SCENARIO = """
duration = "0.2s"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[router]]
name = "r"
[[link]]
from = "a"
to = "r"
rate = "10Mbps"
delay = "1ms"
[[link]]
from = "r"
to = "b"
rate = "10Mbps"
delay = "1ms"
[[flow]]
name = "f"
type = "cbr"
src = "a"
dst = "b"
rate = "1Mbps"
"""


def scenario(*replace: tuple[str, str], extra: str = "") -> str:
    text = GOOD_SCENARIO
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text + extra


# Files the cases refer to by name, written into the test's folder: name -> bytes.
FILES = {
    "good.toml": scenario().encode(),
    "binary.toml": bytes(range(256)) * 4,
    "not-toml.toml": b"duration = = 1\n",
    "duration-inf.toml": scenario(('duration = "0.2s"', "duration = inf")).encode(),
    "duration-nan.toml": scenario(('duration = "0.2s"', "duration = nan")).encode(),
    "duration-1e12.toml": scenario(('duration = "0.2s"', 'duration = "1e12s"')).encode(),
    "duration-20-digits.toml": scenario(('duration = "0.2s"', "duration = 99999999999999999999")).encode(),
    "rate-inf.toml": scenario(('rate = "1Mbps"', "rate = inf")).encode(),
    "size-inf.toml": scenario(extra="size = inf\n").encode(),
    "link-rate-inf.toml": scenario(('rate = "10Mbps"', "rate = inf")).encode(),
    "link-delay-inf.toml": scenario(('delay = "1ms"', "delay = inf")).encode(),
    "queue-list.toml": scenario(('delay = "1ms"', 'delay = "1ms"\nqueue = ["codel"]')).encode(),
    "queue-params-string.toml": scenario(('delay = "1ms"', 'delay = "1ms"\nqueue_params = "fast"')).encode(),
    "limit-pkts-true.toml": scenario(('delay = "1ms"', 'delay = "1ms"\nqueue_params = {limit_pkts = true}')).encode(),
    "reorder-no.toml": scenario(('delay = "1ms"', 'delay = "1ms"\njitter = {mean = "1ms", reorder = "no"}')).encode(),
    "from-int.toml": scenario(('from = "a"', "from = 5")).encode(),
    "flow-string.toml": b'duration = "1s"\nflow = "abc"\n[[link]]\nfrom = "a"\nto = "b"\nrate = "1Mbps"\n',
    "host-name-int.toml": scenario(('name = "c"', "name = 7")).encode(),
    "self-link.toml": scenario(extra='[[link]]\nfrom = "c"\nto = "c"\nrate = "1Mbps"\n').encode(),
    "unreachable.toml": scenario(('dst = "b"', 'dst = "c"')).encode(),
    "start-after-end.toml": scenario(extra='start = "5s"\n').encode(),
    "bad-trace-ref.toml": scenario(('rate = "10Mbps"', 'trace = "digits20.trace"\nreverse_rate = "10Mbps"')).encode(),
    "binary-trace-ref.toml": scenario(('rate = "10Mbps"', 'trace = "binary.trace"\nreverse_rate = "10Mbps"')).encode(),
    # traces
    "digits20.trace": b"1\n2\n99999999999999999999\n",
    "digits5000.trace": b"1\n" + b"9" * 5000 + b"\n",
    "binary.trace": bytes(range(256)) * 8,
    "nul.trace": b"1\n2\x00\n3\n",
    "empty.trace": b"\n\n",
    "negative.trace": b"5\n-1\n",
    "decreasing.trace": b"5\n3\n",
    "zero-period.trace": b"0\n0\n",
    "words.trace": b"one\ntwo\n",
    "mbps-inf.trace": b"0 1\n1 inf\n",
    "mbps-nan.trace": b"0 nan\n1 2\n",
    "mbps-huge.trace": b"0 1\n1 1e308\n",
    "mbps-time-huge.trace": b"0 1\n1e300 2\n",
    "mbps-three-columns.trace": b"0 1 2\n",
    "csv-negative.trace": b"0,100\n1,-5\n",
    "jens-zero-hz.trace": b"# :recommended_frequency=0\n5\n6\n",
    "jens-huge.trace": b"# jens\n5\n1e300\n",
    # chatterbox timelines
    "timeline-inf.txt": b'0.1\t"a"\ninf\t"b"\n',
    "timeline-nan.txt": b'nan\t"a"\n',
    "timeline-binary.txt": bytes(range(128, 256)) * 4,
    "timeline-no-tab.txt": b"0.1 a\n",
    "timeline-empty.txt": b"\n",
}

# (id, argv, text the one-line error must contain); "{d}" is the test's folder.
RUN = [
    ("run-missing-file", ["run", "nope.toml", "--out", "out"], "nope.toml"),
    ("run-binary-file", ["run", "binary.toml", "--out", "out"], "binary.toml"),
    ("run-not-toml", ["run", "not-toml.toml", "--out", "out"], "not-toml.toml: not valid TOML"),
    ("run-duration-inf", ["run", "duration-inf.toml", "--out", "out"], "duration-inf.toml: duration"),
    ("run-duration-nan", ["run", "duration-nan.toml", "--out", "out"], "duration-nan.toml: duration"),
    ("run-duration-1e12", ["run", "duration-1e12.toml", "--out", "out"], "duration: must be > 0 and <= 1e+07 s"),
    ("run-duration-20-digits", ["run", "duration-20-digits.toml", "--out", "out"], "duration-20-digits.toml: duration"),
    ("run-flow-rate-inf", ["run", "rate-inf.toml", "--out", "out"], "flow[0].rate"),
    ("run-flow-size-inf", ["run", "size-inf.toml", "--out", "out"], "flow[0].size"),
    ("run-link-rate-inf", ["run", "link-rate-inf.toml", "--out", "out"], "link[0]"),
    ("run-link-delay-inf", ["run", "link-delay-inf.toml", "--out", "out"], "delay"),
    ("run-queue-list", ["run", "queue-list.toml", "--out", "out"], "queue: must be a queue name"),
    ("run-queue-params-string", ["run", "queue-params-string.toml", "--out", "out"], "queue_params: must be a table"),
    ("run-limit-pkts-true", ["run", "limit-pkts-true.toml", "--out", "out"], "limit_pkts"),
    ("run-reorder-no", ["run", "reorder-no.toml", "--out", "out"], "reorder: must be true or false"),
    ("run-from-int", ["run", "from-int.toml", "--out", "out"], "link[0].from"),
    ("run-flow-string", ["run", "flow-string.toml", "--out", "out"], "flow: expected an array of tables"),
    ("run-host-name-int", ["run", "host-name-int.toml", "--out", "out"], "host[2].name"),
    ("run-self-link", ["run", "self-link.toml", "--out", "out"], "a link must join two different nodes"),
    ("run-unreachable", ["run", "unreachable.toml", "--out", "out"], "no route from 'a' to 'c'"),
    ("run-start-after-end", ["run", "start-after-end.toml", "--out", "out"], "flow[0].start"),
    ("run-trace-20-digits", ["run", "bad-trace-ref.toml", "--out", "out"], "digits20.trace:3"),
    ("run-trace-binary", ["run", "binary-trace-ref.toml", "--out", "out"], "binary.trace: not a text trace"),
    ("run-flag-duration-inf", ["run", "good.toml", "--out", "out", "--duration", "inf"], "--duration"),
    ("run-flag-duration-1e12", ["run", "good.toml", "--out", "out", "--duration", "1e12s"], "--duration"),
    ("run-flag-duration-0", ["run", "good.toml", "--out", "out", "--duration", "0"], "--duration: must be > 0"),
    ("run-flag-duration-word", ["run", "good.toml", "--out", "out", "--duration", "long"], "--duration"),
    ("run-flag-duration-shorter-than-start", ["run", "start-after-end.toml", "--out", "out", "--duration", "1s"],
     "flow[0].start"),
    ("run-flag-warmup-inf", ["run", "good.toml", "--out", "out", "--warmup", "inf"], "--warmup"),
    ("run-flag-warmup-past-end", ["run", "good.toml", "--out", "out", "--warmup", "5s"], "--warmup"),
    ("run-flag-timeseries", ["run", "good.toml", "--out", "out", "--timeseries", "bogus"], "--timeseries"),
    ("run-flag-pcap-link", ["run", "good.toml", "--out", "out", "--pcap", "x->y"], "--pcap"),
    ("run-flag-seed-negative", ["run", "good.toml", "--out", "out", "--seed", "-1"], "seed"),
]
TRACE = [(f"trace-stats-{name[:-6]}", ["trace", "stats", name], name) for name in FILES if name.endswith(".trace")] + [
    ("trace-stats-missing", ["trace", "stats", "no-such.trace"], "no-such.trace"),
    ("trace-stats-folder", ["trace", "stats", "{d}"], "not a file"),
    ("trace-stats-opportunity-zero", ["trace", "stats", "good.trace", "--opportunity-bytes", "0"],
     "opportunity_bytes"),
    ("trace-stats-opportunity-huge", ["trace", "stats", "good.trace", "--opportunity-bytes", "99999999999"],
     "opportunity_bytes"),
    ("trace-plot-bin-inf", ["trace", "plot", "good.trace", "--bin", "inf", "--out", "out/x.png"], "--bin"),
    ("trace-plot-bin-tiny", ["trace", "plot", "good.trace", "--bin", "1ns", "--out", "out/x.png"], "bin_s"),
]
EVAL = [
    ("eval-burst-inf", ["eval", "chatterbox", "--burst", "inf"], "--burst"),
    ("eval-burst-1e308", ["eval", "chatterbox", "--burst", "1e308"], "burst: must be >= 1 and <= 10000 packets (mean loss-burst length), got 1e+308 (flag --burst)"),
    ("eval-burst-nan", ["eval", "chatterbox", "--burst", "nan"], "--burst"),
    ("eval-loss-2", ["eval", "chatterbox", "--loss", "2"], "--loss"),
    ("eval-rate-1e308", ["eval", "chatterbox", "--rate-bps", "1e308"], "--rate-bps"),
    ("eval-rtt-zero", ["eval", "chatterbox", "--rtt-s", "0"], "--rtt-s"),
    ("eval-responses-zero", ["eval", "chatterbox", "--n-responses", "0"], "--n-responses"),
    ("eval-responses-huge", ["eval", "chatterbox", "--n-responses", "99999999999999999999"], "--n-responses"),
    ("eval-inter-token-inf", ["eval", "chatterbox", "--inter-token-s", "1e308"], "--inter-token-s"),
    ("eval-trace-missing", ["eval", "chatterbox", "--trace", "no-such.trace"], "no-such.trace"),
    ("eval-schemes-unknown", ["eval", "chatterbox", "--schemes", "nope"], "--schemes"),
    ("eval-seed-negative", ["eval", "chatterbox", "--seed", "-3"], "--seed"),
] + [(f"eval-timeline-{name[9:-4]}", ["eval", "chatterbox", "--n-responses", "1", "--schemes", "chatterbox",
                                       "--timeline-file", name], name)
     for name in FILES if name.startswith("timeline-")] + [
    ("eval-grace-frames-one", ["eval", "grace", "--max-frames", "1"], "--max-frames"),
    ("eval-grace-loss-inf", ["eval", "grace", "--loss", "inf"], "--loss"),
    ("eval-grace-video-missing", ["eval", "grace", "--video", "no-such.mp4"], "no-such.mp4"),
    ("eval-grace-video-binary", ["eval", "grace", "--video", "binary.trace"], "binary.trace"),
    ("eval-kvfetch-context-huge", ["eval", "kvfetch", "--context-tokens", "99999999999"], "--context-tokens"),
    ("eval-abr-rtt-nan", ["eval", "abr", "--rtt-s", "nan"], "--rtt-s"),
    ("eval-unknown-app", ["eval", "nosuchapp"], "nosuchapp"),
]
CASES = RUN + TRACE + EVAL


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.trace").write_bytes(b"1\n2\n3\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_main(argv):
    try:
        return main(argv)
    except SystemExit as exc:   # argparse: a bad flag value or an unknown command
        return exc.code


@pytest.mark.parametrize("case_id,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_cli_input_exits_2_with_one_line_naming_it(case_id, argv, expected, folder, capsys):
    argv = [a.replace("{d}", str(folder)) for a in argv]
    before = tree(folder)
    with no_hang(case_id):
        code = run_main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last, err
    if last.startswith("emu: error:"):   # our errors: one line; argparse's come after its usage lines
        assert len(err.strip().splitlines()) == 1, err
    assert expected in last, err
    after = tree(folder)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert all(k.startswith("out/") or k == "out" for k in changed), changed


def test_the_good_inputs_run(folder, capsys):
    """The files the cases change are valid before the change: the failures come from the change."""
    assert run_main(["run", "good.toml", "--out", "out", "--no-plots"]) == 0
    assert run_main(["trace", "stats", "good.trace"]) == 0


SUBPROCESS = [
    ["run", "duration-inf.toml", "--out", "out"],
    ["trace", "stats", "binary.trace"],
    ["eval", "chatterbox", "--burst", "1e308"],
]


@pytest.mark.parametrize("argv", SUBPROCESS, ids=["run", "trace", "eval"])
def test_no_traceback_at_the_process_boundary(argv, folder):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "emu", *argv], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("emu: error:") and proc.stderr.count("\n") == 1, proc.stderr
