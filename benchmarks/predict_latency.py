"""Prediction latency: load a run, then time the first prediction of a 1 mm T1 (target <= 1 s on CPU).

    python benchmarks/predict_latency.py                  # untrained demo-preset model
    python benchmarks/predict_latency.py --model runs/X   # a trained run
    python benchmarks/predict_latency.py --preset paper   # the paper's 256x256, d=512 setting
    python benchmarks/predict_latency.py --smoke          # one T1, one thread: check that it runs (tests)

Same as `smmt bench predict`; the measurement lives in smmt_core.bench.predict_latency.
"""

from __future__ import annotations

import argparse
import sys

from smmt_core.device import prefer_passive_openmp

prefer_passive_openmp()  # as `smmt` does; before torch loads OpenMP

from smmt_core.bench.predict_latency import add_bench_predict  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="predict_latency")
    sub = parser.add_subparsers(dest="bench")
    add_bench_predict(sub)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--smoke" in given:
        given = [a for a in given if a != "--smoke"] + ["--repeats", "1", "--threads", "1"]
    args = parser.parse_args(["predict", *given])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
