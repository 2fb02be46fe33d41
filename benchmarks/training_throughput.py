"""Training throughput (training subjects per second) at the demo and volume presets, 1 and 2 threads.

    python benchmarks/training_throughput.py --data DIR                 # 3 epochs per cell
    python benchmarks/training_throughput.py --data DIR --epochs 4 --presets volume --json-out out.json
    python benchmarks/training_throughput.py --smoke                    # seconds: proves it still runs (tests)

Each cell is one `smmt train --preset P --epochs E --no-energy` in a fresh process with
OMP_NUM_THREADS (and torch's threads) set to 1 or 2 and the product's defaults otherwise (OpenMP
threads that sleep, `smmt`'s default). Throughput = training subjects (split.csv, part "train")
/ median epoch time, an epoch being its training pass and its validation pass (the `elapsed_s`
steps of metrics.csv); the first epoch is left out when there are more (it warms caches up).
The cells run one after the other: note the load average printed with each. The baseline for later
rounds is in docs/attention.md, "Threads on a shared machine".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from smmt_core.bench.smoke import SMOKE_MODEL_FLAGS, smoke_cohort

HERE = Path(__file__).resolve().parents[1]


def train(data: str, preset: str, threads: int, epochs: int, out: Path, extra: list[str]) -> Path:
    env = dict(os.environ, PYTHONPATH=str(HERE), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    name = f"{preset}-t{threads}"
    argv = ["train", "--preset", preset, "--data", data, "--epochs", str(epochs), "--no-energy", "--out", str(out),
            "--name", name, *extra]
    code = f"import sys; from smmt_core.cli import command; sys.exit(command({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"smmt train {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return out / name


def throughput(run: Path) -> dict:
    with open(run / "split.csv", newline="") as fh:
        n_train = sum(1 for row in csv.DictReader(fh) if row["part"] == "train")
    with open(run / "metrics.csv", newline="") as fh:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(fh)]
    epochs = [b - a for a, b in zip([0.0, *elapsed], elapsed)]
    timed = epochs[1:] if len(epochs) > 1 else epochs
    epoch_s = statistics.median(timed)
    return {"train_subjects": n_train, "epoch_s": epoch_s, "subjects_per_s": n_train / epoch_s, "epochs_s": epochs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a dataset folder (e.g. `smmt demo-data DIR --subjects 60`)")
    parser.add_argument("--presets", default="demo,volume", help="comma-separated presets")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json-out", help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny model, one epoch, demo preset: check that it runs")
    args = parser.parse_args(argv)
    extra: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="smmt-throughput-"))
    if args.smoke:
        args.data, args.presets, args.threads, args.epochs = str(smoke_cohort(work)), "demo", "1", 1
        extra = SMOKE_MODEL_FLAGS + ["--batch-size", "4"]
    if not args.data:
        parser.error("--data is required (or --smoke)")
    rows = []
    print(f"{'preset':>7} {'threads':>7} {'load':>5} {'subjects':>8} {'epoch s':>8} {'subjects/s':>10}")
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        for threads in [int(t) for t in args.threads.split(",")]:
            load = os.getloadavg()[0]
            result = throughput(train(args.data, preset, threads, args.epochs, work / "runs", extra))
            rows.append(dict(preset=preset, threads=threads, load=load, **result))
            print(f"{preset:>7} {threads:>7} {load:>5.1f} {result['train_subjects']:>8} {result['epoch_s']:>8.1f} "
                  f"{result['subjects_per_s']:>10.2f}", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"data": args.data, "epochs": args.epochs, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
