"""The Ray backend: same tasks, same seeds -> identical results to local workers; a dying Ray worker costs one task.

Uses one local Ray instance (2 CPUs, no dashboard) for the module: ``ray.init`` takes ~10 s on a 2-core machine.
"""
import pandas as pd
import pytest

from emu.sweep import Sweep
from tests.conftest import REPO

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'emu[ray]'); the Ray backend is untested")


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    if started:
        ray.shutdown()


def test_ray_and_local_workers_give_identical_results(local_ray, tmp_path):
    sweep = Sweep(REPO / "examples" / "dumbbell_codel.toml", grid={"topology.queue": ["droptail", "codel", "pie"]},
                  fixed={"duration": "1s"}, replicates=2, root_seed=11)
    on_ray = sweep.run(tmp_path / "ray", backend="ray", workers=2, plots=False)
    local = sweep.run(tmp_path / "local", backend="local", workers=2, plots=False)
    assert on_ray.n_done == local.n_done == 6
    pd.testing.assert_frame_equal(on_ray.table(), local.table())
    assert set(on_ray.manifest()["backend"]) == {"ray"}


def test_a_dying_ray_worker_costs_only_its_task(local_ray, tmp_path):
    flag = tmp_path / "crash-now"
    flag.write_text("")
    sweep = Sweep(eval="dummy", grid={"x": [0.0, 1.0, 2.0]},
                  points=[{"crash_if_exists": ""}, {"crash_if_exists": str(flag)}], root_seed=2)
    result = sweep.run(tmp_path / "out", backend="ray", workers=2, retries=0, plots=False)
    assert result.n_done == 3 and result.n_failed == 3
    assert result.failed()["error"].str.startswith("WorkerDied").all()
    flag.unlink()
    result = sweep.run(tmp_path / "out", backend="ray", workers=2, plots=False)
    assert result.n_done == 6 and result.n_failed == 0
