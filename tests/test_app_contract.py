"""The App contract: registry, install on any network, coexisting instances, RunResult.apps(), plugins."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import emu.apps as apps
from emu import RunResult, Sim
from emu.apps.artifacts import PACKAGED_MODELS, list_cards
from emu.topologies import access_bottleneck, run_until_done

PLUGIN_DIR = Path(__file__).parent / "plugin"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def probe_spec(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    import emu_probe_plugin

    if "probe" not in apps.names():
        apps.register(emu_probe_plugin.SPEC)
    yield emu_probe_plugin.SPEC
    apps.unregister("probe")


def test_builtin_apps_are_listed():
    assert {"bulk", "chatterbox", "grace", "kvfetch", "swiftqueue"} <= set(apps.names())


def test_unknown_names_fail_at_once_listing_valid_ones():
    sim = Sim(seed=0)
    topo = access_bottleneck(sim, rate="10Mbps", rtt_s=0.02)
    with pytest.raises(ValueError, match="valid names: .*bulk"):
        apps.install(topo.net, "nope", src="s0", dst="d0")
    with pytest.raises(ValueError, match="valid: cubic, reno, prague"):
        apps.install(topo.net, "bulk", src="s0", dst="d0", scheme="bbr")
    with pytest.raises(ValueError, match="valid: size_bytes, stop_s"):
        apps.install(topo.net, "bulk", src="s0", dst="d0", sise=1)
    with pytest.raises(ValueError, match="router"):
        apps.install(topo.net, "bulk", src="left", dst="d0")
    apps.install(topo.net, "bulk", src="s0", dst="d0", name="x")
    with pytest.raises(ValueError, match="installed already"):
        apps.install(topo.net, "bulk", src="s0", dst="d0", name="x")


def test_two_instances_coexist_with_their_own_flows_and_rows(probe_spec):
    sim = Sim(seed=3)
    topo = access_bottleneck(sim, pairs=2, rate="20Mbps", rtt_s=0.04)
    a = apps.install(topo.net, "probe", src="s0", dst="d0", n_probes=20)
    b = apps.install(topo.net, "probe", src="s1", dst="d1", scheme="large", n_probes=30, start_s=0.1)
    bulk = apps.install(topo.net, "bulk", src="s1", dst="d1", scheme="cubic", size_bytes=300_000)
    assert (a.name, b.name) == ("probe", "probe2")
    assert run_until_done(sim, [a, b, bulk], horizon_s=20.0, step_s=0.5)
    result = RunResult(sim)
    table = result.apps().set_index("name")
    assert list(table.index) == ["probe", "probe2", "bulk"]
    assert table.loc["probe", "delivered_pkts"] == 20 and table.loc["probe2", "delivered_pkts"] == 30
    assert table.loc["probe2", "scheme"] == "large" and bool(table["done"].all())
    assert table.loc["bulk", "fct_s"] > 0
    flows = set(result.flows()["flow"])
    assert {"probe", "probe2", "bulk"} <= flows
    summary = result.summary()
    assert [row["name"] for row in summary["apps"]] == ["probe", "probe2", "bulk"]


def test_results_folder_has_apps_csv(tmp_path, probe_spec):
    sim = Sim(seed=0)
    topo = access_bottleneck(sim, rate="10Mbps", rtt_s=0.02)
    apps.install(topo.net, "probe", src="s0", dst="d0", n_probes=5)
    sim.run(until_s=1.0)
    out = RunResult(sim).write(tmp_path / "run", plots=False)
    assert (out / "apps.csv").read_text().splitlines()[0].startswith("name,app,scheme")
    assert json.loads((out / "summary.json").read_text())["apps"][0]["delivered_pkts"] == 5


def _plugin_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), str(REPO), env.get("PYTHONPATH", "")])
    return env


def test_entry_point_plugin_runs_through_emu_eval_and_a_sweep(tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                                       env=_plugin_env(), cwd=tmp_path, timeout=300)
    listed = run("eval", "--help")
    assert "probe" in listed.stdout, listed.stderr
    out = run("eval", "probe", "--schemes", "small,large", "--n-probes", "7", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"small", "large"} and data["small"]["delivered_pkts"] == 7
    assert data["large"]["owd_mean_s"] > data["small"]["owd_mean_s"]  # 4x the bytes: longer serialisation
    bad = run("eval", "probe", "--schemes", "medium")
    assert bad.returncode == 2 and "valid: small, large" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "sweep.toml").write_text('eval = "probe"\nreplicates = 2\n[params]\nn_probes = 5\n'
                                         '[grid]\nrtt_s = [0.01, 0.05]\n')
    swept = run("sweep", "sweep.toml", "--out", "sw", "--workers", "1", "--no-plots")
    assert swept.returncode == 0, swept.stderr
    import pandas as pd

    rows = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "sw" / "parts").glob("*.parquet"))])
    assert len(rows) == 2 * 2 * 2 and set(rows["scheme"]) == {"small", "large"}


def test_models_are_package_data():
    """Every committed model file sits under emu/models/<app>/ and matches the package-data glob."""
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["emu"]
    cards = list_cards()
    assert cards, "no model cards under emu/models"
    for card in cards:
        card.verify()
        for rel in card.data["files"]:
            path = (card.dir / rel).relative_to(PACKAGED_MODELS.parent)
            assert any(path.match(g) for g in globs), f"{path} is not package data ({globs})"


def test_every_registered_app_runs_on_one_network_in_one_run(shared_traces):
    """examples/07_mixed_apps.py installs every registered app (and Prague and Cubic bulk flows) on one
    trace-driven DualPI2 bottleneck; each endpoint reports a metrics row of its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mixed_apps", REPO / "examples" / "07_mixed_apps.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    sim, endpoints = example.build("nyc-cellular-2019/trace-2925703-home1", seed=1, duration_s=12.0,
                                   grace={"max_frames": 60}, kvfetch={"context_tokens": 512}, chatterbox={"n_tokens": 60})
    assert {ep.app for ep in endpoints.values()} == set(apps.names()) - {"probe"}
    sim.run(until_s=12.0)
    table = RunResult(sim).apps().set_index("name")
    assert set(table.index) == set(endpoints)
    for name, ep in endpoints.items():
        row = ep.result()
        numbers = [v for v in row.values() if isinstance(v, (int, float))]
        assert numbers, f"{name}: result() has no metric"
        assert table.loc[name, "app"] == ep.app
    flows = RunResult(sim).flows()
    delivered = flows.set_index("flow")["delivered_pkts"]
    assert all(delivered.get(name, delivered.get(f"{name}.data", 0)) > 0 for name in ("bulk_prague", "bulk_cubic"))
