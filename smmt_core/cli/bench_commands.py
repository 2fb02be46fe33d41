"""`smmt bench …`: benchmarks that print ratios measured side by side in one run.

`smmt bench` has its own sub-commands so each area can add one without touching this file:
`attention` (dense vs cluster-sparse attention) lives here; any other command module may define
`add_bench_commands(bench_subparsers)` (e.g. `smmt bench predict` in `train_commands`), and it
is called when the `bench` parser is built.
"""

from __future__ import annotations

import importlib

# Command modules asked for `add_bench_commands(bench_subparsers)`, in this order.
BENCH_PROVIDERS = ("smmt_core.cli.train_commands", "smmt_core.cli.experiment_commands")


def add_commands(subparsers) -> None:
    """Register `smmt bench` and its sub-commands on the `smmt` parser."""
    bench = subparsers.add_parser("bench", help="run a benchmark (attention, ...)",
                                  description="Benchmarks; each prints ratios measured side by side in one run.")
    bench_subparsers = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bench.set_defaults(handler=lambda args: _no_benchmark_chosen(bench))
    add_attention_command(bench_subparsers)
    for module_name in BENCH_PROVIDERS:
        hook = getattr(importlib.import_module(module_name), "add_bench_commands", None)
        if hook is not None:
            hook(bench_subparsers)


def _no_benchmark_chosen(parser) -> int:
    parser.print_help()
    return 2


def add_attention_command(bench_subparsers) -> None:
    from smmt_core.model.attention_bench import add_arguments

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
    add_arguments(attention)
    attention.set_defaults(handler=_run_attention)


def _run_attention(args) -> int:
    from smmt_core.model.attention_bench import run_from_args

    run_from_args(args)
    return 0
