"""Wall time of one experiment grid with the local backend vs Ray, measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/grid_backends.py --out /tmp/grid-bench [--workers 2] [--json]
    python benchmarks/grid_backends.py --smoke    # 2 cells on a 12-subject cohort: check that it runs (tests)

The grid: 24 cells (variants smmt, smmt-no-sparse, smmt-no-mask, 3mt x fractions 0.5, 1.0 x
seeds 0, 1, 2) on the SYNTHETIC demo cohort with a tiny model (d_model 32, 2 heads, 2 slices of
16x16 at 8 mm, 1 epoch, no energy measurement), so that it measures scheduling, not the model.
The local backend runs the cells one after another on one torch thread; Ray runs them as tasks
of one CPU each on a local instance of `--workers` CPUs (its start-up counted in the Ray time).
The demo cohort and its preprocessing cache are built before either is timed. Per-cell metrics
of the two are compared too. Results and discussion: docs/scale-out.md.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

TINY = dict(batch_size=8, d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16, n_slices=2, resolution_mm=8.0,
            measure_energy=False, device="cpu", features="non-circular")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="grid-bench", help="scratch folder, emptied first (default grid-bench)")
    parser.add_argument("--smoke", action="store_true",
                        help="2 cells on a 12-subject demo cohort; Ray only when installed (measures nothing)")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray instance (default 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from smmt_core.experiments.backends import make_backend
    from smmt_core.experiments.grid import ExperimentSpec, run_experiment

    torch.set_num_threads(1)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    spec = ExperimentSpec(data="demo", variants=["smmt", "smmt-no-sparse", "smmt-no-mask", "3mt"],
                          fractions=[0.5, 1.0], seeds=[0, 1, 2], epochs=1, overrides=TINY)
    use_ray = True
    if args.smoke:
        import importlib.util

        from smmt_core.bench.smoke import smoke_cohort

        data = smoke_cohort(out)
        spec = ExperimentSpec(data=str(data), variants=["smmt", "3mt"], fractions=[1.0], seeds=[0], epochs=1,
                              overrides=TINY)
        use_ray = importlib.util.find_spec("ray") is not None
        if not use_ray:
            print("ray is not installed (pip install 'smmt-studio[ray]'): local backend only")
    n_cells = len(spec.cells())
    if not args.smoke:  # a smoke run measures nothing: no need to build the caches before the clock starts
        warm = ExperimentSpec(**{**spec.to_dict(), "variants": ["3mt"], "fractions": [1.0], "seeds": [0]})
        run_experiment(warm, out / "warm-up", make_plots=False)  # demo cohort + preprocessing cache

    timings = {}
    t = time.perf_counter()
    local = run_experiment(spec, out / "local", make_plots=False)
    timings["local_s"] = time.perf_counter() - t
    if not use_ray:
        print(f"{n_cells} cells: local {timings['local_s']:.1f} s")
        return 0
    t = time.perf_counter()
    remote = run_experiment(spec, out / "ray", make_plots=False,
                            backend=make_backend("ray", num_cpus=args.workers, cpus_per_cell=1))
    timings["ray_s"] = time.perf_counter() - t
    metrics = ["accuracy", "balanced_accuracy", "auc"]
    same = bool(local.complete and remote.complete
                and local.results[metrics].equals(remote.results[metrics]))
    report = {"cells": n_cells, "workers": args.workers, **timings,
              "ratio_local_over_ray": timings["local_s"] / timings["ray_s"], "same_per_cell_metrics": same,
              "torch": torch.__version__}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{n_cells} cells: local {timings['local_s']:.1f} s, "
              f"ray ({args.workers} workers) {timings['ray_s']:.1f} s, "
              f"ratio {report['ratio_local_over_ray']:.2f}x; same per-cell metrics: {same}")
    pd.concat([local.results.assign(backend="local"), remote.results.assign(backend="ray")]).to_csv(
        out / "both.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
