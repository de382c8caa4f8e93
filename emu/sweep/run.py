"""Running a sweep into a results folder that survives crashes, and resumes.

Layout of ``OUT/``::

    sweep.json              what was swept (fingerprint, points, metrics); rewritten atomically per run
    manifest.jsonl          one line per finished attempt: task_id, params, seed, status, error, traceback,
                            wall_s, cpu_s
    parts/<task_id>.parquet one per finished task: its result rows + task_id, point_id, replicate, seed, params
    summary.csv, *.png      written at the end of each run (``emu plot OUT`` redraws the figures)

A part file appears whole (temp file + ``os.replace``) before its manifest line, which records the part's sha256;
a task is finished iff its part file exists and verifies (``emu.sweep.results.read_part``: parsed whole, its
sha256 as recorded, its columns and task id as written), so a sweep killed at any point resumes with exactly the
unfinished tasks, and a damaged part is set aside as ``parts/<task_id>.parquet.corrupt`` (with a warning naming it)
and its task run again. The folder carries emu's marker (``emu.outputs``: ``.emu-results``, kind ``sweep``).
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from emu.sweep.common import SweepError, canonical, now_iso
from emu.apps.artifacts import sha256_file
from emu.outputs import write_file_atomically
from emu.sweep.results import PARTS, SweepResult, write_outputs

if TYPE_CHECKING:  # pragma: no cover
    from emu.sweep.spec import Sweep, Task

BOOKKEEPING = ("task_id", "point_id", "replicate", "seed")
log = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Manifest:
    """Append-only JSON lines, one ``os.write`` per line from the single driver process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self.fd).st_size
        if size:
            with open(path, "rb") as f:  # a line torn by a kill must not swallow the next one
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self.fd, b"\n")

    def append(self, record: dict) -> None:
        line = json.dumps({k: _json_safe(v) for k, v in record.items()}, default=str, allow_nan=False) + "\n"
        os.write(self.fd, line.encode("utf-8"))

    def close(self) -> None:
        os.close(self.fd)


def write_part(parts_dir: Path, task: "Task", rows: list[dict]) -> tuple[int, str]:
    """Write a task's rows with its identity columns, whole or not at all (with Parquet page checksums); return
    the row count and the file's sha256 (for the manifest, so a resume can verify the part)."""
    import pandas as pd


    frame = pd.DataFrame(rows)
    reserved = set(BOOKKEEPING) | set(task.params)
    frame = frame.rename(columns={c: f"result.{c}" for c in frame.columns if c in reserved})
    front: dict[str, Any] = {"task_id": task.task_id, "point_id": task.point_id, "replicate": task.replicate,
                             "seed": task.seed}
    for key, value in task.params.items():
        front[key] = value if isinstance(value, (str, int, float, bool)) else canonical(value)
    for i, (key, value) in enumerate(front.items()):
        frame.insert(i, key, [value] * len(frame))
    final = write_file_atomically(parts_dir / f"{task.task_id}.parquet",
                                  lambda tmp: frame.to_parquet(tmp, index=False, write_page_checksum=True))
    return len(frame), sha256_file(final)


def prepare_out(sweep: "Sweep", out: Path) -> None:
    """Create or reopen ``out`` for ``sweep``; refuse a file, a folder that cannot be written, or one that holds
    something else."""
    from emu.outputs import check_output_dir, write_marker

    check_output_dir(out, replace=False, reopen=True)
    spec_path = out / "sweep.json"
    spec = sweep.spec()
    if spec_path.exists():
        try:
            old = json.loads(spec_path.read_text())
        except ValueError as exc:
            raise SweepError(f"{spec_path}: unreadable ({exc}); use another --out") from None
        if old.get("fingerprint") != spec["fingerprint"]:
            raise SweepError(
                f"{out}: holds results of a different sweep (its base scenario, fixed values, eval function, "
                f"root_seed or seeding differ from {sweep.source}); use another --out, or delete {out} to start over")
        known = {p["point_id"] for p in spec["points"]}
        spec["points"] += [p for p in old.get("points", []) if p["point_id"] not in known]
        spec["param_keys"] += [k for k in old.get("param_keys", []) if k not in spec["param_keys"]]
    elif out.exists() and any(out.iterdir()):
        raise SweepError(f"{out}: exists and is not a sweep results folder (no sweep.json); use another --out")
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    for stale in (out / PARTS).glob(".*.tmp-*"):  # a part being written when a run was killed
        stale.unlink(missing_ok=True)
    write_marker(out, "sweep")
    text = json.dumps(spec, indent=2, default=str)
    write_file_atomically(spec_path, lambda tmp: tmp.write_text(text))


def verified_finished(out: Path) -> set[str]:
    """The ids of tasks whose part file verifies; a damaged part is renamed ``<task_id>.parquet.corrupt`` (kept
    for a look; a later one replaces it) with a warning naming it, so its task runs again."""
    good, bad = SweepResult(out).check_parts()
    for problem in bad:
        aside = problem.path.with_name(problem.path.name + ".corrupt")
        os.replace(problem.path, aside)
        log.warning("%s: %s; moved to %s and its task runs again", problem.path, problem.reason, aside.name)
    return set(good)


def run_sweep(sweep: "Sweep", out: Path, *, backend: str, workers: Optional[int], address: Optional[str],
              retries: int, progress: bool, plots: bool) -> SweepResult:
    from tqdm import tqdm


    if backend == "ray":
        from emu.sweep.backends import ray_preflight

        ray_preflight(address)
    prepare_out(sweep, out)
    parts_dir = out / PARTS
    finished = verified_finished(out)
    todo = [t for t in sweep.tasks if t.task_id not in finished]
    by_id = {t.task_id: t for t in todo}
    failed = 0
    manifest = Manifest(out / "manifest.jsonl")
    bar = tqdm(total=len(sweep.tasks), initial=len(sweep.tasks) - len(todo), desc=sweep.name, unit="task",
               disable=not progress, dynamic_ncols=True, smoothing=0.05, file=sys.stderr)

    def on_outcome(task_id: str, outcome: dict) -> None:
        nonlocal failed
        task = by_id[task_id]
        status, error, tb, n_rows, sha256 = outcome["status"], outcome.get("error"), outcome.get("traceback"), 0, None
        if status == "done":
            try:
                n_rows, sha256 = write_part(parts_dir, task, outcome["rows"])
            except Exception as exc:  # e.g. result values Parquet cannot store
                import traceback

                status, error, tb = "failed", f"could not write results: {type(exc).__name__}: {exc}", \
                    traceback.format_exc()
        failed += status != "done"
        manifest.append({"task_id": task_id, "point_id": task.point_id, "replicate": task.replicate,
                         "seed": task.seed, "params": task.params, "status": status, "error": error,
                         "traceback": tb, "wall_s": outcome.get("wall_s"), "cpu_s": outcome.get("cpu_s"),
                         "rows": n_rows, "part_sha256": sha256, "backend": backend, "pid": outcome.get("pid"),
                         "finished_at": now_iso()})
        bar.update(1)
        if failed:
            bar.set_postfix(failed=failed, refresh=False)

    jobs = [(t.task_id, sweep.payload(t)) for t in todo]
    try:
        if backend == "ray":
            from emu.sweep.backends import run_ray

            run_ray(jobs, on_outcome, workers=workers, address=address, retries=retries)
        else:
            from emu.sweep.backends import run_local

            run_local(jobs, on_outcome, workers=workers or os.cpu_count() or 1, retries=retries)
    finally:
        bar.close()
        manifest.close()
    write_outputs(out, plots=plots)
    return SweepResult(out)
