#!/bin/bash
# Issue 15 result grids, run from a snapshot of main ("$REPO") so that edits elsewhere cannot change them.
set -x
cd "$REPO"
. /work/main/.venv/bin/activate
export PYTHONPATH="$REPO" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SMMT_CACHE_DIR=/work/exp-out/mri-cache
date -u; uname -a; nproc; git -C "$REPO" rev-parse HEAD
smmt experiment --data /work/scratch-mri/demo400 --variants smmt,3mt --features non-circular \
  --baselines lr-clinical,lr-regional,lr-clinical-regional,lr-pixels,cnn --split-seeds 0,1,2 --seeds 0 \
  --out /work/exp-out/demo400-noncircular
date -u
smmt experiment --data /work/scratch-mri/demo400 --variants smmt,3mt --features none \
  --baselines lr-regional,lr-pixels,cnn --split-seeds 0,1,2 --seeds 0 --out /work/exp-out/demo400-mri-only
date -u
smmt experiment --data /work/scratch-mri/demo120 --variants smmt --features none \
  --baselines lr-regional,lr-pixels,cnn --split-seeds 0,1,2 --seeds 0 --out /work/exp-out/demo120-mri-only
date -u
smmt experiment --data /work/scratch-mri/demo120 --variants smmt --features non-circular \
  --baselines lr-clinical,lr-clinical-regional --split-seeds 0,1,2 --seeds 0 --out /work/exp-out/demo120-noncircular
date -u
