"""Modality-wise masking: SMMT's regulariser against relying on any one modality.

Applied to each modality's cross-attention output before it is added to the fusion tokens:
- "dimension" (the paper's formula): x̃ = x ⊙ m, m ~ Bernoulli(1 − r) per sample, token and
  dimension, no rescaling (the paper mentions none);
- "modality" (the paper's Table I wording): the whole output of a modality is dropped for a
  sample with probability r.
Active only in training mode, unless a ratio is forced (robustness sweeps at evaluation time).
The training ratio is checked against `ModelConfig.mask_ratio`'s declaration, the one bound.

The mask is drawn from torch's global RNG unless a `torch.Generator` is passed: a robustness
sweep passes its own seeded generator, so that it is reproducible and never reseeds or advances
the global RNG that a training on another thread draws its masks and dropout from.
"""

from __future__ import annotations

import torch
from torch import nn

from smmt_core.model.config import ModelConfig
from smmt_core.settings import check_setting
from smmt_core.variants import MASK_MODES


class ModalityMasking(nn.Module):
    def __init__(self, ratio: float, mode: str):
        super().__init__()
        if mode not in MASK_MODES:
            raise ValueError(f"unknown mask mode {mode!r}; choose one of {MASK_MODES}")
        self.ratio = check_setting(ModelConfig, "mask_ratio", ratio)  # the config's bounds, ConfigError outside
        self.mode = mode

    def forward(self, x: torch.Tensor, force_ratio: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x: (B, T, d). Returns x masked, or x itself when masking is off.

        generator: draw the mask from it (on its own device, then moved to x's) instead of the
        global RNG.
        """
        ratio = force_ratio if force_ratio is not None else (self.ratio if self.training else 0.0)
        if ratio <= 0.0:
            return x
        if ratio >= 1.0:
            return torch.zeros_like(x)
        shape = x.shape if self.mode == "dimension" else (x.shape[0],) + (1,) * (x.dim() - 1)
        if generator is None:
            keep = torch.rand(shape, device=x.device) >= ratio
        else:
            keep = (torch.rand(shape, generator=generator, device=generator.device) >= ratio).to(x.device)
        return x * keep.to(x.dtype)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, mode={self.mode!r}"
