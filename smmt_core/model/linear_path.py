"""The linear path: a logistic regression on the model's own inputs, added to the network's logits.

Why it exists: on the demo cohort an L2 logistic regression on the model's pixels beat SMMT by
about 8 points, and adding the clinical scores could make SMMT worse. A fused model should never
know less than a well-regularised linear model on the same inputs. So the model's logit is

    logit = linear_path(inputs) + head(fusion tokens)

where the linear path is a logistic regression fitted on the training persons before the network
trains (`smmt_core.train.linear_fit`, its L2 strength chosen by cross-validation grouped by
person), then frozen, and the head's last layer starts at zero: before the first epoch the model
*is* that logistic regression, and training only learns what it misses. The epoch chosen on the
validation loss can be that starting point (epoch 0), so the network never has to be worse.

Its features, computed from `ModelInputs` (so every prediction path, a missing modality included,
goes through the same code):
- MRI: every pixel of the slices (average-pooled above 64 a side), or the mean of each 3D patch
  of a volume model;
- clinical: the normalised scores and their missing flags;
- categorical: one indicator per category.
Each feature is standardised with the training persons' mean and SD; a modality a subject lacks
(or that the user switched off) contributes 0, i.e. the training mean: the standard
mean-imputation of a linear model, so the linear part of the prediction stays defined.

Its logits are bounded (LOGIT_BOUND·tanh(logit/LOGIT_BOUND)): a linear model over thousands of
pixels extrapolates an unusual scan to absurd certainty (demo cohort: a few validation persons at
logits around -30, a validation log-loss of 2.4 against 0.3 in cross-validation, and a fitted
temperature that then flattened every prediction to 50 %). Within ±LOGIT_BOUND the bound changes
little (tanh(1) = 0.76: a logit of 8 becomes 6.1, P 0.998); beyond it the linear path can no
longer outvote everything else.

All tensors are buffers: stored in the checkpoint (safetensors), never trained by the optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smmt_core.batch import MODALITY_INDEX, ModelInputs
from smmt_core.data.subject import Modality

LOGIT_BOUND = 8.0


def bounded(logits):
    """LOGIT_BOUND·tanh(logits/LOGIT_BOUND) for a tensor or a numpy array (the fit uses the same)."""
    if isinstance(logits, torch.Tensor):
        return LOGIT_BOUND * torch.tanh(logits / LOGIT_BOUND)
    import numpy as np

    return LOGIT_BOUND * np.tanh(np.asarray(logits) / LOGIT_BOUND)


class LinearPath(nn.Module):
    """(inputs, available (B, 3)) -> (B, n_classes) logits of a fitted, frozen logistic regression."""

    def __init__(self, n_mri: int, n_numeric: int, categorical_sizes: list[int], n_classes: int):
        super().__init__()
        self.n_mri, self.n_numeric = int(n_mri), int(n_numeric)
        self.categorical_sizes = [int(s) for s in categorical_sizes]
        n = self.n_features
        # Identity standardisation and zero weights until `set_fitted`: an unfitted path adds 0.
        self.register_buffer("feature_mean", torch.zeros(n))
        self.register_buffer("feature_scale", torch.ones(n))
        self.register_buffer("weight", torch.zeros(n_classes, n))
        self.register_buffer("bias", torch.zeros(n_classes))

    @property
    def n_features(self) -> int:
        return self.n_mri + 2 * self.n_numeric + sum(self.categorical_sizes)

    def blocks(self) -> dict[Modality, slice]:
        """Which feature columns belong to which modality."""
        a = self.n_mri
        b = a + 2 * self.n_numeric
        return {Modality.MRI: slice(0, a), Modality.CLINICAL: slice(a, b),
                Modality.CATEGORICAL: slice(b, b + sum(self.categorical_sizes))}

    def raw_features(self, inputs: ModelInputs, mri_features: torch.Tensor | None) -> torch.Tensor:
        """(B, n_features) before standardisation; the caller zeroes absent modalities afterwards."""
        batch = inputs.batch_size
        device = inputs.present.device
        parts = []
        if self.n_mri:
            parts.append(mri_features.float() if mri_features is not None
                         else torch.zeros(batch, self.n_mri, device=device))
        if self.n_numeric:
            missing = inputs.numeric_missing.bool()
            values = torch.where(missing, torch.zeros_like(inputs.numeric), inputs.numeric).nan_to_num(0.0)
            parts += [values.float(), missing.float()]
        for j, size in enumerate(self.categorical_sizes):
            code = inputs.categorical[:, j]
            code = torch.where((code < 0) | (code > size), torch.zeros_like(code), code)
            parts.append(F.one_hot(code, size + 1)[:, 1:].float())  # code 0 (missing): all zeros
        return torch.cat(parts, 1) if parts else torch.zeros(batch, 0, device=device)

    def standardised(self, raw: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """Standardised features with every absent modality's block at 0 (the training mean)."""
        z = (raw - self.feature_mean) / self.feature_scale
        for modality, columns in self.blocks().items():
            if columns.stop > columns.start:
                keep = available[:, MODALITY_INDEX[modality]].to(z.dtype).unsqueeze(1)
                z[:, columns] = z[:, columns] * keep
        return z

    def forward(self, raw: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """Logits from `raw_features` and which modalities each sample has."""
        z = self.standardised(raw, available)
        return bounded(z @ self.weight.T + self.bias)

    @torch.no_grad()
    def set_fitted(self, mean, scale, weight, bias) -> None:
        """Load a fitted logistic regression (numpy or torch arrays of the buffers' shapes)."""
        for name, value in (("feature_mean", mean), ("feature_scale", scale), ("weight", weight), ("bias", bias)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).reshape(buffer.shape))
