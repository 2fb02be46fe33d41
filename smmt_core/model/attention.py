"""Cluster-sparse attention (SMMT) and dense attention (3MT), behind one module.

SMMT replaces dense self-attention by attention *within* K-Means clusters of the queries: token
i attends only to the tokens of its own cluster, with a softmax normalised inside the cluster.
Mathematically this is dense attention with a same-cluster mask (`masked_cluster_attention`,
kept as the reference the tests compare against). The point of the method is to *not* pay for
the masked-out n² entries, so the fast path (`cluster_sparse_attention`, or
`packed_cluster_sparse_attention` on the qkv projection's output, which the layer uses):

1. groups the clusters (of all batch elements together) by length;
2. per group, gathers the group's token rows into one (clusters, heads, length, dim) block and
   runs the attention kernel on it once — no padding to the largest cluster (K-Means clusters
   are unbalanced, the largest is often ~3× the mean, and padding would erase the gain);
   clusters of one token return their value directly;
3. scatters each group's output rows straight to their original positions.
On the CPU the kernel is SDPA's own flash kernel, called directly with its backward (no autograd
graph per group); elsewhere SDPA under autograd.

A "nested" backend packs all segments into one jagged nested tensor and makes a single SDPA call
(the varlen kernels). It is opt-in: on an H200 it was slower than the grouped path at every size
we measured (docs/attention.md).

"auto" picks the masked reference below `MASKED_BELOW` tokens and the grouped path above: with
few tokens the n² work is tiny and the grouped path's cost is its one kernel call per distinct
cluster length (times the batch). Measured on CPU fp32, 1 thread, batch 8, 4 heads of 32, fwd +
bwd, k = ceil(log2 n): masked/grouped time 0.78–0.82 at n = 128, 0.94–1.03 at 160, 1.08–1.11 at
192, 1.36–1.40 at 256, 1.8 at 320 (docs/volume.md). Both give the same result, so the switch
changes speed only.

Cost with k clusters of sizes c_j: Σ c_j² · d instead of n² · d, i.e. about n²/k for balanced
clusters. With the paper's k = log2 n this is O(n²/log n), not O(n log n) (see docs/attention.md).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from smmt_core.model.kmeans import default_n_clusters, kmeans

BACKENDS = ("auto", "grouped", "nested", "masked", "flex")
# "auto": the masked (dense + same-cluster mask) path below this many tokens per sequence.
MASKED_BELOW = 192


def same_cluster_mask(ids: torch.Tensor) -> torch.Tensor:
    """(B, n) cluster ids -> (B, 1, n, n) boolean mask, True where query and key share a cluster."""
    return (ids.unsqueeze(-1) == ids.unsqueeze(-2)).unsqueeze(1)


def masked_cluster_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Reference: dense SDPA with a same-cluster mask. Materialises n² entries; tests and tiny n only.

    q, k, v: (B, h, n, dh); ids: (B, n). Every token is in its own cluster, so no row is empty.
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=same_cluster_mask(ids))


class ClusterPlan:
    """How to lay a batch's tokens out as contiguous cluster segments; computed once per call.

    ids: (B, n) cluster ids in [0, n_clusters). Clusters of different batch elements are
    different segments. `perm` sorts the flattened (B*n) tokens by (segment length, segment),
    `inverse` undoes it, `groups` lists (length, number of segments) in that order,
    `group_index` each group's rows (into the flattened B*n tokens) in that order, and `offsets`
    are the segment boundaries in the order sorted by segment alone (nested backend).
    """

    def __init__(self, ids: torch.Tensor, n_clusters: int | None = None, *, for_nested: bool = False):
        if ids.dim() != 2:
            raise ValueError(f"cluster ids must be (batch, tokens), got shape {tuple(ids.shape)}")
        batch, n = ids.shape
        ids = ids.long()
        k = int(n_clusters) if n_clusters is not None else int(ids.max().item()) + 1
        self.batch, self.n = batch, n
        segment = (ids + torch.arange(batch, device=ids.device).unsqueeze(1) * k).reshape(-1)
        counts = torch.bincount(segment, minlength=batch * k)
        nonzero = counts[counts > 0]
        if for_nested:
            # One jagged tensor: segments in id order, any lengths.
            self.perm = torch.argsort(segment, stable=True)
            self.offsets = torch.cat([counts.new_zeros(1), torch.cumsum(nonzero, 0)])
            self.groups = []
        else:
            # Sort key (segment length, segment id): equal lengths become one contiguous block.
            key = counts[segment] * (batch * k) + segment
            self.perm = torch.argsort(key, stable=True)
            lengths, how_many = torch.unique(nonzero, sorted=True, return_counts=True)
            self.groups = list(zip(lengths.tolist(), how_many.tolist()))
            # Row indices (into the flattened B*n tokens) of each group, in sorted order.
            self.group_rows = [length * count for length, count in self.groups]
            self.group_index = list(self.perm.split(self.group_rows))
            self.offsets = None
        self.inverse = torch.empty_like(self.perm)
        self.inverse[self.perm] = torch.arange(self.perm.numel(), device=ids.device)
        self.sum_squares = int((counts.to(torch.float64) ** 2).sum().item())


class _Permute(torch.autograd.Function):
    """Rows reordered by a permutation; the backward is the inverse permutation.

    Autograd's own index_select backward is a scatter-add into zeros (slow on CPU and blind to
    the fact that the index is a permutation); a gather with the inverse is a plain copy.
    """

    @staticmethod
    def forward(ctx, x, perm, inverse):
        ctx.save_for_backward(inverse)
        return x.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


def _flatten_sorted(t: torch.Tensor, plan: ClusterPlan) -> torch.Tensor:
    """(B, h, n, dh) -> (B*n, h, dh) in the plan's sorted token order."""
    b, h, n, dh = t.shape
    return _Permute.apply(t.transpose(1, 2).reshape(b * n, h, dh), plan.perm, plan.inverse)


def _unflatten(out_sorted: torch.Tensor, plan: ClusterPlan) -> torch.Tensor:
    """(B*n, h, dh) in sorted order -> (B, h, n, dh) in the original order."""
    _, h, dh = out_sorted.shape
    out = _Permute.apply(out_sorted, plan.inverse, plan.perm)
    return out.reshape(plan.batch, plan.n, h, dh).transpose(1, 2)


_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_CPU_FLASH_BACKWARD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)


def _uses_cpu_flash(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and _CPU_FLASH is not None and _CPU_FLASH_BACKWARD is not None


def _attend(q, k, v, cpu_flash: bool, for_backward: bool = True):
    """One group's attention, (count, h, length, dh) views -> (out, what its backward needs).

    On the CPU: the flash kernel that `scaled_dot_product_attention` itself dispatches to, called
    directly, so no autograd graph is built per group (its output and logsumexp are all the
    backward needs). Elsewhere: SDPA on detached inputs with its own small graph (none when no
    backward will follow).
    """
    if cpu_flash:
        out, logsumexp = _CPU_FLASH(q, k, v)
        return out, logsumexp
    if not for_backward:
        return F.scaled_dot_product_attention(q, k, v), None
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    with torch.enable_grad():
        out = F.scaled_dot_product_attention(q, k, v)
    return out.detach(), (out, q, k, v)


def _attend_backward(grad, q, k, v, out, state, cpu_flash: bool):
    """Gradients of `_attend` with respect to q, k, v, laid out like q, k, v."""
    if cpu_flash:
        return _CPU_FLASH_BACKWARD(grad, q, k, v, out, state, 0.0, False)
    graph_out, *inputs = state
    with torch.enable_grad():
        # retain_graph: the outer graph may be back-propagated more than once.
        return torch.autograd.grad(graph_out, inputs, grad, retain_graph=True)


def _row_scatter(table: torch.Tensor):
    """A function index, rows -> table[index] = rows, for a 2-D table of rows (float32/64).

    `index_copy_` on the CPU copies element by element. When a row's bytes divide into 16-byte
    pieces, table and rows are viewed as complex128 (the same bytes, 4x fewer elements for
    float32), which makes the row scatter 2-3x faster; the bytes are moved unchanged. Every table
    and every block of rows scattered here has a contiguous last dimension and row strides and
    offsets that are multiples of the row width, so the view exists whenever the width allows it.
    """
    if table.dtype in (torch.float32, torch.float64) and (table.shape[1] * table.element_size()) % 16 == 0:
        wide = table.view(torch.complex128)
        return lambda index, rows: wide.index_copy_(0, index, rows.view(torch.complex128))
    return lambda index, rows: table.index_copy_(0, index, rows)


class _GroupedClusterAttention(torch.autograd.Function):
    """Attention within clusters, one kernel call per distinct cluster length, minimal copying.

    Works on token-major rows: q, k, v as (B*n, h, dh) each, or packed as the qkv projection
    makes them, (B*n, 3, h, dh), whose gradient is then returned packed too (no stacking of
    three gradients afterwards). Per group of equal-length clusters, the group's rows are
    gathered into one small (count, length, h, dh) block per tensor, attended, and the output
    rows scattered straight into the result (every row is written exactly once: no zero-fill,
    no scatter-add). The backward mirrors it per group: gather the output gradient's rows, the
    kernel's backward, scatter the q/k/v gradients into place. `keep` is False when no backward
    will follow (inference): then no per-group state is kept.

    Why per group and not one sort of the whole tensors: full-size sorted copies are large fresh
    allocations, and on Linux each page of those is faulted in on first touch (~1.5 µs per 4 KiB
    page on the development VM: ~7 ms per 16 MB copy); the small per-group blocks are recycled
    by the allocator from one call to the next. On the CPU the flash kernel and its backward are
    called directly (see `_attend`): building and replaying one autograd graph per cluster
    length cost more than the bookkeeping itself. First-order gradients only.
    """

    @staticmethod
    def forward(ctx, plan, keep, packed, q, k, v):
        first = packed if packed is not None else q
        rows, h, dh = first.shape[0], first.shape[-2], first.shape[-1]
        width = h * dh
        cpu_flash = _uses_cpu_flash(first)
        if packed is not None:
            packed_rows = packed.reshape(rows, 3 * width)
        else:
            tables = [t.reshape(rows, width) for t in (q, k, v)]
        out = first.new_empty(rows, width)
        scatter_out = _row_scatter(out)
        saved = []
        for (length, count), index in zip(plan.groups, plan.group_index):
            if packed is not None:  # one gather of the group's packed rows; q, k, v are views of it
                blocks = packed_rows.index_select(0, index).view(count, length, 3, h, dh).permute(2, 0, 3, 1, 4).unbind()
            else:
                blocks = [t.index_select(0, index).view(count, length, h, dh).transpose(1, 2) for t in tables]
            if length == 1:  # softmax over a single key: the output is that key's value
                scatter_out(index, blocks[2].reshape(count, width))
                if keep:
                    saved.append((None, None, None))
                continue
            group_out, state = _attend(*blocks, cpu_flash, for_backward=keep)
            scatter_out(index, group_out.transpose(1, 2).reshape(length * count, width))
            if keep:
                saved.append((blocks, group_out, state))
        ctx.plan, ctx.saved, ctx.cpu_flash = plan, saved, cpu_flash
        ctx.packed, ctx.layout = packed is not None, (rows, h, dh)
        return out.view(rows, h, dh)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        rows, h, dh = ctx.layout
        width = h * dh
        grad_rows = grad_out.reshape(rows, width)
        if ctx.packed:
            grad_packed = grad_out.new_empty(rows, 3, width)
            grads = grad_packed.unbind(1)
        else:
            grads = [grad_out.new_empty(rows, width) for _ in range(3)]
        scatters = [_row_scatter(grad) for grad in grads]
        for (length, count), index, (blocks, group_out, state) in zip(ctx.plan.groups, ctx.plan.group_index, ctx.saved):
            grad_block = grad_rows.index_select(0, index)
            if blocks is None:  # one-token clusters: out = v
                grads[0].index_fill_(0, index, 0.0)
                grads[1].index_fill_(0, index, 0.0)
                scatters[2](index, grad_block)
                continue
            grad_block = grad_block.view(count, length, h, dh).transpose(1, 2)
            group_grads = _attend_backward(grad_block, *blocks, group_out, state, ctx.cpu_flash)
            for scatter, grad in zip(scatters, group_grads):
                scatter(index, grad.transpose(1, 2).reshape(length * count, width))
        if ctx.packed:
            return None, None, grad_packed.view(rows, 3, h, dh), None, None, None
        return None, None, None, *(grad.view(rows, h, dh) for grad in grads)


def _nested(qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, plan: ClusterPlan) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "nested tensors are a prototype"
        nested = [torch.nested.nested_tensor_from_jagged(t, plan.offsets).transpose(1, 2) for t in (qs, ks, vs)]
        out = F.scaled_dot_product_attention(*nested)
    return out.transpose(1, 2).values()


_COMPILED_FLEX = None


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Block-sparse attention with FlexAttention: one fused kernel instead of one call per length.

    Tokens are sorted by cluster (per batch element), so a same-cluster mask becomes nearly
    block-diagonal and FlexAttention skips every 128×128 block with no same-cluster pair; outputs
    are un-sorted afterwards. On CUDA the kernel is compiled (torch.compile); on the CPU torch runs
    it unfused and forward-only, which is what the equality tests use. Opt-in (backend="flex")
    until it is benchmarked on a GPU (benchmarks/attention.py --sparse-backend flex).
    """
    global _COMPILED_FLEX
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    if q.device.type == "cpu" and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise ValueError("the flex attention backend has no backward pass on the CPU (torch); "
                         "train on CUDA or use the grouped backend")
    batch, heads, n, dh = q.shape
    order = torch.argsort(ids, dim=1, stable=True)
    inverse = torch.argsort(order, dim=1)
    sorted_ids = ids.gather(1, order)

    def take(t, index):
        return t.gather(2, index[:, None, :, None].expand(-1, t.shape[1], -1, t.shape[3]))

    def same_cluster(b, h, q_idx, kv_idx):
        return sorted_ids[b, q_idx] == sorted_ids[b, kv_idx]

    block_mask = create_block_mask(same_cluster, batch, None, n, n, device=q.device)
    kernel = flex_attention
    if q.device.type == "cuda":
        if _COMPILED_FLEX is None:
            _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
        kernel = _COMPILED_FLEX
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "called without torch.compile" on the CPU
        out = kernel(take(q, order), take(k, order), take(v, order), block_mask=block_mask)
    return take(out, inverse)


def _token_major(t: torch.Tensor) -> torch.Tensor:
    """(B, h, n, dh) -> (B*n, h, dh); free when t is a transposed view of (B, n, h, dh)."""
    b, h, n, dh = t.shape
    return t.transpose(1, 2).reshape(b * n, h, dh)


def _check(backend: str, ids: torch.Tensor, batch: int, n: int, shape) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; choose one of {BACKENDS}")
    if ids.shape != (batch, n):
        raise ValueError(f"cluster ids of shape {tuple(ids.shape)} do not match queries {tuple(shape)}")


def _backward_follows(*tensors: torch.Tensor) -> bool:
    """Whether autograd will record this call (else the grouped path keeps nothing for a backward)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _takes_grouped_path(backend: str, n: int) -> bool:
    return backend == "grouped" or (backend == "auto" and n >= MASKED_BELOW)


def cluster_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ids: torch.Tensor,
    n_clusters: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Exact attention within clusters, without computing the masked-out entries.

    q, k, v: (B, h, n, dh); ids: (B, n) int cluster ids shared by all heads.
    backend: "grouped" (one SDPA call per distinct cluster length), "nested" (one jagged SDPA call),
    "masked" (the dense reference), "flex" (FlexAttention with a same-cluster block mask; CUDA for
    training, forward-only on the CPU), "auto" (masked below `MASKED_BELOW` tokens, else grouped).
    Returns (B, h, n, dh), equal to `masked_cluster_attention(q, k, v, ids)`.
    """
    batch, heads, n, dh = q.shape
    _check(backend, ids, batch, n, q.shape)
    if _takes_grouped_path(backend, n):
        plan = ClusterPlan(ids, n_clusters)
        out = _GroupedClusterAttention.apply(plan, _backward_follows(q, k, v), None, _token_major(q), _token_major(k),
                                             _token_major(v))
        return out.view(batch, n, heads, dh).transpose(1, 2)
    if backend == "flex":
        return _flex(q, k, v, ids)
    if backend == "nested":
        plan = ClusterPlan(ids, n_clusters, for_nested=True)
        out = _nested(*(_flatten_sorted(t, plan) for t in (q, k, v)), plan)
        return _unflatten(out, plan)
    return masked_cluster_attention(q, k, v, ids)


def packed_cluster_sparse_attention(
    qkv: torch.Tensor, ids: torch.Tensor, n_clusters: int | None = None, backend: str = "auto"
) -> torch.Tensor:
    """`cluster_sparse_attention` on the layout a fused qkv projection produces.

    qkv: (B, n, 3, h, dh) (the projection's output viewed, q/k/v along dim 2) -> (B, n, h, dh),
    ready for the output projection. The grouped path reads the projection's rows in place and
    hands back one packed gradient, instead of three that autograd would then stack.
    """
    batch, n, three, heads, dh = qkv.shape
    if three != 3:
        raise ValueError(f"packed q/k/v must be (batch, tokens, 3, heads, head_dim), got shape {tuple(qkv.shape)}")
    _check(backend, ids, batch, n, qkv.shape)
    if _takes_grouped_path(backend, n):
        plan = ClusterPlan(ids, n_clusters)
        out = _GroupedClusterAttention.apply(plan, _backward_follows(qkv), qkv.reshape(batch * n, 3, heads, dh), None, None, None)
        return out.view(batch, n, heads, dh)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    return cluster_sparse_attention(q, k, v, ids, n_clusters, backend).transpose(1, 2)


class ClusterSparseAttention(nn.Module):
    """Multi-head self-attention; sparse within K-Means clusters of the queries, or dense.

    sparse=True (SMMT): K-Means on the detached queries (all heads concatenated), once per forward,
    clusters shared by all heads, exact softmax within each cluster.
    sparse=False (3MT / ablation): `scaled_dot_product_attention` over all tokens.
    forward(x (B, n, d)) -> (out (B, n, d), ids (B, n) or None when dense).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        sparse: bool = True,
        n_clusters: int | None = None,
        cluster_size: int | None = None,
        kmeans_iters: int = 3,
        assignment: str = "exact",
        backend: str = "auto",
        dropout: float = 0.0,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.sparse, self.n_clusters, self.cluster_size = sparse, n_clusters, cluster_size
        self.kmeans_iters, self.assignment, self.backend = kmeans_iters, assignment, backend
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def clusters_for(self, n_tokens: int) -> int:
        return self.n_clusters or default_n_clusters(n_tokens, self.cluster_size)

    def forward(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, n, _ = x.shape
        qkv = self.qkv(x).view(batch, n, 3, self.n_heads, self.head_dim)
        n_clusters = self.clusters_for(n) if self.sparse else 1
        if self.sparse and ids is None:
            # Queries of all heads side by side: (B, n, d), detached inside kmeans.
            ids, _ = kmeans(qkv[:, :, 0].reshape(batch, n, self.d_model), n_clusters, self.kmeans_iters, self.assignment)
        if n_clusters == 1:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        else:
            out = packed_cluster_sparse_attention(qkv, ids, n_clusters, self.backend)  # (B, n, h, dh)
        out = out.reshape(batch, n, self.d_model)
        return self.dropout(self.proj(out)), ids if self.sparse else None


__all__ = [
    "BACKENDS",
    "MASKED_BELOW",
    "ClusterPlan",
    "ClusterSparseAttention",
    "cluster_sparse_attention",
    "masked_cluster_attention",
    "packed_cluster_sparse_attention",
    "same_cluster_mask",
]
