"""SMMT model: K-Means cluster-sparse attention, encoders, cascade fusion, masking, variants.

Public entry points: `ModelConfig`, `build_model`, `SMMT`, `ModelOutput`; the attention pieces
(`ClusterSparseAttention`, `cluster_sparse_attention`; K-Means lives in `smmt_core.model.kmeans`)
for benchmarks and tests. Everything is imported on first use: `smmt_core.model.config` is read by
the GUI and the CLI without loading torch, and the attention benchmark needs only torch.
"""

_LAZY = {
    "SMMT": "smmt", "ModelOutput": "smmt", "build_model": "smmt",
    "ModelConfig": "config",
    "ClusterSparseAttention": "attention", "cluster_sparse_attention": "attention",
    "masked_cluster_attention": "attention",
    "default_n_clusters": "kmeans",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"smmt_core.model.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'smmt_core.model' has no attribute {name!r}")


__all__ = sorted(_LAZY)
