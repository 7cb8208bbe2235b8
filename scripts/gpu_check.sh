#!/usr/bin/env bash
# The GPU checks of issue #14 in one run on a device machine (torch + CUDA,
# sentence-transformers, no lancedb, no network). Prepare here, once:
#
#   .venv/bin/python scripts/gpu_bundle.py      # .gpu_bundle/: fp16 MiniLM, texts, fp32 reference
#
# then call the device tool's run with
#
#   carry=[".gpu_bundle"], timeout_s=540, command="bash scripts/gpu_check.sh"
#
# It runs the kernel tests (tests/test_kernels.py: the CUDA cases run there,
# the lancedb ones skip) and the `gpu` benchmark section, and leaves six files
# under $OUT: env.txt, pytest.log, bench.log, gpu.json, results.json, report.md.
# The tests and the section each have their own time limit, so one hanging
# does not eat the other's share of the device time. Exit status: 0 when both
# passed.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PERSONA_INDEX_GPU_BUNDLE="$PWD/.gpu_bundle"
export PERSONA_INDEX_BENCH_CACHE=/tmp/persona-index-bench
PY=${PYTHON:-python3}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv
  "$PY" -c "import sys, torch, numpy, sentence_transformers, transformers, tokenizers
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.is_available(), 'numpy', numpy.__version__, 'st', sentence_transformers.__version__,
      'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
  "$PY" -c "import lancedb" 2>&1 | tail -n 1
  if [ -f .gpu_bundle/MANIFEST.json ]; then cat .gpu_bundle/MANIFEST.json; else
    echo "no .gpu_bundle: run scripts/gpu_bundle.py here and carry it; embedding may be skipped"; fi
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

status=0
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" --doctest-modules \
  tests/test_kernels.py persona_index/kernels.py 2>&1 \
  | tee "$OUT/pytest.log" || status=1
timeout 300 "$PY" -m benchmarks --sections gpu --out "$OUT" 2>&1 | tee "$OUT/bench.log" || status=1
exit $status
