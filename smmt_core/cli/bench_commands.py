"""`smmt bench …`: benchmarks that print ratios measured side by side in one run.

`smmt bench attention` (dense vs cluster-sparse attention, smmt_core.bench.attention) and
`smmt bench predict` (first-prediction latency, smmt_core.bench.predict_latency). Their options
come from modules that import no torch; the benchmarks themselves are imported when they run.
"""

from __future__ import annotations

from smmt_core.bench.attention_options import add_arguments as add_attention_arguments
from smmt_core.bench.predict_latency import add_bench_predict


def add_commands(subparsers) -> None:
    """Register `smmt bench` and its sub-commands on the `smmt` parser."""
    bench = subparsers.add_parser("bench", help="run a benchmark (attention, ...)",
                                  description="Benchmarks; each prints ratios measured side by side in one run.")
    bench_subparsers = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bench.set_defaults(handler=lambda args: _no_benchmark_chosen(bench))
    add_attention_command(bench_subparsers)
    add_bench_predict(bench_subparsers)


def _no_benchmark_chosen(parser) -> int:
    parser.print_help()
    return 2


def add_attention_command(bench_subparsers) -> None:
    attention = bench_subparsers.add_parser(
        "attention",
        help="dense SDPA vs SMMT cluster-sparse attention (K-Means included), forward + backward",
        description=(
            "Times dense scaled-dot-product attention against SMMT's cluster-sparse attention "
            "(K-Means included, and with fixed cluster ids) for each token count, forward + "
            "backward, interleaved in one run. Prints speedup, the ideal n²/Σc², the achieved "
            "fraction, the peak-memory ratio and log-log slopes; --json prints one record per n."
        ),
    )
    add_attention_arguments(attention)
    attention.set_defaults(handler=_run_attention)


def _run_attention(args) -> int:
    from smmt_core.bench.attention import run_from_args

    run_from_args(args)
    return 0
