"""Sweep integrity: damaged part files are found on resume and rerun, and named by ``emu plot``; NaN/inf grid values
fail before the first task; ``module:function`` evaluations run only when allowed, never under ``--dry-run``, and
are not looked up in the current folder unless asked."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from emu.cli import main
from emu.outputs import MARKER
from emu.plugins import import_ref
from emu.sweep import Sweep, SweepError, SweepResult
from emu.sweep.results import CorruptPart, read_part
from emu.sweep.tasks import execute_task
from tests.small_run import small_run

N_TASKS = 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A finished 4-task sweep (the registered dummy evaluation) and its table."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    result = Sweep(eval="dummy", grid={"x": [1.0, 2.0]}, replicates=2, root_seed=3).run(out, workers=1, plots=False)
    assert result.n_done == N_TASKS
    return out, result.table()


def _copy(finished, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(finished[0], out)
    return out


def _parts(out: Path) -> list[Path]:
    return sorted((out / "parts").glob("*.parquet"))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:]


# every way a part file can be damaged; each must be caught, named and rerun
DAMAGE = {
    "truncated to half": lambda data, other: data[: len(data) // 2],
    "last byte cut": lambda data, other: data[:-1],
    "flipped byte in the data": lambda data, other: _flip(data, len(data) // 3),
    "flipped byte in the footer": lambda data, other: _flip(data, len(data) - 40),
    "empty file": lambda data, other: b"",
    "text, not Parquet": lambda data, other: b"task_id,value\nx,1\n",
    "another task's part": lambda data, other: other,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_part_is_named_by_plot_and_rerun_on_resume(damage, finished, tmp_path, capsys, caplog):
    out = _copy(finished, tmp_path)
    victim, other = _parts(out)[1], _parts(out)[2]
    victim.write_bytes(DAMAGE[damage](victim.read_bytes(), other.read_bytes()))

    for command in ("plot", "report"):  # reported by name, no traceback
        assert main([command, str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"emu: error: {victim}: corrupt sweep part") and len(err.strip().splitlines()) == 1

    with caplog.at_level("WARNING"):
        result = Sweep(eval="dummy", grid={"x": [1.0, 2.0]}, replicates=2, root_seed=3).run(out, workers=1,
                                                                                           plots=False)
    assert f"{victim}: " in caplog.text and "runs again" in caplog.text
    assert (victim.parent / (victim.name + ".corrupt")).exists()
    assert result.n_done == N_TASKS and result.n_failed == 0
    pd.testing.assert_frame_equal(result.table(), finished[1])  # the rerun task gave the same rows
    assert len([r for r in _manifest(out) if r["task_id"] == victim.stem]) == 2


@pytest.mark.parametrize("text, expected", [("{", "not readable JSON"), ("[1]", "expected a JSON object")])
def test_plot_names_a_damaged_sweep_json(text, expected, finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    (out / "sweep.json").write_text(text)
    assert main(["plot", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"emu: error: {out / 'sweep.json'}: {expected}")


def test_parts_without_a_recorded_hash_are_still_parsed_whole(finished, tmp_path):
    out = _copy(finished, tmp_path)
    lines = [{k: v for k, v in r.items() if k != "part_sha256"} for r in _manifest(out)]  # an older sweep
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    victim = _parts(out)[0]
    assert read_part(victim) is not None  # intact: accepted
    victim.write_bytes(victim.read_bytes()[:-9])
    with pytest.raises(CorruptPart, match=str(victim)):
        read_part(victim)
    assert Sweep(eval="dummy", grid={"x": [1.0, 2.0]}, replicates=2, root_seed=3).run(
        out, workers=1, plots=False).n_done == N_TASKS


def test_a_part_with_the_wrong_columns_or_task_is_refused(finished, tmp_path):
    out = _copy(finished, tmp_path)
    victim = _parts(out)[0]
    frame = pd.read_parquet(victim)
    frame.drop(columns=["point_id", "replicate"]).to_parquet(tmp_path / "cols.parquet")
    with pytest.raises(CorruptPart, match=r"missing column\(s\) \['point_id', 'replicate'\]"):
        read_part(tmp_path / "cols.parquet")
    frame.to_parquet(tmp_path / "other-r9.parquet")
    with pytest.raises(CorruptPart, match="task_id column does not say 'other-r9'"):
        read_part(tmp_path / "other-r9.parquet")


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_every_part_has_its_sha256_in_the_manifest_and_the_folder_its_marker(finished):
    out = finished[0]
    recorded = {r["task_id"]: r["part_sha256"] for r in _manifest(out)}
    assert sorted(recorded) == [p.stem for p in _parts(out)] and all(len(h) == 64 for h in recorded.values())
    assert json.loads((out / MARKER).read_text()) == {"format": "emu.results/1", "kind": "sweep"}


# -- emu plot on a damaged run folder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return small_run("full").write(tmp_path_factory.mktemp("run") / "r", plots=False)


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


RUN_DAMAGE = {
    "missing column": ("packets.csv", lambda p: p.write_text(p.read_text().replace("delay_s", "dly", 1)),
                       "missing column(s) ['delay_s']"),
    "renamed columns": ("throughput.csv", lambda p: p.write_text("a,b,c\n1,2,3\n"), "missing column(s)"),
    "text in a number column": ("throughput.csv",
                                lambda p: p.write_text(p.read_text().replace("\n", "\n0.0,x,fast\n", 1)),
                                "column 'throughput_bps' must hold numbers"),
    "cut-off CSV": ("packets.csv", _cut, "truncated"),
    "empty CSV": ("packets.csv", lambda p: p.write_text(""), "not a readable table"),
    "binary CSV": ("throughput.csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage\n"), "cannot be read"),
    "summary.json not JSON": ("summary.json", lambda p: p.write_text("{"), "not readable JSON"),
    "summary.json a list": ("summary.json", lambda p: p.write_text("[1]"), "expected a JSON object"),
}


@pytest.mark.parametrize("damage", sorted(RUN_DAMAGE))
def test_plot_names_a_damaged_table_of_a_run_folder(damage, run_dir, tmp_path, capsys):
    name, spoil, expected = RUN_DAMAGE[damage]
    out = tmp_path / "r"
    shutil.copytree(run_dir, out)
    spoil(out / name)
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emu: error: {out / name}: ") and expected in err and len(err.strip().splitlines()) == 1


REPORT_DAMAGE = {
    "drops.csv without its columns": ("drops.csv", lambda p: p.write_text("a,b\n1,2\n"),
                                      "missing column(s) ['where', 'reason', 'flow']"),
    "drops.csv cut off": ("drops.csv", _cut, "truncated"),
    "summary.json not JSON": ("summary.json", lambda p: p.write_text("{"), "not readable JSON"),
}


@pytest.mark.parametrize("damage", sorted(REPORT_DAMAGE))
def test_report_names_a_damaged_file_of_a_run_folder(damage, run_dir, tmp_path, capsys):
    name, spoil, expected = REPORT_DAMAGE[damage]
    out = tmp_path / "r"
    shutil.copytree(run_dir, out)
    assert main(["report", str(out)]) == 0  # intact: fine
    spoil(out / name)
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"emu: error: {out / name}: ") and expected in err


def test_plot_redraws_an_intact_run_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "r"
    shutil.copytree(run_dir, out)
    assert main(["plot", str(out)]) == 0 and (out / "throughput.png").exists()


# -- NaN and infinity in a sweep ----------------------------------------------------------------------------------


BAD_VALUES = {
    "grid nan": ('[grid]\nx = [1.0, nan]\n', "grid.x[1]: must be a finite number, got nan"),
    "grid inf": ('[grid]\nx = [inf]\n', "grid.x[0]: must be a finite number, got inf"),
    "grid -inf": ('[grid]\nx = [0.0, -inf]\n', "grid.x[1]: must be a finite number, got -inf"),
    "grid nested": ('[grid]\nx = [[1.0, inf]]\n', "grid.x[0][1]: must be a finite number"),
    "grid table": ('[grid]\nx = [{a = nan}]\n', "grid.x[0].a: must be a finite number"),
    "dotted grid key": ('[grid]\n"a.b" = [nan]\n', "grid.a.b[0]: must be a finite number"),
    "points": ('[[points]]\nx = inf\n', "points[0].x: must be a finite number"),
    "fixed": ('[fixed]\nwork = nan\n[grid]\nx = [1.0]\n', "fixed.work: must be a finite number"),
    "params": ('[params]\nsleep_s = inf\n[grid]\nx = [1.0]\n', "params.sleep_s: must be a finite number"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_non_finite_values_fail_before_the_first_task(case, tmp_path, capsys):
    body, expected = BAD_VALUES[case]
    spec = tmp_path / "s.toml"
    spec.write_text('eval = "dummy"\n' + body)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emu: error: {spec}: {expected}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_non_finite_values_fail_in_the_python_api_too():
    with pytest.raises(SweepError, match=r"grid.x\[0\]: must be a finite number, got nan"):
        Sweep(eval="dummy", grid={"x": [float("nan")]})
    with pytest.raises(SweepError, match=r"grid.topology.bottleneck_rate\[1\]"):
        Sweep({"topology": {"kind": "dumbbell"}}, grid={"topology.bottleneck_rate": [1e6, float("inf")]})


# -- module:function evaluations are code ---------------------------------------------------------------------------


def _code_sweep(folder: Path, allow: str = "") -> Path:
    """A sweep file whose eval module, beside it, leaves a file behind when it is imported."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sidefx_eval.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported.flag').write_text('yes')\n"
        "def run(params, *, seed):\n    return {'y': params['x'] * 2}\n")
    spec = folder / "s.toml"
    spec.write_text(allow + 'eval = "sidefx_eval:run"\n[grid]\nx = [1, 2]\n')
    return spec


def test_code_needs_an_explicit_opt_in(tmp_path, capsys):
    spec = _code_sweep(tmp_path / "a")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "allow_code = true in the file, or --allow-code" in err and str(spec) in err
    assert not (tmp_path / "a" / "imported.flag").exists() and not (tmp_path / "out").exists()
    with pytest.raises(SweepError, match="allow_code"):
        Sweep(eval="sidefx_eval:run", grid={"x": [1]}, base_dir=tmp_path / "a")
    spec.write_text('allow_code = "yes"\n' + spec.read_text())
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "allow_code: must be true or false, got 'yes'" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["file", "flag"])
def test_code_runs_when_allowed(how, tmp_path, capsys):
    spec = _code_sweep(tmp_path / "a", "allow_code = true\n" if how == "file" else "")
    flags = ["--allow-code"] if how == "flag" else []
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-progress", "--no-plots", "--workers",
                 "1", *flags]) == 0
    assert (tmp_path / "a" / "imported.flag").exists()
    assert sorted(SweepResult(tmp_path / "out").table()["y"]) == [2, 4]


@pytest.mark.parametrize("flags", [[], ["--allow-code"]])
def test_dry_run_imports_nothing(flags, tmp_path, capsys):
    spec = _code_sweep(tmp_path / "a")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--dry-run", *flags]) == 0
    printed = capsys.readouterr().out
    assert "2 tasks" in printed and "not imported by --dry-run" in printed
    assert ("allowed" in printed) == bool(flags)
    assert not (tmp_path / "a" / "imported.flag").exists() and not (tmp_path / "out").exists()


def _cwd_module(tmp_path: Path, monkeypatch) -> Path:
    """The current folder holds cwd_eval.py and is on sys.path (as with ``python -m emu``); the sweep is elsewhere."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "cwd_eval.py").write_text("def run(params, *, seed):\n    return {'y': 1.0}\n")
    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(cwd))
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    monkeypatch.delitem(sys.modules, "cwd_eval", raising=False)
    spec = tmp_path / "elsewhere" / "s.toml"
    spec.parent.mkdir()
    spec.write_text('allow_code = true\neval = "cwd_eval:run"\n[grid]\nx = [1]\n')
    return spec


def test_the_current_folder_is_searched_only_when_asked(tmp_path, monkeypatch, capsys):
    spec = _cwd_module(tmp_path, monkeypatch)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot import cwd_eval" in err and "the current folder left out" in err
    assert "cwd_eval" not in sys.modules
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--code-path", ".", "--workers", "1",
                 "--no-plots", "--no-progress"]) == 0
    assert SweepResult(tmp_path / "out").table()["y"].tolist() == [1.0]
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o2"), "--code-path", "nowhere"]) == 2
    assert "--code-path nowhere: no such folder" in capsys.readouterr().err


def test_a_worker_does_not_search_the_current_folder_either(tmp_path, monkeypatch):
    _cwd_module(tmp_path, monkeypatch)
    payload = {"kind": "eval", "eval": "cwd_eval:run", "eval_params": {"x": 1}, "seed": 1, "allow_code": True}
    outcome = execute_task(payload)
    assert outcome["status"] == "failed" and "cannot import cwd_eval" in outcome["error"]
    assert execute_task({**payload, "code_path": [str(tmp_path / "cwd")]})["status"] == "done"
    refused = execute_task({**payload, "allow_code": False})  # a payload cannot skip the opt-in
    assert refused["status"] == "failed" and "allow_code" in refused["error"]


def test_a_module_in_the_current_folder_does_not_shadow_an_installed_one(tmp_path, monkeypatch):
    installed, cwd = tmp_path / "site", tmp_path / "cwd"
    for folder, origin in ((installed, "installed"), (cwd, "current folder")):
        folder.mkdir()
        (folder / "emu_shadow_probe.py").write_text(f"ORIGIN = {origin!r}\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", ["", str(cwd), str(installed), *sys.path])
    monkeypatch.delitem(sys.modules, "emu_shadow_probe", raising=False)
    assert import_ref("emu_shadow_probe:ORIGIN", "t", trust_cwd=False) == "installed"
    assert sys.path[:3] == ["", str(cwd), str(installed)]  # the import path is restored
    monkeypatch.delitem(sys.modules, "emu_shadow_probe")
    assert import_ref("emu_shadow_probe:ORIGIN", "t") == "current folder"  # what trust_cwd=False prevents
    monkeypatch.delitem(sys.modules, "emu_shadow_probe")
    assert import_ref("emu_shadow_probe:ORIGIN", "t", trust_cwd=False, code_path=[cwd]) == "current folder"


# -- the sweep's output folder --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["a file", "inside a file", "a foreign folder"])
def test_a_bad_sweep_out_fails_before_the_first_task(kind, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('eval = "dummy"\n[grid]\nx = [1.0]\n')
    (tmp_path / "f").write_text("keep")
    out = {"a file": tmp_path / "f", "inside a file": tmp_path / "f" / "o", "a foreign folder": tmp_path / "mine"}
    if kind == "a foreign folder":
        out[kind].mkdir()
        (out[kind] / "notes.txt").write_text("mine")
    assert main(["sweep", str(spec), "--out", str(out[kind]), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert ("is a file, not a folder" in err) if kind != "a foreign folder" else ("not a sweep results folder" in err)
    assert (tmp_path / "f").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.toml", "f"] + (["mine"] if "folder" in kind
                                                                                     else []))
