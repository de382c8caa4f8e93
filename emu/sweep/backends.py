"""Where sweep tasks run: local worker processes (default) or Ray.

Both take ``jobs`` (``(task_id, payload)`` pairs), run ``emu.sweep_tasks.execute_task(payload)`` for each and call
``on_outcome(task_id, outcome)`` in the driver as each one finishes, in completion order. A worker that dies
(segfault, OOM kill, ``os._exit``) costs only the task it was running: that task is retried ``retries`` times on a
fresh worker, then recorded as failed, and the sweep goes on.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Optional

from emu.sweep.tasks import execute_task

Outcome = dict
OnOutcome = Callable[[str, Outcome], None]

RAY_MISSING = "--backend ray needs Ray, which is not installed: pip install 'emu[ray]'"


def _died(code: Optional[int], where: str) -> Outcome:
    if code is not None and code < 0:
        try:
            how = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return {"status": "failed", "error": f"WorkerDied: the {where} running this task died ({how})",
            "traceback": "", "wall_s": float("nan"), "pid": None}


# -- local processes --------------------------------------------------------------------------------------------
#
# Workers are fresh interpreters (``python -c ...``) talking over a socket pair, not multiprocessing children: they
# never re-import the caller's ``__main__``, so a sweep runs the same from a script without a main guard, from
# ``python -`` or from a notebook, and no fork of a threaded driver is involved.

_BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "from emu.sweep.backends import _worker_main; _worker_main({fd})")


def _watch_parent(parent_pid: int) -> None:
    """Exit when the driver is gone (killed with SIGKILL, say), rather than finish a task nobody will collect."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_main(fd: int) -> None:
    """A local worker: run payloads from the socket until it closes or sends None."""
    conn = Connection(fd)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        sys.path[:] = conn.recv()  # the driver's import path, so 'module:function' evals resolve alike
    except (EOFError, OSError):
        return
    while True:
        try:
            payload = conn.recv()
        except (EOFError, OSError):
            return
        if payload is None:
            return
        outcome = execute_task(payload)
        try:
            conn.send(outcome)
        except (BrokenPipeError, EOFError, OSError):  # the driver is gone
            return
        except Exception as exc:  # rows that cannot be pickled
            conn.send({"status": "failed", "error": f"{type(exc).__name__}: result not picklable: {exc}",
                       "traceback": "", "wall_s": outcome.get("wall_s"), "pid": os.getpid()})


def _child_env() -> dict:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # so `import emu` works even from an uninstalled checkout
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


class _Worker:
    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        # A session of its own: terminal signals (Ctrl-C, Ctrl-Z) reach the driver only, which stops the workers;
        # and where the kernel shares CPU by session (Linux autogroup), each worker competes as its own job
        # instead of all of them splitting one share.
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT.format(fd=fd)], pass_fds=(fd,),
                                     stdin=subprocess.DEVNULL, env=_child_env(), close_fds=True,
                                     start_new_session=True)
        theirs.close()
        self.conn = Connection(mine.detach())
        self.job: Optional[tuple[str, dict]] = None
        try:
            self.conn.send(list(sys.path))
        except OSError:
            pass  # it died at once; seen when its first task is collected

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 2.0) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.conn.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn.close()


def run_local(jobs: list[tuple[str, dict]], on_outcome: OnOutcome, *, workers: int, retries: int = 1) -> None:
    """Run ``jobs`` on ``workers`` long-lived local processes (one task at a time each)."""
    if not jobs:
        return
    pending = deque(jobs)
    deaths: dict[str, int] = {}
    pool: list[_Worker] = []
    try:
        pool += [_Worker() for _ in range(max(1, min(workers, len(jobs))))]
        while pending or any(w.job for w in pool):
            for i, w in enumerate(pool):
                if w.job is None and pending:
                    if not w.alive():
                        w.kill()
                        w = pool[i] = _Worker()
                    w.job = pending.popleft()
                    try:
                        w.conn.send(w.job[1])
                    except OSError:
                        pass  # it died: seen below as EOF
            wait([w.conn for w in pool if w.job])
            for i, w in enumerate(pool):
                if w.job is None or not w.conn.poll():
                    continue
                task_id, payload = w.job
                w.job = None
                try:
                    outcome = w.conn.recv()
                except (EOFError, OSError):  # the worker died while running this task
                    try:
                        code = w.proc.wait(5.0)
                    except subprocess.TimeoutExpired:
                        code = None
                    w.kill()
                    pool[i] = _Worker()
                    deaths[task_id] = deaths.get(task_id, 0) + 1
                    if deaths[task_id] <= retries:
                        pending.appendleft((task_id, payload))
                    else:
                        on_outcome(task_id, _died(code, "local worker process"))
                    continue
                on_outcome(task_id, outcome)
    except BaseException:
        for w in pool:
            w.kill()
        raise
    for w in pool:
        w.stop()


# -- Ray --------------------------------------------------------------------------------------------------------


def import_ray():
    try:
        import ray
    except ImportError:
        from emu.sweep.common import SweepError

        raise SweepError(RAY_MISSING) from None
    return ray


def ray_preflight(address: Optional[str]) -> None:
    """Fail fast, before anything is written: Ray importable, and a ``HOST:PORT`` address accepting connections
    (``ray.init`` itself retries an unreachable address for minutes)."""
    import_ray()
    if not address or "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        from emu.sweep.common import SweepError

        raise SweepError(f"--address {address!r}: expected HOST:PORT (the head's GCS port, 6379 by default), "
                         "'auto' or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as exc:
        from emu.sweep.common import SweepError

        raise SweepError(f"--address {address}: no Ray head answers there ({exc}); start one with "
                         "'ray start --head --port 6379' on that machine") from None


def ray_init(ray, *, address: Optional[str], workers: Optional[int]) -> bool:
    """Start a local Ray instance (``num_cpus=workers``) or join ``address``; True if this call did it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), **kwargs)
    except ConnectionError as exc:
        from emu.sweep.common import SweepError

        raise SweepError(f"--address {address}: cannot join the Ray cluster: {exc}") from None
    return True


def run_ray(jobs: list[tuple[str, dict]], on_outcome: OnOutcome, *, workers: Optional[int] = None,
            address: Optional[str] = None, retries: int = 1) -> None:
    """Run ``jobs`` as Ray tasks, at most ``workers`` in flight (default: the cluster's CPUs)."""
    if not jobs:
        return
    ray = import_ray()
    started = ray_init(ray, address=address, workers=workers)
    try:
        remote = ray.remote(num_cpus=1, max_retries=retries)(execute_task)
        window = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pending = deque(jobs)
        in_flight: dict[Any, str] = {}
        while pending or in_flight:
            while pending and len(in_flight) < window:
                task_id, payload = pending.popleft()
                in_flight[remote.remote(payload)] = task_id
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task_id = in_flight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # worker crashed, node lost, ... after Ray's retries
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.LocalRayletDiedError, ray.exceptions.OutOfMemoryError)
                    kind = "WorkerDied: " if isinstance(exc, died) else ""  # else e.g. emu missing on a node
                    outcome = {"status": "failed", "error": f"{kind}{type(exc).__name__}: {first}",
                               "traceback": str(exc), "wall_s": float("nan"), "pid": None}
                on_outcome(task_id, outcome)
    finally:
        if started:
            ray.shutdown()
