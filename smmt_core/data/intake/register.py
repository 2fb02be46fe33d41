"""N4 bias-field correction and affine registration to the MNI152 template, with ANTsPy.

Why ANTs: the reference implementation the field uses (Clinica t1-linear runs the same N4 and
`antsRegistration` affine), shipped as a wheel with no run-time download. The fixed image is the
nilearn MNI152 2009 template (brain only, so the moving image must be brain-extracted first).

Coordinates: nibabel affines are RAS, ITK/ANTs physical points are LPS; `to_ants`/`from_ants`
convert, and the stored transform is a plain 4x4 matrix in RAS mm (`mni_to_native`), so the
viewer can map any MNI point back into the scan's own space without ANTs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from smmt_core.data.intake import deps
from smmt_core.errors import DataError

_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)


def to_ants(img):
    """A nibabel image as an ANTsImage (float32), same voxels, same world positions."""
    import ants

    affine = np.asarray(img.affine, dtype=np.float64)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = _LPS @ affine[:3, :3] / spacing
    origin = _LPS @ affine[:3, 3]
    data = np.asarray(img.dataobj, dtype=np.float32)
    return ants.from_numpy(np.ascontiguousarray(data), origin=tuple(origin), spacing=tuple(spacing),
                           direction=direction)


def from_ants(aimg):
    """An ANTsImage as a float32 `Nifti1Image`."""
    import nibabel as nib

    spacing = np.asarray(aimg.spacing, dtype=np.float64)
    direction = np.asarray(aimg.direction, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = _LPS @ direction * spacing
    affine[:3, 3] = _LPS @ np.asarray(aimg.origin, dtype=np.float64)
    return nib.Nifti1Image(np.asarray(aimg.numpy(), dtype=np.float32), affine)


# Three fitting levels of at most 30 iterations (ANTsPy's default is four of 50): the bias field of
# a 1.5/3 T scan is smooth and this halves the time of the step (docs/intake.md).
N4_CONVERGENCE = {"iters": [30, 30, 30], "tol": 1e-6}
# Affine iterations per level (shrink 6, 4, 2, 1) and the stopping tolerance; ANTsPy's defaults are
# (2100, 1200, 1200, 10): most of that time is spent after convergence at the fine levels.
AFF_ITERATIONS = (1000, 500, 250, 0)


def n4(img, mask=None):
    """N4 bias-field corrected copy of `img` (inside `mask` when given, as ANTs recommends)."""
    import ants

    deps.require("bias-field correction", names=("ants",))
    aimg = to_ants(img)
    amask = to_ants(mask) if mask is not None else None
    if amask is not None:
        amask = ants.threshold_image(amask, 0.5, 1e9)
    return from_ants(ants.n4_bias_field_correction(aimg, mask=amask, shrink_factor=4, convergence=N4_CONVERGENCE))


@dataclass
class Registration:
    """The result of `register_affine`: the moving image resampled into MNI space, and the map."""

    image: object  # Nifti1Image on the output grid (MNI space)
    mask: object | None  # the moving mask on the same grid (nearest neighbour), if one was given
    mni_to_native: np.ndarray  # 4x4, RAS mm: an MNI point -> the same anatomy in the scan's space


def ants_affine_to_ras(params: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """ITK AffineTransform (12 parameters, centre) -> 4x4 RAS matrix of the same point map.

    ITK maps a point p of the fixed image to A (p - c) + c + t in the moving image (LPS).
    """
    params = np.asarray(params, dtype=np.float64)
    a = params[:9].reshape(3, 3)
    t = params[9:12]
    c = np.asarray(fixed, dtype=np.float64)[:3]
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = t + c - a @ c
    flip = np.eye(4)
    flip[:3, :3] = _LPS
    return flip @ lps @ flip


def register_affine(moving, fixed, output_grid, *, moving_mask=None, path=None) -> Registration:
    """Affine registration of `moving` (brain only) to `fixed` (the template), resampled onto
    `output_grid` (a Nifti1Image whose grid is used); DataError when ANTs fails."""
    import ants

    deps.require("registration to MNI space", path, names=("ants",))
    afixed, amoving, agrid = to_ants(fixed), to_ants(moving), to_ants(output_grid)
    with tempfile.TemporaryDirectory(prefix="smmt-ants-") as tmp:
        try:
            reg = ants.registration(
                afixed, amoving, type_of_transform="Affine", outprefix=os.path.join(tmp, "reg_"),
                aff_metric="mattes", aff_iterations=AFF_ITERATIONS,
            )
            fwd = reg["fwdtransforms"]
            tx = ants.read_transform(fwd[0])
            matrix = ants_affine_to_ras(tx.parameters, tx.fixed_parameters)
            warped = ants.apply_transforms(agrid, amoving, transformlist=fwd, interpolator="linear")
            warped_mask = None
            if moving_mask is not None:
                warped_mask = ants.apply_transforms(agrid, to_ants(moving_mask), transformlist=fwd,
                                                    interpolator="nearestNeighbor")
        except (RuntimeError, ValueError) as exc:
            raise DataError(f"affine registration to MNI152 failed ({exc})", path) from None
    return Registration(image=from_ants(warped), mask=from_ants(warped_mask) if warped_mask is not None else None,
                        mni_to_native=matrix)
