"""Safe outputs: a results folder is replaced only when emu wrote it (its .emu-results marker), by rename with
rollback; stale staging folders of dead processes are cleaned; output mistakes fail before the simulation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emu import RunResult
from emu.cli import main
from emu.outputs import MARKER, check_output_dir, clean_stale, has_marker, replace_dir, staging_dir
from tests.conftest import REPO
from tests.small_run import small_run

EXAMPLE = REPO / "examples" / "dumbbell_codel.toml"


@pytest.fixture(scope="module")
def result() -> RunResult:
    return small_run("summary")


def _write(result: RunResult, out: Path, **kw) -> Path:
    return result.write(out, plots=False, **kw)


def _hidden(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def _user_folder(path: Path) -> dict[str, str]:
    """A folder of someone's own files (no marker): what --force must never delete."""
    path.mkdir()
    (path / "thesis.tex").write_text("\\chapter{results}")
    (path / "data").mkdir()
    (path / "data" / "raw.csv").write_text("a,b\n1,2\n")
    return _snapshot(path)


def _snapshot(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a scenario starts running: these errors must come before the simulation."""
    from emu.scenario import Scenario

    def refuse(self, *args, **kwargs):
        raise AssertionError("the simulation ran before the output was checked")

    monkeypatch.setattr(Scenario, "run", refuse)


# -- the marker -------------------------------------------------------------------------------------------------


def test_every_results_folder_carries_the_marker(result, tmp_path):
    out = _write(result, tmp_path / "r")
    assert json.loads((out / MARKER).read_text()) == {"format": "emu.results/1", "kind": "run"}
    assert has_marker(out) and not has_marker(tmp_path)
    assert _hidden(tmp_path, "r") == []  # no staging folder left behind


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"format": 1}', '{"format": "other/1"}'])
def test_a_marker_emu_did_not_write_is_not_ours(tmp_path, content):
    (tmp_path / MARKER).write_text(content)
    assert not has_marker(tmp_path)


# -- --force replaces only what emu wrote --------------------------------------------------------------------------


def test_overwrite_refuses_a_folder_emu_did_not_write(result, tmp_path):
    before = _user_folder(tmp_path / "thesis")
    with pytest.raises(FileExistsError, match=rf"{tmp_path / 'thesis'}.*not written by emu.*{MARKER}"):
        _write(result, tmp_path / "thesis", overwrite=True)
    assert _snapshot(tmp_path / "thesis") == before
    assert _hidden(tmp_path, "thesis") == []


def test_cli_force_refuses_a_folder_emu_did_not_write_before_running(tmp_path, capsys, no_simulation):
    before = _user_folder(tmp_path / "mine")
    code = main(["run", str(EXAMPLE), "--out", str(tmp_path / "mine"), "--force", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("emu: error: --out ") and "not written by emu" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(tmp_path / "mine") == before and _hidden(tmp_path, "mine") == []


def test_overwrite_replaces_a_folder_emu_wrote(result, tmp_path):
    out = _write(result, tmp_path / "r")
    (out / "stale.txt").write_text("from an older run")
    with pytest.raises(FileExistsError, match="overwrite"):  # not without asking
        _write(result, out)
    assert (out / "stale.txt").exists()
    _write(result, out, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "summary.json").exists() and has_marker(out)
    assert _hidden(tmp_path, "r") == []


def test_an_empty_folder_is_written_into(result, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (_write(result, tmp_path / "empty") / "summary.json").exists()


# -- the swap fails: the old results stay ---------------------------------------------------------------------------


def test_a_failed_swap_restores_the_old_results(result, tmp_path, monkeypatch):
    out = _write(result, tmp_path / "r")
    (out / "old.txt").write_text("the old results")
    before = _snapshot(out)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # staging -> NAME, after NAME -> .NAME.old-PID
            raise OSError(28, "No space left on device (injected)")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="injected"):
        _write(result, out, overwrite=True)
    monkeypatch.setattr(os, "rename", real_rename)
    assert calls[0] == ("r", f".r.old-{os.getpid()}") and calls[1][1] == "r"  # the two renames were tried
    assert _snapshot(out) == before  # the old results, where they were
    assert _hidden(tmp_path, "r") == []  # staging removed, backup renamed back


def test_a_failure_while_writing_leaves_the_old_results(result, tmp_path, monkeypatch):
    out = _write(result, tmp_path / "r")
    before = _snapshot(out)

    def broken_flows(*args, **kwargs):
        raise RuntimeError("injected failure while writing")

    monkeypatch.setattr(RunResult, "flows", broken_flows)
    with pytest.raises(RuntimeError, match="injected"):
        _write(result, out, overwrite=True)
    assert _snapshot(out) == before and _hidden(tmp_path, "r") == []


def test_replace_dir_rolls_back_and_refuses_foreign_folders(tmp_path, monkeypatch):
    out = tmp_path / "o"
    _user_folder(out)
    staged = staging_dir(out)
    with pytest.raises(FileExistsError, match="not replaced"):
        replace_dir(staged, out)
    assert (out / "thesis.tex").exists() and staged.exists()


# -- stale staging folders --------------------------------------------------------------------------------------


def _staged(parent: Path, name: str, marker: bool = True, files: dict | None = None) -> Path:
    path = parent / name
    path.mkdir()
    if marker:
        (path / MARKER).write_text(json.dumps({"format": "emu.results/1", "kind": "run"}))
    for rel, text in (files or {}).items():
        (path / rel).write_text(text)
    return path


def test_stale_staging_folders_of_dead_processes_are_cleaned_on_the_next_write(result, tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    _write(result, tmp_path / "r")
    _staged(tmp_path, f".r.partial-{dead}-abc123", files={"flows.csv": "half"})
    _staged(tmp_path, f".r.old-{dead}", files={"summary.json": "{}"})
    _staged(tmp_path, f".r.pcap-{dead}-x1", marker=False)  # killed before its marker: empty
    live = _staged(tmp_path, f".r.partial-{alive}-zzz")  # a write in progress: left alone
    foreign = _staged(tmp_path, f".r.partial-{dead}-mine", marker=False, files={"notes.txt": "mine"})
    other = _staged(tmp_path, f".s.partial-{dead}-abc")  # another folder's: not this write's business
    _write(result, tmp_path / "r", overwrite=True)
    assert _hidden(tmp_path, "r") == sorted([live.name, foreign.name])
    assert (foreign / "notes.txt").read_text() == "mine" and other.exists()


def test_old_results_stranded_by_a_crash_between_the_renames_are_restored(result, tmp_path):
    out = _write(result, tmp_path / "r")
    (out / "old.txt").write_text("old")
    before = _snapshot(out)
    stranded = tmp_path / f".r.old-{_dead_pid()}"
    os.rename(out, stranded)  # what a kill between the two renames leaves
    with pytest.raises(FileExistsError, match="--force|overwrite"):  # back in place, so not silently replaced
        _write(result, out)
    assert _snapshot(out) == before and not stranded.exists()
    assert clean_stale(out) == []


# -- output mistakes fail before the simulation, in one line -------------------------------------------------------


def _unwritable_parent(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    for candidate in (Path("/sys/fs"), Path("/proc/sys")):  # root writes anywhere but here
        try:
            (candidate / f"emu-probe-{os.getpid()}").mkdir()
        except OSError:
            return candidate
        (candidate / f"emu-probe-{os.getpid()}").rmdir()
    pytest.skip("no folder this user cannot write")


def _bad_out(kind: str, tmp_path: Path) -> tuple[list[str], str]:
    if kind == "a file":
        (tmp_path / "out.txt").write_text("keep")
        return ["--out", str(tmp_path / "out.txt")], "is a file, not a folder"
    if kind == "inside a file":
        (tmp_path / "f").write_text("keep")
        return ["--out", str(tmp_path / "f" / "out")], "is a file, not a folder"
    if kind == "unwritable":
        return ["--out", str(_unwritable_parent(tmp_path) / "out")], "cannot write in"
    if kind == "broken link":
        (tmp_path / "link").symlink_to(tmp_path / "nowhere")
        return ["--out", str(tmp_path / "link")], "broken symbolic link"
    if kind == "the current folder":
        os.chdir(tmp_path)  # restored by the test's monkeypatch.chdir
        return ["--out", "."], "--out .: is the current folder (or holds it)"
    if kind == "a folder holding the current one":
        (tmp_path / "deeper").mkdir()
        os.chdir(tmp_path / "deeper")
        return ["--out", ".."], "--out ..: is the current folder (or holds it)"
    if kind == "the root":
        return ["--out", "/"], "--out /: the file system root cannot be a results folder"
    if kind == "format xml":
        return ["--out", str(tmp_path / "o"), "--format", "xml"], "--format: unknown format 'xml'; valid: csv"
    if kind == "format empty":
        return ["--out", str(tmp_path / "o"), "--format", ","], "--format: no table format given"
    raise AssertionError(kind)


BAD_OUTPUTS = ["a file", "inside a file", "unwritable", "broken link", "the current folder",
               "a folder holding the current one", "the root", "format xml", "format empty"]


@pytest.mark.parametrize("kind", BAD_OUTPUTS)
def test_bad_outputs_fail_before_the_simulation(kind, tmp_path, capsys, no_simulation, monkeypatch):
    monkeypatch.chdir(REPO)  # the chdir of some cases is undone after the test
    flags, expected = _bad_out(kind, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["run", str(EXAMPLE), *flags, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("emu: error: ") and expected in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing removed
    assert all(p.read_text() == "keep" for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink())


def test_check_output_dir_accepts_a_new_nested_folder(tmp_path):
    out = check_output_dir(tmp_path / "a" / "b" / "c", replace=False)
    assert not (tmp_path / "a").exists() and out == tmp_path / "a" / "b" / "c"  # checked, not created


def test_report_out_naming_a_folder_is_refused(result, tmp_path, capsys):
    out = _write(result, tmp_path / "r")
    (tmp_path / "dir").mkdir()
    assert main(["report", str(out), "--out", str(tmp_path / "dir")]) == 2
    assert "is a folder; give the HTML file" in capsys.readouterr().err
