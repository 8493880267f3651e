#!/usr/bin/env bash
# One command for a GPU machine: the CUDA tests, the --quick suite on the GPU, the record and its plots copied
# under a dated device name, and measured vs spec. Installs nothing: it uses the Python that already holds a CUDA
# torch (PYTHON=..., default python3) and says what is missing if a package is not there.
#
#   tools/gpu_check.sh [EXAMPLES_DIR]        # default results/examples
#
# Sized for an H200 lent for ~15 minutes: the quick suite should take a few minutes; the whole script is bounded by
# the timeouts below (TEST_TIMEOUT_S 60 + BENCH_TIMEOUT_S 300 + DIST_TIMEOUT_S 90, plus validate/export), under
# 8 minutes, which leaves room to rerun a part. A suite stopped by its timeout still saves its record (SIGINT).
# Where only a few files come back from the machine, bundle everything into one:
#   RUNS_DIR=/tmp/gc/runs tools/gpu_check.sh /tmp/gc/examples; tar czf "$OUT/gpu_check.tgz" -C /tmp gc
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXAMPLES=${1:-results/examples}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-60}
RUNS=${RUNS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}  # records, plots and logs of this check
mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1

"$PY" - <<'EOF' || exit 2
import importlib.util, sys
need = ["torch", "pytest", "pytest_benchmark", "psutil", "pynvml", "numpy", "pandas", "matplotlib", "seaborn", "yaml"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages: {', '.join(missing)} (pip install -e . installs them)")
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA device; this script is for a GPU machine")
p = torch.cuda.get_device_properties(0)
print(f"gpu_check: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB, "
      f"L2 {p.L2_cache_size / 2**20:.0f} MiB; torch {torch.__version__} (CUDA {torch.version.cuda})")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm,power.limit --format=csv

echo "== CUDA tests (real GPU, then the fakes)"
timeout "$TEST_TIMEOUT_S" "$PY" -m pytest tests/test_cuda.py tests/test_fake_cuda.py -q -p no:cacheprovider 2>&1 | tee "$RUNS/tests.log"
tests_rc=${PIPESTATUS[0]}

echo "== quick suite on the GPU (records in $RUNS)"
start=$(date +%s)
timeout -s INT "$BENCH_TIMEOUT_S" "$PY" -m pytest bench/ --platform cuda --quick -q -p no:cacheprovider \
    --results-dir "$RUNS" 2>&1 | tee "$RUNS/bench.log"
bench_rc=${PIPESTATUS[0]}
echo "gpu_check: quick suite took $(( $(date +%s) - start )) s (exit $bench_rc)"

record=$(ls -t "$RUNS"/*.json 2>/dev/null | head -1)
if [ -z "$record" ]; then
    echo "gpu_check: no record was written" >&2
    exit 1
fi
echo "== measured vs spec"
"$PY" -m results validate "$record"
echo "== exported"
"$PY" -m results export "$record" --dir "$EXAMPLES"
echo "== NCCL path (torchrun, one rank per visible GPU; on a single GPU world size 1: nothing crosses a link)"
DIST_TIMEOUT_S=${DIST_TIMEOUT_S:-90}
ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())")
mkdir -p "$RUNS/dist"
timeout "$DIST_TIMEOUT_S" "$PY" -m torch.distributed.run --standalone --nproc-per-node "$ngpu" -m bench.distributed \
    --platform cuda --quick --results-dir "$RUNS/dist" 2>&1 | tee "$RUNS/dist.log"
dist_rc=${PIPESTATUS[0]}
dist_record=$(ls -t "$RUNS"/dist/*.json 2>/dev/null | head -1)
[ -n "$dist_record" ] && "$PY" -m results export "$dist_record" --dir "$EXAMPLES"
echo "gpu_check: tests exit $tests_rc, suite exit $bench_rc, distributed exit $dist_rc; logs in $RUNS"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -le 1 ]
