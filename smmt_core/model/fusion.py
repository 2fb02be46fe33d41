"""Intra-modal transformer layers and the cascade of cross-attention into fusion tokens.

Cascade (3MT's idea, kept by SMMT): a few learned fusion tokens attend to one modality, then the
next, in a configurable order. Each step is a pre-norm residual update of the fusion tokens. A
sample that lacks a modality skips that step: its update is multiplied by 0, so the fusion
tokens pass through unchanged (no attention over an all-masked key set, hence no NaN even for a
sample with no modality at all). This is what makes any subset of modalities work at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smmt_core.model.attention import ClusterSparseAttention
from smmt_core.model.masking import ModalityMasking


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, dropout: float, expansion: int = 2):
        super().__init__(nn.Linear(d_model, expansion * d_model), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(expansion * d_model, d_model), nn.Dropout(dropout))


class IntraModalLayer(nn.Module):
    """Pre-norm transformer layer whose self-attention is cluster-sparse (SMMT) or dense (3MT)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, **attention_options):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = ClusterSparseAttention(d_model, n_heads, dropout=dropout, **attention_options)
        self.feed_forward = FeedForward(d_model, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, ids = self.attention(self.norm1(x))
        x = x + attended
        return x + self.feed_forward(self.norm2(x)), ids


class CrossAttention(nn.Module):
    """Fusion tokens (queries) attend to one modality's tokens (keys and values)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor, key_bias: torch.Tensor | None = None) -> torch.Tensor:
        """key_bias: optional (n,) added to every query's attention logits over the n tokens."""
        b, t, d = queries.shape
        n = tokens.shape[1]
        q = self.q(queries).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(tokens).view(b, n, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask = None if key_bias is None else key_bias.to(q.dtype).expand(t, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, t, d)
        return self.dropout(self.proj(out))


class CascadeStep(nn.Module):
    """One modality's turn in the cascade: cross-attention, masking, feed-forward; gated by presence."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, masking: ModalityMasking | None):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.cross = CrossAttention(d_model, n_heads, dropout)
        self.masking = masking
        self.feed_forward = FeedForward(d_model, dropout)

    def forward(self, fusion: torch.Tensor, tokens: torch.Tensor, present: torch.Tensor,
                force_mask_ratio: float | None = None, generator: torch.Generator | None = None,
                key_bias: torch.Tensor | None = None) -> torch.Tensor:
        gate = present.to(fusion.dtype).view(-1, 1, 1)
        update = self.cross(self.norm_q(fusion), self.norm_kv(tokens), key_bias)
        if self.masking is not None:
            update = self.masking(update, force_mask_ratio, generator)
        # torch.where, not multiplication: an absent modality's tokens may hold anything.
        fusion = fusion + torch.where(gate > 0, update, torch.zeros_like(update))
        return fusion + gate * self.feed_forward(self.norm_ff(fusion))
