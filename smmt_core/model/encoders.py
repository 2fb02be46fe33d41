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
import torch.nn.functional as F
from torch import nn

from smmt_core.errors import ConfigError, DataError
from smmt_core.model.config import MRI_READOUTS

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


INPUT_NORM_EPS = 0.05  # added to the per-pixel SD (images are in [0, 1]): the background stays finite
PIXEL_READOUT_MAX = 32  # the pixel readout sees each slice average-pooled to at most this many pixels a side
# The linear path's view of a slice: every pixel up to 64 a side (the demo preset's slices, as the
# lr-pixels baseline sees them: on the demo cohort its AUC was 0.01-0.02 higher than at 32 a
# side), average-pooled above that (the paper preset's 256² slices would give 600k features).
PIXEL_LINEAR_MAX = 64


class MRIEncoder(nn.Module):
    """(B, S, C, H, W) slices -> (B, S·h·w + R, d) tokens; h = H/16, w = W/16, R readout tokens.

    Conv3×3 -> GroupNorm -> ReLU -> MaxPool2 per block. GroupNorm, not BatchNorm: batches are
    small (8) and contain zero images for subjects without MRI. Each cell of the last feature map
    is one patch token (1×1 conv to d), plus a learned slice and position embedding.

    Two options, both on in the demo preset, both off by default (so that checkpoints written
    before they existed rebuild the same network):

    * `input_norm`: every pixel is standardised with the training images' per-pixel mean and SD
      (buffers set by `set_input_statistics`, called by the trainer; saved with the weights).
      Registered brains share their anatomy: on the demo cohort the between-subject spread of
      the MRI tokens was ~10 % of their size, and after the fusion tokens' cross-attention (a
      weighted average) ~3 %; the dimension masking and dropout of training are larger than
      that, and the MRI-only model learned to output one constant. A per-pixel logistic
      regression works on these images because it standardises each pixel; this does the same
      for the network, which then sees how a brain differs from the training average.
    * `readout="pixels"`: R extra tokens, one linear layer over the flattened (standardised)
      pixels of all slices, LayerNorm-ed, with a learned readout embedding; appended after the
      patch tokens. The paper's MRI CNN ends in a fully connected layer; a linear map keeps every
      position's weight apart ("darker *here*"), which the position-blind cross-attention pooling
      of patch tokens does not. On the demo cohort, standardisation alone was not measured;
      readout over CNN features without standardisation, and this readout without it, both
      stayed constant; with it the MRI-only test AUC rose from 0.50 to ~0.8 (3 seeds, 400 subjects).
    """

    def __init__(self, mri_shape: tuple[int, int, int, int], d_model: int, readout: str = "none",
                 n_readout_tokens: int = 1, readout_dropout: float = 0.0, input_norm: bool = False):
        super().__init__()
        n_slices, channels, height, width = mri_shape
        if height % 16 or width % 16:
            raise ConfigError(f"MRI slices must be a multiple of 16 pixels per side (4 pooling steps), "
                              f"got {height}×{width}; choose an image size like 64, 128 or 256")
        if readout not in MRI_READOUTS:
            raise ConfigError(f"unknown MRI readout {readout!r}; choose one of {', '.join(MRI_READOUTS)}")
        self.input_norm = bool(input_norm)
        if self.input_norm:  # identity until `set_input_statistics`
            self.register_buffer("input_mean", torch.zeros(mri_shape))
            self.register_buffer("input_std", torch.ones(mri_shape))
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
        self.readout = readout
        self.n_readout_tokens = int(n_readout_tokens) if readout != "none" else 0
        if self.n_readout_tokens:
            self.readout_size = (min(height, PIXEL_READOUT_MAX), min(width, PIXEL_READOUT_MAX))
            n_in = n_slices * channels * self.readout_size[0] * self.readout_size[1]
            self.readout_fc = nn.Sequential(nn.Dropout(readout_dropout),
                                            nn.Linear(n_in, self.n_readout_tokens * d_model))
            self.readout_norm = nn.LayerNorm(d_model)
            self.readout_embedding = nn.Parameter(torch.zeros(1, self.n_readout_tokens, d_model))
            nn.init.trunc_normal_(self.readout_embedding, std=0.02)

    @torch.no_grad()
    def set_input_statistics(self, images: torch.Tensor) -> None:
        """Per-pixel mean and SD from training images (N, S, C or 1, H, W) of subjects with an MRI.

        No-op without `input_norm`, or with fewer than 2 images (no spread: stays the identity).
        """
        if not self.input_norm or images.shape[0] < 2:
            return
        images = images.to(self.input_mean.device, torch.float32)
        if images.shape[2] == 1 and self.mri_shape[1] > 1:  # datasets keep one channel, repeated on use
            images = images.expand(-1, -1, self.mri_shape[1], -1, -1)
        self.input_mean.copy_(images.mean(0))
        self.input_std.copy_(images.std(0) + INPUT_NORM_EPS)

    @property
    def n_patch_tokens(self) -> int:
        return self.mri_shape[0] * self.grid[0] * self.grid[1]

    @property
    def n_tokens(self) -> int:
        return self.n_patch_tokens + self.n_readout_tokens

    @property
    def n_linear_features(self) -> int:
        """Length of `linear_features`: the pixels of every slice (pooled above PIXEL_LINEAR_MAX)."""
        n_slices, _, height, width = self.mri_shape
        return n_slices * min(height, PIXEL_LINEAR_MAX) * min(width, PIXEL_LINEAR_MAX)

    def linear_features(self, mri: torch.Tensor) -> torch.Tensor:
        """(B, n_linear_features): the raw slices (channel mean), pooled above PIXEL_LINEAR_MAX a side.

        The features of the model's linear path (`smmt_core.model.linear_path`), which standardises them.
        """
        batch, n_slices, _, height, width = mri.shape
        pixels = mri.float().mean(2)  # channels of one slice repeat the same image
        size = (min(height, PIXEL_LINEAR_MAX), min(width, PIXEL_LINEAR_MAX))
        if size != (height, width):
            pixels = F.adaptive_avg_pool2d(pixels, size)
        return pixels.reshape(batch, -1)

    def forward(self, mri: torch.Tensor) -> torch.Tensor:
        if tuple(mri.shape[1:]) != self.mri_shape:
            raise DataError(f"MRI input of shape {tuple(mri.shape[1:])} (slices, channels, height, width) "
                            f"does not match the model's {self.mri_shape}; preprocess with the run's settings")
        batch, n_slices = mri.shape[:2]
        if self.input_norm:
            mri = (mri - self.input_mean) / self.input_std
        maps = self.to_tokens(self.cnn(mri.flatten(0, 1)))  # (B·S, d, h, w)
        tokens = maps.flatten(2).transpose(1, 2)  # (B·S, h·w, d)
        tokens = tokens.reshape(batch, n_slices, -1, tokens.shape[-1])
        tokens = tokens + self.position_embedding.unsqueeze(0) + self.slice_embedding.unsqueeze(0)
        tokens = tokens.flatten(1, 2)
        if not self.n_readout_tokens:
            return tokens
        pixels = mri.flatten(0, 1)
        if tuple(pixels.shape[-2:]) != self.readout_size:
            pixels = F.adaptive_avg_pool2d(pixels, self.readout_size)
        readout = self.readout_fc(pixels.reshape(batch, -1)).view(batch, self.n_readout_tokens, -1)
        readout = self.readout_norm(readout) + self.readout_embedding
        return torch.cat([tokens, readout], 1)


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
