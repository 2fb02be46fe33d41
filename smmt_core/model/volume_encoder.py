"""The whole-brain MRI encoder of the `volume` preset: 3D patches in, thousands of tokens out.

Why so light: the slice presets spend most of a training step in their 2D CNN, so the attention
(where SMMT saves work) never dominates. Here the brain crop (`smmt_core.data.volume`) is cut into
p×p×p patches (8 mm at 2 mm: ~4000 tokens inside the brain), each flattened and mapped to d by
one linear layer (a ViT patch embedding, the same as a strided 3D convolution but run only on the
patches that are kept; no normalisation, so a patch's intensity level survives), and the
intra-modal attention layers do the rest. Patches outside the
template brain are dropped. Each token gets a fixed 3D sinusoidal encoding of its patch centre
(MNI mm), so positions are exact and need no parameters tied to the token count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from smmt_core.data.volume import VolumeGeometry, volume_geometry
from smmt_core.errors import DataError


def sinusoidal_positions_3d(positions_mm: np.ndarray, d_model: int, max_wavelength_mm: float = 400.0) -> torch.Tensor:
    """(n, 3) mm -> (n, d) fixed encodings: sin/cos of each axis at geometric wavelengths.

    d is split evenly among the three axes (pairs of sin/cos); leftover columns stay 0. The shortest
    wavelength is 2·pi mm, the longest `max_wavelength_mm` (longer than the brain).
    Computed in NumPy: on the meta device (a checkpoint's model being sized) torch's exp/sin/cos
    would run its Python reference kernels and import its compiler stack for a fixed table.
    """
    per_axis = (d_model // 6) * 2  # a whole number of sin/cos pairs per axis
    out = np.zeros((len(positions_mm), d_model), dtype=np.float32)
    if per_axis:
        pairs = per_axis // 2
        freqs = np.exp(-math.log(max_wavelength_mm) * np.arange(pairs, dtype=np.float64) / max(pairs, 1))
        pos = np.array(positions_mm, dtype=np.float64)
        for axis in range(3):
            angles = pos[:, axis:axis + 1] * freqs  # (n, pairs)
            start = axis * per_axis
            out[:, start:start + pairs] = np.sin(angles)
            out[:, start + pairs:start + per_axis] = np.cos(angles)
    return torch.tensor(out)


class VolumeEncoder(nn.Module):
    """(B, X, Y, Z) brain crop -> (B, n_tokens, d): one token per in-brain 3D patch.

    `geometry` says where the tokens are; `ids_to_grid` maps per-token cluster ids back onto the
    patch grid (-1 outside the brain) for the viewers.
    """

    def __init__(self, geometry: VolumeGeometry, d_model: int, input_norm: bool = False, readout: str = "none",
                 n_readout_tokens: int = 1, readout_dropout: float = 0.0, readout_share: float = 0.0):
        super().__init__()
        self.geometry = geometry
        # As the slice encoder's `input_norm` (smmt_core.model.encoders): every voxel standardised
        # with the training crops' per-voxel mean and SD, so the network sees how a brain differs
        # from the training average; identity until `set_input_statistics`, saved with the weights.
        self.input_norm = bool(input_norm)
        if self.input_norm:
            self.register_buffer("input_mean", torch.zeros(geometry.shape))
            self.register_buffer("input_std", torch.ones(geometry.shape))
        p = geometry.patch
        self.mri_shape = tuple(geometry.shape)
        self.grid = tuple(geometry.grid)
        # No LayerNorm here: it would divide out a patch's overall intensity (how much tissue and
        # how much CSF it holds), the very thing atrophy changes. The layers are pre-norm anyway.
        self.embed = nn.Sequential(nn.Linear(p ** 3, d_model))
        # readout="pixels" (as the slice encoder's): R extra tokens from one linear map over the mean
        # (standardised) intensity of every brain patch, appended after the patch tokens. A linear
        # map keeps each position's weight apart ("darker *here*"), which attention pooling of
        # patch tokens does not.
        self.n_readout_tokens = int(n_readout_tokens) if readout != "none" else 0
        if self.n_readout_tokens:
            self.readout_fc = nn.Sequential(nn.Dropout(readout_dropout),
                                            nn.Linear(geometry.n_tokens, self.n_readout_tokens * d_model))
            self.readout_norm = nn.LayerNorm(d_model)
            self.readout_embedding = nn.Parameter(torch.zeros(1, self.n_readout_tokens, d_model))
            nn.init.trunc_normal_(self.readout_embedding, std=0.02)
        # The cascade's fusion tokens read all ~4000 tokens of a volume; at the start their attention
        # is uniform, so R readout tokens get R/4000 of it and a gradient ~1e-4 of the patch
        # embedding's (measured): the model never learns to read them. `readout_share` > 0 adds a
        # fixed bias to the readout tokens' attention logits so that they start with that share
        # of the attention (0.5: as much as all patch tokens together); training moves it from there.
        # A number, not a buffer: it follows from the config and the geometry, and a model built on
        # the meta device and filled from a checkpoint (`smmt_core.train.checkpoints`) must not
        # hold a tensor the checkpoint does not carry.
        self.readout_logit_bias = 0.0
        if self.n_readout_tokens and readout_share > 0:
            self.readout_logit_bias = math.log(readout_share / (1 - readout_share) * geometry.n_tokens / self.n_readout_tokens)
        # Persistent: a checkpoint carries its tokens (a model built on the meta device gets them
        # from the file, and a changed template shows up as a shape mismatch on load).
        self.register_buffer("token_index", torch.as_tensor(geometry.token_index.copy(), dtype=torch.long))
        self.register_buffer("position_encoding", sinusoidal_positions_3d(geometry.positions_mm, d_model))
        # A learned scale of the fixed encoding: the model chooses how much position matters. It
        # starts small (as ViT's position embeddings do): at 1 the sin/cos vector (norm ~8 at d = 128)
        # would outweigh a patch's embedding (norm ~3) and drown the intensity differences.
        self.position_scale = nn.Parameter(torch.full((1,), 0.1))

    @classmethod
    def from_spec(cls, spec: dict, d_model: int, **options) -> VolumeEncoder:
        return cls(volume_geometry(float(spec["resolution_mm"]), float(spec["patch_mm"])), d_model, **options)

    @torch.no_grad()
    def set_input_statistics(self, volumes: torch.Tensor) -> None:
        """Per-voxel mean and SD from training crops (N, X, Y, Z) of subjects with an MRI.

        No-op without `input_norm`, or with fewer than 2 volumes (stays the identity).
        """
        if not self.input_norm or volumes.shape[0] < 2:
            return
        from smmt_core.model.encoders import INPUT_NORM_EPS

        volumes = volumes.to(self.input_mean.device, torch.float32)
        self.input_mean.copy_(volumes.mean(0))
        self.input_std.copy_(volumes.std(0) + INPUT_NORM_EPS)

    @property
    def cascade_key_bias(self) -> torch.Tensor | None:
        """(n_tokens,) logit bias of the cascade's attention over this encoder's tokens, or None."""
        if not self.readout_logit_bias:
            return None
        bias = torch.zeros(self.n_tokens, device=self.token_index.device)
        bias[self.geometry.n_tokens:] = self.readout_logit_bias
        return bias

    @property
    def n_patch_tokens(self) -> int:
        return self.geometry.n_tokens

    @property
    def n_tokens(self) -> int:
        return self.geometry.n_tokens + self.n_readout_tokens

    def _patches(self, mri: torch.Tensor) -> torch.Tensor:
        """(B, X, Y, Z) -> (B, n_patch_tokens, voxels per patch): the 3D patches inside the brain."""
        batch = mri.shape[0]
        p = self.geometry.patch
        gx, gy, gz = self.grid
        patches = mri.reshape(batch, gx, p, gy, p, gz, p).permute(0, 1, 3, 5, 2, 4, 6).reshape(batch, gx * gy * gz, p ** 3)
        return patches.index_select(1, self.token_index)

    @property
    def n_linear_features(self) -> int:
        """Length of `linear_features`: one per 3D patch token."""
        return self.geometry.n_tokens

    def linear_features(self, mri: torch.Tensor) -> torch.Tensor:
        """(B, n_patch_tokens): the mean raw intensity of each 3D patch (the linear path's MRI features)."""
        return self._patches(mri.float()).mean(-1)

    def forward(self, mri: torch.Tensor) -> torch.Tensor:
        if tuple(mri.shape[1:]) != self.mri_shape:
            raise DataError(f"MRI volume of shape {tuple(mri.shape[1:])} does not match the model's brain crop "
                            f"{self.mri_shape}; preprocess with the run's settings")
        batch = mri.shape[0]
        if self.input_norm:
            mri = (mri - self.input_mean) / self.input_std
        patches = self._patches(mri)
        tokens = self.embed(patches) + self.position_scale * self.position_encoding
        if not self.n_readout_tokens:
            return tokens
        readout = self.readout_fc(patches.mean(-1)).view(batch, self.n_readout_tokens, -1)
        return torch.cat([tokens, self.readout_norm(readout) + self.readout_embedding], 1)

    def ids_to_grid(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, n_tokens) cluster ids -> (B, gx, gy, gz), -1 where a patch is not a token (readout
        tokens, which have no place on the grid, are left out)."""
        batch = ids.shape[0]
        ids = ids[:, :self.n_patch_tokens]
        out = torch.full((batch, math.prod(self.grid)), -1, dtype=ids.dtype, device=ids.device)
        out[:, self.token_index] = ids
        return out.view(batch, *self.grid)
