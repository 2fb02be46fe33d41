"""Sparse vs dense at 1 and 2 threads, on a quiet and on a busy machine, with OpenMP threads that
spin (torch's default) or sleep (`OMP_WAIT_POLICY=PASSIVE`, what `smmt`, the app and its training
process now set unless the user has set it).

    python benchmarks/thread_policy.py --data DIR            # a demo cohort for the volume preset's steps
    python benchmarks/thread_policy.py --data DIR --rounds 2 --json-out results.json
    python benchmarks/thread_policy.py --skip-volume         # the attention kernel only (seconds per condition)
    python benchmarks/thread_policy.py --smoke               # seconds: proves it still runs (tests)

Every condition runs in a fresh process (the wait policy is read once, when torch loads OpenMP):
wait policy (spinning, passive) x torch threads (1, 2) x competing busy processes (0, 2; each a
pure-Python loop that keeps one core busy, standing in for the other jobs of a shared machine).
For each it measures
  - the attention kernel at n = 4096 (batch 1, 4 heads x 32, forward + backward, K-Means included):
    dense SDPA time / cluster-sparse time (`smmt bench attention`);
  - the volume preset's training step, SMMT / 3MT time (`benchmarks/volume_efficiency.py`'s steps,
    batch 8; the step is what an epoch repeats).
Conditions are interleaved within a round, so that a change in the machine's own load hits all
alike; the load average is printed with each row. Targets: speedup >= 4x and SMMT/3MT <= 0.6x in
every condition. Results: docs/attention.md, "Threads on a shared machine".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
POLICIES = {"spinning": None, "passive": "PASSIVE"}  # None: OMP_WAIT_POLICY unset, torch's and libgomp's default

ATTENTION = r"""
import json, sys
import torch
from smmt_core.bench.attention import bench_attention
torch.set_num_threads(int(sys.argv[1]))
[r] = bench_attention([int(sys.argv[2])], repeats=int(sys.argv[3]), warmup=1)
print(json.dumps({"speedup": r.speedup, "dense_ms": r.dense_ms, "sparse_ms": r.sparse_ms, "kmeans_ms": r.kmeans_ms}))
"""

VOLUME_STEPS = r"""
import json, sys
import torch
from smmt_core.bench.volume import bench_volume
from smmt_core.train.config import TrainConfig
torch.set_num_threads(int(sys.argv[1]))
overrides = json.loads(sys.argv[4])
config = TrainConfig.build("volume", dataset=sys.argv[2], batch_size=overrides.pop("batch_size", 8), **overrides)
result = bench_volume(config, variants=["smmt", "3mt"], repeats=int(sys.argv[3]), attention_repeats=1, out=lambda *a: None)
print(json.dumps({"ratio": result.step_ratio_vs_3mt["smmt"], "smmt_ms": result.step_ms["smmt"],
                  "3mt_ms": result.step_ms["3mt"]}))
"""


def child_env(policy: str | None, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    return env


def measure(code: str, env: dict, *argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"a measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Competitors:
    """`count` processes that each keep one core busy, for as long as the `with` block lasts."""

    def __init__(self, count: int):
        self.count, self.procs = count, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a dataset folder for the volume preset (e.g. `smmt demo-data DIR --subjects 24`)")
    parser.add_argument("--skip-volume", action="store_true", help="time the attention kernel only")
    parser.add_argument("--n", type=int, default=4096, help="tokens for the attention kernel")
    parser.add_argument("--attention-repeats", type=int, default=5)
    parser.add_argument("--step-repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole grid; medians are reported")
    parser.add_argument("--json-out", help="write every measurement to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one condition each: check that it runs")
    args = parser.parse_args(argv)
    overrides: dict = {}
    conditions = [(p, t, c) for c in (0, 2) for t in (1, 2) for p in POLICIES]
    if args.smoke:
        from smmt_core.bench.smoke import SMOKE_MODEL, smoke_cohort

        args.data = str(smoke_cohort(tempfile.mkdtemp(prefix="smmt-thread-policy-")))
        args.n, args.attention_repeats, args.step_repeats, args.rounds = 128, 1, 1, 1
        overrides = dict(SMOKE_MODEL, patch_mm=16.0, batch_size=2)
        conditions = [("passive", 1, 0), ("spinning", 2, 1)]
    if not args.skip_volume and not args.data:
        parser.error("--data is required for the volume preset's steps (or --skip-volume, or --smoke)")

    rows = []
    print(f"attention n = {args.n}, {args.attention_repeats} repeats; volume steps: "
          f"{'skipped' if args.skip_volume else f'{args.step_repeats} per variant on {args.data}'}; "
          f"{args.rounds} round(s); {os.cpu_count()} CPUs, torch threads and policy per row")
    print(f"{'policy':>9} {'threads':>7} {'busy':>4} {'load':>5} {'dense ms':>9} {'sparse ms':>9} {'kmeans':>7} "
          f"{'speedup':>7} {'smmt/3mt':>8}")
    for round_no in range(args.rounds):
        for policy, threads, busy in conditions:
            env = child_env(POLICIES[policy], threads)
            with Competitors(busy):
                load = os.getloadavg()[0]
                attention = measure(ATTENTION, env, str(threads), str(args.n), str(args.attention_repeats))
                steps = None if args.skip_volume else measure(VOLUME_STEPS, env, str(threads), args.data,
                                                              str(args.step_repeats), json.dumps(overrides))
            row = dict(round=round_no, policy=policy, threads=threads, busy=busy, load=load, attention=attention,
                       volume_steps=steps)
            rows.append(row)
            ratio = f"{steps['ratio']:7.2f}x" if steps else "      -"
            print(f"{policy:>9} {threads:>7} {busy:>4} {load:>5.1f} {attention['dense_ms']:>9.1f} "
                  f"{attention['sparse_ms']:>9.1f} {attention['kmeans_ms']:>7.1f} {attention['speedup']:>6.2f}x "
                  f"{ratio}", flush=True)
    if args.rounds > 1:
        print("medians over rounds:")
        for policy, threads, busy in conditions:
            mine = [r for r in rows if (r["policy"], r["threads"], r["busy"]) == (policy, threads, busy)]
            speedup = statistics.median(r["attention"]["speedup"] for r in mine)
            ratio = "-" if args.skip_volume else f"{statistics.median(r['volume_steps']['ratio'] for r in mine):.2f}x"
            print(f"{policy:>9} {threads:>7} {busy:>4}  speedup {speedup:.2f}x  smmt/3mt {ratio}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"n": args.n, "cpus": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
