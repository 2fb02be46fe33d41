"""Per-modality encoders: each turns its input into a token sequence of width d.

The paper encodes every modality into one shared latent space but ends its MRI CNN in a single
vector; one token makes K-Means meaningless, so tokens are explicit here (see DESIGN.md):
- MRI: a 4-block CNN per slice; each cell of the final feature map is one token, with a learned
  slice embedding and a learned position (patch) embedding. 64² input -> 4×4 patches per slice,
  256² -> 16×16.
- Numeric clinical scores: one token per score, the paper's 3-layer ReLU MLP applied to the value
  plus a learned embedding of *which* score it is; a missing value uses a learned "missing"
  vector instead of the MLP output, so missingness is explicit rather than an imputed 0.
- Categorical variables: a 32-d embedding per variable (row 0 = missing), projected to d, plus a
  learned variable embedding; one token per variable.
"""

from __future__ import annotations

import torch
from torch import nn

from smmt_core.errors import ConfigError, DataError

CATEGORICAL_EMBEDDING_DIM = 32  # the paper's per-variable embedding width


def cnn_widths(d_model: int) -> tuple[int, int, int, int]:
    """Channel widths of the 4 conv blocks: d/8 .. d, capped at 256 (a 1×1 conv then maps to d).

    The cap keeps the paper preset (d = 512, 256² × 3 channels) at ~2 GFLOP per slice.
    """
    top = min(d_model, 256)
    return tuple(max(8, top // f) for f in (8, 4, 2, 1))  # type: ignore[return-value]


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class MRIEncoder(nn.Module):
    """(B, S, C, H, W) slices -> (B, S·h·w, d) tokens; h = H/16, w = W/16.

    Conv3×3 -> GroupNorm -> ReLU -> MaxPool2 per block. GroupNorm, not BatchNorm: batches are
    small (8) and contain zero images for subjects without MRI.
    """

    def __init__(self, mri_shape: tuple[int, int, int, int], d_model: int):
        super().__init__()
        n_slices, channels, height, width = mri_shape
        if height % 16 or width % 16:
            raise ConfigError(f"MRI slices must be a multiple of 16 pixels per side (4 pooling steps), "
                              f"got {height}×{width}; choose an image size like 64, 128 or 256")
        layers, c_in = [], channels
        for c_out in cnn_widths(d_model):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(_groups(c_out), c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        self.to_tokens = nn.Conv2d(c_in, d_model, 1)
        self.mri_shape = tuple(mri_shape)
        self.grid = (height // 16, width // 16)
        self.slice_embedding = nn.Parameter(torch.zeros(n_slices, 1, d_model))
        self.position_embedding = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], d_model))
        nn.init.trunc_normal_(self.slice_embedding, std=0.02)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)

    @property
    def n_tokens(self) -> int:
        return self.mri_shape[0] * self.grid[0] * self.grid[1]

    def forward(self, mri: torch.Tensor) -> torch.Tensor:
        if tuple(mri.shape[1:]) != self.mri_shape:
            raise DataError(f"MRI input of shape {tuple(mri.shape[1:])} (slices, channels, height, width) "
                            f"does not match the model's {self.mri_shape}; preprocess with the run's settings")
        batch, n_slices = mri.shape[:2]
        maps = self.to_tokens(self.cnn(mri.flatten(0, 1)))  # (B·S, d, h, w)
        tokens = maps.flatten(2).transpose(1, 2)  # (B·S, h·w, d)
        tokens = tokens.reshape(batch, n_slices, -1, tokens.shape[-1])
        tokens = tokens + self.position_embedding.unsqueeze(0) + self.slice_embedding.unsqueeze(0)
        return tokens.flatten(1, 2)


class NumericEncoder(nn.Module):
    """(B, F) values + (B, F) missing flags -> (B, F, d): one token per clinical score."""

    def __init__(self, n_features: int, d_model: int, hidden: int = 64):
        super().__init__()
        self.value_mlp = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_model)
        )
        self.feature_embedding = nn.Parameter(torch.zeros(n_features, d_model))
        self.missing_embedding = nn.Parameter(torch.zeros(n_features, d_model))
        nn.init.trunc_normal_(self.feature_embedding, std=0.02)
        nn.init.trunc_normal_(self.missing_embedding, std=0.02)

    def forward(self, values: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        # NaN-safe: a missing value never reaches the MLP (0 * NaN would still be NaN).
        clean = torch.where(missing, torch.zeros_like(values), values).nan_to_num(0.0)
        encoded = self.value_mlp(clean.unsqueeze(-1))  # (B, F, d)
        encoded = torch.where(missing.unsqueeze(-1), self.missing_embedding.expand_as(encoded), encoded)
        return encoded + self.feature_embedding


class CategoricalEncoder(nn.Module):
    """(B, G) codes (0 = missing) -> (B, G, d): one token per categorical variable."""

    def __init__(self, vocabulary_sizes: list[int], d_model: int):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(size + 1, CATEGORICAL_EMBEDDING_DIM) for size in vocabulary_sizes)
        self.project = nn.Linear(CATEGORICAL_EMBEDDING_DIM, d_model)
        self.variable_embedding = nn.Parameter(torch.zeros(len(vocabulary_sizes), d_model))
        nn.init.trunc_normal_(self.variable_embedding, std=0.02)
        self.vocabulary_sizes = list(vocabulary_sizes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        columns = []
        for j, embedding in enumerate(self.embeddings):
            # Codes outside the vocabulary (a category unseen in training) count as missing.
            code = codes[:, j]
            code = torch.where((code < 0) | (code > self.vocabulary_sizes[j]), torch.zeros_like(code), code)
            columns.append(embedding(code))
        return self.project(torch.stack(columns, 1)) + self.variable_embedding
