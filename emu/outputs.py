"""Results folders on disk: the marker that says emu wrote one, checks before a run, and a safe replace.

Every folder emu writes (``emu run``'s results, a sweep's folder) holds a marker file, ``.emu-results``, with a
small JSON object ``{"format": "emu.results/1", "kind": "run" | "sweep"}``. Only a folder with that marker is
ever replaced (``--force``, ``RunResult.write(overwrite=True)``); a non-empty folder without it is refused, so a
mistyped ``--out`` cannot delete anyone's files.

A results folder is written into a staging folder beside it, ``.NAME.partial-PID-XXXX``, and appears by rename.
Replacing an existing one takes two renames (old -> ``.NAME.old-PID``, staging -> NAME); if the second fails the
first is undone, so the old results stay where they were. A process killed in between leaves those hidden folders
behind: the next write of NAME removes the ones whose process is gone, and puts a stranded ``.NAME.old-PID`` back
in place of a missing NAME first (it holds the only copy of the old results).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Union

log = logging.getLogger(__name__)

MARKER = ".emu-results"
FORMAT = "emu.results/1"
KINDS = ("run", "sweep")
STAGING_ROLES = ("partial", "old", "pcap")  # the hidden folders emu makes beside NAME


def write_file_atomically(path: Union[str, Path], write: Callable[[Path], object]) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a hidden file beside it (``.NAME.tmp-PID``), which
    then replaces ``path`` in one rename; if ``write`` fails the hidden file is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_marker(folder: Union[str, Path], kind: str) -> Path:
    """Write the marker into ``folder`` (which must exist); return its path."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r}; valid: {', '.join(KINDS)}")
    path = Path(folder) / MARKER
    path.write_text(json.dumps({"format": FORMAT, "kind": kind}) + "\n")
    return path


def has_marker(folder: Union[str, Path]) -> bool:
    """Whether ``folder`` holds a marker emu wrote (any ``emu.results/N`` format)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("format"), str) and data["format"].startswith("emu.results/")


def _staging_re(name: str) -> "re.Pattern[str]":
    return re.compile(rf"\.{re.escape(name)}\.({'|'.join(STAGING_ROLES)})-(\d+)(?:-.*)?")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def clean_stale(out: Union[str, Path]) -> list[Path]:
    """Remove the hidden staging folders of ``out`` (``.NAME.partial-PID-*``, ``.NAME.old-PID``,
    ``.NAME.pcap-PID-*``) whose process is gone and which emu made (a marker inside, or empty). A stranded
    ``.NAME.old-PID`` whose NAME is missing is renamed back to NAME instead. Return the folders removed or restored.
    """
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        return []
    pattern = _staging_re(out.name)
    found = []
    for entry in parent.iterdir():
        m = pattern.fullmatch(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink() or _pid_alive(int(m.group(2))):
            continue
        if not has_marker(entry) and any(entry.iterdir()):
            continue  # not ours to judge
        found.append((m.group(1), entry))
    done = []
    for role, entry in sorted(found, key=lambda item: item[0] != "old"):  # restore before anything is removed
        if role == "old" and not out.exists():
            os.rename(entry, out)
            log.warning("%s: restored from %s, left by an interrupted replace", out, entry.name)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        done.append(entry)
    return done


def _probe_writable(folder: Path, what: str, out: Path) -> None:
    """Create and remove a folder inside ``folder`` (or its nearest existing ancestor): the one check that holds
    for every user, root included, and for read-only mounts. Messages name ``out``, the path the user gave."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {out}: {probe} is a file, not a folder")
    try:
        Path(tempfile.mkdtemp(prefix=".emu-write-probe-", dir=probe)).rmdir()
    except OSError as exc:
        raise PermissionError(f"{what} {out}: cannot write in {probe} ({exc.strerror or exc})") from None


def check_output_dir(out: Union[str, Path], *, replace: bool, flag: str = "--out", force_flag: str = "--force",
                     reopen: bool = False) -> Path:
    """Everything about an output folder that can be checked before a run: ``out`` is not a file, its parent can
    be written, and an existing non-empty ``out`` is either replaceable (``replace`` and emu's marker inside) or
    refused with a message naming it. ``reopen``: an existing folder is written into, not replaced (a sweep resumes;
    its caller checks what the folder holds).
    Stale staging folders of ``out`` are cleaned first (see ``clean_stale``)."""
    out = given = Path(out)
    if out.name in ("", ".", ".."):
        out = Path(os.path.abspath(out))
    if not out.name:
        raise ValueError(f"{flag} {given}: the file system root cannot be a results folder")
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was removed
        cwd = None
    where = Path(os.path.abspath(out)).resolve()
    if not reopen and cwd is not None and (where == cwd or where in cwd.parents):
        raise ValueError(f"{flag} {given}: is the current folder (or holds it); a results folder is swapped in whole "
                         f"by rename, so give a folder of its own, e.g. {flag} runs/NAME")
    if out.is_symlink() and not out.exists():
        raise FileNotFoundError(f"{flag} {out}: a broken symbolic link")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{flag} {out}: is a file, not a folder; give a folder to write the results into")
    _probe_writable(out.parent if str(out.parent) else Path("."), flag, out)
    clean_stale(out)
    if out.is_dir():
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise PermissionError(f"{flag} {out}: cannot list it ({exc.strerror or exc})") from None
        if reopen:
            _probe_writable(out, flag, out)
        elif not empty:
            if not has_marker(out):
                raise FileExistsError(f"{flag} {out}: exists, is not empty and was not written by emu (no {MARKER} "
                                      "marker); emu never replaces such a folder, even with "
                                      f"{force_flag}: choose another {flag} or empty it yourself")
            if not replace:
                raise FileExistsError(f"{flag} {out}: already exists and is not empty (use {force_flag} to replace "
                                      "it)")
    return out


def staging_dir(out: Union[str, Path], role: str = "partial", kind: str = "run") -> Path:
    """A new hidden folder beside ``out`` (``.NAME.ROLE-PID-XXXX``) with emu's marker inside."""
    if role not in STAGING_ROLES or role == "old":
        raise ValueError(f"role: unknown {role!r}; valid: partial, pcap")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{role}-{os.getpid()}-", dir=out.parent))
    write_marker(tmp, kind)
    return tmp


def replace_dir(staged: Union[str, Path], out: Union[str, Path]) -> Path:
    """Move the finished ``staged`` folder to ``out`` by rename. An existing ``out`` must carry emu's marker; it is
    renamed aside first and removed after; if moving ``staged`` in fails, it is renamed back (nothing lost)."""
    staged, out = Path(staged), Path(out)
    if not out.exists():
        os.rename(staged, out)
        return out
    if not out.is_dir() or (any(out.iterdir()) and not has_marker(out)):
        raise FileExistsError(f"{out}: exists and was not written by emu (no {MARKER} marker); not replaced")
    backup = out.with_name(f".{out.name}.old-{os.getpid()}")
    n = 0
    while backup.exists():  # never removed here: clean_stale judges what is left of other runs
        n += 1
        backup = out.with_name(f".{out.name}.old-{os.getpid()}-{n}")
    os.rename(out, backup)
    try:
        os.rename(staged, out)
    except BaseException:
        os.rename(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    return out


__all__ = ["MARKER", "FORMAT", "write_marker", "has_marker", "clean_stale", "check_output_dir", "staging_dir",
           "replace_dir"]
