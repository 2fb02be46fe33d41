"""Benchmark code: measurements that print ratios taken side by side in one run.

Registered by the CLI (`smmt bench …`, smmt_core.cli.bench_commands) and wrapped by the scripts in
benchmarks/; kept out of model/ and train/ so that those hold only what a run uses.
"""
