"""The whole brain as 3D patch tokens: where the `volume` preset's tokens sit on the MNI grid.

Why a fixed geometry: every scan is on the MNI152 grid, so the brain occupies the same voxels in
every subject. The crop (the template brain's bounding box, grown to a whole number of patches),
the patch grid and which patches lie inside the brain are therefore a function of the grid
spacing and the patch size alone, computed once here and shared by the data (the crop), the model
(which patches become tokens, their 3D positions) and the viewers (cluster ids back onto the MNI
grid). Patches outside the brain are dropped: they hold no anatomy and would only dilute the
attention. Numpy only (no torch), so the GUI may use it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from smmt_core.data.template import mni_template
from smmt_core.errors import ConfigError

# A patch becomes a token when at least this share of its voxels is inside the template brain
# mask: patches that only graze the brain surface carry mostly background.
MIN_BRAIN_SHARE = 0.25


@dataclass(frozen=True)
class VolumeGeometry:
    """The crop and patch grid of the volume input at one grid spacing and patch size.

    origin: MNI-grid voxel index of the crop's first voxel (may be negative: zero-filled).
    shape: (X, Y, Z) voxels of the crop, a multiple of `patch` along every axis.
    grid: (gx, gy, gz) patches; keep: bool (gx, gy, gz), True for a patch that becomes a token.
    token_index: flat (C-order) grid index of each token, ascending; positions_mm: (n, 3) MNI mm
    of each token's patch centre.
    """

    resolution_mm: float
    patch: int
    mni_shape: tuple[int, int, int]
    origin: tuple[int, int, int]
    shape: tuple[int, int, int]
    grid: tuple[int, int, int]
    keep: np.ndarray
    token_index: np.ndarray
    positions_mm: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.token_index.size)

    @property
    def patch_mm(self) -> float:
        return self.patch * self.resolution_mm


def patch_voxels(resolution_mm: float, patch_mm: float) -> int:
    """Voxels per patch side; ConfigError unless the patch is a whole number of voxels."""
    ratio = patch_mm / resolution_mm
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
        raise ConfigError(f"the patch size ({patch_mm:g} mm) must be a whole number (>= 1) of voxels of "
                          f"{resolution_mm:g} mm; e.g. 8 mm patches at 2 mm")
    return round(ratio)


@functools.lru_cache(maxsize=8)
def volume_geometry(resolution_mm: float, patch_mm: float) -> VolumeGeometry:
    """The crop and tokens for a grid spacing and patch size (cached: one per setting)."""
    p = patch_voxels(resolution_mm, patch_mm)
    tpl = mni_template(resolution_mm)
    mask = tpl.mask
    lo = np.array([np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))).min() for ax in range(3)])
    hi = np.array([np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))).max() + 1 for ax in range(3)])
    size = -(-(hi - lo) // p) * p  # round the bounding box up to whole patches
    origin = lo - (size - (hi - lo)) // 2  # grow it evenly on both sides
    cropped = crop_to_geometry_box(mask.astype(np.float32), origin, size)
    grid = tuple(int(s // p) for s in size)
    share = cropped.reshape(grid[0], p, grid[1], p, grid[2], p).mean(axis=(1, 3, 5))
    keep = share >= MIN_BRAIN_SHARE
    token_index = np.flatnonzero(keep.ravel())
    cells = np.stack(np.unravel_index(token_index, grid), 1).astype(np.float64)  # (n, 3) grid coordinates
    centres_vox = origin + (cells + 0.5) * p - 0.5
    positions = centres_vox @ tpl.affine[:3, :3].T + tpl.affine[:3, 3]
    keep.setflags(write=False)
    token_index.setflags(write=False)
    positions.setflags(write=False)
    return VolumeGeometry(resolution_mm=float(resolution_mm), patch=p, mni_shape=tuple(int(s) for s in mask.shape),
                          origin=tuple(int(v) for v in origin), shape=tuple(int(s) for s in size), grid=grid,
                          keep=keep, token_index=token_index, positions_mm=positions)


def crop_to_geometry_box(volume: np.ndarray, origin, size) -> np.ndarray:
    """volume[origin : origin + size] along each axis, zero where the box leaves the volume."""
    out = np.zeros(tuple(int(s) for s in size), dtype=volume.dtype)
    src, dst = [], []
    for o, s, n in zip(origin, size, volume.shape):
        a, b = max(int(o), 0), min(int(o) + int(s), n)
        src.append(slice(a, b))
        dst.append(slice(a - int(o), b - int(o)))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def crop_volume(volume: np.ndarray, geometry: VolumeGeometry) -> np.ndarray:
    """An MNI-grid volume cut to the geometry's crop (the model's input)."""
    if tuple(volume.shape) != geometry.mni_shape:
        raise ValueError(f"volume of shape {volume.shape} is not on the MNI grid {geometry.mni_shape} "
                         f"at {geometry.resolution_mm:g} mm")
    return crop_to_geometry_box(volume, geometry.origin, geometry.shape)


def token_ids_to_grid(ids: np.ndarray, geometry: VolumeGeometry) -> np.ndarray:
    """(..., n_tokens) per-token cluster ids -> (..., gx, gy, gz) int32, -1 outside the brain."""
    ids = np.asarray(ids)
    if ids.shape[-1] != geometry.n_tokens:
        raise ValueError(f"{ids.shape[-1]} token ids for a geometry of {geometry.n_tokens} tokens")
    out = np.full((*ids.shape[:-1], int(np.prod(geometry.grid))), -1, dtype=np.int32)
    out[..., geometry.token_index] = ids
    return out.reshape(*ids.shape[:-1], *geometry.grid)


def grid_labels_to_mni(labels: np.ndarray, origin, patch: int, mni_shape) -> np.ndarray:
    """(gx, gy, gz) patch labels -> an (X, Y, Z) label volume on the MNI grid, -1 where no token.

    Each patch label fills its patch×patch×patch voxels; the parts of the crop outside the MNI
    grid are cut off. Used by the viewers to draw the clusters over the scan.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"patch labels must be a 3D grid, got shape {labels.shape}")
    up = labels.repeat(patch, 0).repeat(patch, 1).repeat(patch, 2)
    out = np.full(tuple(int(s) for s in mni_shape), -1, dtype=np.int32)
    src, dst = [], []
    for o, s, n in zip(origin, up.shape, out.shape):
        a, b = max(int(o), 0), min(int(o) + int(s), int(n))
        dst.append(slice(a, b))
        src.append(slice(a - int(o), b - int(o)))
    out[tuple(dst)] = up[tuple(src)]
    return out
