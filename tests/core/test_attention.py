"""Cluster-sparse attention equals dense attention with a same-cluster mask, given the same ids."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from smmt_core.model import attention as attention_module
from smmt_core.model.attention import (
    ClusterPlan,
    ClusterSparseAttention,
    cluster_sparse_attention,
    masked_cluster_attention,
    packed_cluster_sparse_attention,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def qkv(batch, heads, n, dim, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, dim, generator=g, dtype=dtype).requires_grad_() for _ in range(3)]


def compare(q, k, v, ids, n_clusters, tol, backend="grouped"):
    """Forward and q, k, v gradients of the fast path against the masked reference."""
    weights = torch.randn_like(q)
    fast = cluster_sparse_attention(q, k, v, ids, n_clusters, backend)
    fast_grads = torch.autograd.grad((fast * weights).sum(), (q, k, v))
    reference = masked_cluster_attention(q, k, v, ids)
    ref_grads = torch.autograd.grad((reference * weights).sum(), (q, k, v))
    assert (fast - reference).abs().max() <= tol
    for a, b in zip(fast_grads, ref_grads):
        assert (a - b).abs().max() <= tol


CASES = [  # (batch, heads, n, dim, clusters)
    (2, 4, 64, 16, 6),
    (3, 2, 37, 8, 5),  # odd n
    (1, 1, 101, 4, 7),
    (4, 3, 16, 8, 16),  # about one token per cluster
    (2, 1, 40, 3, 4),  # rows of 12 / 24 bytes: the plain (not 16-byte wide) row scatter
]


@pytest.mark.parametrize("case", CASES)
def test_fp64_matches_masked_dense_forward_and_gradients(case):
    batch, heads, n, dim, k = case
    q, k_, v = qkv(batch, heads, n, dim)
    ids = torch.randint(0, k, (batch, n), generator=torch.Generator().manual_seed(1))
    compare(q, k_, v, ids, k, 1e-10)


@pytest.mark.parametrize("case", CASES)
def test_fp32_matches_masked_dense_forward_and_gradients(case):
    batch, heads, n, dim, k = case
    q, k_, v = qkv(batch, heads, n, dim, dtype=torch.float32)
    ids = torch.randint(0, k, (batch, n), generator=torch.Generator().manual_seed(2))
    compare(q, k_, v, ids, k, 1e-5)


def compare_packed(qkv, ids, n_clusters, tol):
    """The packed entry point (the model's layout) against the masked reference, forward and gradient."""
    weights = torch.randn(qkv.shape[0], qkv.shape[1], qkv.shape[3], qkv.shape[4], dtype=qkv.dtype)
    fast = packed_cluster_sparse_attention(qkv, ids, n_clusters, "grouped")
    (fast_grad,) = torch.autograd.grad((fast * weights).sum(), qkv)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    reference = masked_cluster_attention(q, k, v, ids).transpose(1, 2)
    (ref_grad,) = torch.autograd.grad((reference * weights).sum(), qkv)
    assert fast.shape == reference.shape
    assert (fast - reference).abs().max() <= tol
    assert (fast_grad - ref_grad).abs().max() <= tol


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("case", CASES)
def test_packed_qkv_matches_masked_dense_forward_and_gradient(case, dtype, tol):
    batch, heads, n, dim, k = case
    g = torch.Generator().manual_seed(6)
    qkv = torch.randn(batch, n, 3, heads, dim, generator=g, dtype=dtype).requires_grad_()
    ids = torch.randint(0, k, (batch, n), generator=g)
    compare_packed(qkv, ids, k, tol)


def test_generic_kernel_path_matches_masked_dense(monkeypatch):
    """Off the CPU (CUDA) each group runs SDPA under autograd; forced here, it must agree too."""
    monkeypatch.setattr(attention_module, "_uses_cpu_flash", lambda t: False)
    q, k, v = qkv(2, 3, 45, 8)
    ids = torch.randint(0, 5, (2, 45), generator=torch.Generator().manual_seed(7))
    compare(q, k, v, ids, 5, 1e-10)
    packed = torch.randn(2, 45, 3, 3, 8, dtype=torch.float64, requires_grad=True)
    compare_packed(packed, ids, 5, 1e-10)


@pytest.mark.parametrize("cpu_flash", [True, False])
def test_inference_without_autograd_matches_masked_dense(monkeypatch, cpu_flash):
    """Under no_grad the grouped path keeps no per-group state; the result is the same."""
    if not cpu_flash:
        monkeypatch.setattr(attention_module, "_uses_cpu_flash", lambda t: False)
    packed = torch.randn(2, 70, 3, 2, 8, dtype=torch.float64)
    ids = torch.randint(0, 6, (2, 70), generator=torch.Generator().manual_seed(8))
    q, k, v = packed.permute(2, 0, 3, 1, 4)
    reference = masked_cluster_attention(q, k, v, ids)
    with torch.no_grad():
        separate = cluster_sparse_attention(q, k, v, ids, 6, "grouped")
        together = packed_cluster_sparse_attention(packed.requires_grad_(), ids, 6, "grouped")
    assert (separate - reference).abs().max() <= 1e-10
    assert (together - reference.transpose(1, 2)).abs().max() <= 1e-10
    assert not together.requires_grad


def test_second_derivatives_are_refused_not_wrong():
    q, k, v = qkv(1, 2, 12, 4)
    ids = torch.arange(12).unsqueeze(0) % 3
    out = cluster_sparse_attention(q, k, v, ids, 3, "grouped")
    (grad_q,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError):
        grad_q.sum().backward()


def test_gradcheck_small():
    q, k, v = qkv(2, 2, 9, 3)
    ids = torch.tensor([[0, 1, 0, 2, 1, 0, 2, 2, 1], [3, 3, 0, 0, 0, 1, 1, 1, 1]])
    assert torch.autograd.gradcheck(lambda a, b, c: cluster_sparse_attention(a, b, c, ids, 4, "grouped"), (q, k, v))


def test_one_big_cluster_equals_unmasked_attention():
    q, k, v = qkv(2, 2, 33, 8)
    ids = torch.zeros(2, 33, dtype=torch.long)
    out = cluster_sparse_attention(q, k, v, ids, 1)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-12)


def test_one_token_per_cluster_returns_values():
    q, k, v = qkv(2, 3, 10, 4)
    ids = torch.stack([torch.arange(10), torch.arange(10).flip(0)])
    out = cluster_sparse_attention(q, k, v, ids, 10, "grouped")
    assert torch.equal(out, v)


def test_empty_clusters_and_different_ids_per_batch_element():
    q, k, v = qkv(3, 2, 20, 4)
    ids = torch.stack([
        torch.full((20,), 7),  # one cluster only, ids 0..6 empty
        torch.arange(20) % 2 * 5,  # clusters 0 and 5
        torch.arange(20) // 3,  # 0..6, the last one short
    ])
    compare(q, k, v, ids, 8, 1e-10)


def test_permuting_tokens_permutes_outputs():
    q, k, v = qkv(2, 2, 30, 8)
    ids = torch.randint(0, 4, (2, 30), generator=torch.Generator().manual_seed(3))
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(4))
    out = cluster_sparse_attention(q, k, v, ids, 4, "grouped")
    permuted = cluster_sparse_attention(q[:, :, perm], k[:, :, perm], v[:, :, perm], ids[:, perm], 4, "grouped")
    assert torch.allclose(permuted, out[:, :, perm], atol=1e-12)


def test_auto_uses_the_masked_path_below_the_crossover_and_grouped_above(monkeypatch):
    import smmt_core.model.attention as attention

    calls = []
    original = attention.masked_cluster_attention
    monkeypatch.setattr(attention, "masked_cluster_attention", lambda *a: calls.append(a[0].shape[2]) or original(*a))
    for n in (attention.MASKED_BELOW - 1, attention.MASKED_BELOW):
        q, k, v = qkv(1, 2, n, 4)
        ids = torch.arange(n).unsqueeze(0) % 5
        out = cluster_sparse_attention(q, k, v, ids, 5)
        assert torch.allclose(out, original(q, k, v, ids), atol=1e-10)
    assert calls == [attention.MASKED_BELOW - 1]  # at the crossover and above: the grouped path


def test_flex_backend_matches_reference_forward_on_cpu():
    """FlexAttention (the CUDA block-sparse path) equals the masked reference; torch runs it
    forward-only on the CPU, so the gradients are checked where a GPU is (benchmarks/)."""
    q, k, v = qkv(2, 2, 300, 8)
    ids = torch.randint(0, 6, (2, 300), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = cluster_sparse_attention(q, k, v, ids, 6, "flex")
        assert torch.allclose(out, masked_cluster_attention(q, k, v, ids), atol=1e-10)
    with pytest.raises(ValueError, match="no backward pass on the CPU"):
        cluster_sparse_attention(q.requires_grad_(), k, v, ids, 6, "flex")


def test_nested_backend_matches_reference():
    q, k, v = qkv(2, 2, 25, 8)
    ids = torch.randint(0, 4, (2, 25), generator=torch.Generator().manual_seed(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        compare(q, k, v, ids, 4, 1e-10, backend="nested")


def test_plan_packs_segments_without_padding():
    ids = torch.tensor([[0, 0, 0, 1, 2, 2], [1, 1, 1, 1, 0, 0]])
    plan = ClusterPlan(ids, 3)
    assert plan.groups == [(1, 1), (2, 2), (3, 1), (4, 1)]  # (length, how many segments)
    assert sum(length * count for length, count in plan.groups) == ids.numel()
    assert plan.sum_squares == 9 + 1 + 4 + 16 + 4
    assert torch.equal(plan.perm[plan.inverse], torch.arange(12))


def test_bad_ids_are_refused():
    q, k, v = qkv(1, 1, 8, 4)
    with pytest.raises(ValueError, match="do not match"):
        cluster_sparse_attention(q, k, v, torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="backend"):
        cluster_sparse_attention(q, k, v, torch.zeros(1, 8, dtype=torch.long), backend="fast")


@pytest.mark.parametrize("backend", ["auto", "grouped"])  # auto: the masked path at n = 50
@pytest.mark.parametrize("assignment", ["exact", "balanced"])
def test_module_uses_one_clustering_for_all_heads_and_matches_masked(assignment, backend):
    torch.manual_seed(0)
    layer = ClusterSparseAttention(32, 4, assignment=assignment, backend=backend).double()
    x = torch.randn(2, 50, 32, dtype=torch.float64, requires_grad=True)
    out, ids = layer(x)
    assert ids.shape == (2, 50) and ids.max() < 6  # ceil(log2 50) = 6 clusters
    # The same computation with the reference attention, given the same ids:
    q, k, v = layer.qkv(x).view(2, 50, 3, 4, 8).permute(2, 0, 3, 1, 4)
    expected = layer.proj(masked_cluster_attention(q, k, v, ids).transpose(1, 2).reshape(2, 50, 32))
    assert torch.allclose(out, expected, atol=1e-10)
    weights = torch.randn_like(out)
    params = (x, layer.qkv.weight, layer.proj.weight)
    for got, want in zip(torch.autograd.grad((out * weights).sum(), params),
                         torch.autograd.grad((expected * weights).sum(), params)):
        assert (got - want).abs().max() <= 1e-10
    if assignment == "balanced":
        sizes = torch.bincount(ids[0], minlength=6)
        assert sizes.max() - sizes.min() <= 1


def test_module_dense_mode_is_sdpa_and_returns_no_ids():
    torch.manual_seed(0)
    layer = ClusterSparseAttention(16, 2, sparse=False)
    x = torch.randn(2, 12, 16)
    out, ids = layer(x)
    assert ids is None
    q, k, v = layer.qkv(x).view(2, 12, 3, 2, 8).permute(2, 0, 3, 1, 4)
    expected = layer.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 12, 16))
    assert torch.allclose(out, expected, atol=1e-6)


def test_fixed_cluster_size_sets_the_number_of_clusters():
    layer = ClusterSparseAttention(16, 2, cluster_size=10)
    _, ids = layer(torch.randn(1, 95, 16))
    assert layer.clusters_for(95) == 10 and ids.max() < 10
