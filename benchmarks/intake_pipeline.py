"""Benchmark: the whole intake pipeline on one 1 mm T1 with skull (Colin27 by default), cold then cached.

    python benchmarks/intake_pipeline.py [T1.nii.gz] [--threads 2] [--runs 3]
    python benchmarks/intake_pipeline.py --smoke    # the MNI template at 4 mm: checks that it runs (tests)

Colin27 comes with Debian's `mricron-data` package (/usr/share/mricron/templates/ch2.nii.gz).
Each run is a fresh Python process with an empty cache, so "first time" includes what a new
`smmt preprocess` worker pays: importing torch/ANTs/nilearn, loading the template and deepbet's
model. Per run it prints the seconds of every part (`IntakeResult.seconds`, which do not overlap),
the whole first run, the cached re-run, the CPU seconds the process used (all threads: what does
not depend on the machine's load) and the load average (`os.getloadavg`, what `uptime` shows)
before and after; then the median over the runs.
Target: <= 30 s on 2 CPU cores the first time, <= 1 s from the cache.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: a new process pays them too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

COLIN27 = "/usr/share/mricron/templates/ch2.nii.gz"


def one_run(t1: str, threads: int) -> dict:
    """In this (fresh) process: imports, the intake with an empty cache, then again from the cache."""
    load_before = os.getloadavg()[0]
    from smmt_core.device import configure_worker_process

    configure_worker_process(threads)  # as `smmt preprocess` sets up each worker
    import torch

    torch.set_num_threads(threads)
    import ants  # noqa: F401  (imported here so that the import is timed on its own line)
    import nilearn.datasets  # noqa: F401

    from smmt_core.data.intake import IntakeCache, IntakeSettings, run_intake

    imports = time.perf_counter() - STARTED
    with tempfile.TemporaryDirectory() as tmp:
        cache = IntakeCache(tmp)
        t0 = time.perf_counter()
        first = run_intake(t1, IntakeSettings(), cache=cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_intake(t1, IntakeSettings(), cache=cache)
        warm = time.perf_counter() - t0
    return {"seconds": {"imports": round(imports, 2), **first.seconds}, "first_run": round(cold, 2),
            "fresh_process": round(imports + cold, 2), "cached": round(warm, 4), "from_cache": again.from_cache,
            "qc": first.qc.verdict, "score": round(first.qc.score, 4), "mask_dice": first.qc.mask_dice,
            "device": first.device, "steps": first.steps_label, "threads": threads,
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("t1", nargs="?", default=COLIN27)
    parser.add_argument("--threads", type=int, default=2, help="torch and ITK threads (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes to time (default 3); the median is printed")
    parser.add_argument("--smoke", action="store_true",
                        help="one run on the MNI152 template at 4 mm (already in MNI space: the steps it needs only)")
    parser.add_argument("--one-run-json", action="store_true", help=argparse.SUPPRESS)  # what each child process does
    args = parser.parse_args(argv)
    if args.one_run_json:
        print(json.dumps(one_run(args.t1, args.threads)))
        return 0
    if args.smoke:
        try:
            import ants  # noqa: F401
            import deepbet  # noqa: F401
        except ImportError:
            print("intake extra not installed (pip install 'smmt-studio[intake]'); nothing to time")
            return 0
        import nibabel as nib
        from nilearn import datasets

        args.threads, args.runs = 1, 1
        args.t1 = os.path.join(tempfile.mkdtemp(prefix="smmt-intake-smoke-"), "template4mm.nii.gz")
        nib.save(datasets.load_mni152_template(resolution=4), args.t1)
    if not os.path.exists(args.t1):
        print(f"{args.t1}: not found (apt-get install mricron-data, or give a T1 path)", file=sys.stderr)
        return 2
    runs = []
    for n in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, os.path.abspath(__file__), args.t1, "--threads", str(args.threads),
                               "--one-run-json"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"run {n + 1} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            return 1
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU seconds of that process, all threads
        runs[-1]["cpu"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    print(f"input: {args.t1}; {args.threads} threads (torch, ITK); {len(runs)} fresh processes; "
          f"{os.cpu_count()} CPUs visible")
    parts = list(dict.fromkeys(k for r in runs for k in r["seconds"]))
    print(f"  {'part':<22}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(len(runs))) + f"{'median':>9}")

    def row(name, values, digits=2):
        print(f"  {name:<22}" + "".join(f"{v:9.{digits}f}" for v in values) + f"{statistics.median(values):9.{digits}f}")

    for part in parts:
        row(part, [r["seconds"].get(part, 0.0) for r in runs])
    row("first run (no imports)", [r["first_run"] for r in runs])
    row("fresh process, total", [r["fresh_process"] for r in runs])
    row("from the cache", [r["cached"] for r in runs], 3)
    row("CPU seconds (process)", [r["cpu"] for r in runs])
    row("load average before", [r["load_before"] for r in runs])
    row("load average after", [r["load_after"] for r in runs])
    last = runs[-1]
    print(f"QC: {last['qc']} score {last['score']} mask overlap {last['mask_dice']}; steps {last['steps']}; "
          f"brain extraction on {last['device']}; cached re-run from_cache={last['from_cache']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
