"""The paper's efficiency claim at the whole-brain `volume` preset: SMMT vs 3MT vs SMMT-no-sparse.

    python benchmarks/volume_efficiency.py --data DIR                 # steps + in-model attention
    python benchmarks/volume_efficiency.py --data DIR --epochs 2      # + time and energy per epoch
    python benchmarks/volume_efficiency.py --smoke                    # seconds: proves it still runs

All variants in one process on the same persons (see smmt_core.bench.volume). Prints the median
training-step time per variant and its ratio to 3MT, the peak tensor memory of a step, the token
count n, k, the ideal n²/Σc² of the clusters SMMT's first layer found and the achieved fraction of
it, and (with --epochs) seconds and codecarbon Wh per epoch. Results: docs/volume.md.
"""

import argparse
import json
import os
import sys
import tempfile

import torch

from smmt_core.bench.volume import VARIANTS, bench_volume
from smmt_core.train.config import TrainConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (e.g. a demo cohort made by `smmt demo-data`)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per variant")
    parser.add_argument("--epochs", type=int, default=0, help="also train each variant this many epochs")
    parser.add_argument("--patch-mm", type=float, default=None, help="override the preset's patch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench-runs", help="parent folder of the --epochs runs")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny cohort and grid, one repeat: check that it runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {}
    if args.smoke:
        from smmt_core.data.demo import make_demo_cohort

        tmp = tempfile.mkdtemp(prefix="smmt-volume-bench-")
        args.data = make_demo_cohort(os.path.join(tmp, "demo"), n_subjects=12, seed=1)
        args.out = os.path.join(tmp, "runs")
        args.batch_size, args.repeats, args.epochs = 2, 1, 1
        overrides = dict(resolution_mm=4.0, patch_mm=16.0, d_model=32, n_heads=2, measure_energy=False)
    if not args.data:
        parser.error("--data is required (or --smoke)")
    if args.patch_mm:
        overrides["patch_mm"] = args.patch_mm
    config = TrainConfig.build("volume", dataset=str(args.data), batch_size=args.batch_size, **overrides)
    result = bench_volume(config, variants=[v.strip() for v in args.variants.split(",") if v.strip()],
                          batch_size=args.batch_size, repeats=args.repeats, epochs=args.epochs, out_dir=args.out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result.to_dict(), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
