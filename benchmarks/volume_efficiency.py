"""The paper's efficiency claim at the whole-brain `volume` preset: SMMT vs 3MT vs SMMT-no-sparse.

    python benchmarks/volume_efficiency.py --data DIR                 # steps + in-model attention
    python benchmarks/volume_efficiency.py --data DIR --variants smmt --attention-repeats 15   # attention focus
    python benchmarks/volume_efficiency.py --data DIR --epochs 2      # + time and energy per epoch
    python benchmarks/volume_efficiency.py --data DIR --epochs 1 --rounds 3   # round-robin runs
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

from smmt_core.device import prefer_passive_openmp

prefer_passive_openmp()  # as `smmt` does; before torch loads OpenMP

import torch  # noqa: E402

from smmt_core.bench.volume import VARIANTS, bench_volume  # noqa: E402
from smmt_core.train.config import TrainConfig  # noqa: E402


def tiny_bids(root: str, n_per_class: int = 4) -> str:
    """A few T1s (the MNI template at 8 mm plus noise; AD darker in the medial temporal lobes)."""
    import nibabel as nib
    import numpy as np
    from nilearn import datasets, image

    tpl = image.resample_img(datasets.load_mni152_template(), target_affine=np.diag([8.0, 8.0, 8.0]),
                             interpolation="linear", copy_header=True, force_resample=True)
    data, affine = np.asarray(tpl.dataobj, dtype=np.float32), tpl.affine
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "dataset_description.json"), "w") as fh:
        json.dump({"Name": "volume benchmark smoke", "BIDSVersion": "1.8.0"}, fh)
    rows = ["participant_id\tdiagnosis\tAGE"]
    for i in range(2 * n_per_class):
        label = "AD" if i % 2 else "CN"
        pid = f"sub-{i + 1:03d}"
        volume = data * (0.8 if label == "AD" else 1.0) + rng.normal(0, 0.03 * float(data.max()), data.shape)
        os.makedirs(os.path.join(root, pid, "anat"), exist_ok=True)
        nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), os.path.join(root, pid, "anat", f"{pid}_T1w.nii.gz"))
        rows.append(f"{pid}\t{label}\t{70 + i}")
    with open(os.path.join(root, "participants.tsv"), "w") as fh:
        fh.write("\n".join(rows) + "\n")
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (e.g. a demo cohort made by `smmt demo-data`)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per variant (0: skip the step and attention parts)")
    parser.add_argument("--attention-repeats", type=int, default=None,
                        help="timed runs of the in-model attention comparison (default: --repeats)")
    parser.add_argument("--epochs", type=int, default=0, help="also train each variant this many epochs")
    parser.add_argument("--rounds", type=int, default=1, help="with --epochs: train every variant this many "
                        "times, round-robin, and report the median (machine load hits all alike)")
    parser.add_argument("--patch-mm", type=float, default=None, help="override the preset's patch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench-runs", help="parent folder of the --epochs runs")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny cohort and grid, one repeat: check that it runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {}
    if args.smoke:
        tmp = tempfile.mkdtemp(prefix="smmt-volume-bench-")
        args.data = tiny_bids(os.path.join(tmp, "bids"))
        args.out = os.path.join(tmp, "runs")
        args.batch_size, args.repeats, args.epochs = 2, 1, 1
        overrides = dict(resolution_mm=8.0, patch_mm=16.0, d_model=32, n_heads=2, measure_energy=False,
                         features=["AGE"])
    if not args.data:
        parser.error("--data is required (or --smoke)")
    if args.patch_mm:
        overrides["patch_mm"] = args.patch_mm
    config = TrainConfig.build("volume", dataset=str(args.data), batch_size=args.batch_size, **overrides)
    result = bench_volume(config, variants=[v.strip() for v in args.variants.split(",") if v.strip()],
                          batch_size=args.batch_size, repeats=args.repeats, epochs=args.epochs, out_dir=args.out, rounds=args.rounds,
                          attention_repeats=args.attention_repeats)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result.to_dict(), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
