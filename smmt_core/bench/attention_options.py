"""The options of the attention benchmark (`smmt bench attention`, `benchmarks/attention.py`).

Declared apart from the benchmark (`smmt_core.bench.attention`, which needs torch) so that the
`smmt` parser and `smmt bench attention --help` import no torch; the benchmark re-exports them.
"""

from __future__ import annotations

import time

DEFAULT_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
LAYOUTS = ("model", "separate")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
DTYPE_NAMES = ("fp32", "bf16", "fp16", "fp64")  # torch dtypes in smmt_core.bench.attention.DTYPES


def add_arguments(parser) -> None:
    """The benchmark's options, shared by the script and `smmt bench attention`."""
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(DEFAULT_SIZES),
                        help="comma-separated token counts (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--dtype", choices=sorted(DTYPE_NAMES), default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--assignment", choices=("exact", "balanced"), default="exact")
    parser.add_argument("--cluster-size", type=int, default=None, help="fixed cluster size (default: k = ceil(log2 n))")
    parser.add_argument("--kmeans-iters", type=int, default=3)
    parser.add_argument("--dense-backend", choices=("default", "flash", "efficient", "math", "cudnn"), default="default",
                        help="restrict the dense baseline to one SDPA kernel (e.g. flash on CUDA)")
    parser.add_argument("--sparse-backend", choices=("auto", "grouped", "nested", "flex"), default="auto")
    parser.add_argument("--max-seconds-per-size", type=float, default=60.0)
    parser.add_argument("--layout", choices=LAYOUTS, default="model",
                        help="q/k/v as views of the model's packed qkv projection (default) or three (B, h, n, dh) tensors")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (leaves out waits for a core on a shared machine)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--malloc-tuning", action="store_true",
                        help="raise glibc's mmap/trim thresholds first (fewer page faults; see docs/attention.md)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one record per n")
    parser.add_argument("--json-out", default=None, metavar="PATH",
                        help="also write the JSON list to PATH (with the run's settings in a sidecar .meta.json)")
