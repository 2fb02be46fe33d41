"""Geometry of a 3D volume shown in three orthogonal planes; no Qt here, so it is easy to test.

Conventions (the volume is reoriented to RAS, as `smmt_core.data.preprocess` returns it):
  axial    fixes k (z); shows x to the right, y (anterior) up      -> volume[:, :, k]
  coronal  fixes j (y); shows x to the right, z (superior) up      -> volume[:, j, :]
  sagittal fixes i (x); shows y (anterior) to the right, z up      -> volume[i, :, :]
Each 2D slice is indexed [horizontal, vertical], which is pyqtgraph's default (column-major)
image order, so slices go to `ImageItem` without transposing.

Display frame: a view's coordinates are mm from the outer edge of voxel 0 along the view's two
axes (`plane_extent_mm`, `plane_cursor_mm`). The viewer shows one image (the scan at its own
resolution) and lays a second grid over it (the model's 2 mm grid): `GridLink` says where that
grid's voxels lie in the shown image's display frame when both are axis-aligned in the same world
space (MNI); `resample_slice` samples a volume on the shown slice through any world-to-world map
(the intake's MNI -> native transform).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smmt_core.modalities import PLANES  # noqa: F401 (re-exported to the viewer's modules)

# plane -> (fixed axis, horizontal axis, vertical axis)
PLANE_AXES = {"axial": (2, 0, 1), "coronal": (1, 0, 2), "sagittal": (0, 1, 2)}


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Length in mm of one voxel step along each array axis."""
    sizes = np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
    return np.where(sizes > 0, sizes, 1.0)


def robust_levels(volume: np.ndarray) -> tuple[float, float]:
    """Window from the 0.5th to the 99.5th percentile of the non-zero voxels (whole range if flat)."""
    data = np.asarray(volume, dtype=np.float32)
    finite = data[np.isfinite(data)]
    inside = finite[finite != 0]
    sample = inside if inside.size > 100 else finite
    if sample.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(sample, [0.5, 99.5])
    if not high > low:
        low, high = float(sample.min()), float(sample.max())
        if not high > low:
            high = low + 1.0
    return float(low), float(high)


@dataclass
class VolumeGeometry:
    """A volume, its voxel-to-mm affine and a cursor (the crosshair voxel)."""

    volume: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    cursor: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self):
        volume = np.asarray(self.volume)
        if volume.ndim != 3:
            raise ValueError(f"the viewer needs a 3D volume, got shape {volume.shape}")
        self.volume = np.ascontiguousarray(volume, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=float)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        self.spacing = voxel_sizes(self.affine)
        self.cursor = self.clamp(self.cursor if any(self.cursor) else self.centre())

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.volume.shape)

    def centre(self) -> tuple[int, int, int]:
        return tuple(n // 2 for n in self.shape)

    def clamp(self, ijk) -> tuple[int, int, int]:
        return tuple(int(min(max(int(v), 0), n - 1)) for v, n in zip(ijk, self.shape))

    def contains(self, ijk) -> bool:
        return all(0 <= v < n for v, n in zip(ijk, self.shape))

    # --- planes -----------------------------------------------------------------------------
    def slice_index(self, plane: str) -> int:
        return self.cursor[PLANE_AXES[plane][0]]

    def n_slices(self, plane: str) -> int:
        return self.shape[PLANE_AXES[plane][0]]

    def slice_image(self, plane: str, index: int | None = None) -> np.ndarray:
        """The 2D slice [horizontal, vertical], contiguous float32."""
        fixed = PLANE_AXES[plane][0]
        index = self.slice_index(plane) if index is None else int(index)
        return np.ascontiguousarray(np.take(self.volume, index, axis=fixed), dtype=np.float32)

    def plane_extent_mm(self, plane: str) -> tuple[float, float]:
        """Width and height of a slice of this plane in mm (for aspect-correct display)."""
        _, h, v = PLANE_AXES[plane]
        return self.shape[h] * self.spacing[h], self.shape[v] * self.spacing[v]

    def plane_cursor_mm(self, plane: str) -> tuple[float, float]:
        """The crosshair position within a plane's slice, in display mm (voxel centres)."""
        _, h, v = PLANE_AXES[plane]
        return (self.cursor[h] + 0.5) * self.spacing[h], (self.cursor[v] + 0.5) * self.spacing[v]

    def voxel_at(self, plane: str, x_mm: float, y_mm: float) -> tuple[int, int, int]:
        """The voxel under display position (x_mm, y_mm) of a plane at its current slice (unclamped)."""
        fixed, h, v = PLANE_AXES[plane]
        ijk = list(self.cursor)
        ijk[h] = int(np.floor(x_mm / self.spacing[h]))
        ijk[v] = int(np.floor(y_mm / self.spacing[v]))
        ijk[fixed] = self.cursor[fixed]
        return tuple(ijk)

    def model_slice_rect_mm(self, plane: str) -> tuple[float, float, float, float]:
        """Where a model input slice of this plane lies in the view: (x, y, width, height) in mm.

        Mirrors `smmt_core.data.preprocess`: the slice is cut in display orientation (rows top-down,
        columns = the view's horizontal axis), zero-padded, centred, to a square of side
        max(width, height) voxels, then resized. So the model's square covers the slice plus the
        padding; a cluster grid stretched over this rect lands on the patches the model saw.
        """
        _, h, v = PLANE_AXES[plane]
        n_h, n_v = self.shape[h], self.shape[v]
        side = max(n_h, n_v)
        top, left = (side - n_v) // 2, (side - n_h) // 2
        x0 = -left * self.spacing[h]
        y0 = (n_v + top - side) * self.spacing[v]
        return float(x0), float(y0), float(side * self.spacing[h]), float(side * self.spacing[v])

    def set_slice(self, plane: str, index: int) -> None:
        ijk = list(self.cursor)
        ijk[PLANE_AXES[plane][0]] = index
        self.cursor = self.clamp(ijk)

    # --- coordinates ---------------------------------------------------------------------------
    def to_mm(self, ijk) -> tuple[float, float, float]:
        xyz = self.affine @ np.array([*ijk, 1.0])
        return tuple(float(v) for v in xyz[:3])

    def value_at(self, ijk) -> float:
        return float(self.volume[tuple(int(v) for v in ijk)])

    def voxel_of_mm(self, xyz_mm) -> tuple[int, int, int]:
        """The voxel whose centre is nearest to a world point (mm); unclamped."""
        ijk = np.linalg.solve(self.affine, np.array([*xyz_mm, 1.0]))[:3]
        return tuple(int(v) for v in np.floor(ijk + 0.5))

    def display_origin_mm(self) -> np.ndarray:
        """World position of the display frame's origin (the outer corner of voxel 0): axis-aligned grids."""
        return self.affine[:3, 3] - 0.5 * self.spacing


@dataclass
class GridLink:
    """Where a second grid (`other`, the model's) lies in the display frame of the `shown` image.

    Both must be axis-aligned (RAS, diagonal affines) in the same world space; then a slice of
    `other` is a rectangle in a view of `shown`, shifted by `offset` mm, and drawing it there with
    its own voxel size is exact (no resampling). `shown` may be `other` itself (offset 0).
    """

    shown: VolumeGeometry
    other: VolumeGeometry

    def __post_init__(self):
        from smmt_core.data.scan_views import is_axis_aligned

        if not (is_axis_aligned(self.shown.affine) and is_axis_aligned(self.other.affine)):
            raise ValueError("both grids must be axis-aligned to be laid over each other")
        self.offset = self.other.display_origin_mm() - self.shown.display_origin_mm()

    def other_index(self, plane: str) -> int:
        """The slice of `other` that holds the shown cursor, along the plane's axis (unclamped)."""
        fixed = PLANE_AXES[plane][0]
        return self.other.voxel_of_mm(self.shown.to_mm(self.shown.cursor))[fixed]

    def other_voxel_at(self, plane: str, x_mm: float, y_mm: float) -> tuple[int, int, int]:
        """The voxel of `other` under display position (x, y) of a view of `shown` (unclamped)."""
        fixed, h, v = PLANE_AXES[plane]
        ijk = [0, 0, 0]
        ijk[h] = int(np.floor((x_mm - self.offset[h]) / self.other.spacing[h]))
        ijk[v] = int(np.floor((y_mm - self.offset[v]) / self.other.spacing[v]))
        ijk[fixed] = self.other_index(plane)
        return tuple(ijk)

    def rect(self, plane: str, rect: tuple[float, float, float, float] | None = None) -> tuple[float, float, float, float]:
        """A rectangle (x, y, w, h) in the display frame of `other` (default: its whole slice),
        moved into the display frame of `shown`."""
        _, h, v = PLANE_AXES[plane]
        x, y, w, hh = rect if rect is not None else (0.0, 0.0, *self.other.plane_extent_mm(plane))
        return float(x + self.offset[h]), float(y + self.offset[v]), float(w), float(hh)

    def shown_index_of(self, plane: str, other_index: int) -> int:
        """The slice of `shown` through the centre of slice `other_index` of `other` (clamped)."""
        fixed = PLANE_AXES[plane][0]
        ijk = list(self.other.cursor)
        ijk[fixed] = other_index
        target = self.shown.voxel_of_mm(self.other.to_mm(ijk))[fixed]
        return int(min(max(target, 0), self.shown.shape[fixed] - 1))


def resample_slice(shown: VolumeGeometry, plane: str, source: VolumeGeometry, shown_to_source_mm: np.ndarray,
                   order: int = 0) -> np.ndarray:
    """`source` sampled at the voxel centres of the shown image's current slice of `plane`
    ([horizontal, vertical], like `slice_image`), through a 4x4 world-to-world map; 0 outside.

    Nearest neighbour (order 0) keeps the source's own voxels visible (the model's 2 mm blocks)."""
    from scipy.ndimage import map_coordinates

    fixed, h, v = PLANE_AXES[plane]
    n_h, n_v = shown.shape[h], shown.shape[v]
    grid_h, grid_v = np.meshgrid(np.arange(n_h), np.arange(n_v), indexing="ij")
    ijk = np.ones((4, n_h * n_v))
    ijk[h], ijk[v], ijk[fixed] = grid_h.ravel(), grid_v.ravel(), shown.slice_index(plane)
    to_source_voxels = np.linalg.inv(source.affine) @ np.asarray(shown_to_source_mm, dtype=float) @ shown.affine
    coords = (to_source_voxels @ ijk)[:3]
    values = map_coordinates(source.volume, coords, order=order, mode="constant", cval=0.0, prefilter=False)
    return np.ascontiguousarray(values.reshape(n_h, n_v), dtype=np.float32)
