import json
import subprocess
import sys

import pytest

from emu.cli import main
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "dumbbell_codel.toml"


def test_run_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(EXAMPLE), "--out", str(out), "--duration", "2s", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["scenario"] == "dumbbell-codel"
    assert {"throughput.png", "delay_cdf.png", "queue_delay.png", "flows.csv"} <= {p.name for p in out.iterdir()}
    assert "video" in capsys.readouterr().out
    # emu plot redraws from the tables
    for png in out.glob("*.png"):
        png.unlink()
    assert main(["plot", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 3


def test_existing_out_is_kept_without_force(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", str(EXAMPLE), "--out", str(out), "--duration", "1s", "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


BAD_SCENARIOS = {
    "negative rate": ('[topology]\nkind="dumbbell"\nbottleneck_rate=-5\n', "rate"),
    "unknown queue": ('[topology]\nkind="dumbbell"\nqueue="fifo9"\n', "valid names: codel, droptail"),
    "zero mtu": ('[[host]]\nname="a"\n[[host]]\nname="b"\n[[link]]\nfrom="a"\nto="b"\nrate="1Mbps"\nmtu=0\n',
                 "mtu_bytes"),
    "unknown key": ('[topology]\nkind="dumbbell"\nbottlenek_rate="1Mbps"\n', "bottlenek_rate"),
    "unknown flow type": ('[topology]\nkind="dumbbell"\n[[flow]]\ntype="tcp9"\nsrc="s0"\ndst="d0"\n', "flow[0].type"),
    "unknown host": ('[topology]\nkind="dumbbell"\n[[flow]]\ntype="cbr"\nsrc="x"\ndst="d0"\nrate="1Mbps"\n',
                     "flow[0].src"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenarios_fail_clearly_and_write_nothing(case, tmp_path, capsys):
    body, expected = BAD_SCENARIOS[case]
    path = tmp_path / "bad.toml"
    path.write_text('duration="1s"\n' + body + ('\n[[flow]]\ntype="cbr"\nsrc="s0"\ndst="d0"\nrate="1Mbps"\n'
                                                 if "[[flow]]" not in body and "kind" in body else ""))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "bad.toml" in err
    assert not out.exists()


def test_trace_stats_json(shared_traces, capsys):
    path = shared_traces / "mahimahi" / "Verizon-LTE-short.down"
    assert main(["trace", "stats", str(path), "--json", "--opportunity-bytes", "1500"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {"duration_s", "mean_bps", "p5_bps", "p95_bps"} <= set(stats)
    assert stats["mean_bps"] == pytest.approx(5.03e6, rel=0.01)  # the traces README's table


def test_console_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "emu", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "trace" in done.stdout


def test_import_emu_does_not_import_torch():
    code = "import sys, emu, emu.cli, emu.scenario; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


STREAMS = """
name = "cli-streams"
duration = "2s"
[topology]
kind = "dumbbell"
pairs = 3
bottleneck_rate = "10Mbps"
queue = "dualpi2"
[[flow]]
name = "p"
type = "stream"
cc = "prague"
src = "s0"
dst = "d0"
[[app]]
name = "xfer"
type = "bulk"
scheme = "cubic"
src = "s1"
dst = "d1"
[app.params]
size_bytes = "500KB"
"""


def test_run_prints_flows_apps_and_busy_links_with_warmup_and_time_series(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(STREAMS)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--no-progress", "--warmup", "0.5s",
                 "--timeseries", "cwnd,queue", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "flows (from 0.5 s)" in text and "apps" in text and "xfer" in text
    assert "p.ack" not in text          # ACK flows: in the data, not in the printed table
    assert "left->right" in text and "s2->left" not in text   # idle links left out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["warmup_s"] == 0.5
    assert (out / "timeseries_cwnd.csv").exists() and (out / "timeseries_queue.csv").exists()
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--warmup", "2s", "--no-progress"]) == 2
    assert "--warmup: must be in [0, 2)" in capsys.readouterr().err
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--timeseries", "rtt", "--no-progress"]) == 2
    assert "valid: cwnd, queue" in capsys.readouterr().err


def test_trace_plot_and_outage_stats(tmp_path, capsys):
    import numpy as np

    from emu.links.tracefile import write_mahimahi

    trace = write_mahimahi(tmp_path / "t", np.concatenate([np.arange(1, 1000), np.arange(4000, 5000)]))
    assert main(["trace", "stats", str(trace)]) == 0
    text = capsys.readouterr().out
    assert "longest_outage_s: 3.001" in text and "zero_capacity_s: 3" in text
    assert main(["trace", "plot", str(trace), "--out", str(tmp_path / "t.png"), "--bin", "250ms"]) == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["trace", "plot", str(tmp_path / "missing")]) == 2
    assert "trace file not found" in capsys.readouterr().err
