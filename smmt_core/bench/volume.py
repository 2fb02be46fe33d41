"""Benchmark: the paper's efficiency claim at the `volume` preset (SMMT vs 3MT vs SMMT-no-sparse).

Used by `benchmarks/volume_efficiency.py`. Everything runs in one process, on the same persons,
with the same preset, so machine load and data hit every variant alike:

1. steps: one real training batch of the volume preset; each variant's model takes training steps
   (forward + backward + Adam) round-robin, and the median step time is compared. The peak of live
   tensor memory of one step is recorded per variant (torch profiler), and the process peak RSS.
2. in-model attention: on the SMMT model's MRI tokens of that batch, the first intra-modal
   layer's q, k, v (its packed projection output): dense SDPA vs attention within the K-Means
   clusters that layer produced (forward + backward, process CPU time, interleaved), with the
   token count n, k, the ideal speedup n²/Σc² of those clusters and the achieved fraction of it.
3. epochs (optional, `epochs > 0`): full `train()` runs per variant with codecarbon on, time
   and energy per epoch read from each run's metrics.csv.
Speed targets are read from the printed numbers, never asserted in tests.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

VARIANTS = ("smmt", "3mt", "smmt-no-sparse")


@dataclass
class VolumeBenchResult:
    n_tokens: int
    n_clusters: int
    batch_size: int
    step_ms: dict[str, float]  # variant -> median training step
    step_ratio_vs_3mt: dict[str, float]
    step_peak_mb: dict[str, float | None]  # variant -> peak live tensor MB of one step
    attention: dict  # in-model dense vs cluster attention (see module doc)
    epochs: dict[str, dict] = field(default_factory=dict)  # variant -> time/energy per epoch, test metrics
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _training_batch(config, n_subjects: int):
    """A batch of `n_subjects` training samples of the preset and the schema, as the trainer makes them."""
    from smmt_core.data.dataset import SubjectDataset, collate
    from smmt_core.data.feature_sets import resolve_features
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.loaders import load_cohort
    from smmt_core.data.preprocess import MRICache

    cohort = load_cohort(config.data.dataset)
    subjects = [s for s in cohort.subjects if s.label in config.data.classes and s.t1_path is not None][:n_subjects]
    encoder = FeatureEncoder(resolve_features(config.data.features)).fit(subjects)
    dataset = SubjectDataset(subjects, encoder, config.data.classes, config.preprocess, MRICache())
    inputs, labels = collate([dataset[i] for i in range(len(dataset))])
    schema = encoder.schema(config.data.classes, config.preprocess.mri_shape, config.preprocess.volume_spec)
    return inputs, labels, schema


def _step_fn(model, optimizer, inputs, labels):
    def step():
        logits = model(inputs)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def first_mri_layer_qkv(model, inputs) -> torch.Tensor:
    """(B, n, 3, heads, head_dim): the q/k/v projection of the first MRI layer, as the layer makes it."""
    layer = model.intra["mri"][0]
    attention = layer.attention
    with torch.no_grad():
        tokens = model.encoders["mri"](inputs.mri)
        x = layer.norm1(tokens) if hasattr(layer, "norm1") else tokens
        batch, n, _ = x.shape
        return attention.qkv(x).view(batch, n, 3, attention.n_heads, attention.head_dim)


def _attention_in_model(model, inputs, repeats: int) -> dict:
    """Dense vs cluster attention on the first MRI layer's own q, k, v and K-Means clusters.

    q, k, v are handed over as the layer does: views of its (B, n, 3, h, dh) projection output
    (a leaf here, so both variants' backward ends at the projection's gradient). Times are the
    process's CPU time (one torch thread): on a shared machine wall time would also count the
    slices spent waiting for a core.
    """
    from smmt_core.bench.attention import _cpu_peak_bytes
    from smmt_core.model.attention import packed_cluster_sparse_attention
    from smmt_core.model.kmeans import kmeans

    attention = model.intra["mri"][0].attention
    qkv = first_mri_layer_qkv(model, inputs)
    batch, n, _, _, _ = qkv.shape
    d = attention.n_heads * attention.head_dim
    n_clusters = attention.clusters_for(n)
    t = time.process_time()
    ids, _ = kmeans(qkv[:, :, 0].reshape(batch, n, d), n_clusters, attention.kmeans_iters, attention.assignment)
    kmeans_ms = (time.process_time() - t) * 1e3
    counts = torch.stack([torch.bincount(row, minlength=n_clusters) for row in ids]).double()
    ideal = float(batch * n * n / (counts ** 2).sum())
    qkv = qkv.detach().clone().requires_grad_()
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    grad = torch.randn(batch, n, attention.n_heads, attention.head_dim)

    def dense():
        qkv.grad = None
        out = F.scaled_dot_product_attention(q, k, v)
        torch.autograd.backward(out, grad.transpose(1, 2))

    def sparse():
        qkv.grad = None
        out = packed_cluster_sparse_attention(qkv, ids, n_clusters)
        torch.autograd.backward(out, grad)

    def cpu_ms(fn):
        t = time.process_time()
        fn()
        return (time.process_time() - t) * 1e3

    dense(), sparse()  # warm-up
    dense_ms, sparse_ms = [], []
    for _ in range(repeats):  # interleaved: machine load hits both alike
        dense_ms.append(cpu_ms(dense))
        sparse_ms.append(cpu_ms(sparse))
    dense_t, sparse_t = statistics.median(dense_ms), statistics.median(sparse_ms)
    dense_peak, sparse_peak = _cpu_peak_bytes(dense), _cpu_peak_bytes(sparse)
    speedup = dense_t / sparse_t
    return {
        "n_tokens": n, "n_clusters": n_clusters, "batch": batch,
        "cluster_sizes_mean": float(counts.mean()), "cluster_sizes_max": float(counts.max()),
        "ideal_speedup": ideal, "dense_ms": dense_t, "sparse_ms": sparse_t, "kmeans_ms": kmeans_ms,
        "speedup": speedup, "fraction_of_ideal": speedup / ideal,
        "speedup_with_kmeans": dense_t / (sparse_t + kmeans_ms), "repeats": repeats,
        "dense_ms_all": dense_ms, "sparse_ms_all": sparse_ms,
        "dense_peak_mb": dense_peak / 2**20 if dense_peak else None,
        "sparse_peak_mb": sparse_peak / 2**20 if sparse_peak else None,
    }


def _epochs(config, variants, epochs: int, out_dir: str, rounds: int = 1) -> dict[str, dict]:
    """Full training runs, codecarbon on: time and energy per epoch from each run's metrics.csv.

    `rounds` > 1 trains every variant that many times, round-robin (smmt, 3mt, ..., smmt, 3mt,
    ...), so that a change in machine load hits every variant alike; the median is reported.
    """
    import pandas as pd

    from smmt_core.train.run_folder import METRICS_FILE
    from smmt_core.train.trainer import train

    per_epoch: dict[str, list[tuple[float, float | None]]] = {v: [] for v in variants}
    results = {}
    for r in range(rounds):
        for variant in variants:
            cfg = config.updated(variant=variant, epochs=epochs, out=out_dir, run_name=f"bench-{variant}-r{r}")
            result = train(cfg)
            metrics = pd.read_csv(result.run_dir / METRICS_FILE)
            elapsed = metrics["elapsed_s"].diff().fillna(metrics["elapsed_s"]).tolist()
            energy = metrics["energy_kwh"].diff().fillna(metrics["energy_kwh"]).tolist()
            # With several epochs the first (allocator warm-up) is left out: later ones are the steady state.
            steady = slice(1, None) if len(elapsed) > 1 else slice(None)
            per_epoch[variant] += [(t, None if math.isnan(e) else e) for t, e in zip(elapsed[steady], energy[steady])]
            results[variant] = {
                "test_balanced_accuracy": result.test_metrics.get("balanced_accuracy"),
                "test_roc_auc": result.test_metrics.get("roc_auc"),
                "run_dir": str(result.run_dir),
            }
    for variant, rows in per_epoch.items():
        energies = [e for _, e in rows if e is not None]
        results[variant].update({
            "epoch_s": statistics.median(t for t, _ in rows), "epoch_s_all": [t for t, _ in rows],
            "epoch_kwh": statistics.median(energies) if energies else None, "epoch_kwh_all": energies,
        })
    base = results.get("3mt")
    for row in results.values():
        if base:
            row["time_ratio_vs_3mt"] = row["epoch_s"] / base["epoch_s"]
            if row["epoch_kwh"] and base["epoch_kwh"]:
                row["energy_ratio_vs_3mt"] = row["epoch_kwh"] / base["epoch_kwh"]
    return results


def _steps_and_attention(config, variants, batch_size, repeats, out, attention_repeats=None) -> VolumeBenchResult:
    """Parts 1 and 2 of the module doc."""
    from smmt_core.model.smmt import build_model
    from smmt_core.train.trainer import seed_everything

    inputs, labels, schema = _training_batch(config, batch_size)
    out(f"volume preset: {tuple(inputs.mri.shape[1:])} crop, batch {inputs.batch_size}")
    models, steps = {}, {}
    for variant in variants:
        seed_everything(config.optim.seed)
        model = build_model(config.model.model_copy(update={"variant": variant}), schema).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
        models[variant], steps[variant] = model, _step_fn(model, optimizer, inputs, labels)
    peaks = {}
    for variant, step in steps.items():  # warm-up step, with its memory peak
        from smmt_core.bench.attention import _cpu_peak_bytes

        peak = _cpu_peak_bytes(step)
        peaks[variant] = peak / 2**20 if peak else None
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for variant, step in steps.items():
            times[variant].append(_median_ms(step, 1))
    step_ms = {v: statistics.median(t) for v, t in times.items()}
    ratio = {v: step_ms[v] / step_ms["3mt"] for v in variants} if "3mt" in step_ms else {}
    for v in variants:
        out(f"  step {v:15s} {step_ms[v]:9.0f} ms  ({ratio.get(v, math.nan):.3f}x 3mt)  "
            f"peak tensors {peaks[v] or math.nan:7.0f} MB")
    sparse_model = next((models[v] for v in variants if models[v].config.sparse), None)
    attention = (_attention_in_model(sparse_model, inputs, attention_repeats or repeats)
                 if sparse_model is not None else {})
    if attention:
        out(f"  attention in the model: n = {attention['n_tokens']}, k = {attention['n_clusters']}, "
            f"ideal n²/Σc² = {attention['ideal_speedup']:.2f}, dense {attention['dense_ms']:.0f} ms vs "
            f"clusters {attention['sparse_ms']:.0f} ms (+ K-Means {attention['kmeans_ms']:.0f} ms): "
            f"{attention['speedup']:.2f}x = {attention['fraction_of_ideal']:.2f} of ideal")
    result = VolumeBenchResult(
        n_tokens=int(attention.get("n_tokens") or sparse_model_tokens(models)), n_clusters=int(attention.get("n_clusters", 0)),
        batch_size=inputs.batch_size, step_ms=step_ms, step_ratio_vs_3mt=ratio, step_peak_mb=peaks,
        attention=attention)
    return result


def bench_volume(config, variants=VARIANTS, batch_size: int | None = None, repeats: int = 3, epochs: int = 0,
                 out_dir: str = "bench-runs", rounds: int = 1, attention_repeats: int | None = None,
                 out=print) -> VolumeBenchResult:
    """Run parts 1-3 of the module doc for `config` (a TrainConfig at the volume preset); repeats=0
    skips parts 1 and 2; attention_repeats (default: repeats) times part 2 more often than the steps."""
    batch_size = batch_size or config.optim.batch_size
    if repeats > 0:
        result = _steps_and_attention(config, variants, batch_size, repeats, out, attention_repeats)
    else:
        result = VolumeBenchResult(n_tokens=0, n_clusters=0, batch_size=batch_size, step_ms={}, step_ratio_vs_3mt={},
                                   step_peak_mb={}, attention={})
    if epochs > 0:
        result.epochs = _epochs(config, variants, epochs, out_dir, rounds)
        for v, row in result.epochs.items():
            kwh = f"{row['epoch_kwh'] * 1e3:.3f} Wh" if row["epoch_kwh"] else "n/a"
            out(f"  epoch {v:15s} {row['epoch_s']:7.1f} s ({row.get('time_ratio_vs_3mt', math.nan):.3f}x)  "
                f"{kwh} ({row.get('energy_ratio_vs_3mt', math.nan):.3f}x)  test bal.acc "
                f"{row['test_balanced_accuracy']:.3f} AUC {row['test_roc_auc']:.3f}")
    result.peak_rss_mb = _peak_rss_mb()
    out(f"  process peak RSS {result.peak_rss_mb:.0f} MB")
    return result


def sparse_model_tokens(models) -> int:
    model = next(iter(models.values()))
    encoder = getattr(model.encoders, "mri", None)  # ModuleDict entries are submodules
    return int(getattr(encoder, "n_tokens", 0))
