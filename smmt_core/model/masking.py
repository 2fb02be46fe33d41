"""Modality-wise masking: SMMT's regulariser against relying on any one modality.

Applied to each modality's cross-attention output before it is added to the fusion tokens:
- "dimension" (the paper's formula): x̃ = x ⊙ m, m ~ Bernoulli(1 − r) per sample, token and
  dimension, no rescaling (the paper mentions none);
- "modality" (the paper's Table I wording): the whole output of a modality is dropped for a
  sample with probability r.
Active only in training mode, unless a ratio is forced (robustness sweeps at evaluation time).
"""

from __future__ import annotations

import torch
from torch import nn

MASK_MODES = ("dimension", "modality")


class ModalityMasking(nn.Module):
    def __init__(self, ratio: float = 0.3, mode: str = "dimension"):
        super().__init__()
        if mode not in MASK_MODES:
            raise ValueError(f"unknown mask mode {mode!r}; choose one of {MASK_MODES}")
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
        self.ratio, self.mode = ratio, mode

    def forward(self, x: torch.Tensor, force_ratio: float | None = None) -> torch.Tensor:
        """x: (B, T, d). Returns x masked, or x itself when masking is off."""
        ratio = force_ratio if force_ratio is not None else (self.ratio if self.training else 0.0)
        if ratio <= 0.0:
            return x
        if ratio >= 1.0:
            return torch.zeros_like(x)
        shape = x.shape if self.mode == "dimension" else (x.shape[0],) + (1,) * (x.dim() - 1)
        keep = torch.rand(shape, device=x.device) >= ratio
        return x * keep.to(x.dtype)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, mode={self.mode!r}"
