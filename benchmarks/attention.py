"""Dense SDPA vs SMMT cluster-sparse attention (K-Means included), forward + backward.

    python benchmarks/attention.py                      # CPU, fp32, n = 256 .. 16384
    python benchmarks/attention.py --sizes 1024,4096 --json
    python benchmarks/attention.py --device cuda --dtype bf16 --dense-backend flash
    python benchmarks/attention.py --smoke              # seconds: proves the script still runs (tests)

Same as `smmt bench attention`. Prints per n: times, speedup, the ideal n²/Σc², the achieved
fraction of it, peak-memory ratio and log-log slopes. Results and discussion: docs/attention.md.
"""

import argparse
import sys

from smmt_core.device import prefer_passive_openmp

prefer_passive_openmp()  # as `smmt` does; before torch loads OpenMP

from smmt_core.bench.attention import add_arguments, run_from_args  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: check that it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeats, args.warmup, args.threads = [64, 128], 1, 0, 1
    run_from_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
