"""Batched K-Means on token vectors, the clustering step of SMMT's cluster-sparse attention.

Why hand-written instead of scikit-learn: it runs inside every forward pass on torch tensors
(CPU or GPU, a whole batch at once), so it must be a handful of tensor operations, never a
Python loop over tokens. It is deterministic (no random init), so the same queries always give
the same clusters, which keeps training reproducible and the GUI's cluster overlay stable.

Lloyd's algorithm, vectorised:
- distances to all centroids as one batched matmul (||x||² − 2x·c + ||c||²);
- centroid update as one one-hot matmul; a cluster that lost all its tokens keeps its centroid;
- init: k-means++ (each next seed drawn with probability ∝ squared distance to the nearest seed
  so far) with fixed random numbers, on an evenly strided subsample of at most 32·k tokens:
  spread-out seeds, yet the same input always gives the same clusters, whatever else is in
  the batch.

Two assignment modes:
- ``"exact"``: each token goes to its nearest centroid (clusters of unequal size);
- ``"balanced"``: after the Lloyd steps, tokens are assigned greedily so every cluster holds
  ``n // k`` or ``n // k + 1`` tokens (the blocks then pack without padding).
"""

from __future__ import annotations

import math

import torch

from smmt_core.model.config import ASSIGNMENT_MODES

INIT_SAMPLES_PER_CLUSTER = 32


def default_n_clusters(n_tokens: int, cluster_size: int | None = None) -> int:
    """k = ceil(log2 n) (the paper's choice), or ceil(n / cluster_size) for a fixed cluster size.

    Always between 1 and n.
    """
    if n_tokens <= 1:
        return 1
    if cluster_size is not None:
        if cluster_size < 1:
            raise ValueError(f"cluster size must be at least 1, got {cluster_size}")
        k = math.ceil(n_tokens / cluster_size)
    else:
        k = math.ceil(math.log2(n_tokens))
    return max(1, min(n_tokens, k))


def _squared_distances(x: torch.Tensor, centroids: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
    """(B, n, k) squared Euclidean distances as one batched matmul."""
    c_sq = (centroids * centroids).sum(-1).unsqueeze(1)  # (B, 1, k)
    return (x_sq - 2.0 * torch.bmm(x, centroids.transpose(1, 2)) + c_sq).clamp_min_(0.0)


def _nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(B, n) index of the nearest centroid; ||x||² is the same for every centroid, so it is left out."""
    c_sq = (centroids * centroids).sum(-1).unsqueeze(1)  # (B, 1, k)
    return torch.baddbmm(c_sq, x, centroids.transpose(1, 2), alpha=-2.0).argmin(-1)


def _balanced_assign(dist: torch.Tensor) -> torch.Tensor:
    """Greedy equal-size assignment: centroid j takes its nearest still-free tokens.

    Cluster j gets n // k tokens, plus one for the first n % k clusters. k topk calls, each over
    the whole batch at once.
    """
    batch, n, k = dist.shape
    base, extra = divmod(n, k)
    ids = torch.full((batch, n), -1, dtype=torch.long, device=dist.device)
    taken = torch.zeros(batch, n, dtype=torch.bool, device=dist.device)
    for j in range(k):
        size = base + (1 if j < extra else 0)
        if size == 0:
            continue
        d = dist[:, :, j].masked_fill(taken, float("inf"))
        chosen = torch.topk(d, size, dim=1, largest=False).indices  # (B, size)
        taken.scatter_(1, chosen, True)
        ids.scatter_(1, chosen, j)
    return ids


def _kmeans_plus_plus(x: torch.Tensor, x_sq: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """(B, k, D) initial centroids by k-means++, deterministic and per batch element.

    The j-th seed is drawn by inverse-CDF sampling with the j-th number of a fixed-seed uniform
    sequence, the same for every batch element, so a sample's clusters never depend on which
    other samples share its batch (batched evaluation equals one-by-one prediction).
    """
    batch, n, _ = x.shape
    uniforms = torch.rand(k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).tolist()
    rows = torch.arange(batch, device=x.device)
    first = torch.full((batch,), n // 2, dtype=torch.long, device=x.device)  # the middle token
    chosen = [x[rows, first]]
    nearest = _squared_distances(x, chosen[0].unsqueeze(1), x_sq).squeeze(-1)  # (B, n)
    for j in range(1, k):
        cumulative = torch.cumsum(nearest.double(), 1)
        total = cumulative[:, -1:]
        # All tokens equal to a seed (zero distance everywhere): fall back to uniform weights.
        cumulative = torch.where(total > 0, cumulative / total.clamp_min(1e-300),
                                 torch.arange(1, n + 1, device=x.device, dtype=torch.float64) / n)
        target = torch.full((batch, 1), uniforms[j], dtype=torch.float64, device=x.device)
        pick = torch.searchsorted(cumulative, target).squeeze(1).clamp_max(n - 1)
        chosen.append(x[rows, pick])
        nearest = torch.minimum(nearest, _squared_distances(x, chosen[-1].unsqueeze(1), x_sq).squeeze(-1))
    return torch.stack(chosen, 1)


@torch.no_grad()
def kmeans(
    x: torch.Tensor, n_clusters: int, n_iters: int = 3, mode: str = "exact", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the tokens of each batch element.

    x: (B, n, D) token vectors (detached; gradients never flow through the clustering).
    Returns (ids (B, n) int64 in [0, k), centroids (B, k, D) in x's dtype).
    """
    if mode not in ASSIGNMENT_MODES:
        raise ValueError(f"unknown K-Means assignment mode {mode!r}; choose one of {ASSIGNMENT_MODES}")
    if x.dim() != 3:
        raise ValueError(f"kmeans expects (batch, tokens, dim), got shape {tuple(x.shape)}")
    batch, n, _ = x.shape
    k = max(1, min(int(n_clusters), n))
    if k == 1:
        return torch.zeros(batch, n, dtype=torch.long, device=x.device), x.mean(1, keepdim=True)
    # Low-precision inputs (bf16/fp16) cluster in fp32: distances need the mantissa.
    work = x.detach().float() if x.dtype in (torch.float16, torch.bfloat16) else x.detach()
    x_sq = (work * work).sum(-1, keepdim=True)  # (B, n, 1)
    # Seeds come from an evenly strided subsample of at most INIT_SAMPLES_PER_CLUSTER·k tokens:
    # k sequential seeding steps over all n tokens would cost more than the Lloyd steps.
    m = min(n, INIT_SAMPLES_PER_CLUSTER * k)
    sample = torch.linspace(0, n - 1, m, device=x.device).round().long() if m < n else None
    centroids = (_kmeans_plus_plus(work, x_sq, k, seed) if sample is None
                 else _kmeans_plus_plus(work[:, sample], x_sq[:, sample], k, seed))  # (B, k, D)
    for _ in range(n_iters):
        ids = _nearest(work, centroids)  # (B, n)
        one_hot = torch.nn.functional.one_hot(ids, k).to(work.dtype)  # (B, n, k)
        sums = torch.bmm(one_hot.transpose(1, 2), work)  # (B, k, D)
        counts = one_hot.sum(1).unsqueeze(-1)  # (B, k, 1)
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1.0), centroids)
    ids = _nearest(work, centroids) if mode == "exact" else _balanced_assign(_squared_distances(work, centroids, x_sq))
    return ids, centroids.to(x.dtype)
