"""Batched, deterministic K-Means used by cluster-sparse attention."""

import pytest
import torch

from smmt_core.model.kmeans import default_n_clusters, kmeans


def blobs(batch=2, per_blob=20, centres=4, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(batch, centres, 1, dim, generator=g) * 20
    points = means + torch.randn(batch, centres, per_blob, dim, generator=g) * 0.1
    labels = torch.arange(centres).repeat_interleave(per_blob)
    perm = torch.randperm(centres * per_blob, generator=g)
    return points.reshape(batch, -1, dim)[:, perm], labels[perm]


def test_default_number_of_clusters():
    assert default_n_clusters(4096) == 12
    assert default_n_clusters(16384) == 14
    assert default_n_clusters(48) == 6
    assert default_n_clusters(1) == 1 and default_n_clusters(2) == 1
    assert default_n_clusters(100, cluster_size=30) == 4
    assert default_n_clusters(5, cluster_size=1) == 5
    with pytest.raises(ValueError):
        default_n_clusters(10, cluster_size=0)


def test_recovers_well_separated_blobs_and_is_deterministic():
    x, labels = blobs()
    ids, centroids = kmeans(x, 4, n_iters=10)
    assert centroids.shape == (2, 4, 8)
    for b in range(2):
        # Same partition as the true labels (up to renaming): each blob maps to one cluster.
        pairs = set(zip(labels.tolist(), ids[b].tolist()))
        assert len(pairs) == 4 and len({c for _, c in pairs}) == 4
    again, _ = kmeans(x, 4, n_iters=10)
    assert torch.equal(ids, again)


def test_batch_elements_are_clustered_independently():
    x, _ = blobs(batch=3, seed=1)
    ids, _ = kmeans(x, 5)
    for b in range(3):
        alone, _ = kmeans(x[b:b + 1], 5)
        assert torch.equal(alone[0], ids[b])


def test_balanced_assignment_has_equal_sizes():
    x = torch.randn(2, 103, 16, generator=torch.Generator().manual_seed(2))
    ids, _ = kmeans(x, 7, mode="balanced")
    for b in range(2):
        sizes = torch.bincount(ids[b], minlength=7)
        assert sizes.sum() == 103 and sizes.max() - sizes.min() <= 1


def test_empty_clusters_keep_their_centroid():
    # All tokens identical but one: most initial centroids coincide, and clusters empty out.
    x = torch.zeros(1, 30, 4)
    x[0, -1] = 5.0
    ids, centroids = kmeans(x, 5, n_iters=3)
    assert torch.isfinite(centroids).all()
    assert ids[0, -1] != ids[0, 0]


def test_gradients_do_not_flow_and_low_precision_works():
    x = torch.randn(1, 40, 8, requires_grad=True)
    ids, centroids = kmeans(x, 4)
    assert not centroids.requires_grad and ids.dtype == torch.long
    ids16, c16 = kmeans(x.detach().bfloat16(), 4)
    assert c16.dtype == torch.bfloat16 and ids16.max() < 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        kmeans(torch.randn(1, 5, 2), 2, mode="fuzzy")
    with pytest.raises(ValueError, match="batch, tokens, dim"):
        kmeans(torch.randn(5, 2), 2)
