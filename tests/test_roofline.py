import pytest

from results.record import measurement
from results.roofline import (
    attainable,
    bound,
    compute_ceilings,
    detect_plateaus,
    level_windows,
    memory_ceilings,
    ridge_point,
)


def test_attainable_and_ridge_by_hand():
    pi, beta = 200e9, 50e9  # 200 GFLOP/s, 50 GB/s -> ridge 4 FLOP/B
    assert ridge_point(pi, beta) == 4.0
    assert attainable(1.0, pi, beta) == 50e9
    assert attainable(4.0, pi, beta) == 200e9
    assert attainable(100.0, pi, beta) == 200e9
    assert bound(0.5, pi, beta) == "memory" and bound(8, pi, beta) == "compute"
    with pytest.raises(ValueError):
        ridge_point(pi, 0)
    with pytest.raises(ValueError):
        attainable(-1, pi, beta)


def _gemm(dtype, n, seconds, verified=True, status="ok"):
    return measurement(group="gemm", kernel="gemm", dtype=dtype, status=status, shape=[1, n, n, n],
                       flops=2 * n ** 3, bytes=3 * n * n * 4, times_s=seconds, verified=verified)


def test_compute_ceiling_is_best_verified_point():
    rows = [_gemm("fp32", 1024, [0.02, 0.021, 0.03]), _gemm("fp32", 2048, [0.2, 0.3]),
            _gemm("fp32", 4096, [0.1], verified=False, status="failed")]
    ceiling = compute_ceilings(rows)["fp32"]
    assert ceiling.value == pytest.approx(2 * 1024 ** 3 / 0.02)
    assert ceiling.median_value == pytest.approx(2 * 1024 ** 3 / 0.021)
    assert ceiling.cv > 0 and ceiling.n == 3


def _stream(kernel, size, bw, seconds=1e-3):
    nbytes = int(bw * seconds)
    return measurement(group="stream", kernel=kernel, dtype="fp32", status="ok", size_bytes=size, bytes=nbytes,
                       times_s=[seconds], verified=True)


CACHES = [{"name": "L1", "size_bytes": 32 << 10, "instances": 2, "shared": False},
          {"name": "L2", "size_bytes": 1 << 20, "instances": 2, "shared": False},
          {"name": "L3", "size_bytes": 32 << 20, "instances": 1, "shared": True}]


def test_level_windows_from_cache_sizes():
    windows = {name: (lo, hi) for name, lo, hi, _ in level_windows(CACHES)}
    assert windows["L1"] == (0, 32 << 10)  # half of 2 x 32 KiB
    assert windows["L2"][1] == 1 << 20
    assert windows["DRAM"] == (128 << 20, None)  # 4 x last-level cache


def test_memory_ceilings_pick_levels_and_skip_overhead_bound_points():
    rows = [_stream("read", 16 << 10, 400e9), _stream("read", 256 << 10, 200e9), _stream("add", 8 << 20, 150e9),
            _stream("copy", 128 << 20, 40e9), _stream("triad", 256 << 20, 45e9),
            _stream("copy", 64 << 20, 90e9),  # between L3 and 4 x L3: belongs to no level
            _stream("copy", 24 << 10, 900e9, seconds=2e-6),  # faster than 10 x dispatch: not a ceiling
            measurement(group="overhead", kernel="dispatch", dtype="fp32", status="ok", times_s=[3e-6],
                        verified=True)]
    ceilings = memory_ceilings(rows, CACHES)
    assert ceilings["L1"].value == pytest.approx(400e9, rel=1e-3)
    assert ceilings["L2"].value == pytest.approx(200e9, rel=1e-3)
    assert ceilings["L3"].value == pytest.approx(150e9, rel=1e-3)
    assert ceilings["DRAM"].value == pytest.approx(45e9, rel=1e-3) and ceilings["DRAM"].kernel == "triad"


def test_memory_ceiling_without_cache_sizes_is_not_called_dram():
    ceilings = memory_ceilings([_stream("copy", 1 << 20, 10e9), _stream("copy", 1 << 26, 5e9)], [])
    assert list(ceilings) == ["largest"] and "not proven" in ceilings["largest"].note


def test_plateau_detection_on_synthetic_steps():
    sizes = [2 ** k for k in range(14, 30)]
    truth = {14: 400, 15: 400, 16: 380, 17: 220, 18: 230, 19: 225, 20: 210, 21: 150, 22: 155, 23: 148, 24: 140,
             25: 60, 26: 42, 27: 40, 28: 41, 29: 39}
    values = [truth[k] * (1.02 if k % 2 else 0.98) for k in range(14, 30)]
    plateaus = detect_plateaus(sizes, values)
    assert len(plateaus) == 5  # L1, L2, L3, the L3->DRAM transition, DRAM
    assert plateaus[0]["hi"] == 2 ** 16 and plateaus[-1]["lo"] == 2 ** 26
    assert plateaus[-1]["median"] == pytest.approx(40, rel=0.05)


def test_plateau_detection_flat_curve_is_one_level():
    assert len(detect_plateaus([1, 2, 4, 8], [10, 10.5, 9.8, 10.1])) == 1


def test_run_to_run_spread_by_hand(tmp_path):
    from results.history import comparable_runs, run_to_run
    from results.record import RunRecord

    records = []
    for seconds in (1.0, 1.02, 1.05):
        run = RunRecord(tmp_path, {"name": "cpu x", "device": "cpu"}, {"quick": True})
        run.data["status"] = "complete"
        run.data["run_id"] += f"-{seconds}"
        run.add(_gemm("fp32", 1000, [seconds]))
        records.append(run.data)
    same = comparable_runs(tmp_path, records[-1])
    assert len(same) == 3
    spread = run_to_run(same)["compute:fp32"]
    assert spread["n"] == 3 and spread["spread"] == pytest.approx((1 / 1.0 - 1 / 1.05) / (1 / 1.02))
