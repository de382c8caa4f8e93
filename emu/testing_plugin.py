"""pytest plugin of ``emu.testing`` (entry point ``pytest11``): ``--emu-seeds N`` and the ``emu_seeds`` fixture.

    def test_dualpi2_cuts_p99(emu_seeds):
        assert_improves(droptail, dualpi2, metric="delay_p99_s", flow="prague", seeds=emu_seeds, by=0.3)

``pytest --emu-seeds 20`` runs every such comparison over seeds 0..19 (default 8, or the ``emu_seeds`` ini option).
Nothing heavy is imported here: pytest loads this module in every session of an environment where emu is installed.
"""
from __future__ import annotations

import pytest

DEFAULT_SEEDS = 8


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("emu", "emu network emulator")
    group.addoption("--emu-seeds", dest="emu_seeds", type=int, default=None, metavar="N",
                    help=f"seeds per emu.testing comparison: the emu_seeds fixture gives 0..N-1 "
                         f"(default: ini emu_seeds, else {DEFAULT_SEEDS})")
    parser.addini("emu_seeds", f"default number of seeds for the emu_seeds fixture ({DEFAULT_SEEDS})",
                  default=str(DEFAULT_SEEDS))


def seed_count(config: pytest.Config) -> int:
    """N from ``--emu-seeds``, else the ``emu_seeds`` ini value; a UsageError unless N >= 2."""
    value = config.getoption("emu_seeds", default=None)
    where = "--emu-seeds"
    if value is None:
        value, where = config.getini("emu_seeds") if _has_ini(config) else DEFAULT_SEEDS, "ini emu_seeds"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{where}: expected an integer >= 2, got {value!r}") from None
    if n < 2:
        raise pytest.UsageError(f"{where}: expected an integer >= 2 (a comparison needs at least 2 seeds), got {n}")
    return n


def _has_ini(config: pytest.Config) -> bool:
    try:
        config.getini("emu_seeds")
    except ValueError:  # the plugin's options are not registered (fixture imported by hand)
        return False
    return True


def pytest_report_header(config: pytest.Config) -> str:
    return f"emu.testing: {seed_count(config)} seeds per comparison (--emu-seeds)"


@pytest.fixture
def emu_seeds(request: pytest.FixtureRequest) -> list[int]:
    """Seeds 0..N-1 for ``emu.testing.compare`` / ``assert_improves`` (N from ``--emu-seeds``, default 8)."""
    return list(range(seed_count(request.config)))
