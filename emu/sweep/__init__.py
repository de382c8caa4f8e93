"""Many runs: a sweep file (spec) -> tasks -> backends (local processes, Ray) -> results that resume.

Modules import one way: ``common`` <- ``tasks`` <- ``backends`` <- ``run`` <- ``spec``; ``results`` uses only
``common`` (and ``emu.apps.artifacts.sha256_file``).

    from emu.sweep import Sweep
    sweep = Sweep.load("examples/sweep_codel_vs_droptail.toml")
    result = sweep.run("runs/aqm-sweep")
"""
from emu.sweep.common import SweepError
from emu.sweep.results import SweepResult
from emu.sweep.spec import Sweep, Task

__all__ = ["Sweep", "SweepError", "SweepResult", "Task"]
