"""Benchmark: dense SDPA vs cluster-sparse attention, forward + backward, side by side.

Used by `benchmarks/attention.py` and `smmt bench attention`. For each token count n it times,
interleaved in one process (so machine load hits all three alike):
  dense         `scaled_dot_product_attention` over all n tokens (the 3MT baseline);
  sparse        K-Means on the queries + attention within clusters (what SMMT pays per layer);
  sparse_fixed  attention within clusters with the ids given (the attention kernel alone);
and reports the speedup, the ideal speedup n²/Σc² for the clusters K-Means actually produced,
the achieved fraction of that ideal, the peak-memory ratio and the log-log scaling slopes.

Layout: by default q, k and v are what the model's attention layer hands over, views of one
(B, n, 3, h, dh) projection output (dense gets them as (B, h, n, dh) views, as 3MT does; sparse as
the packed tensor, as SMMT does); `layout="separate"` makes three contiguous (B, h, n, dh) tensors
instead (the layout of the measurements before the packed path existed).

Clock: "wall" (perf_counter) or "cpu" (the process's CPU time, `time.process_time`): with one
torch thread on a machine shared with other jobs, CPU time leaves out the time slices the
process spent waiting for a core, which wall time adds to whichever variant was running.

Peak memory: on CUDA the allocator's peak; on CPU the peak of live tensor allocations recorded
by the torch profiler during the (untimed) warm-up run.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from smmt_core.bench.attention_options import (  # noqa: F401 (add_arguments re-exported for the scripts)
    CLOCKS,
    DEFAULT_SIZES,
    DTYPE_NAMES,
    LAYOUTS,
    add_arguments,
)
from smmt_core.model.attention import cluster_sparse_attention, packed_cluster_sparse_attention
from smmt_core.model.kmeans import default_n_clusters, kmeans

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp64": torch.float64}
assert sorted(DTYPES) == sorted(DTYPE_NAMES)


@dataclass
class BenchRecord:
    n: int
    n_clusters: int
    dense_ms: float
    sparse_ms: float
    sparse_fixed_ms: float
    kmeans_ms: float
    speedup: float  # dense / sparse (K-Means included)
    speedup_fixed: float  # dense / sparse_fixed
    ideal_speedup: float  # n² / Σc² for the clusters found
    efficiency: float  # speedup / ideal_speedup
    efficiency_fixed: float
    largest_cluster_ratio: float  # largest cluster / mean cluster size
    dense_peak_mb: float | None
    sparse_peak_mb: float | None
    memory_ratio: float | None  # dense peak / sparse peak
    dense_slope: float | None  # d log(time) / d log(n) from the previous size
    sparse_slope: float | None
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)


def tune_malloc() -> bool:
    """Keep freed memory in the process (glibc), so repeated allocations skip first-touch page faults.

    Without it glibc hands blocks above its mmap threshold (128 KiB, rising to at most 32 MiB) to
    the OS and back, and trims the heap's free top, so new tensors pay page faults on first touch
    (~1.5 µs per 4 KiB page on the development VM, ~7 ms per 16 MB tensor). Here no block goes to
    mmap at all (so even the 48 MB packed q/k/v gradients at n = 4096, batch 8 are recycled) and
    the heap is never trimmed. PyTorch's CPU tuning guide suggests jemalloc/tcmalloc for the same
    reason. Applies to dense and sparse alike; off unless asked for.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        return bool(libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 1 << 30)
                    and libc.mallopt(m_top_pad, 64 << 20))
    except (OSError, AttributeError):
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (the profiler's native start/stop lines), restore it afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _cpu_peak_bytes(fn) -> int | None:
    """Peak of live CPU tensor bytes while running fn, from the profiler's allocation events."""
    try:
        import torch._C._profiler as _profiler
        from torch.profiler import ProfilerActivity, profile

        with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = []

        def walk(nodes):
            for node in nodes:
                if node.tag == _profiler._EventType.Allocation:
                    events.append((node.start_time_ns, node.extra_fields.alloc_size))
                walk(node.children)

        walk(prof.profiler.kineto_results.experimental_event_tree())
    except Exception:  # private profiler API: a missing piece only costs the memory column
        return None
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return peak


def _peak_bytes(fn, device: torch.device) -> int | None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    return _cpu_peak_bytes(fn)


def _dense_backend_context(name: str):
    if name == "default":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "math": SDPBackend.MATH, "cudnn": SDPBackend.CUDNN_ATTENTION}
    return sdpa_kernel(backends[name])


def bench_attention(
    sizes=DEFAULT_SIZES,
    *,
    batch: int = 1,
    heads: int = 4,
    head_dim: int = 32,
    dtype: str = "fp32",
    device: str = "cpu",
    repeats: int = 3,
    warmup: int = 1,
    assignment: str = "exact",
    cluster_size: int | None = None,
    kmeans_iters: int = 3,
    dense_backend: str = "default",
    sparse_backend: str = "auto",
    max_seconds_per_size: float = 60.0,
    seed: int = 0,
    layout: str = "model",
    clock: str = "wall",
    on_record=None,
) -> list[BenchRecord]:
    """Time dense vs sparse attention (fwd + bwd) for each n in `sizes`; see the module docstring.

    repeats is reduced (to at least 1) for a size whose warm-up shows the repeats would take
    longer than max_seconds_per_size. on_record(record) is called as each size finishes.
    """
    dev = torch.device(device)
    torch_dtype = DTYPES[dtype]
    now = CLOCKS[clock]
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    records: list[BenchRecord] = []
    for n in sizes:
        g = torch.Generator(device="cpu").manual_seed(seed + n)
        if layout == "model":  # the qkv projection's output, as the attention layer sees it
            qkv = torch.randn(batch, n, 3, heads, head_dim, generator=g).to(dev, torch_dtype).requires_grad_()
            leaves = (qkv,)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
        else:
            qkv = None
            leaves = q, k, v = [torch.randn(batch, heads, n, head_dim, generator=g).to(dev, torch_dtype).requires_grad_()
                                for _ in range(3)]
        grad = torch.randn(batch, heads, n, head_dim, generator=g).to(dev, torch_dtype)
        grad_tokens = grad.transpose(1, 2)  # (B, n, h, dh), for the packed path's output
        n_clusters = default_n_clusters(n, cluster_size)

        def find_ids():
            return kmeans(q.detach().transpose(1, 2).reshape(batch, n, heads * head_dim), n_clusters,
                          kmeans_iters, assignment)[0]

        fixed_ids = find_ids()

        def dense():
            with _dense_backend_context(dense_backend):
                out = F.scaled_dot_product_attention(q, k, v)
            out.backward(grad)

        def attend_within(ids):
            if qkv is not None:
                packed_cluster_sparse_attention(qkv, ids, n_clusters, sparse_backend).backward(grad_tokens)
            else:
                cluster_sparse_attention(q, k, v, ids, n_clusters, sparse_backend).backward(grad)

        def sparse():
            attend_within(find_ids())

        def sparse_fixed():
            attend_within(fixed_ids)

        def clustering():
            find_ids()

        def clear():
            for leaf in leaves:
                leaf.grad = None

        functions = {"dense": dense, "sparse": sparse, "sparse_fixed": sparse_fixed, "kmeans": clustering}
        peaks: dict[str, int | None] = {}
        warm_seconds = 0.0
        for name, fn in functions.items():
            for i in range(warmup):
                clear()
                start = now()
                if i == 0 and name in ("dense", "sparse"):
                    peaks[name] = _peak_bytes(fn, dev)  # warm-up doubles as the memory run
                else:
                    fn()
                _sync(dev)
                warm_seconds += now() - start
        per_repeat = warm_seconds / max(1, warmup)
        n_repeats = max(1, min(repeats, int(max_seconds_per_size / max(per_repeat, 1e-9))))
        times: dict[str, list[float]] = {name: [] for name in functions}
        for _ in range(n_repeats):  # interleaved, so load spikes hit every variant
            for name, fn in functions.items():
                clear()
                _sync(dev)
                start = now()
                fn()
                _sync(dev)
                times[name].append((now() - start) * 1000.0)
        ms = {name: statistics.median(t) for name, t in times.items()}
        sizes_found = torch.bincount((fixed_ids + torch.arange(batch, device=dev).unsqueeze(1) * n_clusters).reshape(-1),
                                     minlength=batch * n_clusters).double()
        ideal = batch * n * n / float((sizes_found**2).sum())
        nonzero = sizes_found.view(batch, n_clusters)
        largest = float(nonzero.max(1).values.mean() / (n / n_clusters))
        speedup, speedup_fixed = ms["dense"] / ms["sparse"], ms["dense"] / ms["sparse_fixed"]
        dense_peak, sparse_peak = peaks.get("dense"), peaks.get("sparse")
        previous = records[-1] if records else None

        def slope(now, before):
            return math.log(now / before) / math.log(n / previous.n) if previous else None

        record = BenchRecord(
            n=n, n_clusters=n_clusters, dense_ms=ms["dense"], sparse_ms=ms["sparse"],
            sparse_fixed_ms=ms["sparse_fixed"], kmeans_ms=ms["kmeans"], speedup=speedup,
            speedup_fixed=speedup_fixed, ideal_speedup=ideal, efficiency=speedup / ideal,
            efficiency_fixed=speedup_fixed / ideal, largest_cluster_ratio=largest,
            dense_peak_mb=dense_peak / 2**20 if dense_peak else None,
            sparse_peak_mb=sparse_peak / 2**20 if sparse_peak else None,
            memory_ratio=dense_peak / sparse_peak if dense_peak and sparse_peak else None,
            dense_slope=slope(ms["dense"], previous.dense_ms) if previous else None,
            sparse_slope=slope(ms["sparse"], previous.sparse_ms) if previous else None,
            repeats=n_repeats,
        )
        records.append(record)
        if on_record is not None:
            on_record(record)
        q = k = v = qkv = leaves = grad = grad_tokens = None  # free the tensors before the next size (the closures are done)
    return records


def loglog_slope(records: list[BenchRecord], key: str) -> float | None:
    """Least-squares slope of log(time) against log(n) over all sizes."""
    if len(records) < 2:
        return None
    xs = [math.log(r.n) for r in records]
    ys = [math.log(getattr(r, key)) for r in records]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


HEADER = (f"{'n':>6} {'k':>3} {'dense ms':>10} {'sparse ms':>10} {'fixed ms':>9} {'kmeans':>7} "
          f"{'speedup':>7} {'ideal':>6} {'eff':>5} {'eff(fix)':>8} {'max/mean':>8} {'mem d/s':>7} "
          f"{'slope d':>7} {'slope s':>7}")


def format_record(r: BenchRecord) -> str:
    def opt(value, fmt):
        return format(value, fmt) if value is not None else "-"

    return (f"{r.n:>6} {r.n_clusters:>3} {r.dense_ms:>10.2f} {r.sparse_ms:>10.2f} {r.sparse_fixed_ms:>9.2f} "
            f"{r.kmeans_ms:>7.2f} {r.speedup:>6.2f}x {r.ideal_speedup:>6.2f} {r.efficiency:>5.2f} "
            f"{r.efficiency_fixed:>8.2f} {r.largest_cluster_ratio:>8.2f} {opt(r.memory_ratio, '>7.2f')} "
            f"{opt(r.dense_slope, '>7.2f')} {opt(r.sparse_slope, '>7.2f')}")


def run_from_args(args, out=print) -> list[BenchRecord]:
    import json

    if args.threads:
        torch.set_num_threads(args.threads)
    malloc_tuned = tune_malloc() if args.malloc_tuning else False
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        from smmt_core.errors import ConfigError

        raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
    if any(n < 2 for n in args.sizes):
        from smmt_core.errors import ConfigError

        raise ConfigError(f"token counts must be at least 2, got {args.sizes}")
    options = dict(batch=args.batch, heads=args.heads, head_dim=args.head_dim, dtype=args.dtype, device=args.device,
                   repeats=args.repeats, warmup=args.warmup, assignment=args.assignment,
                   cluster_size=args.cluster_size, kmeans_iters=args.kmeans_iters,
                   dense_backend=args.dense_backend, sparse_backend=args.sparse_backend,
                   max_seconds_per_size=args.max_seconds_per_size, layout=args.layout, clock=args.clock)
    if not args.json:
        out(f"attention fwd+bwd on {args.device} ({torch.get_num_threads()} threads, OpenMP wait policy "
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset: spins')}), {args.dtype}, "
            f"batch {args.batch}, {args.heads} heads × {args.head_dim}, K-Means {args.assignment}, "
            f"{args.kmeans_iters} iters, dense backend {args.dense_backend}, malloc tuning "
            f"{'on' if malloc_tuned else 'off'}, {args.layout} layout, {args.clock} clock; torch {torch.__version__}")
        out(HEADER)
    records = bench_attention(args.sizes, on_record=None if args.json else (lambda r: out(format_record(r))),
                              **options)
    if args.json_out:
        from pathlib import Path

        from smmt_core.fileio import atomic_write_text

        path = Path(args.json_out)
        meta = {"settings": {k: v for k, v in vars(args).items() if k != "handler"},
                "torch": torch.__version__, "threads": torch.get_num_threads(), "malloc_tuning": malloc_tuned,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                "loglog_slope_dense": loglog_slope(records, "dense_ms"),
                "loglog_slope_sparse": loglog_slope(records, "sparse_ms")}
        for target, payload in ((path, [r.to_dict() for r in records]),
                                (path.with_suffix(".meta.json"), meta)):
            atomic_write_text(target, json.dumps(payload, indent=1))
    if args.json:
        out(json.dumps([r.to_dict() for r in records], indent=1))
    else:
        dense_slope, sparse_slope = loglog_slope(records, "dense_ms"), loglog_slope(records, "sparse_ms")
        if dense_slope is not None:
            out(f"log-log slope over all sizes: dense {dense_slope:.2f}, sparse {sparse_slope:.2f} "
                f"(n² -> 2; n²/log n -> a little under 2; n log n -> a little over 1)")
    return records
