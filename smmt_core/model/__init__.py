"""SMMT model: K-Means cluster-sparse attention, encoders, cascade fusion, masking, variants.

Public entry points: `ModelConfig`, `build_model`, `SMMT`, `ModelOutput`, `VARIANTS`; the
attention pieces (`ClusterSparseAttention`, `cluster_sparse_attention`; K-Means lives in
`smmt_core.model.kmeans`) for benchmarks and tests. The model classes are imported on first use, so the attention benchmark needs only
torch (it runs on bare GPU machines without the data stack).
"""

from smmt_core.model.attention import ClusterSparseAttention, cluster_sparse_attention, masked_cluster_attention
from smmt_core.model.kmeans import default_n_clusters

_MODEL_NAMES = ("SMMT", "VARIANTS", "ModelConfig", "ModelOutput", "build_model")


def __getattr__(name):
    if name in _MODEL_NAMES:
        from smmt_core.model import smmt

        return getattr(smmt, name)
    raise AttributeError(f"module 'smmt_core.model' has no attribute {name!r}")


__all__ = [
    "SMMT",
    "VARIANTS",
    "ClusterSparseAttention",
    "ModelConfig",
    "ModelOutput",
    "build_model",
    "cluster_sparse_attention",
    "default_n_clusters",
    "masked_cluster_attention",
]
