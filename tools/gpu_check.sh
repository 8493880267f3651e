#!/usr/bin/env bash
# One command for a GPU machine: the Triton kernels compiled for this GPU, the CUDA tests, the --quick suite on the
# GPU, measured vs spec, the record exported under a dated device name, and the NCCL path. Installs nothing: it
# uses the Python that already holds a CUDA torch (PYTHON=..., default python3) and says what is missing.
#
#   tools/gpu_check.sh [OUT_DIR [ARCHIVE]]     # default OUT_DIR: a fresh folder under $TMPDIR
#
# Everything lands in OUT_DIR: runs/ (records, plots, pages), examples/ (the exported record, to commit under
# results/examples/), one log per step, steps.txt (each step's exit status and time) and summary.txt. An EXIT
# trap bundles OUT_DIR into ARCHIVE (default OUT_DIR/gpu_check.tgz) whatever happens - a step that hangs is
# stopped by its timeout (SIGINT first, so the suite still saves its record, then SIGKILL after KILL_AFTER_S),
# a Ctrl-C or SIGTERM of the whole script still writes the archive with what finished.
#
# Sized for an H200 lent for ~15 minutes: TEST_TIMEOUT_S 90 + BENCH_TIMEOUT_S 300 + DIST_TIMEOUT_S 90 + the
# small steps, under 9 minutes in the worst case, which leaves room to rerun a part. The benchmark log has one
# line per point (pytest -v, no -q), so a stall shows where it stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT_DIR/runs" "$OUT_DIR/examples" || { echo "gpu_check: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)
ARCHIVE=${2:-$OUT_DIR/gpu_check.tgz}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-90}
DIST_TIMEOUT_S=${DIST_TIMEOUT_S:-90}
SMALL_TIMEOUT_S=${SMALL_TIMEOUT_S:-60}
KILL_AFTER_S=${KILL_AFTER_S:-15}
export PYTHONUNBUFFERED=1
: > "$OUT_DIR/steps.txt"

bundle() {
    local rc=$?
    trap - EXIT INT TERM
    {
        echo "gpu_check: $(date -u +%FT%TZ), exit $rc"
        cat "$OUT_DIR/steps.txt"
        ls -l "$OUT_DIR/runs" "$OUT_DIR/examples" 2>/dev/null
    } > "$OUT_DIR/summary.txt"
    local part
    part=$(mktemp "${TMPDIR:-/tmp}/gpu_check.XXXXXX.tgz")  # outside OUT_DIR: tar must not read what it writes
    tar czf "$part" --exclude="$(basename "$ARCHIVE")" -C "$(dirname "$OUT_DIR")" "$(basename "$OUT_DIR")" \
        && mv -f "$part" "$ARCHIVE" && echo "gpu_check: everything is in $ARCHIVE (exit $rc)" >&2
    exit "$rc"
}
trap bundle EXIT
trap 'echo "gpu_check: interrupted; bundling what finished" >&2; exit 130' INT TERM

# step NAME TIMEOUT_S SIGNAL COMMAND...: runs COMMAND under a timeout (-k: SIGKILL if the signal is not enough), its
# output to the terminal and NAME.log, and one line in steps.txt
step() {
    local name=$1 limit=$2 signal=$3 start rc
    shift 3
    echo "== $name"
    start=$(date +%s)
    timeout -k "$KILL_AFTER_S" -s "$signal" "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    rc=${PIPESTATUS[0]}
    local note=""
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note=" (TIMED OUT after ${limit} s)"
    echo "$name: exit $rc, $(( $(date +%s) - start )) s$note" | tee -a "$OUT_DIR/steps.txt"
    return "$rc"
}

"$PY" - <<'EOF' 2>&1 | tee "$OUT_DIR/device.log"
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
      f"L2 {p.L2_cache_size / 2**20:.0f} MiB, sm_{p.major}{p.minor}; torch {torch.__version__} (CUDA {torch.version.cuda})")
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 2
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,clocks.max.sm,power.limit --format=csv 2>&1 | tee -a "$OUT_DIR/device.log"

arch=$("$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.major}{p.minor}')" 2>/dev/null)
step triton_aot "$SMALL_TIMEOUT_S" TERM "$PY" -m kernels.triton_aot --arch "${arch:-90}"
step tests "$TEST_TIMEOUT_S" TERM "$PY" -m pytest tests/test_cuda.py tests/test_fake_cuda.py tests/test_triton.py \
    tests/test_triton_aot.py -v -p no:cacheprovider
tests_rc=$?

step bench "$BENCH_TIMEOUT_S" INT "$PY" -m pytest bench/ --platform cuda --quick -v -p no:cacheprovider \
    --results-dir "$OUT_DIR/runs"
bench_rc=$?

record=$(ls -t "$OUT_DIR"/runs/*.json 2>/dev/null | head -1)
if [ -n "$record" ]; then
    step validate "$SMALL_TIMEOUT_S" TERM "$PY" -m results validate "$record"
    step show "$SMALL_TIMEOUT_S" TERM "$PY" -m results show "$record"
    [ -e "${record%.json}.html" ] || step report "$SMALL_TIMEOUT_S" TERM "$PY" -m results report "$record"
    step export "$SMALL_TIMEOUT_S" TERM "$PY" -m results export "$record" --dir "$OUT_DIR/examples"
else
    echo "gpu_check: the suite wrote no record" | tee -a "$OUT_DIR/steps.txt" >&2
fi

ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null)
mkdir -p "$OUT_DIR/runs/dist"
# the NCCL path: one rank per visible GPU; on a single GPU world size 1, nothing crosses a link
step distributed "$DIST_TIMEOUT_S" INT "$PY" -m torch.distributed.run --standalone --nproc-per-node "${ngpu:-1}" \
    -m bench.distributed --platform cuda --quick --results-dir "$OUT_DIR/runs/dist"
dist_record=$(ls -t "$OUT_DIR"/runs/dist/*.json 2>/dev/null | head -1)
[ -n "$dist_record" ] && step export_dist "$SMALL_TIMEOUT_S" TERM "$PY" -m results export "$dist_record" \
    --dir "$OUT_DIR/examples"

echo "gpu_check: tests exit $tests_rc, suite exit $bench_rc; everything under $OUT_DIR"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -le 1 ] && [ -n "$record" ]
