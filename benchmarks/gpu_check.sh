#!/usr/bin/env bash
# Issue #18's GPU check, sized for one device session of at most about 8 minutes:
#   1. the paper-shape step benchmarks (darts1, darts2, pcdarts at batch 64, pcdarts at its batch 256, the
#      darts2 and darts1 variants) in float32 and under bf16 autocast: synchronised timings and
#      torch.cuda.max_memory_allocated, summarised as results/benchmarks/<device>-partial.json (partial: the
#      small presets are left out, a CPU's concern), the file to commit with what it shows;
#   2. one epoch of darts1 on cnn at the paper preset, end to end, on the built-in data (the device machine
#      reaches no data set), its record under $OUT/run.
# Usage: OUT=folder PYTHON=.venv/bin/python benchmarks/gpu_check.sh, in an environment set up as the README
# says (PYTHON defaults to python, OUT to /tmp/nasbench-gpu-check). Each part has its own
# time limit, so that a slow part leaves the other its turn; the summary JSON is copied to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/nasbench-gpu-check}"
python="${PYTHON:-python}"
mkdir -p "$out"
if ! "$python" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: no CUDA device here; the CPU benchmarks run with: pytest benchmarks/ --benchmark-only" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/nvidia-smi.csv" 2>&1
timeout 330 "$python" -m pytest benchmarks/bench_search_step.py -m paper_shape -k "not nchw" \
    --benchmark-only -q -p no:cacheprovider 2>&1 | tee "$out/benchmarks.log"
echo "benchmarks: exit ${PIPESTATUS[0]}" | tee -a "$out/benchmarks.log"
cp results/benchmarks/*.json "$out/" 2>/dev/null
timeout 120 "$python" -m nasbench run --searcher darts1 --space cnn --preset paper --epochs 1 --device cuda \
    --out "$out/run" --quiet 2>&1 | tee "$out/run.log"
echo "run: exit ${PIPESTATUS[0]}" | tee -a "$out/run.log"
