"""Benchmark: the whole intake pipeline on one 1 mm T1 with skull (Colin27 by default), cold then cached.

    python benchmarks/intake_pipeline.py [T1.nii.gz] [--threads 2]

Colin27 comes with Debian's `mricron-data` package (/usr/share/mricron/templates/ch2.nii.gz).
Prints the time of every step the first time (empty cache) and the total from the cache.
Target (issue 9): <= 30 s on 2 CPU cores the first time, <= 1 s from the cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

COLIN27 = "/usr/share/mricron/templates/ch2.nii.gz"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("t1", nargs="?", default=COLIN27)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.path.exists(args.t1):
        print(f"{args.t1}: not found (apt-get install mricron-data, or give a T1 path)", file=sys.stderr)
        return 2
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from smmt_core.data.intake import IntakeCache, IntakeSettings, run_intake

    with tempfile.TemporaryDirectory() as tmp:
        cache = IntakeCache(tmp)
        t0 = time.perf_counter()
        first = run_intake(args.t1, IntakeSettings(), cache=cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_intake(args.t1, IntakeSettings(), cache=cache)
        warm = time.perf_counter() - t0
    print(f"input: {args.t1} ({args.threads} threads)")
    for step, sec in first.seconds.items():
        print(f"  {step:<9} {sec:7.2f} s")
    print(f"  {'total':<9} {cold:7.2f} s (first run, including reading and writing)")
    print(f"  {'cached':<9} {warm:7.3f} s (from_cache={again.from_cache})")
    print(f"QC: {first.qc.verdict} score {first.qc.score:.3f} mask overlap {first.qc.mask_dice}; "
          f"steps {first.steps_label}; measures {first.measures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
