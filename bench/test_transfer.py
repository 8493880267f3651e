"""Host<->device (pageable and pinned) and device<->device copies over sizes. CUDA platforms only."""
import pytest

from bench.session import run_of
from kernels import transfer


def pytest_generate_tests(metafunc):
    if "transfer_point" not in metafunc.fixturenames:
        return
    config = metafunc.config
    points = []
    if run_of(config).platform.kind != "cpu":
        points = [pytest.param((d, s), id=f"{d}-{s >> 10}KiB")
                  for d in transfer.DIRECTIONS for s in transfer.sweep_sizes(config.getoption("--quick"))]
    # on a CPU one point that says why there is none: a file that measures nothing must not pass as a run
    metafunc.parametrize("transfer_point", points or [pytest.param(None, id="not-on-this-platform")])


def test_transfer(suite, benchmark, transfer_point):
    if transfer_point is None:
        suite.not_measured("missing", "host<->device copies need a CUDA device (this run's platform is a CPU)",
                           group="transfer", kernel="h2d/d2h", dtype="uint8")
    direction, size = transfer_point
    device = suite.platform.device
    suite.run(benchmark, lambda: transfer.prepare(direction, size, device), group="transfer", kernel=direction,
              dtype="uint8", size_bytes=size, convention=transfer.TRANSFER_CONVENTION)
