"""A subject's scan as the viewer shows it: at its own resolution, in MNI space and as acquired.

Why: the model works on a 2 mm MNI grid (`preprocess.py`), but a researcher checking a scan wants
the scan itself (a 1 mm T1 shown at 2 mm looks pixelated, and its voxel read-out should be its
own), and, for a scan that went through the intake, the scan as acquired next to the registered
one, linked by the stored MNI -> native transform, so the registration can be checked. This module
only reads images (nibabel), reorients them to RAS and hands back plain arrays; the GUI draws them
and lays the model's grid over them.

Which images:
  mni     the T1 in MNI space at its own resolution: the intake's output (`t1_mni`, 1 mm by
          default) when the intake ran, else the T1 file itself (the demo cohort: 2 mm).
  native  the scan as acquired (the intake's `native`: the input file, or the NIfTI converted from
          DICOM), when it is a different image from `mni`; None otherwise.
The one resampling done here: an MNI image whose voxel axes are not the RAS axes (an oblique
affine) is put onto an axis-aligned grid of its own voxel size, so the model's axis-aligned grid
can be laid over it exactly. The native image is never resampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smmt_core.data.t1 import read_t1
from smmt_core.data.template import resample_kwargs
from smmt_core.errors import DataError

# A 0.5 mm whole-head scan has ~100 M voxels (400 MB as float32); above this many the viewer gets
# every n-th voxel (and a note saying so) rather than exhausting memory.
MAX_DISPLAY_VOXELS = 48_000_000
AXIS_ALIGNED_TOLERANCE = 1e-3  # off-diagonal affine terms, relative to the voxel size


@dataclass
class DisplayImage:
    """One image for the viewer: (X, Y, Z) float32 in RAS voxel order and its voxel -> mm affine."""

    volume: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        sizes = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return tuple(float(s) for s in sizes)


@dataclass
class ScanViews:
    """The images of one subject the viewer can show, and the map between their spaces."""

    mni: DisplayImage
    native: DisplayImage | None = None
    mni_to_native: np.ndarray = field(default_factory=lambda: np.eye(4))  # 4x4, RAS mm -> RAS mm
    notes: list[str] = field(default_factory=list)

    def mni_point_to_native(self, xyz_mm) -> np.ndarray:
        return (self.mni_to_native @ np.array([*xyz_mm, 1.0]))[:3]

    def native_point_to_mni(self, xyz_mm) -> np.ndarray:
        return (np.linalg.inv(self.mni_to_native) @ np.array([*xyz_mm, 1.0]))[:3]


def is_axis_aligned(affine: np.ndarray) -> bool:
    """True when voxel axes i, j, k run along x, y, z (a positive diagonal 3x3 part, no rotation)."""
    a = np.asarray(affine, dtype=float)[:3, :3]
    sizes = np.abs(np.diag(a))
    off = a - np.diag(np.diag(a))
    return bool((np.diag(a) > 0).all() and (np.abs(off) <= AXIS_ALIGNED_TOLERANCE * sizes.min()).all())


def load_display_image(path, *, axis_aligned: bool = False) -> tuple[DisplayImage, list[str]]:
    """Read one T1 for display: RAS voxel order (`as_closest_canonical`), float32, at its own
    resolution; `axis_aligned` resamples an oblique image onto an axis-aligned grid of its own
    voxel size. Returns the image and notes for the user; DataError naming the file otherwise."""
    import nibabel as nib

    path = Path(path)
    img, notes = read_t1(path)
    img = nib.as_closest_canonical(img)
    if axis_aligned and not is_axis_aligned(img.affine):
        from nilearn import image

        voxel = np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(axis=0))
        try:
            img = image.resample_img(img, target_affine=np.diag(voxel), interpolation="linear", fill_value=0.0,
                                     **resample_kwargs())
        except Exception as exc:
            raise DataError(f"cannot put the image on an axis-aligned grid for display ({type(exc).__name__}: "
                            f"{exc})", path) from None
        notes.append(f"{path.name}: its voxel axes are oblique; shown resampled onto an axis-aligned grid of "
                     f"{' x '.join(f'{v:.2g}' for v in voxel)} mm")
    volume = np.asarray(img.dataobj, dtype=np.float32)
    affine = np.asarray(img.affine, dtype=np.float64)
    if volume.size > MAX_DISPLAY_VOXELS:
        step = math.ceil((volume.size / MAX_DISPLAY_VOXELS) ** (1 / 3))
        volume = volume[::step, ::step, ::step]
        affine = affine @ np.diag([step, step, step, 1.0])
        notes.append(f"{path.name}: large image; the viewer shows every {step}th voxel")
    return DisplayImage(np.ascontiguousarray(volume), affine, path), notes


def load_scan_views(t1_path, intake: dict | None = None) -> ScanViews:
    """The images the viewer shows for one subject (see the module doc).

    t1_path: the subject's T1 file (or DICOM folder) as given. intake: what the intake did
    (`PreprocessedMRI.intake` / `Prediction.intake`: its `t1_mni`, `native` and `mni_to_native`),
    or None when the intake did not run (a preview: the file is shown as it is).
    """
    source = Path(t1_path) if t1_path is not None else None
    intake = intake or {}
    mni_path = Path(intake["t1_mni"]) if intake.get("t1_mni") else source
    if mni_path is None:
        raise DataError("no T1 image to show")
    mni, notes = load_display_image(mni_path, axis_aligned=True)
    matrix = intake.get("mni_to_native")
    mni_to_native = np.asarray(matrix, dtype=np.float64) if matrix is not None else np.eye(4)
    if mni_to_native.shape != (4, 4) or not np.isfinite(mni_to_native).all() \
            or abs(np.linalg.det(mni_to_native[:3, :3])) < 1e-8:
        raise DataError("the stored MNI -> native transform is not an invertible 4x4 matrix", mni_path)
    native_path = _native_path(source, intake, mni_path)
    native = None
    if native_path is not None:
        native, native_notes = load_display_image(native_path)
        notes.extend(native_notes)
    return ScanViews(mni=mni, native=native, mni_to_native=mni_to_native, notes=notes)


def _native_path(source: Path | None, intake: dict, mni_path: Path) -> Path | None:
    """The scan as acquired, when the intake made a different image of it; None otherwise."""
    if not intake or intake.get("mni_to_native") is None:
        return None
    candidates = [intake.get("native")]
    if source is not None and source.is_file():
        candidates.append(source)
    candidates.append(mni_path.parent / "native.nii.gz")  # a DICOM input: converted next to t1_mni
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and Path(candidate).resolve() != mni_path.resolve():
            return Path(candidate)
    return None
