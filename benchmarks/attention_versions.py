"""Cluster attention of this tree side by side with another version's, and dense SDPA.

    git show main:smmt_core/model/attention.py > /tmp/attention_main.py
    python benchmarks/attention_versions.py --reference /tmp/attention_main.py --sizes 2048,4096
    python benchmarks/attention_versions.py --reference /tmp/attention_main.py --volume-data DIR
    python benchmarks/attention_versions.py --reference /tmp/attention_main.py --sizes 192,256,320,384 --masked
    python benchmarks/attention_versions.py --smoke     # seconds: proves the script still runs (tests)

For kernel work: both implementations run interleaved in one process on the same q, k, v and
cluster ids (1 torch thread, forward + backward), with dense SDPA as the yardstick, so machine load
hits all alike. A fourth variant, "kernels alone", runs only SDPA's forward and backward on
each group of equal-length clusters already gathered (no gather, no scatter, no bookkeeping): the
bound any implementation built on torch's SDPA kernel can reach. `--masked` adds dense SDPA with
the same-cluster mask (the path `backend="auto"` takes below `MASKED_BELOW` tokens): where it
beats the grouped path is the crossover. q, k, v are views of one (B, n, 3, h, dh) projection output, as the model
hands them over: dense and the reference get (B, h, n, dh) views (`cluster_sparse_attention`), this
tree gets the packed tensor (`packed_cluster_sparse_attention`). Synthetic inputs (`--sizes`, batch
8, 4 heads × 32, K-Means with k = ceil(log2 n), as `benchmarks/attention.py`) or, with
`--volume-data`, the first MRI layer's own q, k, v and clusters of the volume preset's SMMT model
after `--steps` training steps on one batch. Prints medians and the median of the per-round
ratios; "fraction" is (dense / sparse) / (n²/Σc²). Results: docs/attention.md.
"""

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

from smmt_core.device import prefer_passive_openmp

prefer_passive_openmp()  # as `smmt` does; before torch loads OpenMP

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from smmt_core.bench.attention import CLOCKS, tune_malloc  # noqa: E402
from smmt_core.model.attention import ClusterPlan, masked_cluster_attention, packed_cluster_sparse_attention  # noqa: E402
from smmt_core.model.kmeans import default_n_clusters, kmeans  # noqa: E402


def load_reference(path: Path):
    spec = importlib.util.spec_from_file_location("reference_attention", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_case(n: int, batch: int, heads: int, head_dim: int, assignment: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed + n)
    qkv = torch.randn(batch, n, 3, heads, head_dim, generator=g)
    k = default_n_clusters(n)
    ids = kmeans(qkv[:, :, 0].reshape(batch, n, heads * head_dim), k, 3, assignment)[0]
    return qkv, ids, k


def volume_case(data: str, steps: int, batch: int, assignment: str | None = None):
    """The volume preset's SMMT model after `steps` training steps: first MRI layer's qkv and clusters
    (K-Means with the layer's own assignment mode unless `assignment` is given)."""
    from smmt_core.bench.volume import _training_batch, first_mri_layer_qkv
    from smmt_core.model.smmt import build_model
    from smmt_core.train.config import TrainConfig
    from smmt_core.train.trainer import seed_everything

    config = TrainConfig.build("volume", dataset=data, batch_size=batch)
    inputs, labels, schema = _training_batch(config, batch)
    seed_everything(config.optim.seed)
    model = build_model(config.model.model_copy(update={"variant": "smmt"}), schema).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    attention = model.intra["mri"][0].attention
    qkv = first_mri_layer_qkv(model, inputs)
    b, n, _, _, _ = qkv.shape
    d = attention.n_heads * attention.head_dim
    k = attention.clusters_for(n)
    ids = kmeans(qkv[:, :, 0].reshape(b, n, d), k, attention.kmeans_iters, assignment or attention.assignment)[0]
    return qkv, ids, k


def compare(label, qkv, ids, n_clusters, reference, repeats: int, clock, masked: bool = False, out=print) -> dict:
    batch, n, _, heads, head_dim = qkv.shape
    qkv = qkv.detach().clone().requires_grad_()
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    grad = torch.randn(batch, n, heads, head_dim, generator=torch.Generator().manual_seed(1))
    counts = torch.stack([torch.bincount(row, minlength=n_clusters) for row in ids]).double()
    ideal = float(batch * n * n / (counts**2).sum())
    plan = ClusterPlan(ids, n_clusters)
    blocks = []  # per group: q, k, v (count, h, length, dh) leaves and the output gradient, pre-gathered
    for (length, count), index in zip(plan.groups, plan.group_index):
        if length > 1:
            rows = qkv.detach().reshape(batch * n, -1).index_select(0, index).view(count, length, 3, heads, head_dim)
            group = [rows[:, :, i].transpose(1, 2).requires_grad_() for i in range(3)]
            blocks.append((group, grad.reshape(batch * n, -1).index_select(0, index).view(count, length, heads, head_dim)))

    def kernels_alone():
        for group, group_grad in blocks:
            F.scaled_dot_product_attention(*group).backward(group_grad.transpose(1, 2))
            for t in group:
                t.grad = None

    variants = {
        "dense": lambda: F.scaled_dot_product_attention(q, k, v).backward(grad.transpose(1, 2)),
        "reference": lambda: reference.cluster_sparse_attention(q, k, v, ids, n_clusters, "grouped").backward(
            grad.transpose(1, 2)),
        "this tree": lambda: packed_cluster_sparse_attention(qkv, ids, n_clusters, "grouped").backward(grad),
        "kernels alone": kernels_alone,
    }
    if masked:
        variants["masked"] = lambda: masked_cluster_attention(q, k, v, ids).backward(grad.transpose(1, 2))
    times = {name: [] for name in variants}
    for fn in variants.values():  # warm-up
        qkv.grad = None
        fn()
    for _ in range(repeats):
        for name, fn in variants.items():
            qkv.grad = None
            start = clock()
            fn()
            times[name].append((clock() - start) * 1e3)
    ms = {name: statistics.median(t) for name, t in times.items()}
    sparse = [name for name in variants if name != "dense"]
    fractions = {name: ms["dense"] / ms[name] / ideal for name in sparse}
    paired = {name: statistics.median(d / s for d, s in zip(times["dense"], times[name])) / ideal for name in sparse}
    out(f"{label}: n = {n}, k = {n_clusters}, batch {batch}, clusters mean {counts.mean():.0f} / largest "
        f"{counts.max():.0f}, ideal n²/Σc² = {ideal:.2f}; {repeats} rounds")
    out(f"  dense {ms['dense']:.1f} ms | " + " | ".join(
        f"{name} {ms[name]:.1f} ms: fraction {fractions[name]:.3f} (paired {paired[name]:.3f})" for name in sparse))
    return {"n": n, "ideal": ideal, "ms": ms, "fraction": fractions, "paired_fraction": paired}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="an attention.py of another version (git show REV:smmt_core/model/attention.py)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[2048, 4096],
                        help="synthetic token counts, comma-separated (empty: none)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--assignment", choices=("exact", "balanced"), default="exact")
    parser.add_argument("--volume-data", help="also compare on the volume preset's first MRI layer (dataset folder)")
    parser.add_argument("--steps", type=int, default=4, help="training steps before the volume comparison")
    parser.add_argument("--volume-assignment", choices=("exact", "balanced"), default=None,
                        help="K-Means mode for the volume comparison (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--masked", action="store_true", help="also time dense SDPA with the same-cluster mask (the crossover)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--malloc-tuning", action="store_true", help="see smmt_core.bench.attention.tune_malloc")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, this tree against itself: check that it runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.smoke:
        args.reference = Path(__file__).resolve().parents[1] / "smmt_core" / "model" / "attention.py"
        args.sizes, args.batch, args.repeats = [400], 2, 1
    if args.reference is None:
        parser.error("--reference is required (or --smoke)")
    if not args.reference.is_file():
        parser.error(f"{args.reference}: no such file")
    if args.malloc_tuning:
        tune_malloc()
    reference = load_reference(args.reference)
    clock = CLOCKS[args.clock]
    print(f"cluster attention fwd+bwd, 1 thread, {args.clock} clock, malloc tuning {'on' if args.malloc_tuning else 'off'}; "
          f"reference {args.reference}; torch {torch.__version__}")
    for n in args.sizes:
        qkv, ids, k = synthetic_case(n, args.batch, args.heads, args.head_dim, args.assignment)
        compare(f"synthetic ({args.assignment} K-Means)", qkv, ids, k, reference, args.repeats, clock, args.masked)
    if args.volume_data:
        qkv, ids, k = volume_case(args.volume_data, args.steps, args.batch, args.volume_assignment)
        mode = f", {args.volume_assignment} K-Means" if args.volume_assignment else ""
        compare(f"volume preset, first MRI layer after {args.steps} steps{mode}", qkv, ids, k, reference, args.repeats, clock,
                args.masked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
