#!/usr/bin/env bash
# The attention benchmark on a CUDA GPU, bf16: dense SDPA pinned to the flash kernel vs SMMT's
# cluster-sparse attention (K-Means included), n = 1024 .. 65536, forward + backward.
#
#   OUT=/some/folder bash benchmarks/gpu_attention.sh
#
# Needs only python3 + pip on the machine: installs torch and numpy quietly if torch is missing
# (the benchmark itself needs nothing else from the project). Writes
#   $OUT/attention_gpu.json           nested backend (one jagged nested-tensor SDPA call)
#   $OUT/attention_gpu_grouped.json   grouped backend, the default (one SDPA call per distinct cluster length)
#   $OUT/attention_gpu_balanced.json  balanced K-Means (equal-size clusters)
#   $OUT/attention_gpu_flex.json      flex backend (FlexAttention with a same-cluster block mask)
#   $OUT/*.meta.json                  settings, device name, torch version, log-log slopes
#   $OUT/attention_gpu.log            everything printed, including the human-readable tables
# Each step has its own time limit; the whole script stays under ~9 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_attention_out}"
mkdir -p "$OUT"
LOG="$OUT/attention_gpu.log"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "== $(date -u +%FT%TZ) gpu_attention.sh"
  if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "torch missing: pip install torch numpy"
    "$PY" -m pip install -q torch numpy 2>&1 | tail -n 3
  fi
  "$PY" -c "import numpy" 2>/dev/null || "$PY" -m pip install -q numpy 2>&1 | tail -n 3
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"

  COMMON=(--device cuda --dtype bf16 --dense-backend flash --heads 8 --head-dim 64
          --sizes 1024,2048,4096,8192,16384,32768,65536 --warmup 3 --repeats 10 --max-seconds-per-size 20)

  echo "== nested (jagged) sparse backend, exact K-Means"
  timeout 170 "$PY" benchmarks/attention.py "${COMMON[@]}" --sparse-backend nested --json-out "$OUT/attention_gpu.json"
  echo "exit $?"
  echo "== grouped sparse backend (the default), exact K-Means"
  timeout 110 "$PY" benchmarks/attention.py "${COMMON[@]}" --sparse-backend grouped \
    --json-out "$OUT/attention_gpu_grouped.json"
  echo "exit $?"
  echo "== grouped sparse backend, balanced K-Means"
  timeout 60 "$PY" benchmarks/attention.py "${COMMON[@]}" --assignment balanced \
    --sizes 4096,16384,65536 --json-out "$OUT/attention_gpu_balanced.json"
  echo "exit $?"
  echo "== flex sparse backend (FlexAttention, same-cluster block mask, compiled), n = 4k .. 64k"
  timeout 150 "$PY" benchmarks/attention.py "${COMMON[@]}" --sparse-backend flex \
    --sizes 4096,8192,16384,32768,65536 --json-out "$OUT/attention_gpu_flex.json"
  echo "exit $?"
  echo "== done $(date -u +%FT%TZ)"
} 2>&1 | tee "$LOG"
